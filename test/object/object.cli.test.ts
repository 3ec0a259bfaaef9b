// The strata CLI's object storage commands (cli/object.ts) and the object agent process
// (agents/object/main.ts). Without a cloud: the help and bad flags (exit 2 before any call).
// Against a real cloud (test/support/object-rig.ts: 3 object servers, 3 zones, 3 replicas):
// containers are created, listed, shown, changed and deleted (a non-empty one refused, exit 8, with
// its count); a file and a nested directory tree are uploaded, listed with --delimiter and
// downloaded (bytes and tree equal); a file above --segment-size goes as segments + a manifest and
// comes back whole (MD5 equal); object metadata is set and shown; objects are deleted. Then an
// object agent runs as a process of its own on the cloud's log; its device enters the ring through
// `strata ring add-device` + `strata ring rebalance`, objects written afterwards have replicas on it
// (read from its object server), and once it is SIGKILLed PUTs still succeed (quorum 2 of 3); an
// agent with STRATA_OBJECT_REGISTER puts its device in the builder itself and exits 0 on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { primaryDevices } from '../../domains/object/ring.js';
import { cliRunner } from '../support/cli-runner.js';
import { startObjectRig, type ObjectRig } from '../support/object-rig.js';

const root = new URL('../..', import.meta.url).pathname;
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every file under dir: relative path -> content. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) visit(p);
      else out[relative(dir, p)] = md5(readFileSync(p));
    }
  };
  visit(dir);
  return out;
}

async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await sleep(200);
  }
}

describe('the strata CLI for object storage, without a cloud', () => {
  const { strata } = cliRunner('object-offline', () => ({ url: 'grpc://127.0.0.1:9', tls: { caCertPath: '/nonexistent' } }));

  it('lists the object commands in the help and refuses bad flags with exit 2 before calling', { timeout: 120_000 }, async () => {
    const top = await strata(['--help'], '');
    expect(top.code).toBe(0);
    for (const c of ['container create|list|show|set|delete', 'object upload|download|list|show|set|delete', 'ring show|add-device', 'account show']) expect(top.stdout).toContain(c);
    expect((await strata(['object', '--help'], '')).stdout).toContain('strata object upload CONTAINER PATH... [--name NAME] [--segment-size BYTES]');
    expect((await strata(['container', '--help'], '')).stdout).toContain('strata container create NAME [--read-acl ACL]...');
    expect((await strata(['ring', '--help'], '')).stdout).toContain('strata ring add-device --id N --zone Z [--region R] --host ADDR:PORT --device NAME [--weight W]');
    const refused = async (args: string[], message: string) => {
      const r = await strata(args, 'token');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(message);
    };
    await refused(['container', 'create', 'c', '--meta', 'novalue'], '--meta takes KEY=VALUE, got "novalue"');
    await refused(['container', 'create', 'c', '--quota-bytes', 'lots'], '--quota-bytes takes an integer, got "lots"');
    await refused(['container', 'set', 'c'], 'nothing to change');
    await refused(['object', 'upload', 'c'], 'name a file or directory to upload');
    await refused(['object', 'upload', 'c', '/nonexistent/file'], 'no such file or directory: /nonexistent/file');
    await refused(['object', 'upload', 'c', '/etc/hostname', '--segment-size', '0'], '--segment-size takes a size in bytes from 1 to 5368709120');
    await refused(['object', 'upload', 'c', '/etc/hostname', '/etc/hosts', '--name', 'x'], '--name names one upload');
    await refused(['object', 'download', 'c'], 'name the object, or give --dir D');
    await refused(['object', 'download', 'c', 'o', '--file', 'f', '--dir', 'd'], '--file and --dir exclude each other');
    await refused(['object', 'set', 'c', 'o'], 'nothing to change: --meta or --content-type');
    await refused(['ring', 'add-device', '--id', '9', '--zone', '1', '--host', 'nohost', '--device', 'd9'], '--host takes ADDR:PORT, got "nohost"');
    await refused(['ring', 'add-device', '--id', '9', '--zone', '1', '--host', '127.0.0.1:1'], '--device is required');
    await refused(['ring', 'set-weight', '3'], 'give the weight');
    await refused(['object', 'frobnicate'], 'unknown: frobnicate');
  });
});

describe('the strata CLI for object storage, against a cloud', () => {
  let rig: ObjectRig;
  let adminToken: string;
  let memberToken: string;
  const { strata, json } = cliRunner('object', () => rig);
  const work = mkdtempSync(join(tmpdir(), 'strata-object-cli-'));
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    rig = await startObjectRig();
    adminToken = await rig.adminToken();
    memberToken = rig.member.token!;
  }, 180_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) process.kill(-c.pid!, 'SIGKILL');
    await rig?.close();
  }, 60_000);

  const member = (args: string[]) => strata(args, memberToken);
  const admin = (args: string[]) => strata(args, adminToken);
  const ok = (r: { code: number; stderr: string; stdout: string }) => {
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };

  it('creates, lists, shows, changes and deletes containers', { timeout: 300_000 }, async () => {
    const made = json(await member(['--output', 'json', 'container', 'create', 'photos', '--read-acl', '.r:*', '--write-acl', 'p1:*,p2:u2', '--meta', 'Color=blue', '--quota-count', '5']));
    expect(made.created).toBe(true);
    expect(made.container).toMatchObject({ account: rig.account, name: 'photos', readAcl: ['.r:*'], writeAcl: ['p1:*', 'p2:u2'], metadata: { color: 'blue' }, quotaCount: 5 });
    ok(await member(['container', 'create', 'docs']));
    expect(ok(await member(['container', 'list']))).toMatch(/^docs\s+0\s+0\s/m);
    const prefixed = json(await member(['--output', 'json', 'container', 'list', '--prefix', 'ph']));
    expect(prefixed.containers.map((c: { name: string }) => c.name)).toEqual(['photos']);
    expect(json(await member(['--output', 'json', 'container', 'list', '--marker', 'docs'])).containers.map((c: { name: string }) => c.name)).toEqual(['photos']);

    // set: only what is given changes; --meta adds to the metadata.
    ok(await member(['container', 'set', 'photos', '--meta', 'size=big', '--quota-bytes', '1000000']));
    const shown = ok(await member(['container', 'show', 'photos']));
    expect(shown).toMatch(/^metadata\s+color=blue, size=big$/m);
    expect(shown).toMatch(/^quota_bytes\s+1000000$/m);
    expect(shown).toMatch(/^quota_count\s+5$/m);
    expect(shown).toMatch(/^read_acl\s+\.r:\*$/m);
    expect(shown).toMatch(/^object_count\s+0$/m);

    // Counts and bytes, then a non-empty container is refused with its count.
    const file = join(work, 'hello.txt');
    writeFileSync(file, 'hello, object storage\n');
    ok(await member(['object', 'upload', 'photos', file]));
    ok(await member(['object', 'upload', 'photos', file, '--name', 'again.txt']));
    const detail = await eventually(async () => json(await member(['--output', 'json', 'container', 'show', 'photos'])), (d) => Number(d.objectCount) === 2, 'two objects in the container');
    expect(Number(detail.bytesUsed)).toBe(44);
    const account = await eventually(async () => json(await member(['--output', 'json', 'account', 'show'])), (a) => a.object_count === 2, 'the account figures');
    expect(account).toMatchObject({ account: rig.account, container_count: 2, object_count: 2, bytes_used: 44 });
    const refused = await member(['container', 'delete', 'photos']);
    expect(refused.code).toBe(8);
    expect(refused.stderr).toContain('holds 2 objects');
    expect(refused.stderr).toContain('state not_empty');
    ok(await member(['object', 'delete', 'photos', 'hello.txt', 'again.txt']));
    expect((await member(['object', 'show', 'photos', 'hello.txt'])).code).toBe(3);
    await eventually(async () => json(await member(['--output', 'json', 'container', 'show', 'photos'])), (d) => Number(d.objectCount) === 0, 'an empty container');
    expect(ok(await member(['container', 'delete', 'photos']))).toContain('container photos deleted');
    expect((await member(['container', 'show', 'photos'])).code).toBe(3);
    const missing = await member(['container', 'delete', 'photos']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('not found');
  });

  it('uploads a file and a nested tree, lists with a delimiter, downloads both, sets metadata', { timeout: 300_000 }, async () => {
    ok(await member(['container', 'create', 'tree']));
    const src = join(work, 'site');
    mkdirSync(join(src, 'sub', 'deep'), { recursive: true });
    writeFileSync(join(src, 'index.html'), '<h1>hi</h1>');
    writeFileSync(join(src, 'sub', 'a.bin'), Buffer.alloc(300_000, 7));
    writeFileSync(join(src, 'sub', 'deep', 'b.txt'), 'deep down');
    writeFileSync(join(src, 'empty'), '');
    const up = json(await member(['--output', 'json', 'object', 'upload', 'tree', src]));
    expect(up.objects.map((o: { name: string }) => o.name)).toEqual(['site/empty', 'site/index.html', 'site/sub/a.bin', 'site/sub/deep/b.txt']);
    expect(up.objects[2]).toMatchObject({ size: 300_000, etag: md5(Buffer.alloc(300_000, 7)) });

    const listed = await eventually(async () => json(await member(['--output', 'json', 'object', 'list', 'tree', '--prefix', 'site/', '--delimiter', '/'])), (l) => l.objects.length === 3, 'the listing');
    expect(listed.objects).toEqual([
      expect.objectContaining({ name: 'site/empty', bytes: 0 }),
      expect.objectContaining({ name: 'site/index.html', bytes: 11, content_type: 'text/html' }),
      { name: '', subdir: 'site/sub/' },
    ]);
    expect(ok(await member(['object', 'list', 'tree', '--prefix', 'site/sub/', '--delimiter', '/']))).toMatch(/site\/sub\/deep\/\s+\(subdir\)/);
    const reversed = json(await member(['--output', 'json', 'object', 'list', 'tree', '--reverse', '--limit', '2']));
    expect(reversed.objects.map((o: { name: string }) => o.name)).toEqual(['site/sub/deep/b.txt', 'site/sub/a.bin']);

    // One object to a file; the bytes are the same.
    const one = join(work, 'a-copy.bin');
    ok(await member(['object', 'download', 'tree', 'site/sub/a.bin', '--file', one]));
    expect(readFileSync(one).equals(readFileSync(join(src, 'sub', 'a.bin')))).toBe(true);
    expect(readdirSync(work).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const stdout = await member(['object', 'download', 'tree', 'site/sub/deep/b.txt', '--file', '-']);
    expect(stdout.stdout).toBe('deep down');
    // The whole container into a directory tree: the same tree.
    const out = join(work, 'out');
    ok(await member(['object', 'download', 'tree', '--dir', out]));
    expect(tree(join(out, 'site'))).toEqual(tree(src));
    const partial = join(work, 'partial');
    ok(await member(['object', 'download', 'tree', '--dir', partial, '--prefix', 'site/sub/']));
    expect(Object.keys(tree(partial)).sort()).toEqual(['site/sub/a.bin', 'site/sub/deep/b.txt']);
    expect((await member(['object', 'download', 'tree', 'site/nothing', '--file', join(work, 'nothing')])).code).toBe(3);

    // Metadata: set replaces it, show reads it back.
    ok(await member(['object', 'set', 'tree', 'site/index.html', '--meta', 'Author=ann', '--meta', 'lang=en', '--content-type', 'text/plain']));
    const head = json(await member(['--output', 'json', 'object', 'show', 'tree', 'site/index.html']));
    expect(head).toMatchObject({ name: 'site/index.html', size: 11, contentType: 'text/plain', metadata: { author: 'ann', lang: 'en' }, etag: md5(Buffer.from('<h1>hi</h1>')) });
    const shown = ok(await member(['object', 'show', 'tree', 'site/index.html']));
    expect(shown).toMatch(/^metadata\s+author=ann, lang=en$/m);
    ok(await member(['object', 'set', 'tree', 'site/index.html', '--meta', 'lang=fr']));
    expect(json(await member(['--output', 'json', 'object', 'show', 'tree', 'site/index.html'])).metadata).toEqual({ lang: 'fr' });

    // Another project's account: refused without an ACL, allowed with one.
    const other = await rig.newMember();
    const stranger = (args: string[]) => strata(args, other.client.token!);
    expect((await stranger(['object', 'list', 'tree', '--account', rig.account])).code).toBe(4);
    ok(await member(['container', 'set', 'tree', '--read-acl', `${other.projectId}:*`]));
    expect(ok(await stranger(['object', 'list', 'tree', '--account', rig.account]))).toContain('site/sub/a.bin');
    ok(await stranger(['object', 'download', 'tree', 'site/sub/a.bin', '--account', rig.account, '--file', join(work, 'theirs.bin')]));
    expect(md5(readFileSync(join(work, 'theirs.bin')))).toBe(md5(Buffer.alloc(300_000, 7)));
  });

  it('uploads a file above --segment-size as segments and a manifest, and downloads it whole', { timeout: 300_000 }, async () => {
    ok(await member(['container', 'create', 'big']));
    const file = join(work, 'big.bin');
    const size = 2 * 1048576 + 123_457;
    const fd = openSync(file, 'w');
    const block = Buffer.alloc(65536);
    for (let off = 0; off < size; off += block.length) {
      for (let i = 0; i < block.length; i++) block[i] = ((off + i) * 7 + ((off + i) >> 10)) & 0xff;
      writeSync(fd, block, 0, Math.min(block.length, size - off));
    }
    closeSync(fd);
    const want = md5(readFileSync(file));
    const up = json(await member(['--output', 'json', 'object', 'upload', 'big', file, '--segment-size', '1048576']));
    expect(up.objects[0]).toMatchObject({ name: 'big.bin', size, segments: 3 });
    const segs = await eventually(async () => json(await member(['--output', 'json', 'object', 'list', 'big_segments'])), (l) => l.objects.length === 3, 'the segments');
    expect(segs.objects.map((o: { bytes: number }) => o.bytes)).toEqual([1048576, 1048576, 123_457]);
    expect(segs.objects[0].name).toMatch(/^big\.bin\/slo\/[\d.]+\/2220609\/1048576\/00000000$/);
    const head = json(await member(['--output', 'json', 'object', 'show', 'big', 'big.bin']));
    expect(head).toMatchObject({ largeObject: true, size, etag: up.objects[0].etag });
    const copy = join(work, 'big-copy.bin');
    ok(await member(['object', 'download', 'big', 'big.bin', '--file', copy]));
    expect(statSync(copy).size).toBe(size);
    expect(md5(readFileSync(copy))).toBe(want);
  });

  it('runs an object agent process whose device joins the ring, holds new replicas, and is not needed for PUTs once killed', { timeout: 300_000 }, async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const deviceRoot = join(work, 'agent-d4');
    const env = { ...process.env, STRATA_LOG: 'embedded', STRATA_LOG_PATH: rig.logPath, STRATA_PARTITIONS: '4', STRATA_REPLY_PARTITIONS: '4', STRATA_OBJECT_DEVICES: `4:${deviceRoot}:${port}` };
    // Config errors name the variable and stop the process.
    const bad = spawn('npm', ['run', '--silent', 'agent:object'], { cwd: root, env: { ...env, STRATA_OBJECT_DEVICES: '4:/x' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let badErr = '';
    bad.stderr!.on('data', (d: Buffer) => (badErr += d.toString()));
    expect(await new Promise((r) => bad.once('exit', r))).not.toBe(0);
    expect(badErr).toContain('STRATA_OBJECT_DEVICES: "4:/x" is not id:root:port');

    const child = spawn('npm', ['run', '--silent', 'agent:object'], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(child);
    const started = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^ready$/m.test(out)) resolve(out);
      });
      child.once('exit', (code, signal) => reject(new Error(`the object agent exited (${code ?? signal}) before it was ready: ${out}`)));
    });
    expect(started).toContain(`device 4: ${deviceRoot} served at 127.0.0.1:${port}`);

    // Into the ring: pending until the rebalance, then with partitions and up.
    const added = json(await admin(['--output', 'json', 'ring', 'add-device', '--id', '4', '--zone', '4', '--host', `127.0.0.1:${port}`, '--device', 'd4', '--weight', '100']));
    expect(added.devices.find((d: { device: { id: number } }) => d.device.id === 4)).toMatchObject({ partitions: 0, pending: true });
    expect((await member(['ring', 'rebalance'])).code).toBe(4);
    const ring = json(await admin(['--output', 'json', 'ring', 'rebalance']));
    const d4 = ring.devices.find((d: { device: { id: number } }) => d.device.id === 4);
    expect(d4.pending).toBe(false);
    expect(d4.up).toBe(true);
    expect(d4.partitions).toBeGreaterThan(0);
    expect(ok(await admin(['ring', 'show']))).toMatch(new RegExp(`^4\\s+1\\s+4\\s+127\\.0\\.0\\.1:${port}\\s+d4\\s+100\\s+\\d+\\s+false\\s+true$`, 'm'));

    // Objects written now: those whose partition the ring gives device 4 are on the agent's device.
    ok(await member(['container', 'create', 'spread']));
    const src = join(work, 'spread');
    mkdirSync(src);
    for (let i = 0; i < 12; i++) writeFileSync(join(src, `f${i}.txt`), `object number ${i} `.repeat(i + 1));
    ok(await member(['object', 'upload', 'spread', src, '--name', 'n']));
    const view = rig.cloud.object.feed.view;
    const onAgent: string[] = [];
    for (let i = 0; i < 12; i++) {
      const name = `n/f${i}.txt`;
      const recorded = await eventually(async () => view.recorded(rig.account, 'spread', name), (v) => v !== undefined, `${name} in the feed`);
      if (!primaryDevices(view.ring()!, recorded!.partition).some((d) => d.id === 4)) continue;
      onAgent.push(name);
      const url = `http://127.0.0.1:${port}/o/${recorded!.partition}/${encodeURIComponent(rig.account)}/spread/${name.split('/').map(encodeURIComponent).join('/')}`;
      const res = await eventually(async () => fetch(url), (r) => r.status === 200, `${name} on device 4`);
      expect(Buffer.from(await res.arrayBuffer()).toString()).toBe(`object number ${i} `.repeat(i + 1));
    }
    expect(onAgent.length).toBeGreaterThan(0);

    // SIGKILL: PUTs still succeed on the two other primaries (or a handoff), and read back.
    process.kill(-child.pid!, 'SIGKILL');
    await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(undefined) : child.once('exit', r)));
    await expect(fetch(`http://127.0.0.1:${port}/healthcheck`)).rejects.toThrow();
    const after = join(work, 'after');
    mkdirSync(after);
    for (let i = 0; i < 8; i++) writeFileSync(join(after, `g${i}.txt`), `after the kill ${i}`);
    const up = json(await member(['--output', 'json', 'object', 'upload', 'spread', after]));
    expect(up.objects).toHaveLength(8);
    const back = join(work, 'after-back');
    ok(await member(['object', 'download', 'spread', '--dir', back, '--prefix', 'after/']));
    expect(tree(join(back, 'after'))).toEqual(tree(after));
    const affected = up.objects.filter((o: { name: string }) => primaryDevices(view.ring()!, view.recorded(rig.account, 'spread', o.name)!.partition).some((d) => d.id === 4));
    expect(affected.length).toBeGreaterThan(0); // some of these PUTs had the dead device among their primaries
  });

  it('registers its devices with STRATA_OBJECT_REGISTER (pending until a rebalance) and stops cleanly on SIGTERM', { timeout: 120_000 }, async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const env = { ...process.env, STRATA_LOG: 'embedded', STRATA_LOG_PATH: rig.logPath, STRATA_PARTITIONS: '4', STRATA_REPLY_PARTITIONS: '4', STRATA_OBJECT_DEVICES: `7:${join(work, 'agent-d7')}:${port}`, STRATA_OBJECT_REGISTER: '7:2:50' };
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'agents/object/main.ts')], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(child);
    const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
    const out = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (d: Buffer) => {
        text += d.toString();
        if (/^ready$/m.test(text)) resolve(text);
      });
      void exited.then(([code, signal]) => reject(new Error(`the object agent exited (${code ?? signal}) before it was ready: ${text}`)));
    });
    expect(out).toContain('device 7: added to the ring (zone 7, region 2, weight 50)');
    const ring = json(await admin(['--output', 'json', 'ring', 'show']));
    expect(ring.devices.find((d: { device: { id: number } }) => d.device.id === 7)).toMatchObject({ device: { zone: 7, region: 2, weight: 50, host: `127.0.0.1:${port}`, device: 'd7' }, partitions: 0, pending: true, up: true });
    child.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    // Out of the builder again before it ever held a partition.
    const after = json(await admin(['--output', 'json', 'ring', 'remove-device', '7']));
    expect(after.devices.some((d: { device: { id: number } }) => d.device.id === 7)).toBe(false);
  });
});
