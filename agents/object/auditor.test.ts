// Auditor over a ReplicaStore in a temp directory, with bytes flipped on disk.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Auditor } from './auditor.js';
import { ReplicaStore, nameHash, type ReplicaMeta } from './replica-store.js';

const CHUNK = 4096;
let root: string;
let store: ReplicaStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-audit-'));
  store = new ReplicaStore(root, { chunkSize: CHUNK });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

async function put(object: string, body: Buffer, partition = 1, ts = '1764640000.00001'): Promise<string> {
  await store.put(partition, { account: 'a', container: 'c', object, timestamp: ts, contentType: 'x', metadata: {} }, Readable.from([body]));
  const dir = join(root, 'objects', String(partition), nameHash('a', 'c', object));
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.data'));
  return join(dir, file);
}

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] ^= 0x80;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}

describe('Auditor', () => {
  it('finds a flipped byte in an object never read, quarantines it and reports it; good replicas stay', async () => {
    const good = randomBytes(5 * CHUNK);
    await put('good', good);
    await put('good2', randomBytes(10), 2);
    const badPath = await put('bad', randomBytes(5 * CHUNK + 7));
    await store.delete(1, 'a', 'c', 'tomb', '1764640000.00002');
    await flipByte(badPath, 4 * CHUNK + 3);

    const told: Array<[number, ReplicaMeta, string]> = [];
    const auditor = new Auditor({ store, onQuarantined: (p, m, r) => told.push([p, m, r]) });
    const result = await auditor.pass();
    expect(result.checked).toBe(3);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0]).toMatchObject({ partition: 1, meta: { account: 'a', container: 'c', object: 'bad' } });
    expect(result.quarantined[0].reason).toMatch(/chunk 4/);
    expect(told).toEqual([[1, result.quarantined[0].meta, result.quarantined[0].reason]]);

    expect(await store.head(1, 'a', 'c', 'bad')).toBeUndefined();
    expect((await store.listPartition(1)).map((m) => m.object)).toEqual(['good', 'tomb']);
    expect(await readdir(join(root, 'quarantined', 'objects'))).toEqual([nameHash('a', 'c', 'bad')]);
    const { body } = await store.read(1, 'a', 'c', 'good');
    const parts: Buffer[] = [];
    for await (const p of body) parts.push(p as Buffer);
    expect(Buffer.concat(parts).equals(good)).toBe(true);

    const again = await auditor.pass();
    expect(again).toEqual({ checked: 2, quarantined: [] });
  });

  it('catches a body whose chunk digests were rewritten to match but whose md5 is not the etag', async () => {
    const body = randomBytes(3 * CHUNK);
    const path = await put('forged', body);
    // Rewrite the file in the store's format: change a body byte and fix its chunk digest and the
    // trailer's md5, leaving the etag. Only the whole-body check can see it.
    const file = await readFile(path);
    const trailerLength = Number(file.readBigUInt64BE(file.length - 16));
    const trailer = JSON.parse(file.subarray(body.length, body.length + trailerLength).toString());
    const changed = Buffer.from(body);
    changed[CHUNK + 1] ^= 1;
    trailer.chunks = trailer.chunks.slice(0, 32) + md5(changed.subarray(CHUNK, 2 * CHUNK)) + trailer.chunks.slice(64);
    const json = Buffer.from(JSON.stringify(trailer));
    const footer = Buffer.alloc(32);
    createHash('md5').update(json).digest().copy(footer, 0);
    footer.writeBigUInt64BE(BigInt(json.length), 16);
    file.copy(footer, 24, file.length - 8);
    await writeFile(path, Buffer.concat([changed, json, footer]));
    expect((await store.head(1, 'a', 'c', 'forged'))?.etag).toBe(md5(body)); // the trailer still reads as sound

    const result = await new Auditor({ store }).pass();
    expect(result.quarantined.map((q) => q.meta.object)).toEqual(['forged']);
    expect(result.quarantined[0].reason).toMatch(/is not the etag/);
    expect(await store.head(1, 'a', 'c', 'forged')).toBeUndefined();
  });

  it('quarantines a replica whose trailer is garbled, reporting the name as unknown', async () => {
    const path = await put('t', randomBytes(2 * CHUNK));
    await flipByte(path, (await stat(path)).size - 30); // inside the footer's trailer md5
    const result = await new Auditor({ store }).pass();
    expect(result.checked).toBe(1);
    expect(result.quarantined).toHaveLength(1);
    expect(result.quarantined[0].meta).toMatchObject({ object: '', timestamp: '1764640000.00001' });
    expect(result.quarantined[0].reason).toMatch(/trailer.*name unknown/);
    expect(await readdir(join(root, 'objects', '1')).catch(() => [])).toEqual([]);
  });

  it('keeps to bytesPerSecond', async () => {
    await put('x', randomBytes(64 * CHUNK)); // 256 KiB
    const fast = Date.now();
    await new Auditor({ store }).pass();
    const unlimited = Date.now() - fast;
    const slow = Date.now();
    const result = await new Auditor({ store, bytesPerSecond: 512 * 1024 }).pass();
    const limited = Date.now() - slow;
    expect(result.checked).toBe(1);
    expect(limited).toBeGreaterThanOrEqual(450);
    expect(unlimited).toBeLessThan(limited);
  });
});
