// Object storage for image tests (no cloud needed), until the all-in-one cloud hosts it: three object servers on
// loopback (ReplicaStores in a temporary directory), a ring over them built with the ring builder
// (3 replicas), an ObjectProxy on that ring, the object deciders in a worker on the given log and
// an ObjectWriter to send them commands.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectServer } from '../../agents/object/object-server.js';
import { ReplicaStore } from '../../agents/object/replica-store.js';
import { ObjectWriter } from '../../api/object/object.writer.js';
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';
import { emptyRing, rebalance, type Ring, type RingDevice } from '../../domains/object/ring.js';
import { objectDefinitions } from '../../infra/codecs/object.codec.js';
import type { Log } from '../../infra/log/log.js';
import { ObjectProxy } from '../../infra/object/object-proxy.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';

export interface ObjectRig {
  proxy: ObjectProxy;
  writer: ObjectWriter;
  ring: Ring;
  servers: ObjectServer[];
  close(): Promise<void>;
}

export async function startObjectRig(log: Log, topology: TopologyOptions, o: { worker?: boolean } = {}): Promise<ObjectRig> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-objects-'));
  const servers: ObjectServer[] = [];
  const devices: RingDevice[] = [];
  for (let i = 0; i < 3; i++) {
    const server = new ObjectServer({ store: new ReplicaStore(join(dir, `d${i}`)), deviceId: i + 1, port: 0 });
    const { address } = await server.start();
    servers.push(server);
    devices.push({ id: i + 1, region: 1, zone: i + 1, host: address, device: `d${i}`, weight: 100 });
  }
  const ring = rebalance(emptyRing(6, 3), devices).ring;
  const proxy = new ObjectProxy({ ring: () => ring });
  const worker =
    o.worker === false
      ? undefined
      : new DeciderWorker({ log, domain: OBJECT_DOMAIN, aggregates: objectDefinitions, topology, onError: (e) => console.error(`decider object: ${e.message}`) });
  await worker?.start();
  const bus = await CommandBus.connect({ log, timeoutMs: 30_000 });
  const writer = new ObjectWriter(bus);
  return {
    proxy,
    writer,
    ring,
    servers,
    async close() {
      proxy.close();
      await bus.close();
      await worker?.stop();
      for (const s of servers) await s.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
