// ObjectServer over real HTTP on 127.0.0.1 with a ReplicaStore in a temp directory.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ObjectServer, parseRange } from './object-server.js';
import { ReplicaStore, nameHash } from './replica-store.js';

const CHUNK = 64 * 1024;
let root: string;
let store: ReplicaStore;
let server: ObjectServer;
let address: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'strata-objsrv-'));
  store = new ReplicaStore(root);
  server = new ObjectServer({ store, deviceId: 4, port: 0 });
  ({ address } = await server.start());
});

afterEach(async () => {
  await server.stop();
  await rm(root, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Set when the response was cut off (or the request failed); body holds what arrived. */
  error?: Error;
}

/** One HTTP request; `body` may be a Buffer or a stream (sent chunked unless content-length is given). */
function call(method: string, path: string, options: { headers?: Record<string, string | number>; body?: Buffer | Readable; onData?: (b: Buffer) => void } = {}): Promise<Reply> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host, port: Number(port), method, path, headers: options.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let done = false;
      const finish = (error?: Error) => {
        if (done) return;
        done = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), error });
      };
      res.on('data', (b: Buffer) => (options.onData ? options.onData(b) : parts.push(b)));
      res.on('end', () => finish(res.complete ? undefined : new Error('incomplete response')));
      res.on('aborted', () => finish(new Error('aborted')));
      res.on('error', (e) => finish(e));
      res.on('close', () => finish(res.complete ? undefined : new Error('closed before complete')));
    });
    req.on('error', reject);
    if (options.body instanceof Readable) options.body.pipe(req);
    else req.end(options.body);
  });
}

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const TS = (n: number) => `1764640000.${String(n).padStart(5, '0')}`;
const objPath = (name: string, partition = 3) => `/o/${partition}/AUTH_test/photos/${name}`;

async function flipByte(path: string, offset: number): Promise<void> {
  const fh = await open(path, 'r+');
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, offset);
  b[0] ^= 0x01;
  await fh.write(b, 0, 1, offset);
  await fh.close();
}

async function dataFile(partition: number, account: string, container: string, object: string): Promise<string> {
  const dir = join(root, 'objects', String(partition), nameHash(account, container, object));
  const [file] = (await readdir(dir)).filter((f) => f.endsWith('.data'));
  return join(dir, file);
}

describe('ObjectServer', () => {
  it('parses ranges the way RFC 9110 allows', () => {
    expect(parseRange('bytes=0-9')).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=5-')).toEqual({ start: 5, end: Number.MAX_SAFE_INTEGER });
    expect(parseRange('bytes=-7')).toEqual({ suffix: 7 });
    expect(parseRange('bytes=9-3')).toBeUndefined();
    expect(parseRange('bytes=0-1,5-6')).toBeUndefined();
    expect(parseRange('items=0-1')).toBeUndefined();
  });

  it.each([0, 1024, 5 * 1024 * 1024 + 3])('PUT then GET and HEAD a %i-byte body: etag, metadata, content type, timestamps', async (size) => {
    const body = randomBytes(size);
    const put = await call('PUT', objPath('a.bin'), {
      headers: { 'x-timestamp': TS(1), 'content-type': 'image/jpeg', 'x-object-meta-Color': 'blue', etag: md5(body), 'content-length': size },
      body,
    });
    expect(put.status).toBe(201);
    expect(put.headers.etag).toBe(md5(body));

    const get = await call('GET', objPath('a.bin'));
    expect(get.status).toBe(200);
    expect(get.body.equals(body)).toBe(true);
    expect(get.headers).toMatchObject({
      etag: md5(body),
      'content-length': String(size),
      'content-type': 'image/jpeg',
      'x-timestamp': TS(1),
      'x-object-meta-color': 'blue',
      'last-modified': new Date(1764640001 * 1000).toUTCString(),
    });
    const head = await call('HEAD', objPath('a.bin'));
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(size));
    expect(head.headers.etag).toBe(md5(body));
    expect(head.body.length).toBe(0);
  });

  it('takes a chunked body, and answers ranges with 206 and exact bytes, 416 when unsatisfiable', async () => {
    const body = randomBytes(3 * CHUNK + 500);
    const put = await call('PUT', objPath('r'), { headers: { 'x-timestamp': TS(1) }, body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]) });
    expect(put.status).toBe(201);
    expect(put.headers.etag).toBe(md5(body));
    const cases: Array<[string, number, number]> = [
      ['bytes=0-99', 0, 99],
      [`bytes=${CHUNK - 5}-${2 * CHUNK + 5}`, CHUNK - 5, 2 * CHUNK + 5],
      [`bytes=${3 * CHUNK}-`, 3 * CHUNK, body.length - 1],
      ['bytes=-300', body.length - 300, body.length - 1],
      [`bytes=10-${body.length + 1000}`, 10, body.length - 1],
    ];
    for (const [range, start, end] of cases) {
      const r = await call('GET', objPath('r'), { headers: { range } });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range']).toBe(`bytes ${start}-${end}/${body.length}`);
      expect(r.body.equals(body.subarray(start, end + 1)), range).toBe(true);
    }
    const bad = await call('GET', objPath('r'), { headers: { range: `bytes=${body.length}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe(`bytes */${body.length}`);
    expect(bad.body.toString()).toMatch(/^range not satisfiable.*\n$/);
  });

  it('last write wins over HTTP: 409 with the existing timestamp, tombstones, POST replacing metadata', async () => {
    const put = (ts: number, text: string, headers: Record<string, string> = {}) =>
      call('PUT', objPath('lww'), { headers: { 'x-timestamp': TS(ts), ...headers }, body: Buffer.from(text) });
    expect((await put(5, 'five', { 'x-object-meta-a': '1', 'x-object-meta-b': '2' })).status).toBe(201);
    const older = await put(4, 'four');
    expect(older.status).toBe(409);
    expect(older.headers['x-backend-timestamp']).toBe(TS(5));
    expect((await call('GET', objPath('lww'))).body.toString()).toBe('five');

    const post = await call('POST', objPath('lww'), { headers: { 'x-timestamp': TS(6), 'x-object-meta-c': '3' } });
    expect(post.status).toBe(202);
    const afterPost = await call('HEAD', objPath('lww'));
    expect(afterPost.headers['x-object-meta-c']).toBe('3');
    expect(afterPost.headers['x-object-meta-a']).toBeUndefined();
    expect(afterPost.headers['x-timestamp']).toBe(TS(6));
    expect((await call('POST', objPath('lww'), { headers: { 'x-timestamp': TS(6) } })).status).toBe(409);

    expect((await put(7, 'seven')).status).toBe(201);
    const del = await call('DELETE', objPath('lww'), { headers: { 'x-timestamp': TS(8) } });
    expect(del.status).toBe(204);
    const gone = await call('GET', objPath('lww'));
    expect(gone.status).toBe(404);
    expect(gone.headers['x-backend-timestamp']).toBe(TS(8));
    expect((await call('HEAD', objPath('lww'))).headers['x-backend-timestamp']).toBe(TS(8));
    expect((await put(7, 'late')).status).toBe(409);
    expect((await call('DELETE', objPath('lww'), { headers: { 'x-timestamp': TS(7) } })).status).toBe(409);
    expect((await call('POST', objPath('lww'), { headers: { 'x-timestamp': TS(9) } })).status).toBe(404);

    // Deleting what is not there: 404, but the tombstone is written, so an older PUT still loses.
    const del2 = await call('DELETE', objPath('never'), { headers: { 'x-timestamp': TS(10) } });
    expect(del2.status).toBe(404);
    expect((await call('PUT', objPath('never'), { headers: { 'x-timestamp': TS(9) }, body: Buffer.from('x') })).status).toBe(409);
    expect((await put(11, 'eleven')).status).toBe(201);
    expect((await call('GET', objPath('lww'))).body.toString()).toBe('eleven');
  });

  it('etag mismatch: 422, nothing visible, tmp empty', async () => {
    const r = await call('PUT', objPath('e'), { headers: { 'x-timestamp': TS(1), etag: md5(Buffer.from('not this')) }, body: randomBytes(200_000) });
    expect(r.status).toBe(422);
    expect(r.body.toString().trim().split('\n')).toHaveLength(1);
    expect((await call('GET', objPath('e'))).status).toBe(404);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });

  it('refuses bad requests with a one-line message naming what is wrong', async () => {
    const cases: Array<[string, string, Record<string, string>, number, RegExp]> = [
      ['PUT', objPath('x'), {}, 400, /X-Timestamp/],
      ['PUT', objPath('x'), { 'x-timestamp': 'yesterday' }, 400, /X-Timestamp/],
      ['DELETE', objPath('x'), {}, 400, /X-Timestamp/],
      ['GET', '/o/abc/AUTH_test/c/o', {}, 400, /partition/],
      ['GET', '/o/3/AUTH_test/c', {}, 400, /object/],
      ['GET', '/o/3/AUTH_test/c/', {}, 400, /empty object/],
      ['GET', '/o/3//c/o', {}, 400, /account/],
      ['GET', '/o/3/AUTH_test/a%2Fb/o', {}, 400, /container/],
      ['GET', '/o/3/AUTH_test/c/%E0%A4%A', {}, 400, /percent-encoded/],
      ['GET', '/nope', {}, 400, /unknown path/],
      ['GET', '/p/3', {}, 400, /list or \?hash/],
      ['PATCH', objPath('x'), {}, 405, /PATCH/],
      ['PUT', objPath('x'), { 'x-timestamp': TS(1), ['x-object-meta-' + 'k'.repeat(200)]: 'v' }, 400, /metadata name/],
    ];
    for (const [method, path, headers, status, message] of cases) {
      const r = await call(method, path, { headers, body: method === 'PUT' ? Buffer.from('data') : undefined });
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(r.headers['content-type']).toMatch(/^text\/plain/);
      const text = r.body.toString();
      expect(text, `${method} ${path}`).toMatch(message);
      expect(text.endsWith('\n') && text.indexOf('\n') === text.length - 1).toBe(true);
    }
  });

  it('a flipped byte in the 3rd chunk: GET is cut off with only correct bytes, and the replica is quarantined', async () => {
    const body = randomBytes(8 * CHUNK);
    expect((await call('PUT', objPath('rot'), { headers: { 'x-timestamp': TS(1) }, body })).status).toBe(201);
    await flipByte(await dataFile(3, 'AUTH_test', 'photos', 'rot'), 2 * CHUNK + 1000);

    const r = await call('GET', objPath('rot'));
    expect(r.status).toBe(200); // the headers went out before the bad chunk was reached
    expect(r.error).toBeDefined();
    expect(r.body.length).toBeLessThan(body.length);
    expect(r.body.length).toBeLessThanOrEqual(2 * CHUNK);
    expect(r.body.equals(body.subarray(0, r.body.length))).toBe(true);

    expect(await store.head(3, 'AUTH_test', 'photos', 'rot')).toBeUndefined();
    expect(await readdir(join(root, 'quarantined', 'objects'))).toEqual([nameHash('AUTH_test', 'photos', 'rot')]);
    expect((await call('GET', objPath('rot'))).status).toBe(404);
  });

  it('a flipped byte in the first chunk: 404 with x-backend-quarantined, replica quarantined', async () => {
    const body = randomBytes(3 * CHUNK);
    expect((await call('PUT', objPath('rot0'), { headers: { 'x-timestamp': TS(1) }, body })).status).toBe(201);
    await flipByte(await dataFile(3, 'AUTH_test', 'photos', 'rot0'), 17);
    const r = await call('GET', objPath('rot0'));
    expect(r.status).toBe(404);
    expect(r.headers['x-backend-quarantined']).toBe('1');
    expect(r.body.toString()).toMatch(/chunk 0.*quarantined\n$/);
    expect(await store.head(3, 'AUTH_test', 'photos', 'rot0')).toBeUndefined();
    expect(await readdir(join(root, 'quarantined', 'objects'))).toEqual([nameHash('AUTH_test', 'photos', 'rot0')]);
  });

  it('percent-encoded names with / and unicode; partition listing, hash, partitions, healthcheck', async () => {
    const names = ['dir/sub/ünïcødé file.txt', 'a b?c#d', '日本/語'];
    for (const [i, name] of names.entries()) {
      const path = objPath(name.split('/').map(encodeURIComponent).join('/'), 9);
      const r = await call('PUT', path, { headers: { 'x-timestamp': TS(1), 'x-object-meta-i': String(i) }, body: Buffer.from(name) });
      expect(r.status, name).toBe(201);
      const g = await call('GET', path);
      expect(g.body.toString()).toBe(name);
    }
    // '/' encoded inside the object part means the same name.
    expect((await call('GET', objPath(encodeURIComponent('dir/sub/ünïcødé file.txt'), 9))).status).toBe(200);
    await call('PUT', '/o/2/AUTH_other/c/x', { headers: { 'x-timestamp': TS(1) }, body: Buffer.from('x') });
    await call('DELETE', objPath('tomb', 9), { headers: { 'x-timestamp': TS(2) } });

    const list = await call('GET', '/p/9?list');
    expect(list.status).toBe(200);
    const metas = JSON.parse(list.body.toString()) as Array<{ object: string; deleted: boolean; etag: string; metadata: Record<string, string> }>;
    expect(metas.map((m) => [m.object, m.deleted]).sort()).toEqual(
      [...names.map((n) => [n, false]), ['tomb', true]].sort(),
    );
    expect(metas.find((m) => m.object === names[0])?.etag).toBe(md5(Buffer.from(names[0])));

    const hash = JSON.parse((await call('GET', '/p/9?hash')).body.toString()) as { hash: string };
    expect(hash.hash).toBe(await store.partitionHash(9));
    expect(hash.hash).toMatch(/^[0-9a-f]{32}$/);
    expect(JSON.parse((await call('GET', '/p/5?hash')).body.toString())).toEqual({ hash: '' });
    expect(JSON.parse((await call('GET', '/p/5?list')).body.toString())).toEqual([]);
    expect(JSON.parse((await call('GET', '/partitions')).body.toString())).toEqual([2, 9]);
    const health = JSON.parse((await call('GET', '/healthcheck')).body.toString());
    expect(health).toMatchObject({ deviceId: 4, objects: 4 });
    expect(health.bytes).toBeGreaterThan(0);
  });

  it('a client that disconnects mid-PUT leaves nothing behind', async () => {
    const [host, port] = address.split(':');
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host, port: Number(port), method: 'PUT', path: objPath('half'), headers: { 'x-timestamp': TS(1), 'content-length': 1_000_000 } });
      req.on('error', () => resolve());
      req.write(randomBytes(300_000), () => setTimeout(() => req.destroy(), 100));
      req.on('close', () => resolve());
    });
    // The server notices the abort asynchronously.
    for (let i = 0; i < 50 && (await readdir(join(root, 'tmp'))).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect((await call('GET', objPath('half'))).status).toBe(404);
  });

  it('streams a 256 MiB object both ways with flat memory', async () => {
    const SIZE = 256 * 1024 * 1024;
    const PIECE = 64 * 1024;
    const seed = randomBytes(1024 * 1024);
    const sent = createHash('md5');
    /** The body, made piece by piece as the server takes it (each piece differs: a counter in it). */
    function* generate() {
      for (let off = 0, n = 0; off < SIZE; off += PIECE, n++) {
        const piece = Buffer.from(seed.subarray((n * PIECE) % seed.length, ((n * PIECE) % seed.length) + PIECE));
        piece.writeUInt32BE(n, 0);
        sent.update(piece);
        yield piece;
      }
    }
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
    try {
      const put = await call('PUT', objPath('huge'), { headers: { 'x-timestamp': TS(1), 'content-length': SIZE }, body: Readable.from(generate(), { objectMode: false }) });
      expect(put.status).toBe(201);
      const etag = sent.digest('hex');
      expect(put.headers.etag).toBe(etag);
      const peakPut = peak;

      const got = createHash('md5');
      let bytes = 0;
      const get = await call('GET', objPath('huge'), {
        onData: (b) => {
          got.update(b);
          bytes += b.length;
        },
      });
      expect(get.status).toBe(200);
      expect(get.error).toBeUndefined();
      expect(bytes).toBe(SIZE);
      expect(got.digest('hex')).toBe(etag);
      const after = process.memoryUsage().rss;
      const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
      console.log(`256 MiB PUT+GET rss: before ${mib(before)} MiB, peak during PUT ${mib(peakPut)} MiB, peak ${mib(peak)} MiB, after ${mib(after)} MiB (growth at peak ${mib(peak - before)} MiB)`);
      expect(peak - before).toBeLessThan(64 * 1024 * 1024);
    } finally {
      clearInterval(sampler);
    }
  }, 120_000);
});
