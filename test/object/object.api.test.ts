// Object storage end to end on real object servers (3 devices in 3 zones, 3 replicas): containers,
// PUT and GET from 1 KiB to 256 MiB with correct ETags and flat memory, listings, conditional
// requests and ranges, static large objects, ACLs and quotas, and refusals that name the field
// or state and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, patternBody, patternMd5, startObjectRig, type ObjectRig } from '../support/object-rig.js';

let rig: ObjectRig;

beforeAll(async () => {
  rig = await startObjectRig();
}, 120_000);
afterAll(async () => {
  await rig?.close();
});

const put = (container: string, name: string, size: number, extra: Record<string, unknown> = {}, seed = 1) =>
  rig.member.upload('PutObject', { container, name, contentType: 'application/octet-stream', contentLength: size, ...extra }, patternBody(size, seed));

describe('object storage API', () => {
  it('stores and returns objects from 1 KiB to 16 MiB with MD5 ETags, on 3 replicas', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'sizes' } });
    for (const size of [0, 1024, 64 * 1024 + 7, 1024 * 1024, 16 * 1024 * 1024]) {
      const md5 = await patternMd5(size, size % 7);
      const stored = await put('sizes', `obj-${size}`, size, {}, size % 7);
      expect(stored.etag).toBe(md5);
      expect(stored.size).toBe(size);
      expect(stored.replicasWritten).toBe(3);
      const got = await rig.member.download('GetObject', { container: 'sizes', name: `obj-${size}` });
      expect(got.header.etag).toBe(md5);
      expect(got.header.size).toBe(size);
      expect(await digestOf(got.body)).toEqual({ size, md5 });
    }
    const listing = await rig.member.call('ListObjects', { container: 'sizes' });
    expect(listing.objects.map((o: any) => o.name)).toEqual(['obj-0', 'obj-1024', 'obj-1048576', 'obj-16777216', 'obj-65543']);
    const detail = await rig.member.call('GetContainer', { name: 'sizes' });
    expect(detail.container.objectCount).toBe(5);
    expect(detail.container.bytesUsed).toBe(1024 + 64 * 1024 + 7 + 1024 * 1024 + 16 * 1024 * 1024);
  }, 120_000);

  it('streams a 256 MiB object in and out with flat memory', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'big' } });
    const size = 256 * 1024 * 1024;
    const md5 = await patternMd5(size, 9);
    global.gc?.();
    const base = process.memoryUsage().rss;
    let peak = base;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const stored = await put('big', 'quarter-gib', size, {}, 9);
      expect(stored.etag).toBe(md5);
      const putPeak = peak - base;
      const got = await rig.member.download('GetObject', { container: 'big', name: 'quarter-gib' });
      expect(await digestOf(got.body)).toEqual({ size, md5 });
      const growth = (peak - base) / 1024 / 1024;
      console.log(`figure object_256mib_rss_growth_put ${(putPeak / 1024 / 1024).toFixed(1)} MiB`);
      console.log(`figure object_256mib_rss_growth_peak ${growth.toFixed(1)} MiB`);
      // Client, API, proxy and three object servers all run in this process: a buffered body would add 256 MiB or more.
      expect(growth).toBeLessThan(96);
    } finally {
      clearInterval(sampler);
    }
  }, 300_000);

  it('lists with prefix, delimiter, marker, end_marker, limit and reverse', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'photos' } });
    for (const name of ['2024/a.jpg', '2024/b.jpg', '2025/c.jpg', '2025/d/e.jpg', 'readme', 'z']) await put('photos', name, 10);
    const names = async (req: Record<string, unknown>) => (await rig.member.call('ListObjects', { container: 'photos', ...req })).objects.map((o: any) => o.name || `[${o.subdir}]`);
    expect(await names({ delimiter: '/' })).toEqual(['[2024/]', '[2025/]', 'readme', 'z']);
    expect(await names({ prefix: '2025/', delimiter: '/' })).toEqual(['2025/c.jpg', '[2025/d/]']);
    expect(await names({ marker: '2024/b.jpg', endMarker: 'readme' })).toEqual(['2025/c.jpg', '2025/d/e.jpg']);
    expect(await names({ limit: 2 })).toEqual(['2024/a.jpg', '2024/b.jpg']);
    expect(await names({ reverse: true, limit: 2 })).toEqual(['z', 'readme']);
    const account = await rig.member.call('GetAccount', {});
    expect(account.account).toBe(rig.account);
    expect(account.containerCount).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('answers ranges and conditional requests as Swift does', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'cond' } });
    const size = 200_000;
    const stored = await put('cond', 'r', size, {}, 3);
    const whole = Buffer.concat(await (async () => { const out: Buffer[] = []; for await (const c of patternBody(size, 3)) out.push(Buffer.from(c)); return out; })());
    const read = async (req: Record<string, unknown>) => {
      const got = await rig.member.download('GetObject', { container: 'cond', name: 'r', ...req });
      const parts: Buffer[] = [];
      for await (const c of got.body) parts.push(Buffer.from(c));
      return { header: got.header, bytes: Buffer.concat(parts) };
    };
    const mid = await read({ hasRange: true, rangeStart: 65_000, rangeEnd: 140_000 });
    expect(mid.header.contentRange).toBe(`bytes 65000-140000/${size}`);
    expect(mid.bytes.equals(whole.subarray(65_000, 140_001))).toBe(true);
    const tail = await read({ hasRange: true, rangeStart: -1, rangeEnd: 1000 });
    expect(tail.bytes.equals(whole.subarray(size - 1000))).toBe(true);
    await expect(read({ hasRange: true, rangeStart: size + 5, rangeEnd: -1 })).rejects.toMatchObject({ code: 11 }); // OUT_OF_RANGE (416)
    expect((await read({ ifMatch: stored.etag })).bytes.length).toBe(size);
    await expect(read({ ifMatch: '0123456789abcdef0123456789abcdef' })).rejects.toMatchObject({ code: 9, message: expect.stringContaining('412') });
    await expect(read({ ifNoneMatch: stored.etag })).rejects.toMatchObject({ code: 9, message: expect.stringContaining('304') });
    // If-None-Match: * on a PUT refuses an existing object and leaves it as it was.
    await expect(put('cond', 'r', 10, { ifNoneMatch: true }, 4)).rejects.toMatchObject({ code: 9, state: 'stored' });
    expect((await rig.member.call('HeadObject', { container: 'cond', name: 'r' })).object.etag).toBe(stored.etag);
    // A wrong ETag is refused naming it (Swift's 422), and nothing is recorded.
    await expect(put('cond', 'bad-etag', 10, { etag: '0123456789abcdef0123456789abcdef' })).rejects.toMatchObject({ code: 3, field: 'etag' });
    await expect(rig.member.call('HeadObject', { container: 'cond', name: 'bad-etag' })).rejects.toMatchObject({ code: 5 });
  }, 60_000);

  it('stores a static large object of segments and reads it whole and in ranges', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'segs' } });
    await rig.member.call('CreateContainer', { container: { name: 'slo' } });
    const parts: Buffer[] = [];
    const segments = [];
    for (let i = 0; i < 3; i++) {
      const size = 100_000 + i * 1000;
      const r = await put('segs', `part-${i}`, size, {}, 20 + i);
      for await (const c of patternBody(size, 20 + i)) parts.push(Buffer.from(c));
      segments.push({ path: `segs/part-${i}`, etag: r.etag, size });
    }
    const whole = Buffer.concat(parts);
    const manifest = await rig.member.call('PutManifest', { container: 'slo', name: 'big', segments });
    expect(manifest.size).toBe(whole.length);
    const got = await rig.member.download('GetObject', { container: 'slo', name: 'big' });
    expect(got.header.largeObject).toBe(true);
    expect(await digestOf(got.body)).toEqual({ size: whole.length, md5: (await import('node:crypto')).createHash('md5').update(whole).digest('hex') });
    const ranged = await rig.member.download('GetObject', { container: 'slo', name: 'big', hasRange: true, rangeStart: 99_990, rangeEnd: 201_050 });
    const bytes: Buffer[] = [];
    for await (const c of ranged.body) bytes.push(Buffer.from(c));
    expect(Buffer.concat(bytes).equals(whole.subarray(99_990, 201_051))).toBe(true);
    await expect(rig.member.call('PutManifest', { container: 'slo', name: 'bad', segments: [{ path: 'segs/part-0', etag: '0123456789abcdef0123456789abcdef' }] })).rejects.toMatchObject({ code: 3, field: 'segments[0].etag' });
  }, 60_000);

  it('keeps other projects out unless an ACL lets them in, and enforces container quotas', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'shared' } });
    await put('shared', 'doc', 100);
    const other = await rig.newMember();
    const theirs = { account: rig.account, container: 'shared', name: 'doc' };
    await expect(other.client.download('GetObject', theirs)).rejects.toMatchObject({ code: 7, message: expect.stringContaining('read_acl') });
    await expect(other.client.upload('PutObject', { ...theirs, name: 'x' }, patternBody(5))).rejects.toMatchObject({ code: 7 });
    await expect(other.client.call('ListContainers', { account: rig.account })).rejects.toMatchObject({ code: 7 });
    await rig.member.call('UpdateContainer', { container: { name: 'shared', readAcl: [`${other.projectId}:*`] }, updateMask: ['readAcl'] });
    expect((await digestOf((await other.client.download('GetObject', theirs)).body)).size).toBe(100);
    await expect(other.client.upload('PutObject', { ...theirs, name: 'x' }, patternBody(5))).rejects.toMatchObject({ code: 7, message: expect.stringContaining('write_acl') });
    await rig.member.call('UpdateContainer', { container: { name: 'shared', writeAcl: [`*:${other.userId}`] }, updateMask: ['writeAcl'] });
    expect((await other.client.upload('PutObject', { ...theirs, name: 'x' }, patternBody(5))).size).toBe(5);
    await expect(rig.member.call('UpdateContainer', { container: { name: 'shared', writeAcl: ['.r:*'] }, updateMask: ['writeAcl'] })).rejects.toMatchObject({ code: 3, field: 'container.write_acl[0]' });

    await rig.member.call('CreateContainer', { container: { name: 'quota', quotaBytes: 1000, quotaCount: 2 } });
    await put('quota', 'a', 600);
    await expect(put('quota', 'b', 600)).rejects.toMatchObject({ code: 8, message: expect.stringContaining('quota_bytes') });
    await put('quota', 'b', 300);
    await expect(put('quota', 'c', 10)).rejects.toMatchObject({ code: 8, message: expect.stringContaining('quota_count') });
    const q = await rig.member.call('GetContainer', { name: 'quota' });
    expect([q.container.objectCount, q.container.bytesUsed]).toEqual([2, 900]);
  }, 60_000);

  it('refuses bad input naming the field, deletes only empty containers, and deletes objects', async () => {
    await expect(rig.member.call('CreateContainer', { container: { name: 'a/b' } })).rejects.toMatchObject({ code: 3, field: 'container.name' });
    await expect(rig.member.call('CreateContainer', { container: { name: 'x'.repeat(257) } })).rejects.toMatchObject({ code: 3, field: 'container.name' });
    await expect(put('nope', 'o', 1)).rejects.toMatchObject({ code: 5, message: expect.stringContaining('nope') });
    await rig.member.call('CreateContainer', { container: { name: 'del' } });
    await expect(put('del', 'x'.repeat(1025), 1)).rejects.toMatchObject({ code: 3, field: 'name' });
    await expect(rig.member.upload('PutObject', { container: 'del', name: 'm', metadata: { 'bad key': 'v' } }, patternBody(1))).rejects.toMatchObject({ code: 3, field: 'metadata.bad key' });
    await put('del', 'o', 10);
    await expect(rig.member.call('DeleteContainer', { name: 'del' })).rejects.toMatchObject({ code: 9, message: expect.stringContaining('1 objects') });
    expect((await rig.member.call('ListObjects', { container: 'del' })).objects).toHaveLength(1);
    await rig.member.call('DeleteObject', { container: 'del', name: 'o' });
    await expect(rig.member.download('GetObject', { container: 'del', name: 'o' })).rejects.toMatchObject({ code: 5 });
    await expect(rig.member.call('DeleteObject', { container: 'del', name: 'o' })).rejects.toMatchObject({ code: 5 });
    await rig.member.call('DeleteContainer', { name: 'del' });
    await expect(rig.member.call('GetContainer', { name: 'del' })).rejects.toMatchObject({ code: 5 });
    // The ring is the admins'.
    await expect(rig.member.call('RebalanceRing', {})).rejects.toMatchObject({ code: 7 });
  }, 60_000);
});
