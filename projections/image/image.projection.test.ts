// The image read models fed by the real image deciders: commands decided and folded as the
// runtime does, their events encoded by the image codec, appended to an embedded log and projected
// by a ProjectionRunner into SQLite and PostgreSQL. Images through create, update, upload (start,
// fail back to queued with its reason, start again, complete), deactivate, reactivate and delete;
// members added, accepted, rejected and removed; the list as each project sees it (public, shared
// by membership status, community only when asked, private, os_hidden) with Glance's filters and
// paging. Rebuilt from offset 0 into a fresh store, the rows are the same.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageAggregate } from '../../domains/image/image.deciders.js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import { imageCodecFor, imageEventTypes } from '../../infra/codecs/image.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { IMAGE_PROJECTED_EVENTS, IMAGE_SCHEMA, IMAGE_TABLES, imageProjection, imageStatements } from './image.projection.js';
import { ImageQueries } from './image.queries.js';

const PARTITIONS = 4;
const EVENTS = domainTopics(IMAGE_DOMAIN).events;
const stores = testStores('image');
const dump = (store: Store) => dumpTables(store, IMAGE_TABLES);

const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const image = (n: number, owner: string, extra: Record<string, unknown> = {}) => ({
  id: uuid(n), name: `img-${n}`, owner, visibility: 'shared', diskFormat: 'qcow2', containerFormat: 'bare', minDisk: 1, minRam: 64,
  protected: false, osHidden: false, tags: [] as string[], properties: {} as Record<string, string>, ...extra,
});
const actor = (projectId: string) => ({ userId: `u-${projectId}`, projectId, roles: ['member', 'reader'] });
const MD5 = 'a'.repeat(32);
const SHA = 'b'.repeat(128);

describe('image projection', () => {
  it('handles only event types the image deciders emit, and all of them', () => {
    for (const type of IMAGE_PROJECTED_EVENTS) expect(imageEventTypes).toContain(type);
    expect([...imageEventTypes].sort()).toEqual([...IMAGE_PROJECTED_EVENTS].sort());
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`image read models on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let cloud: DecidedLog;
    let q: ImageQueries;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };
    const seen: Record<string, Awaited<ReturnType<ImageQueries['getImage']>>> = {};
    const look = async (label: string, id = uuid(1)) => {
      await cloud.flush();
      seen[label] = await q.getImage(id);
    };

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-image-log-')), 'log.db') });
      await log.ensureTopics([{ name: EVENTS, partitions: PARTITIONS }]);
      store = open();
      runner = new ProjectionRunner(log, store, imageProjection);
      await runner.start();
      cloud = new DecidedLog({ log, runner: () => runner, eventsTopic: EVENTS, partitions: PARTITIONS, aggregate: (t) => ({ decider: imageAggregate(t).decider, codec: imageCodecFor(t) }) });
      q = new ImageQueries(store);
      const p1 = { actor: actor('p1') };

      // Image 1 (p1, shared): through its whole life but deletion.
      cloud.send('image', uuid(1), { type: 'CreateImage', image: image(1, 'p1', { tags: ['b', 'a'], properties: { hw_disk_bus: 'virtio' } }) }, p1);
      await look('queued');
      cloud.send('image', uuid(1), { type: 'UpdateImage', image: { ...image(1, 'p1'), name: 'cirros', tags: ['x'], minRam: 128 }, updateMask: ['name', 'tags', 'minRam'] }, p1);
      cloud.send('image', uuid(1), { type: 'StartImageUpload', location: `AUTH_glance/images/${uuid(1)}` }, p1);
      await look('saving');
      cloud.send('image', uuid(1), { type: 'FailImageUpload', reason: 'object storage went away' }, p1);
      await look('failed');
      cloud.send('image', uuid(1), { type: 'StartImageUpload', location: `AUTH_glance/images/${uuid(1)}` }, p1);
      cloud.send('image', uuid(1), {
        type: 'CompleteImageUpload', size: 5_000_000, virtualSize: 1 << 30, checksum: MD5, osHashAlgo: 'sha512', osHashValue: SHA, location: `AUTH_glance/images/${uuid(1)}`,
      }, p1);
      await look('active');
      cloud.send('image', uuid(1), { type: 'DeactivateImage' });
      await look('deactivated');
      cloud.send('image', uuid(1), { type: 'ReactivateImage' });
      cloud.send('image', uuid(1), { type: 'AddImageMember', memberProjectId: 'p2' }, p1);
      cloud.send('image', uuid(1), { type: 'AddImageMember', memberProjectId: 'p3' }, p1);
      cloud.send('image', uuid(1), { type: 'AddImageMember', memberProjectId: 'p4' }, p1);
      cloud.send('image', uuid(1), { type: 'UpdateImageMember', memberProjectId: 'p2', status: 'accepted' }, { actor: actor('p2') });
      cloud.send('image', uuid(1), { type: 'UpdateImageMember', memberProjectId: 'p3', status: 'rejected' }, { actor: actor('p3') });
      cloud.send('image', uuid(1), { type: 'RemoveImageMember', memberProjectId: 'p4' }, p1);

      // Others: public (admin's), community, private, hidden, and one deleted with its members.
      cloud.send('image', uuid(2), { type: 'CreateImage', image: image(2, 'p0', { visibility: 'public' }) });
      cloud.send('image', uuid(3), { type: 'CreateImage', image: image(3, 'p1', { visibility: 'community' }) }, p1);
      cloud.send('image', uuid(4), { type: 'CreateImage', image: image(4, 'p1', { visibility: 'private' }) }, p1);
      cloud.send('image', uuid(5), { type: 'CreateImage', image: image(5, 'p1', { visibility: 'public', osHidden: true }) });
      cloud.send('image', uuid(6), { type: 'CreateImage', image: image(6, 'p1') }, p1);
      cloud.send('image', uuid(6), { type: 'AddImageMember', memberProjectId: 'p2' }, p1);
      cloud.send('image', uuid(6), { type: 'DeleteImage' }, p1);
      await cloud.flush();
    });

    afterAll(async () => {
      await runner?.stop();
      for (const s of opened) await discardStore(s);
      await log?.close();
    });

    it('an image through create, update, a failed upload, a completed one, deactivate', () => {
      expect(seen.queued).toMatchObject({ status: 'queued', name: 'img-1', owner: 'p1', visibility: 'shared', diskFormat: 'qcow2', containerFormat: 'bare', tags: ['a', 'b'],
        properties: { hw_disk_bus: 'virtio' }, size: 0, checksum: '', location: '' });
      expect(seen.saving).toMatchObject({ status: 'saving', name: 'cirros', tags: ['x'], minRam: 128, location: `AUTH_glance/images/${uuid(1)}` });
      expect(seen.failed).toMatchObject({ status: 'queued', statusReason: 'object storage went away', location: '' });
      expect(seen.active).toMatchObject({ status: 'active', size: 5_000_000, virtualSize: 1 << 30, checksum: MD5, osHashAlgo: 'sha512', osHashValue: SHA, location: `AUTH_glance/images/${uuid(1)}` });
      expect(seen.active!.updatedAtMs).toBeGreaterThan(seen.queued!.updatedAtMs);
      expect(seen.deactivated!.status).toBe('deactivated');
    });

    it('members with their status; a removed member and a deleted image leave no rows', async () => {
      expect((await q.getImage(uuid(1)))!.status).toBe('active');
      expect((await q.members(uuid(1))).map((m) => [m.memberProjectId, m.status])).toEqual([['p2', 'accepted'], ['p3', 'rejected']]);
      expect(await q.getImage(uuid(6))).toBeUndefined();
      expect(await q.members(uuid(6))).toEqual([]);
      expect((await q.membershipsOf('p2')).map((m) => m.imageId)).toEqual([uuid(1)]);
    });

    it('lists what each project sees (Glance\'s list), with filters and paging', async () => {
      const ids = async (o: Parameters<ImageQueries['listImages']>[0]) => (await q.listImages(o)).map((i) => i.id);
      // The owner: its own (community and private too), and public ones; hidden ones only when asked.
      expect(await ids({ projectId: 'p1' })).toEqual([uuid(1), uuid(2), uuid(3), uuid(4)]);
      expect(await ids({ projectId: 'p1', osHidden: true })).toEqual([uuid(5)]);
      // An accepted member sees the shared image; a rejected one only by asking for that status.
      expect(await ids({ projectId: 'p2' })).toEqual([uuid(1), uuid(2)]);
      expect(await ids({ projectId: 'p3' })).toEqual([uuid(2)]);
      expect(await ids({ projectId: 'p3', memberStatus: 'rejected' })).toEqual([uuid(1), uuid(2)]);
      expect(await ids({ projectId: 'p3', memberStatus: 'all' })).toEqual([uuid(1), uuid(2)]);
      // A removed member, a stranger: public only; community when asked for by visibility.
      expect(await ids({ projectId: 'p4' })).toEqual([uuid(2)]);
      expect(await ids({ projectId: 'p9', visibility: 'community' })).toEqual([uuid(3)]);
      // Admins: all (but hidden); filters.
      expect(await ids({})).toEqual([uuid(1), uuid(2), uuid(3), uuid(4)]);
      expect(await ids({ name: 'cirros' })).toEqual([uuid(1)]);
      expect(await ids({ status: 'active' })).toEqual([uuid(1)]);
      expect(await ids({ visibility: 'private' })).toEqual([uuid(4)]);
      expect(await ids({ owner: 'p0' })).toEqual([uuid(2)]);
      expect(await ids({ projectId: 'p1', limit: 2 })).toEqual([uuid(1), uuid(2)]);
      expect(await ids({ projectId: 'p1', after: uuid(2), limit: 2 })).toEqual([uuid(3), uuid(4)]);
    });

    it('rebuilt from offset 0 into a fresh store gives the same rows', async () => {
      const live = await dump(store);
      expect(live.image_images.length).toBe(5);
      expect(live.image_members.length).toBe(2);
      const fresh = open();
      const reached = await ProjectionRunner.rebuild(log, fresh, imageProjection);
      expect([...reached.values()].reduce((a, b) => a + b, 0)).toBe(cloud.all.length);
      expect(await dump(fresh)).toEqual(live);
      expect(await new ImageQueries(fresh).listImages({})).toEqual(await q.listImages({}));
    });

    it('gives the same rows whatever the order between images (each row is one image\'s)', async () => {
      const live = await dump(store);
      const keys = [...new Set(cloud.all.map((e) => e.aggregateId))].reverse();
      const other = open();
      await other.migrate(IMAGE_SCHEMA);
      for (const key of keys) {
        for (const e of cloud.all.filter((x) => x.aggregateId === key)) await other.apply(imageStatements(e), []);
      }
      expect(await dump(other)).toEqual(live);
    });
  });
}
