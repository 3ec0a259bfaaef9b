// The object storage read models fed by the real object deciders: commands decided and folded as
// the runtime does, their events encoded by the object codec, appended to an embedded log and
// projected by a ProjectionRunner into SQLite and PostgreSQL. Containers created, updated, deleted
// and created again (keeping the counts of the objects still recorded in them); objects recorded,
// replaced, their metadata replaced, deleted, with each container's and account's counts; Swift's
// listings (prefix, delimiter, marker, end_marker, limit, reverse) in byte order of UTF-8 names,
// a 2,500-object container paged by marker, and a delimiter listing of it that reads a few rows
// only; quarantined replicas; the ring through create, devices, rebalances. Rebuilt from offset 0
// into a fresh store, and replayed aggregate after aggregate in another order, the rows are the same.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { objectAggregate } from '../../domains/object/object.deciders.js';
import { OBJECT_DOMAIN, objectId } from '../../domains/object/object.types.js';
import { decodeAssignment } from '../../domains/object/ring.js';
import { objectCodecFor, objectEventTypes } from '../../infra/codecs/object.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { OBJECT_PROJECTED_EVENTS, OBJECT_SCHEMA, OBJECT_TABLES, objectProjection, objectStatements, timestampMs } from './object.projection.js';
import { ObjectQueries, keySuccessor, type ObjectListing } from './object.queries.js';

const PARTITIONS = 4;
const EVENTS = domainTopics(OBJECT_DOMAIN).events;
const stores = testStores('object');
const dump = (store: Store) => dumpTables(store, OBJECT_TABLES);

const A = 'AUTH_p1';
const B = 'AUTH_p2';
const ETAG = (n: number) => n.toString(16).padStart(32, '0');
/** Swift timestamps, one second apart, fixed width. */
const ts = (n: number) => `${1764640000 + n}.12345`;
const tsMs = (n: number) => (1764640000 + n) * 1000 + 123;

const container = (account: string, name: string, extra: Record<string, unknown> = {}) => ({
  account, name, metadata: {}, readAcl: [], writeAcl: [], quotaBytes: 0, quotaCount: 0, createdAtMs: 0, ...extra,
});
const version = (account: string, c: string, name: string, n: number, size: number, extra: Record<string, unknown> = {}) => ({
  account, container: c, name, timestamp: ts(n), etag: ETAG(n), size, contentType: 'application/octet-stream', metadata: {}, partition: n % 16,
  segments: [], ringVersion: 1, ...extra,
});
const device = (id: number, zone: number, weight = 100) => ({ id, region: 1, zone, host: `127.0.0.1:62${String(id).padStart(2, '0')}`, device: `sd${id}`, weight });

/** Byte order of UTF-8, as Swift lists names (not JavaScript's UTF-16 order). */
const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const names = (entries: ObjectListing[]) => entries.map((e) => ('subdir' in e ? `[${e.subdir}]` : e.name));

const DOCS = ['a.txt', 'b/1', 'b/2', 'b/c/3', 'c.txt', 'photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/cover.jpg', 'z'];
const UNICODE = ['z', '\u{1F600}', 'é', 'a', 'Ａ', 'b', 'é/x', 'Ａ/y'];
const BIG = 2500;
const bigName = (i: number) => `${['alpha', 'beta', 'gamma'][i % 3]}/${i % 5 === 0 ? 'é' : i % 7 === 0 ? '\u{1F600}' : i % 11 === 0 ? 'Ａ' : 'o'}-${i}`;

describe('object projection', () => {
  it('handles only event types the object deciders emit (a misspelt one would never match)', () => {
    for (const type of OBJECT_PROJECTED_EVENTS) expect(objectEventTypes).toContain(type);
    expect(objectEventTypes.filter((t) => !(OBJECT_PROJECTED_EVENTS as readonly string[]).includes(t))).toEqual([]);
  });

  it('reads Swift timestamps to milliseconds without float error, and finds the key after a prefix', () => {
    expect(timestampMs('1764640000.12345')).toBe(1764640000123);
    expect(timestampMs('1764640000.99999')).toBe(1764640000999);
    expect(timestampMs('0000000001.00000')).toBe(1000);
    expect(keySuccessor(Buffer.from('photos/'))).toEqual(Buffer.from('photos0'));
    expect(keySuccessor(Buffer.from([0x61, 0xff, 0xff]))).toEqual(Buffer.from([0x62]));
    expect(keySuccessor(Buffer.from([0xff]))).toBeUndefined();
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`object read models on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let cloud: DecidedLog;
    let q: ObjectQueries;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };
    const created: Record<string, number> = {};
    const ring: Record<string, any> = {};
    let n = 0;

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-object-log-')), 'log.db') });
      await log.ensureTopics([{ name: EVENTS, partitions: PARTITIONS }]);
      store = open();
      runner = new ProjectionRunner(log, store, objectProjection);
      await runner.start();
      cloud = new DecidedLog({ log, runner: () => runner, eventsTopic: EVENTS, partitions: PARTITIONS, aggregate: (t) => ({ decider: objectAggregate(t).decider, codec: objectCodecFor(t) }) });
      q = new ObjectQueries(store);
      const createContainer = (account: string, name: string, extra: Record<string, unknown> = {}) => {
        const [e] = cloud.send('container', `${account}/${name}`, { type: 'CreateContainer', container: container(account, name, extra) });
        return Number((e.container as { createdAtMs: number }).createdAtMs);
      };
      const record = (o: ReturnType<typeof version>) => cloud.send('object', objectId(o.account, o.container, o.name), { type: 'RecordObject', object: o });

      // Containers of A: photos (then updated), docs, tmp (deleted), again (deleted with an object in it, created again).
      created.photos = createContainer(A, 'photos', { metadata: { owner: 'ann' } });
      cloud.send('container', `${A}/photos`, {
        type: 'UpdateContainer',
        container: { metadata: { owner: 'bob', color: 'red' }, readAcl: ['.r:*', 'p2:*'], writeAcl: ['p1:u7'], quotaBytes: 1000, quotaCount: 0 },
        updateMask: ['metadata', 'readAcl', 'writeAcl', 'quotaBytes'],
      });
      created.docs = createContainer(A, 'docs');
      createContainer(A, 'tmp');
      cloud.send('container', `${A}/tmp`, { type: 'DeleteContainer' });
      created.againFirst = createContainer(A, 'again');
      record(version(A, 'again', 'kept', ++n, 7));
      cloud.send('container', `${A}/again`, { type: 'DeleteContainer' });
      created.again = createContainer(A, 'again');

      // Objects of photos: cat replaced (100 -> 250 bytes), dog's metadata replaced, old deleted, a large object's manifest.
      record(version(A, 'photos', 'cat.jpg', ++n, 100));
      record(version(A, 'photos', 'cat.jpg', ++n, 250, { contentType: 'image/jpeg', metadata: { v: '2' } }));
      record(version(A, 'photos', 'dog.jpg', ++n, 40, { metadata: { color: 'black', size: 'l' } }));
      cloud.send('object', objectId(A, 'photos', 'dog.jpg'), { type: 'UpdateObjectMetadata', timestamp: ts(++n), metadata: { color: 'brown' }, contentType: 'image/png' });
      record(version(A, 'photos', 'old.jpg', ++n, 10));
      cloud.send('object', objectId(A, 'photos', 'old.jpg'), { type: 'RecordObjectDeleted', timestamp: ts(++n) });
      record(version(A, 'photos', 'movie.mkv', ++n, 300, {
        partition: 0,
        etag: `${ETAG(99)}-2`,
        segments: [{ path: 'segs/movie/1', etag: ETAG(1), size: 200 }, { path: 'segs/movie/2', etag: ETAG(2), size: 100 }],
      }));
      // An auditor quarantines a replica of cat.jpg, and one of old.jpg deleted meanwhile.
      cloud.send('object', objectId(A, 'photos', 'cat.jpg'), { type: 'ReportReplicaQuarantined', deviceId: 2, timestamp: ts(2), reason: 'etag mismatch' });
      cloud.send('object', objectId(A, 'photos', 'old.jpg'), { type: 'ReportReplicaQuarantined', deviceId: 3, timestamp: ts(5), reason: 'truncated' });

      // docs: a tree of names for prefixes and delimiters.
      for (const name of DOCS) record(version(A, 'docs', name, ++n, name.length));

      // B: containers and objects named in several scripts.
      for (const name of UNICODE.filter((x) => !x.includes('/'))) createContainer(B, name);
      createContainer(B, 'ab');
      createContainer(B, 'uni');
      for (const name of UNICODE) record(version(B, 'uni', name, ++n, 1));

      // A big container.
      createContainer(B, 'big');
      for (let i = 0; i < BIG; i++) record(version(B, 'big', bigName(i), ++n, i));

      // The ring: created, four devices in four zones, rebalanced; a weight changed, rebalanced again, a device removed.
      cloud.send('object_ring', 'default', { type: 'CreateRing', partPower: 4, replicas: 3 });
      await cloud.flush();
      ring.created = await q.getRing();
      for (const [id, zone] of [[1, 1], [2, 2], [3, 3], [4, 4]]) cloud.send('object_ring', 'default', { type: 'AddRingDevice', device: device(id, zone) });
      await cloud.flush();
      ring.added = await q.getRing();
      [ring.first] = cloud.send('object_ring', 'default', { type: 'RebalanceRing' });
      await cloud.flush();
      ring.rebalanced = await q.getRing();
      cloud.send('object_ring', 'default', { type: 'SetRingDeviceWeight', deviceId: 3, weight: 50 });
      await cloud.flush();
      ring.weighted = await q.getRing();
      [ring.second] = cloud.send('object_ring', 'default', { type: 'RebalanceRing' });
      cloud.send('object_ring', 'default', { type: 'RemoveRingDevice', deviceId: 4 });
      await cloud.flush();
    }, 120_000);
    afterAll(async () => {
      await runner?.stop();
      for (const s of opened) await discardStore(s);
      await log?.close();
    });

    it('shows a container with its metadata, ACLs, quotas and counts; a deleted one is gone', async () => {
      expect(await q.getContainer(A, 'photos')).toEqual({
        account: A, name: 'photos', metadata: { owner: 'bob', color: 'red' }, readAcl: ['.r:*', 'p2:*'], writeAcl: ['p1:u7'], quotaBytes: 1000, quotaCount: 0,
        createdAtMs: created.photos, objectCount: 3, bytesUsed: 250 + 40 + 300, lastModifiedMs: created.photos + 1000,
      });
      expect(created.photos).toBeGreaterThan(Date.UTC(2026, 0, 1));
      expect(await q.getContainer(A, 'docs')).toMatchObject({ metadata: {}, readAcl: [], objectCount: DOCS.length, bytesUsed: DOCS.join('').length });
      expect(await q.getContainer(A, 'tmp')).toBeUndefined();
      expect(await q.getContainer(B, 'photos')).toBeUndefined();
    });

    it('keeps the counts of objects still recorded in a container deleted and created again', async () => {
      const again = await q.getContainer(A, 'again');
      expect(again).toMatchObject({ createdAtMs: created.again, objectCount: 1, bytesUsed: 7 });
      expect(created.again).toBeGreaterThan(created.againFirst);
      expect(await q.objectsInContainer(A, 'again')).toBe(1);
      expect(await q.objectsInContainer(A, 'photos')).toBe(3);
      expect(await q.objectsInContainer(A, 'tmp')).toBe(0);
      expect(await q.objectsInContainer(A, 'nothing')).toBe(0);
    });

    it("shows an account's containers and totals", async () => {
      expect(await q.accountStats(A)).toEqual({ containerCount: 3, objectCount: 3 + DOCS.length + 1, bytesUsed: 590 + DOCS.join('').length + 7 });
      expect(await q.accountStats('AUTH_nobody')).toEqual({ containerCount: 0, objectCount: 0, bytesUsed: 0 });
      expect(await q.listContainers(A)).toEqual([
        { name: 'again', count: 1, bytes: 7, lastModifiedMs: created.again },
        { name: 'docs', count: DOCS.length, bytes: DOCS.join('').length, lastModifiedMs: created.docs },
        { name: 'photos', count: 3, bytes: 590, lastModifiedMs: created.photos + 1000 },
      ]);
    });

    it('lists containers in byte order of UTF-8 names, with prefix, marker, end_marker, limit and reverse', async () => {
      const list = async (o: Parameters<ObjectQueries['listContainers']>[1]) => (await q.listContainers(B, o)).map((c) => c.name);
      const all = ['a', 'ab', 'b', 'big', 'uni', 'z', 'é', 'Ａ', '\u{1F600}'];
      expect(await list({})).toEqual(all);
      // JavaScript's own order (UTF-16) would put the emoji before Ａ.
      expect([...all].sort()).not.toEqual(all);
      expect([...all].sort(byteOrder)).toEqual(all);
      expect(await list({ prefix: 'a' })).toEqual(['a', 'ab']);
      expect(await list({ marker: 'b' })).toEqual(['big', 'uni', 'z', 'é', 'Ａ', '\u{1F600}']);
      expect(await list({ endMarker: 'é' })).toEqual(['a', 'ab', 'b', 'big', 'uni', 'z']);
      expect(await list({ marker: 'z', endMarker: '\u{1F600}' })).toEqual(['é', 'Ａ']);
      expect(await list({ limit: 2 })).toEqual(['a', 'ab']);
      expect(await list({ reverse: true })).toEqual([...all].reverse());
      expect(await list({ reverse: true, marker: 'é', limit: 3 })).toEqual(['z', 'uni', 'big']);
      expect((await q.listContainers(B, { prefix: 'bi' }))[0]).toEqual({ name: 'big', count: BIG, bytes: (BIG * (BIG - 1)) / 2, lastModifiedMs: expect.any(Number) });
    });

    it('shows objects recorded, replaced, with metadata replaced, and a large object with its segments; a deleted one is gone', async () => {
      expect(await q.getObject(A, 'photos', 'cat.jpg')).toEqual({
        account: A, container: 'photos', name: 'cat.jpg', timestamp: ts(3), etag: ETAG(3), size: 250, contentType: 'image/jpeg', metadata: { v: '2' },
        partition: 3, segments: [], ringVersion: 1, lastModifiedMs: tsMs(3),
      });
      expect(await q.getObject(A, 'photos', 'dog.jpg')).toMatchObject({ metadata: { color: 'brown' }, contentType: 'image/png', size: 40, timestamp: ts(4), etag: ETAG(4) });
      expect(await q.getObject(A, 'photos', 'old.jpg')).toBeUndefined();
      expect(await q.getObject(A, 'photos', 'movie.mkv')).toMatchObject({
        size: 300, etag: `${ETAG(99)}-2`, partition: 0,
        segments: [{ path: 'segs/movie/1', etag: ETAG(1), size: 200 }, { path: 'segs/movie/2', etag: ETAG(2), size: 100 }],
      });
      expect(await q.getObject(A, 'docs', 'cat.jpg')).toBeUndefined();
      expect(await q.listObjects(A, 'photos')).toEqual([
        { name: 'cat.jpg', hash: ETAG(3), bytes: 250, contentType: 'image/jpeg', lastModifiedMs: tsMs(3) },
        { name: 'dog.jpg', hash: ETAG(4), bytes: 40, contentType: 'image/png', lastModifiedMs: tsMs(4) },
        { name: 'movie.mkv', hash: `${ETAG(99)}-2`, bytes: 300, contentType: 'application/octet-stream', lastModifiedMs: expect.any(Number) },
      ]);
    });

    it('lists objects with prefix, delimiter, marker, end_marker and limit as Swift does', async () => {
      const list = async (o: Parameters<ObjectQueries['listObjects']>[2]) => names(await q.listObjects(A, 'docs', o));
      expect(await list({})).toEqual(DOCS);
      expect(await list({ prefix: 'photos/' })).toEqual(DOCS.filter((d) => d.startsWith('photos/')));
      expect(await list({ delimiter: '/' })).toEqual(['a.txt', '[b/]', 'c.txt', '[photos/]', 'z']);
      expect(await list({ prefix: 'photos/', delimiter: '/' })).toEqual(['[photos/2024/]', '[photos/2025/]', 'photos/cover.jpg']);
      expect(await list({ prefix: 'photos/2024/', delimiter: '/' })).toEqual(['photos/2024/a.jpg', 'photos/2024/b.jpg']);
      expect(await list({ prefix: 'b/', delimiter: '/' })).toEqual(['b/1', 'b/2', '[b/c/]']);
      expect(await list({ prefix: 'photos', delimiter: '/' })).toEqual(['[photos/]']);
      expect(await list({ marker: 'b/2' })).toEqual(['b/c/3', 'c.txt', 'photos/2024/a.jpg', 'photos/2024/b.jpg', 'photos/2025/c.jpg', 'photos/cover.jpg', 'z']);
      expect(await list({ endMarker: 'c' })).toEqual(['a.txt', 'b/1', 'b/2', 'b/c/3']);
      expect(await list({ marker: 'a.txt', endMarker: 'c.txt' })).toEqual(['b/1', 'b/2', 'b/c/3']);
      expect(await list({ prefix: 'photos/', marker: 'a' })).toEqual(DOCS.filter((d) => d.startsWith('photos/')));
      expect(await list({ prefix: 'b/', endMarker: 'b/2' })).toEqual(['b/1']);
      expect(await list({ limit: 3 })).toEqual(['a.txt', 'b/1', 'b/2']);
      expect(await list({ limit: 0 })).toEqual([]);
      expect(await list({ limit: 1_000_000 })).toEqual(DOCS);
      // Subdirs count in the limit, each once; paging on from a subdir skips it.
      expect(await list({ delimiter: '/', limit: 2 })).toEqual(['a.txt', '[b/]']);
      expect(await list({ delimiter: '/', marker: 'b/' })).toEqual(['c.txt', '[photos/]', 'z']);
      // As Swift's container server: a marker inside a subdir lists the subdir again (only a marker equal to it skips it).
      expect(await list({ delimiter: '/', marker: 'b/1' })).toEqual(['[b/]', 'c.txt', '[photos/]', 'z']);
      expect(await list({ delimiter: '/', endMarker: 'photos/2025' })).toEqual(['a.txt', '[b/]', 'c.txt', '[photos/]']);
      expect(await list({ delimiter: '.' })).toEqual(['[a.]', 'b/1', 'b/2', 'b/c/3', '[c.]', '[photos/2024/a.]', '[photos/2024/b.]', '[photos/2025/c.]', '[photos/cover.]', 'z']);
      expect(await q.listObjects(A, 'nothing')).toEqual([]);
      expect(await q.listObjects(B, 'docs')).toEqual([]);
    });

    it('lists in reverse, marker and end_marker bounding from the end', async () => {
      const list = async (o: Parameters<ObjectQueries['listObjects']>[2]) => names(await q.listObjects(A, 'docs', { reverse: true, ...o }));
      expect(await list({})).toEqual([...DOCS].reverse());
      expect(await list({ delimiter: '/' })).toEqual(['z', '[photos/]', 'c.txt', '[b/]', 'a.txt']);
      expect(await list({ marker: 'c.txt' })).toEqual(['b/c/3', 'b/2', 'b/1', 'a.txt']);
      expect(await list({ marker: 'photos/', endMarker: 'a.txt' })).toEqual(['c.txt', 'b/c/3', 'b/2', 'b/1']);
      expect(await list({ prefix: 'b/' })).toEqual(['b/c/3', 'b/2', 'b/1']);
      expect(await list({ prefix: 'photos/', delimiter: '/' })).toEqual(['photos/cover.jpg', '[photos/2025/]', '[photos/2024/]']);
      expect(await list({ limit: 2 })).toEqual(['z', 'photos/cover.jpg']);
      expect(await list({ limit: 2, marker: 'photos/cover.jpg' })).toEqual(['photos/2025/c.jpg', 'photos/2024/b.jpg']);
    });

    it('lists unicode names in byte order of UTF-8, subdirs included', async () => {
      const sorted = [...UNICODE].sort(byteOrder);
      expect(sorted).toEqual(['a', 'b', 'z', 'é', 'é/x', 'Ａ', 'Ａ/y', '\u{1F600}']);
      expect(names(await q.listObjects(B, 'uni'))).toEqual(sorted);
      expect(names(await q.listObjects(B, 'uni', { delimiter: '/' }))).toEqual(['a', 'b', 'z', 'é', '[é/]', 'Ａ', '[Ａ/]', '\u{1F600}']);
      expect(names(await q.listObjects(B, 'uni', { marker: 'é/x', limit: 2 }))).toEqual(['Ａ', 'Ａ/y']);
      expect(names(await q.listObjects(B, 'uni', { endMarker: 'Ａ' }))).toEqual(['a', 'b', 'z', 'é', 'é/x']);
      expect(names(await q.listObjects(B, 'uni', { prefix: 'é' }))).toEqual(['é', 'é/x']);
      expect(names(await q.listObjects(B, 'uni', { reverse: true, limit: 3 }))).toEqual(['\u{1F600}', 'Ａ/y', 'Ａ']);
    });

    it('pages a 2,500-object container by limit and marker into the full list, either way', async () => {
      const full = Array.from({ length: BIG }, (_, i) => bigName(i)).sort(byteOrder);
      const all = names(await q.listObjects(B, 'big'));
      expect(all).toEqual(full);
      const paged: string[] = [];
      for (let marker: string | undefined, pages = 0; ; pages++) {
        const page = names(await q.listObjects(B, 'big', { limit: 333, marker }));
        paged.push(...page);
        if (page.length < 333) {
          expect(pages).toBe(Math.floor(BIG / 333));
          break;
        }
        marker = page[page.length - 1];
      }
      expect(paged).toEqual(full);
      const back: string[] = [];
      for (let marker: string | undefined; ; ) {
        const page = names(await q.listObjects(B, 'big', { limit: 500, marker, reverse: true }));
        back.push(...page);
        if (page.length < 500) break;
        marker = page[page.length - 1];
      }
      expect(back).toEqual([...full].reverse());
      expect(names(await q.listObjects(B, 'big', { prefix: 'beta/é', limit: 3 }))).toEqual(full.filter((x) => x.startsWith('beta/é')).slice(0, 3));
    });

    it('lists a big container with a delimiter by reading a few rows, not the container', async () => {
      let rows = 0;
      let queries = 0;
      const counting = {
        dialect: store.dialect,
        query: async (sql: string, params?: unknown[]) => {
          const r = await store.query(sql, params);
          queries++;
          rows += r.length;
          return r;
        },
      } as unknown as Store;
      const cq = new ObjectQueries(counting);
      expect(names(await cq.listObjects(B, 'big', { delimiter: '/' }))).toEqual(['[alpha/]', '[beta/]', '[gamma/]']);
      expect(rows).toBeLessThan(100);
      expect(queries).toBeLessThan(10);
      rows = 0;
      expect(names(await cq.listObjects(B, 'big', { delimiter: '/', reverse: true }))).toEqual(['[gamma/]', '[beta/]', '[alpha/]']);
      expect(rows).toBeLessThan(100);
      rows = 0;
      expect((await cq.listObjects(B, 'big', { limit: 10 })).length).toBe(10);
      expect(rows).toBe(10);
    });

    it('shows quarantined replicas, of every object or of one', async () => {
      const all = await q.quarantines();
      expect(all).toEqual([
        { objectId: objectId(A, 'photos', 'cat.jpg'), deviceId: 2, timestamp: ts(2), reason: 'etag mismatch', atMs: expect.any(Number) },
        { objectId: objectId(A, 'photos', 'old.jpg'), deviceId: 3, timestamp: ts(5), reason: 'truncated', atMs: expect.any(Number) },
      ]);
      expect(all[1].atMs).toBeGreaterThan(all[0].atMs);
      expect(await q.quarantines(objectId(A, 'photos', 'old.jpg'))).toEqual([all[1]]);
      expect(await q.quarantines(objectId(A, 'photos', 'dog.jpg'))).toEqual([]);
    });

    it('shows the ring after create, devices added, rebalances, a weight change and a removal', async () => {
      expect(ring.created).toEqual({ partPower: 4, replicas: 3, version: 0, devices: [], builder: [], assignment: '', lastMoved: 0 });
      expect(ring.added).toMatchObject({ version: 0, devices: [], assignment: '' });
      expect(ring.added.builder).toEqual([device(1, 1), device(2, 2), device(3, 3), device(4, 4)]);
      expect(ring.rebalanced).toEqual({
        partPower: 4, replicas: 3, version: 1, devices: [device(1, 1), device(2, 2), device(3, 3), device(4, 4)], builder: ring.added.builder,
        assignment: ring.first.assignment, lastMoved: ring.first.moved,
      });
      const table = decodeAssignment(ring.rebalanced.assignment, 3, 4);
      expect(table).toHaveLength(3);
      for (const replica of table) {
        expect(replica).toHaveLength(16);
        for (const d of replica) expect([1, 2, 3, 4]).toContain(d);
      }
      expect(ring.weighted).toMatchObject({ version: 1, assignment: ring.first.assignment });
      expect(ring.weighted.builder[2]).toEqual(device(3, 3, 50));
      expect(ring.weighted.devices[2]).toEqual(device(3, 3, 100));
      const now = await q.getRing();
      expect(ring.second.ringVersion).toBe(2);
      expect(now).toMatchObject({ version: 2, assignment: ring.second.assignment, lastMoved: ring.second.moved });
      expect(now?.assignment).not.toBe(ring.first.assignment);
      expect(now?.devices.map((d) => [d.id, d.weight])).toEqual([[1, 100], [2, 100], [3, 50], [4, 100]]);
      expect(now?.builder.map((d) => d.id)).toEqual([1, 2, 3]);
      expect(await q.getRing('gold')).toBeUndefined();
    });

    it('rebuilt from offset 0 into a fresh store gives the same rows', async () => {
      const live = await dump(store);
      expect(live.object_objects.length).toBe(3 + DOCS.length + 1 + UNICODE.length + BIG);
      expect(live.object_containers.length).toBe(3 + 9);
      const fresh = open();
      const reached = await ProjectionRunner.rebuild(log, fresh, objectProjection);
      expect([...reached.values()].reduce((a, b) => a + b, 0)).toBe(cloud.all.length);
      expect(await dump(fresh)).toEqual(live);
      const fq = new ObjectQueries(fresh);
      expect(await fq.listContainers(B)).toEqual(await q.listContainers(B));
      expect(await fq.listObjects(A, 'docs', { delimiter: '/' })).toEqual(await q.listObjects(A, 'docs', { delimiter: '/' }));
      expect(await fq.getRing()).toEqual(await q.getRing());
    });

    it("gives the same rows whatever the order between aggregates (a container's counts are increments)", async () => {
      const live = await dump(store);
      // Aggregate after aggregate, the last written first: each one's own events stay in order.
      const keys = [...new Set(cloud.all.map((e) => `${e.aggregateType}/${e.aggregateId}`))].reverse();
      const other = open();
      await other.migrate(OBJECT_SCHEMA);
      const statements = keys.flatMap((key) =>
        cloud.all
          .filter((x) => `${x.aggregateType}/${x.aggregateId}` === key && (OBJECT_PROJECTED_EVENTS as readonly string[]).includes(x.type))
          .flatMap((e) => objectStatements(e)),
      );
      await other.apply(statements, []);
      expect(await dump(other)).toEqual(live);
      expect(await new ObjectQueries(other).getContainer(A, 'again')).toMatchObject({ objectCount: 1, bytesUsed: 7 });
    });
  });
}
