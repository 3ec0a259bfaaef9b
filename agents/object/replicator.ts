// The object replicator of one device: makes the device hold what the log says its partitions
// should hold. For each partition the ring makes it a primary of, every recorded version missing
// or older here is pulled from another device that has exactly that version (its MD5 checked as
// it is written), and every recorded delete is applied. Partitions it is no longer a primary of
// (a rebalance moved them, or it stood in as a handoff) are pushed to their primaries and dropped
// here once every primary has them. A replica no record names (a PUT whose record never came) is
// reclaimed after a grace period. Swift's replicator compares suffix hashes between peers; here
// the log is the reference both sides agree on, so a replica compares against it directly.
import { Agent, request, type IncomingMessage } from 'node:http';
import { handoffDevices, primaryDevices, type Ring, type RingDevice } from '../../domains/object/ring.js';
import { replicaPath, splitHost } from '../../infra/object/placement.js';
import type { ObjectView, RecordedObject } from '../../infra/sagas/object.feed.js';
import type { ReplicaMeta, ReplicaStore } from './replica-store.js';

export interface ReplicationReport {
  partitions: number;
  /** Versions copied here from a peer. */
  pulled: number;
  /** Recorded deletes applied here. */
  deleted: number;
  /** Replicas pushed to a primary from a partition this device no longer serves. */
  pushed: number;
  /** Replicas dropped here once every primary had them. */
  handedOff: number;
  /** Unrecorded replicas reclaimed. */
  reclaimed: number;
  /** Versions no peer could supply this pass (retried next pass). */
  missing: number;
}

export interface ReplicatorOptions {
  deviceId: number;
  store: ReplicaStore;
  view: () => ObjectView;
  /** A replica that no record names is reclaimed once older than this (default 1 hour). */
  reclaimAfterMs?: number;
  now?: () => number;
  timeoutMs?: number;
}

const keyOf = (account: string, container: string, name: string) => `${account}/${container}/${name}`;
const dataTimestamp = (m: ReplicaMeta) => (m.deleted ? undefined : (m.dataTimestamp ?? m.timestamp));

export class Replicator {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });

  constructor(private readonly o: ReplicatorOptions) {}

  /** One pass over every partition this device serves or holds. */
  async pass(): Promise<ReplicationReport> {
    const report: ReplicationReport = { partitions: 0, pulled: 0, deleted: 0, pushed: 0, handedOff: 0, reclaimed: 0, missing: 0 };
    const view = this.o.view();
    const ring = view.ring();
    if (!ring) return report;
    const mine = new Set<number>();
    for (const row of ring.assignment) row.forEach((d, p) => d === this.o.deviceId && mine.add(p));
    const held = new Set(await this.o.store.partitions());
    const wanted = new Set([...view.partitionsWithObjects()].filter((p) => mine.has(p)));
    for (const p of new Set([...wanted, ...held])) {
      report.partitions++;
      if (mine.has(p)) await this.syncPrimary(ring, view, p, held.has(p), report);
      else await this.handOff(ring, view, p, report);
    }
    return report;
  }

  private async syncPrimary(ring: Ring, view: ObjectView, partition: number, held: boolean, report: ReplicationReport): Promise<void> {
    const recorded = view.inPartition(partition).filter((r) => !r.version || r.version.segments.length === 0);
    const local = new Map((held ? await this.o.store.listPartition(partition) : []).map((m) => [keyOf(m.account, m.container, m.object), m]));
    const named = new Set<string>();
    for (const r of recorded) {
      named.add(r.id);
      const here = local.get(r.id);
      if (r.version) {
        const have = here ? dataTimestamp(here) : undefined;
        if (here?.deleted && here.timestamp > r.timestamp) continue; // a delete newer than the record is on its way to the log
        if (have !== undefined && have >= r.timestamp) continue;
        if (await this.pull(ring, partition, r)) report.pulled++;
        else report.missing++;
      } else if (here && !here.deleted && (dataTimestamp(here) ?? '') < r.timestamp) {
        await this.o.store.delete(partition, r.account, r.container, r.name, r.timestamp);
        report.deleted++;
      }
    }
    const now = this.o.now?.() ?? Date.now();
    const grace = this.o.reclaimAfterMs ?? 3_600_000;
    for (const [key, m] of local) {
      if (named.has(key) || m.deleted) continue;
      if (now - Number(m.timestamp) * 1000 > grace) {
        await this.o.store.removeReplica(partition, m.account, m.container, m.object);
        report.reclaimed++;
      }
    }
  }

  /** Copies the recorded version from the first device that has exactly it (primaries, handoffs, then the rest). */
  private async pull(ring: Ring, partition: number, r: RecordedObject): Promise<boolean> {
    const v = r.version!;
    const path = replicaPath(partition, r.account, r.container, r.name);
    for (const device of this.sources(ring, partition)) {
      let response: IncomingMessage;
      try {
        response = await this.send(device, 'GET', path);
      } catch {
        continue;
      }
      const ts = String(response.headers['x-backend-data-timestamp'] ?? response.headers['x-timestamp'] ?? '');
      const etag = String(response.headers.etag ?? '').replace(/"/g, '');
      if (response.statusCode !== 200 || ts !== v.timestamp || etag !== v.etag) {
        response.resume();
        continue;
      }
      try {
        // The log's metadata is the truth (a POST may have replaced the PUT's).
        await this.o.store.put(partition, { account: r.account, container: r.container, object: r.name, timestamp: v.timestamp, contentType: v.contentType, metadata: v.metadata, expectedEtag: v.etag }, response);
        return true;
      } catch {
        response.destroy();
      }
    }
    return false;
  }

  private sources(ring: Ring, partition: number): RingDevice[] {
    const seen = new Set<number>([this.o.deviceId]);
    const out: RingDevice[] = [];
    for (const d of [...primaryDevices(ring, partition), ...handoffDevices(ring, partition), ...ring.devices]) {
      if (seen.has(d.id)) continue;
      seen.add(d.id);
      out.push(d);
    }
    return out;
  }

  /** A partition this device is not a primary of: push each replica to the primaries lacking it, then drop it. */
  private async handOff(ring: Ring, view: ObjectView, partition: number, report: ReplicationReport): Promise<void> {
    const primaries = primaryDevices(ring, partition);
    const now = this.o.now?.() ?? Date.now();
    const grace = this.o.reclaimAfterMs ?? 3_600_000;
    for (const m of await this.o.store.listPartition(partition)) {
      if (!m.deleted) {
        // Only the version the log records is handed on: a replica of a write that was never
        // acknowledged (or one the log has moved past) must not overwrite the primaries' copies.
        const recorded = view.recorded(m.account, m.container, m.object);
        const mine = dataTimestamp(m)!;
        if (recorded?.version?.timestamp !== mine) {
          const superseded = recorded !== undefined && recorded.timestamp > mine;
          if (superseded || now - Number(m.timestamp) * 1000 > grace) {
            await this.o.store.removeReplica(partition, m.account, m.container, m.object);
            report.reclaimed++;
          }
          continue;
        }
      }
      let everywhere = true;
      for (const device of primaries) {
        const ok = m.deleted ? await this.pushDelete(device, partition, m) : await this.pushData(device, partition, m, view, report);
        if (!ok) everywhere = false;
      }
      if (everywhere) {
        await this.o.store.removeReplica(partition, m.account, m.container, m.object);
        report.handedOff++;
      }
    }
  }

  private async pushDelete(device: RingDevice, partition: number, m: ReplicaMeta): Promise<boolean> {
    try {
      const res = await this.send(device, 'DELETE', replicaPath(partition, m.account, m.container, m.object), { 'x-timestamp': m.timestamp });
      res.resume();
      return res.statusCode === 204 || res.statusCode === 404 || res.statusCode === 409;
    } catch {
      return false;
    }
  }

  /** Whether the primary has this version (or a newer one) once this returns true. */
  private async pushData(device: RingDevice, partition: number, m: ReplicaMeta, view: ObjectView, report: ReplicationReport): Promise<boolean> {
    const path = replicaPath(partition, m.account, m.container, m.object);
    const mine = dataTimestamp(m)!;
    try {
      const head = await this.send(device, 'HEAD', path);
      head.resume();
      const theirs = String(head.headers['x-backend-data-timestamp'] ?? head.headers['x-timestamp'] ?? head.headers['x-backend-timestamp'] ?? '');
      if ((head.statusCode === 200 || head.statusCode === 404) && theirs >= mine && theirs !== '') return true;
    } catch {
      return false;
    }
    const recorded = view.recorded(m.account, m.container, m.object);
    const metadata = recorded?.version?.timestamp === mine ? recorded.version.metadata : m.metadata;
    try {
      const { body, meta } = await this.o.store.read(partition, m.account, m.container, m.object);
      const headers: Record<string, string> = {
        'x-timestamp': mine,
        'content-type': meta.contentType,
        etag: meta.etag,
        'transfer-encoding': 'chunked',
        ...Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`x-object-meta-${k}`, encodeURIComponent(v)])),
      };
      const status = await this.upload(device, path, headers, body);
      if (status === 201) report.pushed++;
      return status === 201 || status === 409;
    } catch {
      return false;
    }
  }

  private upload(device: RingDevice, path: string, headers: Record<string, string>, body: NodeJS.ReadableStream): Promise<number> {
    return new Promise((resolve, reject) => {
      const [host, port] = splitHost(device.host);
      const req = request({ host, port, method: 'PUT', path, headers, agent: this.agent, timeout: this.o.timeoutMs ?? 15_000 });
      req.once('timeout', () => req.destroy(new Error(`${device.host} stalled`)));
      // The replica's file is closed whatever happens to the request (an early answer, an error).
      const release = () => (body as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
      req.once('error', (e) => {
        release();
        reject(e);
      });
      req.once('response', (res) => {
        res.resume();
        release();
        resolve(res.statusCode ?? 0);
      });
      body.once('error', (e) => req.destroy(e as Error));
      body.pipe(req);
    });
  }

  private send(device: RingDevice, method: string, path: string, headers: Record<string, string> = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const [host, port] = splitHost(device.host);
      const req = request({ host, port, method, path, headers, agent: this.agent, timeout: this.o.timeoutMs ?? 15_000 });
      req.once('timeout', () => req.destroy(new Error(`${device.host} did not answer`)));
      req.once('error', reject);
      req.once('response', resolve);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
