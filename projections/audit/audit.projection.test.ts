// The audit read model fed by real deciders of two domains (images and object storage), their
// events appended to an embedded log as the runtime writes them and projected into SQLite and
// PostgreSQL: every event one row with actor, request and payload; owners fixed by a resource's
// first event (images), or read off the account (objects; the image service's AUTH_glance is
// nobody's); a resource's history, a user's actions and owners at positions; redelivery changes
// nothing; a rebuild from offset 0 gives the same rows.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageAggregate } from '../../domains/image/image.deciders.js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import { objectAggregate } from '../../domains/object/object.deciders.js';
import { OBJECT_DOMAIN, objectId } from '../../domains/object/object.types.js';
import { hostedDomains } from '../../infra/domains.js';
import { imageCodecFor } from '../../infra/codecs/image.codec.js';
import { objectCodecFor } from '../../infra/codecs/object.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { partitionForKey } from '../../infra/log/partitioner.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { AUDIT_TABLES, auditProjection } from './audit.projection.js';
import { AuditQueries } from './audit.queries.js';

const PARTITIONS = 2;
const stores = testStores('audit');
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const image = (n: number, owner: string) => ({
  id: uuid(n), name: `img-${n}`, owner, visibility: 'shared', diskFormat: 'qcow2', containerFormat: 'bare', minDisk: 1, minRam: 64,
  protected: false, osHidden: false, tags: [] as string[], properties: {} as Record<string, string>,
});
const actor = (projectId: string) => ({ userId: `u-${projectId}`, projectId, roles: ['member', 'reader'] });
const container = (account: string, name: string) => ({ account, name, metadata: {}, readAcl: [], writeAcl: [], quotaBytes: 0, quotaCount: 0, createdAtMs: 0 });
const version = (account: string, c: string, name: string, n: number, size: number) => ({
  account, container: c, name, timestamp: `17646400${String(n).padStart(2, '0')}.00000`, etag: String(n).padStart(32, '0'), size,
  contentType: 'application/octet-stream', metadata: {}, partition: n % 16, segments: [], ringVersion: 1,
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`audit read model on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let images: DecidedLog;
    let objects: DecidedLog;
    let q: AuditQueries;
    const opened: Store[] = [];

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-audit-log-')), 'log.db') });
      await log.ensureTopics(hostedDomains.map((d) => ({ name: domainTopics(d.name).events, partitions: PARTITIONS })));
      store = stores[kind]();
      opened.push(store);
      runner = new ProjectionRunner(log, store, auditProjection());
      await runner.start();
      images = new DecidedLog({ log, runner: () => runner, eventsTopic: domainTopics(IMAGE_DOMAIN).events, partitions: PARTITIONS, aggregate: (t) => ({ decider: imageAggregate(t).decider, codec: imageCodecFor(t) }) });
      objects = new DecidedLog({ log, runner: () => runner, eventsTopic: domainTopics(OBJECT_DOMAIN).events, partitions: PARTITIONS, aggregate: (t) => ({ decider: objectAggregate(t).decider, codec: objectCodecFor(t) }) });
      q = new AuditQueries(store);

      images.send('image', uuid(1), { type: 'CreateImage', image: image(1, 'p1') }, { actor: actor('p1'), requestId: 'req-create-1', atMs: 1_000 });
      images.send('image', uuid(1), { type: 'UpdateImage', image: { ...image(1, 'p1'), name: 'cirros' }, updateMask: ['name'] }, { actor: actor('p1'), atMs: 2_000 });
      // An admin acts on p1's image: the owner stays p1, the actor is the admin.
      images.send('image', uuid(1), { type: 'UpdateImage', image: { ...image(1, 'p1'), name: 'cirros-0.6' }, updateMask: ['name'] }, { actor: { userId: 'admin', projectId: 'admin', roles: ['admin'] }, atMs: 3_000 });
      images.send('image', uuid(2), { type: 'CreateImage', image: image(2, 'p2') }, { actor: actor('p2'), atMs: 4_000 });
      await images.flush();
      objects.send('container', 'AUTH_p1/photos', { type: 'CreateContainer', container: container('AUTH_p1', 'photos') }, { actor: actor('p1'), atMs: 5_000 });
      objects.send('object', objectId('AUTH_p1', 'photos', 'cat.jpg'), { type: 'RecordObject', object: version('AUTH_p1', 'photos', 'cat.jpg', 1, 1234) }, { actor: actor('p1'), atMs: 6_000 });
      objects.send('container', 'AUTH_glance/images', { type: 'CreateContainer', container: container('AUTH_glance', 'images') }, { actor: { userId: 'glance', projectId: '', roles: ['service'] }, atMs: 7_000 });
      await objects.flush();
    }, 60_000);

    afterAll(async () => {
      for (const s of opened) await discardStore(s);
      await runner?.stop();
      await log?.close();
    });

    it('keeps every event with who, when, request and what changed; owners from the first event or the account', async () => {
      const history = await q.resourceHistory(uuid(1), { limit: 100 });
      expect(history.map((e) => [e.type, e.version, e.occurredAtMs, e.userId, e.projectId])).toEqual([
        ['ImageCreated', 1, 1_000, 'u-p1', 'p1'],
        ['ImageUpdated', 2, 2_000, 'u-p1', 'p1'],
        ['ImageUpdated', 3, 3_000, 'admin', 'p1'],
      ]);
      expect(history[0]).toMatchObject({ domain: 'image', aggregateType: 'image', correlationId: 'req-create-1', actorProjectId: 'p1', roles: ['member', 'reader'] });
      expect(JSON.parse(history[1].payload)).toMatchObject({ image: { name: 'cirros' } });
      const cat = await q.resourceHistory(objectId('AUTH_p1', 'photos', 'cat.jpg'), { limit: 10 });
      expect(cat).toMatchObject([{ type: 'ObjectRecorded', projectId: 'p1' }]);
      expect(JSON.parse(cat[0].payload)).toMatchObject({ object: { size: 1234 } });
      expect((await q.resourceHistory('AUTH_glance/images', { limit: 10 }))[0].projectId).toBe('');
      expect(await q.ownerOf(uuid(2))).toEqual([{ aggregateType: 'image', projectId: 'p2' }]);
    });

    it("lists a user's actions in time order, by project and time range", async () => {
      expect((await q.userActivity('u-p1', { limit: 100 })).map((e) => e.occurredAtMs)).toEqual([1_000, 2_000, 5_000, 6_000]);
      expect((await q.userActivity('u-p1', { limit: 100, fromMs: 2_000, toMs: 6_000 })).map((e) => e.occurredAtMs)).toEqual([2_000, 5_000]);
      expect(await q.userActivity('u-p1', { limit: 100, projectId: 'p2' })).toEqual([]);
      expect((await q.userActivity('admin', { limit: 100, projectId: 'p1' })).map((e) => e.type)).toEqual(['ImageUpdated']);
    });

    it('answers the owner of each event at log positions', async () => {
      const topic = domainTopics(IMAGE_DOMAIN).events;
      const p = partitionForKey(uuid(1), PARTITIONS);
      const owners = await q.ownersAt(topic, p, 0, 1_000);
      const history = await q.resourceHistory(uuid(1), { limit: 100 });
      for (const e of history) expect(owners.get(e.offset)).toBe('p1');
    });

    it('changes nothing when events are delivered again, and a rebuild gives the same rows', async () => {
      const before = await dumpTables(store, AUDIT_TABLES);
      // A redelivery: the image partition's checkpoint set back to 0, as if the commits after it were
      // lost, and a new runner reads those records again.
      const again = new ProjectionRunner(log, store, auditProjection());
      await store.apply([], [{ projection: 'audit', topic: domainTopics(IMAGE_DOMAIN).events, partition: partitionForKey(uuid(1), PARTITIONS), nextOffset: 0 }]);
      await runner.stop();
      await again.start();
      const ends = await log.endOffsets(domainTopics(IMAGE_DOMAIN).events);
      await Promise.all(ends.map((end, partition) => (end > 0 ? again.waitFor({ topic: domainTopics(IMAGE_DOMAIN).events, partition, offset: end - 1 }) : undefined)));
      expect(await dumpTables(store, AUDIT_TABLES)).toEqual(before);
      await again.stop();
      const fresh = stores[kind]();
      opened.push(fresh);
      await ProjectionRunner.rebuild(log, fresh, auditProjection());
      expect(await dumpTables(fresh, AUDIT_TABLES)).toEqual(before);
      runner = again;
    });
  });
}
