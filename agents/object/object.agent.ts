// The object agent of a storage host: for each of its devices an object server (the data path),
// a replicator (converges the device to the log: agents/object/replicator.ts) and an auditor
// (bit rot: agents/object/auditor.ts). It follows the object domain for the ring and the recorded
// versions; it writes nothing to the log but its reports of quarantined replicas.
import { mkdir } from 'node:fs/promises';
import { objectId } from '../../domains/object/object.types.js';
import type { ObjectFeed } from '../../infra/sagas/object.feed.js';
import { SerialPasses } from '../../infra/runtime/serial-passes.js';
import { Auditor } from './auditor.js';
import { ObjectServer } from './object-server.js';
import { ReplicaStore } from './replica-store.js';
import { Replicator, type ReplicationReport } from './replicator.js';

export interface ObjectDeviceConfig {
  /** The device's id in the ring. */
  deviceId: number;
  /** Where its replicas live. */
  root: string;
  /** Its object server's port (stable: the ring names it); 0 = any (tests). */
  port: number;
  host?: string;
  /** Where the in-process cloud puts it in the ring when it registers it (default region 1, zone = its position, weight 100). */
  region?: number;
  zone?: number;
  weight?: number;
}

/** A report the agent sends to the log (the object domain's ReportReplicaQuarantined). */
export type QuarantineReporter = (objectId: string, command: { type: 'ReportReplicaQuarantined'; deviceId: number; timestamp: string; reason: string }) => Promise<void>;

export interface ObjectAgentOptions {
  devices: ObjectDeviceConfig[];
  feed: ObjectFeed;
  report?: QuarantineReporter;
  /** Replicator passes: at least this often, and on every ring change (default 10 s). */
  replicateEveryMs?: number;
  /** Auditor passes (default 5 minutes). */
  auditEveryMs?: number;
  /** Read rate of an audit pass per device (bytes/s; default 20 MiB/s; 0 = unlimited). */
  auditBytesPerSecond?: number;
  /** Unrecorded replicas are reclaimed after this (default 1 hour). */
  reclaimAfterMs?: number;
  onError?: (e: Error) => void;
}

export interface ObjectDevice {
  deviceId: number;
  address: string;
  store: ReplicaStore;
  server: ObjectServer;
  replicator: Replicator;
  auditor: Auditor;
}

export class ObjectAgent {
  private timers: NodeJS.Timeout[] = [];
  /** Devices taken out of service (stopDevice): no server, no replication, no audit. */
  private readonly stopped = new Set<number>();
  private readonly replication: SerialPasses;
  private lastReport: ReplicationReport[] = [];

  private constructor(
    readonly devices: ObjectDevice[],
    private readonly o: ObjectAgentOptions,
  ) {
    const onError = o.onError ?? ((e: Error) => console.error(`object agent: ${e.message}`));
    this.replication = new SerialPasses(async () => {
      this.lastReport = await Promise.all(this.devices.filter((d) => !this.stopped.has(d.deviceId)).map((d) => d.replicator.pass()));
    }, onError);
  }

  static async start(o: ObjectAgentOptions): Promise<ObjectAgent> {
    const devices: ObjectDevice[] = [];
    for (const d of o.devices) {
      await mkdir(d.root, { recursive: true });
      const store = new ReplicaStore(d.root);
      await store.sweepTmp();
      const server = new ObjectServer({ store, deviceId: d.deviceId, host: d.host, port: d.port });
      const { address } = await server.start();
      const replicator = new Replicator({ deviceId: d.deviceId, store, view: () => o.feed.view, reclaimAfterMs: o.reclaimAfterMs });
      const auditor = new Auditor({
        store,
        bytesPerSecond: o.auditBytesPerSecond ?? 20 * 1024 * 1024,
        onQuarantined: (_partition, meta, reason) => {
          if (!o.report || !meta.account) return;
          o.report(objectId(meta.account, meta.container, meta.object), { type: 'ReportReplicaQuarantined', deviceId: d.deviceId, timestamp: meta.timestamp, reason }).catch(() => undefined);
        },
      });
      devices.push({ deviceId: d.deviceId, address, store, server, replicator, auditor });
    }
    const agent = new ObjectAgent(devices, o);
    agent.timers.push(setInterval(() => agent.replication.kick(), o.replicateEveryMs ?? 10_000));
    agent.timers.push(setInterval(() => void agent.auditNow().catch(() => undefined), o.auditEveryMs ?? 300_000));
    // A new ring moves partitions: replicate at once rather than at the next tick.
    o.feed.onChange((changed) => changed.has('ring') && agent.replication.kick());
    agent.replication.kick();
    return agent;
  }

  /** Runs a replication pass on every device now (after any running one) and returns its reports. */
  async replicateNow(): Promise<ReplicationReport[]> {
    await this.replication.settled();
    this.replication.kick();
    await this.replication.settled();
    return this.lastReport;
  }

  /** Runs an audit pass on every device; the quarantined replicas are re-replicated by the next replication pass. */
  async auditNow() {
    const results = await Promise.all(this.devices.filter((d) => !this.stopped.has(d.deviceId)).map((d) => d.auditor.pass()));
    if (results.some((r) => r.quarantined.length > 0)) this.replication.kick();
    return results;
  }

  private device(deviceId: number): ObjectDevice {
    const d = this.devices.find((x) => x.deviceId === deviceId);
    if (!d) throw new Error(`no object device ${deviceId} in this agent`);
    return d;
  }

  /** Takes a device out of service, as a stopped object server: its server closes and its replicator and auditor rest. */
  async stopDevice(deviceId: number): Promise<void> {
    const d = this.device(deviceId);
    this.stopped.add(deviceId);
    await this.replication.settled();
    await d.server.stop();
  }

  /** Puts a stopped device back in service on its old address, and replicates at once. */
  async startDevice(deviceId: number): Promise<void> {
    const d = this.device(deviceId);
    const i = d.address.lastIndexOf(':');
    d.server = new ObjectServer({ store: d.store, deviceId, host: d.address.slice(0, i), port: Number(d.address.slice(i + 1)) });
    await d.server.start();
    this.stopped.delete(deviceId);
    this.replication.kick();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.replication.close();
    for (const d of this.devices) {
      d.replicator.close();
      await d.server.stop();
    }
  }
}
