// ReplicaStore on real files in a temp directory.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  CorruptReplicaError,
  EtagMismatchError,
  InsufficientStorageError,
  NotFoundError,
  RangeNotSatisfiableError,
  ReplicaStore,
  nameHash,
  normalizeTimestamp,
} from './replica-store.js';

const CHUNK = 4096;
let root: string;
let store: ReplicaStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-replicas-'));
  store = new ReplicaStore(root, { chunkSize: CHUNK });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

/** A body delivered in uneven pieces, so chunk boundaries fall inside pieces. */
function pieces(body: Buffer, piece = 1000): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += piece) parts.push(body.subarray(i, i + piece));
  return Readable.from(parts);
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

function put(name: string, ts: string, body: Buffer, extra: { metadata?: Record<string, string>; contentType?: string; expectedEtag?: string } = {}, partition = 7) {
  return store.put(
    partition,
    { account: 'AUTH_a', container: 'c', object: name, timestamp: ts, contentType: extra.contentType ?? 'application/octet-stream', metadata: extra.metadata ?? {}, expectedEtag: extra.expectedEtag },
    pieces(body),
  );
}

async function dataPath(name: string, partition = 7): Promise<string> {
  const dir = join(root, 'objects', String(partition), nameHash('AUTH_a', 'c', name));
  const files = (await readdir(dir)).filter((f) => f.endsWith('.data'));
  expect(files).toHaveLength(1);
  return join(dir, files[0]);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] ^= 0xff;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}

describe('ReplicaStore', () => {
  it('normalizes timestamps to the 16-character Swift form', () => {
    expect(normalizeTimestamp('1764640000.12345')).toBe('1764640000.12345');
    expect(normalizeTimestamp('1764640000.1')).toBe('1764640000.10000');
    expect(normalizeTimestamp('5')).toBe('0000000005.00000');
    expect(normalizeTimestamp('abc')).toBeUndefined();
    expect(normalizeTimestamp('1.123456')).toBeUndefined();
  });

  it.each([0, 1024, 3 * 1024 * 1024 + 17])('round-trips a %i-byte body with its md5, content type and metadata', async (size) => {
    const body = randomBytes(size);
    const meta = await put('dir/obj', '1764640000.00001', body, { metadata: { color: 'blue' }, contentType: 'text/plain' });
    expect(meta).toMatchObject({ etag: md5(body), size, contentType: 'text/plain', metadata: { color: 'blue' }, deleted: false, timestamp: '1764640000.00001' });
    expect(await store.head(7, 'AUTH_a', 'c', 'dir/obj')).toEqual(meta);
    const { meta: m2, body: stream } = await store.read(7, 'AUTH_a', 'c', 'dir/obj');
    expect(m2).toEqual(meta);
    const got = await collect(stream);
    expect(got.length).toBe(size);
    expect(got.equals(body)).toBe(true);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('serves ranges: start, across chunk boundaries, open-ended, suffix; 416 past the end', async () => {
    const body = randomBytes(5 * CHUNK + 100);
    await put('r', '1764640000.00001', body);
    const cases: Array<[Parameters<ReplicaStore['read']>[4], number, number]> = [
      [{ start: 0, end: 9 }, 0, 9],
      [{ start: CHUNK - 10, end: 2 * CHUNK + 10 }, CHUNK - 10, 2 * CHUNK + 10],
      [{ start: 3 * CHUNK, end: 3 * CHUNK }, 3 * CHUNK, 3 * CHUNK],
      [{ start: 4 * CHUNK + 50, end: Number.MAX_SAFE_INTEGER }, 4 * CHUNK + 50, body.length - 1],
      [{ suffix: 150 }, body.length - 150, body.length - 1],
      [{ suffix: body.length * 2 }, 0, body.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await store.read(7, 'AUTH_a', 'c', 'r', range);
      expect(r.range).toEqual({ start, end });
      expect((await collect(r.body)).equals(body.subarray(start, end + 1))).toBe(true);
    }
    await expect(store.read(7, 'AUTH_a', 'c', 'r', { start: body.length, end: body.length + 5 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
    await expect(store.read(7, 'AUTH_a', 'c', 'r', { suffix: 0 })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
  });

  it('last write wins: older or equal PUT is a conflict, newer replaces, tombstones hide and outrank older PUTs', async () => {
    await put('o', '1764640000.00002', Buffer.from('two'));
    const older = put('o', '1764640000.00001', Buffer.from('one'));
    await expect(older).rejects.toBeInstanceOf(ConflictError);
    await expect(put('o', '1764640000.00002', Buffer.from('again'))).rejects.toMatchObject({ httpStatus: 409, existingTimestamp: '1764640000.00002' });

    await put('o', '1764640000.00003', Buffer.from('three'));
    expect(await collect((await store.read(7, 'AUTH_a', 'c', 'o')).body)).toEqual(Buffer.from('three'));
    const dir = join(root, 'objects', '7', nameHash('AUTH_a', 'c', 'o'));
    expect(await readdir(dir)).toEqual(['1764640000.00003.data']);

    expect(await store.delete(7, 'AUTH_a', 'c', 'o', '1764640000.00004')).toEqual({ existed: true });
    expect(await readdir(dir)).toEqual(['1764640000.00004.ts']);
    expect(await store.head(7, 'AUTH_a', 'c', 'o')).toMatchObject({ deleted: true, timestamp: '1764640000.00004', object: 'o' });
    await expect(store.read(7, 'AUTH_a', 'c', 'o')).rejects.toMatchObject({ httpStatus: 404, tombstoneTimestamp: '1764640000.00004' });
    await expect(put('o', '1764640000.00003', Buffer.from('late'))).rejects.toBeInstanceOf(ConflictError);
    await expect(store.delete(7, 'AUTH_a', 'c', 'o', '1764640000.00001')).rejects.toBeInstanceOf(ConflictError);
    // A delete of nothing live still leaves its tombstone.
    expect(await store.delete(7, 'AUTH_a', 'c', 'o', '1764640000.00005')).toEqual({ existed: false });
    expect(await store.delete(7, 'AUTH_a', 'c', 'never', '1764640000.00005')).toEqual({ existed: false });
    await expect(put('never', '1764640000.00004', Buffer.from('x'))).rejects.toBeInstanceOf(ConflictError);

    await put('o', '1764640000.00006', Buffer.from('six'));
    expect(await collect((await store.read(7, 'AUTH_a', 'c', 'o')).body)).toEqual(Buffer.from('six'));
  });

  it('POST replaces user metadata (not merge), and is refused when older or nothing is live', async () => {
    await put('p', '1764640000.00001', Buffer.from('body'), { metadata: { a: '1', b: '2' }, contentType: 'text/plain' });
    const after = await store.postMetadata(7, 'AUTH_a', 'c', 'p', '1764640000.00002', { c: '3' });
    expect(after).toMatchObject({ metadata: { c: '3' }, contentType: 'text/plain', timestamp: '1764640000.00002', dataTimestamp: '1764640000.00001', etag: md5(Buffer.from('body')) });
    expect((await store.head(7, 'AUTH_a', 'c', 'p'))?.metadata).toEqual({ c: '3' });
    await store.postMetadata(7, 'AUTH_a', 'c', 'p', '1764640000.00003', {}, 'image/png');
    expect(await store.head(7, 'AUTH_a', 'c', 'p')).toMatchObject({ metadata: {}, contentType: 'image/png' });
    await expect(store.postMetadata(7, 'AUTH_a', 'c', 'p', '1764640000.00002', { x: 'y' })).rejects.toBeInstanceOf(ConflictError);
    // A PUT must beat the POST too; a newer PUT brings its own metadata.
    await expect(put('p', '1764640000.00003', Buffer.from('b'))).rejects.toBeInstanceOf(ConflictError);
    await put('p', '1764640000.00004', Buffer.from('b'), { metadata: { d: '4' } });
    expect((await store.head(7, 'AUTH_a', 'c', 'p'))?.metadata).toEqual({ d: '4' });
    await expect(store.postMetadata(7, 'AUTH_a', 'c', 'missing', '1764640000.00005', {})).rejects.toBeInstanceOf(NotFoundError);
    await store.delete(7, 'AUTH_a', 'c', 'p', '1764640000.00005');
    await expect(store.postMetadata(7, 'AUTH_a', 'c', 'p', '1764640000.00006', {})).rejects.toBeInstanceOf(NotFoundError);
  });

  it('an etag mismatch leaves nothing visible and an empty tmp dir', async () => {
    const body = randomBytes(10_000);
    await expect(put('e', '1764640000.00001', body, { expectedEtag: md5(Buffer.from('other')) })).rejects.toBeInstanceOf(EtagMismatchError);
    expect(await store.head(7, 'AUTH_a', 'c', 'e')).toBeUndefined();
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await store.listPartition(7)).toEqual([]);
    // The right etag, quoted as HTTP clients do, is accepted.
    await put('e', '1764640000.00001', body, { expectedEtag: `"${md5(body).toUpperCase()}"` });
  });

  it('a body that fails mid-stream leaves nothing behind', async () => {
    async function* failing() {
      yield Buffer.alloc(10_000, 1);
      throw new Error('client went away');
    }
    await expect(store.put(7, { account: 'a', container: 'c', object: 'o', timestamp: '1764640000.00001', contentType: '', metadata: {} }, failing())).rejects.toThrow('client went away');
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await store.head(7, 'a', 'c', 'o')).toBeUndefined();
  });

  it('a full disk is InsufficientStorageError, with the temp file removed', async () => {
    class FullDisk extends ReplicaStore {
      written = 0;
      protected override async writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
        if (this.written + buf.length > 20_000) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        this.written += buf.length;
        await super.writeAll(fh, buf);
      }
    }
    const full = new FullDisk(root, { chunkSize: CHUNK });
    const err = await full
      .put(3, { account: 'a', container: 'c', object: 'big', timestamp: '1764640000.00001', contentType: '', metadata: {} }, pieces(randomBytes(50_000)))
      .catch((e) => e);
    expect(err).toBeInstanceOf(InsufficientStorageError);
    expect(err.httpStatus).toBe(507);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect(await full.head(3, 'a', 'c', 'big')).toBeUndefined();
  });

  it('a flipped byte in the 3rd chunk: the stream emits only the good prefix, fails, and the replica is quarantined', async () => {
    const body = randomBytes(6 * CHUNK);
    await put('rot', '1764640000.00001', body);
    await flipByte(await dataPath('rot'), 2 * CHUNK + 123);
    const { body: stream } = await store.read(7, 'AUTH_a', 'c', 'rot');
    const got: Buffer[] = [];
    const err = await (async () => {
      try {
        for await (const p of stream) got.push(p as Buffer);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CorruptReplicaError);
    const prefix = Buffer.concat(got);
    expect(prefix.length).toBe(2 * CHUNK);
    expect(prefix.equals(body.subarray(0, prefix.length))).toBe(true);
    expect(await store.head(7, 'AUTH_a', 'c', 'rot')).toBeUndefined();
    const q = await readdir(join(root, 'quarantined', 'objects'));
    expect(q).toEqual([nameHash('AUTH_a', 'c', 'rot')]);
    expect(await readFile(join(root, 'quarantined', 'objects', q[0], 'QUARANTINE_REASON'), 'utf8')).toMatch(/chunk 2/);
    expect(await store.listPartition(7)).toEqual([]);
  });

  it('a flipped byte in the first chunk of the range rejects read() itself; a range that avoids it still reads', async () => {
    const body = randomBytes(4 * CHUNK);
    await put('rot1', '1764640000.00001', body);
    await flipByte(await dataPath('rot1'), 3 * CHUNK + 5);
    const r = await store.read(7, 'AUTH_a', 'c', 'rot1', { start: 0, end: 3 * CHUNK - 1 });
    expect((await collect(r.body)).equals(body.subarray(0, 3 * CHUNK))).toBe(true);
    await expect(store.read(7, 'AUTH_a', 'c', 'rot1', { suffix: 10 })).rejects.toBeInstanceOf(CorruptReplicaError);
    expect(await store.head(7, 'AUTH_a', 'c', 'rot1')).toBeUndefined();
  });

  it('a garbled or truncated trailer is corruption: head quarantines and answers undefined', async () => {
    await put('t1', '1764640000.00001', randomBytes(100));
    const p1 = await dataPath('t1');
    await flipByte(p1, (await stat(p1)).size - 40); // inside the trailer JSON
    expect(await store.head(7, 'AUTH_a', 'c', 't1')).toBeUndefined();

    await put('t2', '1764640000.00001', randomBytes(100));
    const p2 = await dataPath('t2');
    const fh = await open(p2, 'r+');
    await fh.truncate((await fh.stat()).size - 3);
    await fh.close();
    await expect(store.read(7, 'AUTH_a', 'c', 't2')).rejects.toBeInstanceOf(NotFoundError);
    expect((await readdir(join(root, 'quarantined', 'objects'))).sort()).toEqual([nameHash('AUTH_a', 'c', 't1'), nameHash('AUTH_a', 'c', 't2')].sort());
  });

  it('lists a partition (tombstones included), hashes it, and tracks usage; removeReplica and quarantine drop names', async () => {
    expect(await store.partitionHash(1)).toBe('');
    await put('b', '1764640000.00001', Buffer.from('bb'), {}, 1);
    await put('a/ünï code', '1764640000.00001', Buffer.from('a'), {}, 1);
    await put('z', '1764640000.00001', Buffer.from('zzz'), {}, 2);
    await store.delete(1, 'AUTH_a', 'c', 'gone', '1764640000.00002');
    expect(await store.partitions()).toEqual([1, 2]);
    const list = await store.listPartition(1);
    expect(list.map((m) => [m.object, m.deleted])).toEqual([
      ['a/ünï code', false],
      ['b', false],
      ['gone', true],
    ]);
    const h1 = await store.partitionHash(1);
    expect(h1).toMatch(/^[0-9a-f]{32}$/);

    // Another device with the same states has the same hash, written in another order.
    const other = new ReplicaStore(join(root, 'other'), { chunkSize: 999 });
    const meta = (object: string, ts = '1764640000.00001') => ({ account: 'AUTH_a', container: 'c', object, timestamp: ts, contentType: 'x', metadata: {} });
    await other.delete(1, 'AUTH_a', 'c', 'gone', '1764640000.00002');
    await other.put(1, meta('b'), Readable.from([Buffer.from('bb')]));
    expect(await other.partitionHash(1)).not.toBe(h1);
    await other.put(1, meta('a/ünï code'), Readable.from([Buffer.from('a')]));
    expect(await other.partitionHash(1)).toBe(h1);

    expect(await store.usage()).toMatchObject({ objects: 3 });
    expect((await store.usage()).bytes).toBeGreaterThan(6);
    await store.removeReplica(2, 'AUTH_a', 'c', 'z');
    expect(await store.partitions()).toEqual([1]);
    await store.quarantine(1, 'AUTH_a', 'c', 'b', 'test');
    expect((await store.listPartition(1)).map((m) => m.object)).toEqual(['a/ünï code', 'gone']);
    expect(await store.partitionHash(1)).not.toBe(h1);
    expect(await store.usage()).toMatchObject({ objects: 1 });
  });

  it('concurrent PUTs of one name: the newest timestamp wins whatever order they finish in', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(20_000 + i * 1000, i));
    const results = await Promise.allSettled(bodies.map((b, i) => put('race', `1764640000.0000${i}`, b)));
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    const m = await store.head(7, 'AUTH_a', 'c', 'race');
    expect(m?.timestamp).toBe('1764640000.00007');
    expect((await collect((await store.read(7, 'AUTH_a', 'c', 'race')).body)).equals(bodies[7])).toBe(true);
    const dir = join(root, 'objects', '7', nameHash('AUTH_a', 'c', 'race'));
    expect(await readdir(dir)).toEqual(['1764640000.00007.data']);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });
});
