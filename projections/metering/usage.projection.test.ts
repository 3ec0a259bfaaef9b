// The usage read model fed by the real compute, block and object deciders (commands decided and
// folded as the runtime does, at fixed times), projected by a ProjectionRunner into SQLite and
// PostgreSQL: the usage per hour equals what is computed by hand; every event appended a second
// time (a redelivery) changes no row; a runner restarted on the same store (the meter restored
// from usage_resources) goes on as if it had never stopped; after a batch that was folded but not
// written, restore makes the meter fold it again; a rebuild from offset 0 into a fresh store gives
// the same rows.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockAggregate } from '../../domains/block/block.deciders.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { computeAggregate } from '../../domains/compute/compute.deciders.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { HOUR_MS, METERED_EVENTS } from '../../domains/metering/usage.js';
import { objectAggregate } from '../../domains/object/object.deciders.js';
import { OBJECT_DOMAIN, objectId } from '../../domains/object/object.types.js';
import { blockCodecFor, blockEventTypes } from '../../infra/codecs/block.codec.js';
import { computeCodecFor, computeEventTypes } from '../../infra/codecs/compute.codec.js';
import { imageEventTypes } from '../../infra/codecs/image.codec.js';
import { networkEventTypes } from '../../infra/codecs/network.codec.js';
import { objectCodecFor, objectEventTypes } from '../../infra/codecs/object.codec.js';
import type { EventEnvelope } from '../../infra/envelope/envelope.js';
import { encodeEvent } from '../../infra/envelope/envelope.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { partitionForKey } from '../../infra/log/partitioner.js';
import { HEADER_EVENT_TYPE } from '../../infra/runtime/partition-decider.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, type DecidedLogOptions, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { USAGE_HANDLED_EVENTS, USAGE_TABLES, USAGE_TOPICS, usageProjection } from './usage.projection.js';
import { UsageQueries } from './usage.queries.js';

const PARTITIONS = 4;
const stores = testStores('usage');
const dump = (store: Store) => dumpTables(store, USAGE_TABLES);

const T0 = Date.UTC(2026, 2, 1);
const at = (h: number, m = 0, s = 0) => T0 + h * HOUR_MS + m * 60_000 + s * 1000;
const small = { id: 'f-small', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const large = { id: 'f-large', name: 'm1.large', vcpus: 4, ramMb: 8192, diskGb: 40, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const volume = (id: string, projectId: string, sizeGb: number) => ({
  id, projectId, userId: 'u1', name: id, description: '', sizeGb, volumeTypeId: 'gold', backend: 'lvm', availabilityZone: 'nova', bootable: false,
  multiattach: false, metadata: {}, format: 'raw', source: { kind: '', id: '' }, createdAtMs: 0,
});
const object = (account: string, name: string, n: number, size: number) => ({
  account, container: 'c', name, timestamp: `${1772323200 + n}.00000`, etag: n.toString(16).padStart(32, '0'), size, contentType: 'application/octet-stream',
  metadata: {}, partition: 0, segments: [], ringVersion: 1,
});

describe('usage projection', () => {
  it('handles only event types the deciders emit (a misspelt one would never match)', () => {
    const emitted = new Set([...computeEventTypes, ...blockEventTypes, ...objectEventTypes, ...networkEventTypes, ...imageEventTypes]);
    for (const type of USAGE_HANDLED_EVENTS) expect(emitted.has(type), type).toBe(true);
    expect(USAGE_HANDLED_EVENTS.length).toBe(Object.values(METERED_EVENTS).flat().length);
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`usage read model on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let compute: DecidedLog;
    let block: DecidedLog;
    let objects: DecidedLog;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };
    const decided = (domain: string, aggregate: DecidedLogOptions['aggregate']) =>
      new DecidedLog({ log, runner: () => runner, eventsTopic: domainTopics(domain).events, partitions: PARTITIONS, aggregate });
    const flushAll = async () => {
      await compute.flush();
      await block.flush();
      await objects.flush();
    };
    const p1 = { userId: 'u1', projectId: 'p1', roles: ['member', 'reader'] };

    /** The first half of the day: a boot, a resize, a volume, an object. */
    function morning() {
      const i = (command: Record<string, unknown>, atMs: number) => compute.send('instance', 'i1', command as never, { atMs, actor: p1, requestId: 'r-i1' });
      i({ type: 'CreateInstance', name: 'web', projectId: 'p1', userId: 'u1', flavor: small, imageId: 'img', keyName: '', availabilityZone: '', serverGroupId: '', metadata: {} }, at(1));
      i({ type: 'AssignInstanceHost', host: 'h1', availabilityZone: 'nova' }, at(1));
      i({ type: 'CompleteInstanceAction', action: 'create' }, at(1, 0, 20)); // active from 01:00:20
      i({ type: 'ResizeInstance', flavor: large }, at(3));
      i({ type: 'AssignInstanceHost', host: 'h2', availabilityZone: 'nova' }, at(3));
      i({ type: 'CompleteInstanceAction', action: 'resize' }, at(3, 30)); // large from 03:30
      i({ type: 'ConfirmResizeInstance' }, at(4));
      block.send('volume', 'v1', { type: 'CreateVolume', volume: volume('v1', 'p1', 10), hostId: 's1' }, { atMs: at(2) }); // 10 GiB from 02:00
      block.send('volume', 'v1', { type: 'ReportVolumeCreated', hostId: 's1' }, { atMs: at(2) });
      objects.send('object', objectId('AUTH_p2', 'c', 'a'), { type: 'RecordObject', object: object('AUTH_p2', 'a', 1, 1000) }, { atMs: at(2, 15) }); // p2: 1000 B from 02:15
    }

    /** The second half: a stop, an extend, a replaced object, deletions. */
    function afternoon() {
      const i = (command: Record<string, unknown>, atMs: number) => compute.send('instance', 'i1', command as never, { atMs, actor: p1, requestId: 'r-i1b' });
      i({ type: 'StopInstance' }, at(5));
      i({ type: 'CompleteInstanceAction', action: 'stop' }, at(5)); // off 05:00
      i({ type: 'StartInstance' }, at(6));
      i({ type: 'CompleteInstanceAction', action: 'start' }, at(6, 0, 10)); // on 06:00:10
      i({ type: 'DeleteInstance' }, at(7));
      i({ type: 'CompleteInstanceAction', action: 'delete' }, at(7)); // off 07:00
      block.send('volume', 'v1', { type: 'ExtendVolume', newSizeGb: 15 }, { atMs: at(5) });
      block.send('volume', 'v1', { type: 'ReportVolumeExtended', hostId: 's1', sizeGb: 15 }, { atMs: at(5, 30) }); // 15 GiB from 05:30
      block.send('volume', 'v1', { type: 'DeleteVolume' }, { atMs: at(8) });
      block.send('volume', 'v1', { type: 'ReportVolumeDeleted', hostId: 's1' }, { atMs: at(8) }); // gone 08:00
      objects.send('object', objectId('AUTH_p2', 'c', 'a'), { type: 'RecordObject', object: object('AUTH_p2', 'a', 2, 4000) }, { atMs: at(4, 15) }); // 4000 B from 04:15
    }

    const expectedTotals = {
      // small: 01:00:20-03:30 = 8980 s; large: 03:30-05:00 = 5400 s and 06:00:10-07:00 = 3590 s -> 8990 s
      // volume: 10 GiB x 3.5 h (02:00-05:30), 15 GiB x 2.5 h (05:30-08:00)
      p1: { 'instance/m1.small': 8980, 'instance/m1.large': 8990, 'vcpu/': 8980 + 4 * 8990, 'ram_mb/': 8980 * 2048 + 8990 * 8192, 'volume_gb/gold': 10 * 3.5 * 3600 + 15 * 2.5 * 3600 },
      // 1000 B for 2 h (02:15-04:15), then 4000 B until the window's end, 12:00 (7 h 45 min = 27900 s)
      p2: { 'object_bytes/': 1000 * 7200 + 4000 * 27900 },
    };

    const totals = async (s: Store) => {
      const rows = await new UsageQueries(s).usage({ fromMs: T0, toMs: at(12), nowMs: at(12), granularity: 'total' });
      const out: Record<string, Record<string, number>> = {};
      for (const r of rows) (out[r.projectId] ??= {})[`${r.metric}/${r.key}`] = r.quantityMs / 1000;
      return out;
    };

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-usage-log-')), 'log.db') });
      await log.ensureTopics(USAGE_TOPICS.map((name) => ({ name, partitions: PARTITIONS })));
      store = open();
      runner = new ProjectionRunner(log, store, usageProjection());
      await runner.start();
      compute = decided(COMPUTE_DOMAIN, (t) => ({ decider: computeAggregate(t).decider as never, codec: computeCodecFor(t) as never }));
      block = decided(BLOCK_DOMAIN, (t) => ({ decider: blockAggregate(t).decider as never, codec: blockCodecFor(t) as never }));
      objects = decided(OBJECT_DOMAIN, (t) => ({ decider: objectAggregate(t).decider as never, codec: objectCodecFor(t) as never }));
      morning();
      await flushAll();
    }, 60_000);

    afterAll(async () => {
      await runner?.stop();
      for (const s of opened) await discardStore(s);
      await log?.close();
    });

    it('while the resources run: open segments count up to now', async () => {
      const q = new UsageQueries(store);
      // At 04:00: small 01:00:20-03:30 = 2 h 29 min 40 s = 8980 s, large 03:30-04:00 = 1800 s; the volume 10 GiB x 2 h
      const rows = await q.usage({ projectId: 'p1', fromMs: T0, toMs: at(12), nowMs: at(4), granularity: 'total' });
      expect(Object.fromEntries(rows.map((r) => [`${r.metric}/${r.key}`, r.quantityMs / 1000]))).toEqual({
        'instance/m1.small': 8980, 'instance/m1.large': 1800, 'vcpu/': 8980 + 4 * 1800, 'ram_mb/': 8980 * 2048 + 1800 * 8192, 'volume_gb/gold': 10 * 7200,
      });
      // By hour: hour 1 holds 3580 s of m1.small, hour 3 1800 s of each flavor.
      const hours = await q.usage({ projectId: 'p1', fromMs: T0, toMs: at(12), nowMs: at(4), granularity: 'hour' });
      const inst = hours.filter((r) => r.metric === 'instance').map((r) => [(r.startMs - T0) / HOUR_MS, r.key, r.quantityMs / 1000]);
      expect(inst).toEqual([[1, 'm1.small', 3580], [2, 'm1.small', 3600], [3, 'm1.large', 1800], [3, 'm1.small', 1800]]);
    });

    it('a restarted runner restores the meter from its rows and goes on', async () => {
      await runner.stop();
      runner = new ProjectionRunner(log, store, usageProjection());
      await runner.start();
      afternoon();
      await flushAll();
      expect(await totals(store)).toEqual(expectedTotals);
      const open = await store.query('SELECT resource_id FROM usage_segments WHERE end_ms IS NULL');
      expect(open.map((r: any) => r.resource_id)).toEqual([objectId('AUTH_p2', 'c', 'a')]);
    });

    it('every event delivered again changes no row (exactly once)', async () => {
      const before = await dump(store);
      const again = (topic: string, events: EventEnvelope[]) =>
        events.map((e) => ({ topic, partition: partitionForKey(e.aggregateId, PARTITIONS), key: e.aggregateId, value: encodeEvent(e), headers: { [HEADER_EVENT_TYPE]: e.type } }));
      const records = [...again(domainTopics(COMPUTE_DOMAIN).events, compute.all), ...again(domainTopics(BLOCK_DOMAIN).events, block.all), ...again(domainTopics(OBJECT_DOMAIN).events, objects.all)];
      const positions = await log.append(records);
      await Promise.all(positions.map((p) => runner.waitFor(p)));
      expect(await dump(store)).toEqual(before);
      // A fresh runner on the same store (its checkpoint is past them all) sees the same rows too.
      await runner.stop();
      runner = new ProjectionRunner(log, store, usageProjection());
      await runner.start();
      expect(await dump(store)).toEqual(before);
    });

    it('after a batch whose rows were not written, restore makes the meter fold its events again', async () => {
      const p = usageProjection();
      await p.restore!(store);
      const n = block.all.length;
      block.send('volume', 'v2', { type: 'CreateVolume', volume: volume('v2', 'p1', 7), hostId: 's1' }, { atMs: at(9) });
      const events = block.all.slice(n);
      const position = { topic: domainTopics(BLOCK_DOMAIN).events, partition: 0, offset: 0 };
      const first = events.flatMap((e) => p.apply(e, position));
      expect(first.some((st) => st.sql.startsWith('INSERT INTO usage_segments'))).toBe(true);
      // Without a restore the meter takes them for redeliveries; after one, it folds them as new.
      expect(events.flatMap((e) => p.apply(e, position))).toEqual([]);
      await p.restore!(store);
      expect(events.flatMap((e) => p.apply(e, position))).toEqual(first);
      await flushAll();
      const v2 = await store.query<{ quantity: number | string; start_ms: number | string }>("SELECT quantity, start_ms FROM usage_segments WHERE resource_id = 'v2'");
      expect(v2.map((r) => [Number(r.quantity), Number(r.start_ms)])).toEqual([[7, at(9)]]);
    });

    it('rebuilds from offset 0 into a fresh store with the same rows', async () => {
      const fresh = open();
      await ProjectionRunner.rebuild(log, fresh, usageProjection());
      expect(await dump(fresh)).toEqual(await dump(store));
      // v2 (the test before): 7 GiB gold from 09:00 to the window's end, 12:00.
      expect(await totals(fresh)).toEqual({ ...expectedTotals, p1: { ...expectedTotals.p1, 'volume_gb/gold': expectedTotals.p1['volume_gb/gold'] + 7 * 3 * 3600 } });
      // And a rebuild in place (reset, then restore of an empty meter) too.
      await ProjectionRunner.rebuild(log, fresh, usageProjection());
      expect(await dump(fresh)).toEqual(await dump(store));
    });
  });
}
