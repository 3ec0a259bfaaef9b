// NbdExports against real qemu-storage-daemon, qemu-io and qemu-img, in a temp directory. Every
// daemon a test starts is stopped by pid in afterEach (never by name: other tests run qemu too).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupStore } from './backup-store.js';
import { volumeChecksum } from './checksum.js';
import { GiB } from './qemu-img.js';
import { NbdExports, type NbdConnection } from './nbd-exports.js';
import { VolumeInUseError, VolumeStore } from './volume-store.js';

const exec = promisify(execFile);

function url(c: NbdConnection): string {
  return `nbd://${c.host}:${c.port}/${c.exportName}`;
}

/** qemu-io's output, also when it exits non-zero (a failed pattern read, a refused open). */
async function qemuIo(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await exec('qemu-io', args);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout ?? '') + (e.stderr ?? '');
  }
}

async function nbdHolds(c: NbdConnection, pattern: string, offset = '0'): Promise<boolean> {
  const out = await qemuIo(['-r', '-f', 'raw', '-c', `read -P ${pattern} ${offset} 1M`, url(c)]);
  if (out.includes('Pattern verification failed')) return false;
  if (/^read \d+\/\d+ bytes/m.test(out)) return true;
  throw new Error(`qemu-io: ${out}`);
}

async function nbdSize(c: NbdConnection): Promise<number> {
  const { stdout } = await exec('qemu-img', ['info', '--output=json', '-f', 'raw', url(c)]);
  return (JSON.parse(stdout) as { 'virtual-size': number })['virtual-size'];
}

/** Whether `pid` has exited (gone, or a zombie its new parent has yet to reap), waiting up to 2 s. */
async function exited(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

let dir: string;
let volumes: VolumeStore;
let exports: NbdExports;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-block-nbd-'));
  exports = new NbdExports(dir);
  volumes = new VolumeStore(dir, { online: exports });
});

afterEach(async () => {
  // Kill the daemons this test started: their pids are in the state directory (records and
  // pidfiles), and a pid counts only if its command line names this test's directory.
  const pids = new Set((await new NbdExports(dir).daemons()).map((d) => d.pid));
  const exportsDir = join(dir, 'exports');
  for (const name of await readdir(exportsDir).catch(() => [] as string[])) {
    if (name.endsWith('.pid')) pids.add(Number((await readFile(join(exportsDir, name), 'utf8')).trim()));
  }
  for (const pid of pids) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.includes(dir)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited already
    }
  }
  await rm(dir, { recursive: true, force: true });
});

describe('NbdExports', () => {
  it('exports a volume over NBD on 127.0.0.1: writes through it reach the file; export and unexport repeat harmlessly', async () => {
    await volumes.create('v1', 1);
    const c = await exports.export('a1', 'v1');
    expect(c.host).toBe('127.0.0.1');
    expect(c.exportName).toBe('a1');
    expect(await exports.export('a1', 'v1')).toEqual(c); // adopted, same connection
    expect(await exports.list()).toEqual(['a1']);

    const out = await qemuIo(['-f', 'raw', '-c', 'write -P 0xab 0 1M', url(c)]);
    expect(out).toMatch(/wrote 1048576\/1048576 bytes/);
    // The daemon holds the file open: the volume cannot be deleted now.
    await expect(volumes.delete('v1')).rejects.toBeInstanceOf(VolumeInUseError);

    const [daemon] = await exports.daemons();
    await exports.unexport('a1');
    await exports.unexport('a1');
    expect(await exports.list()).toEqual([]);
    expect(await exports.daemons()).toEqual([]);
    expect(await exited(daemon.pid)).toBe(true);
    expect(await readdir(join(dir, 'exports'))).toEqual([]);
    // The data is in the file.
    const read = await qemuIo(['-f', 'qcow2', '-c', 'read -P 0xab 0 1M', volumes.volumePath('v1')]);
    expect(read).toMatch(/^read 1048576\/1048576 bytes/m);
  });

  it('an export survives the exporting object: a new NbdExports over the same directory adopts it', async () => {
    await volumes.create('v1', 1);
    const c = await exports.export('a1', 'v1');
    const [daemon] = await exports.daemons();

    const restarted = new NbdExports(dir);
    expect(await restarted.list()).toEqual(['a1']);
    expect(await restarted.export('a1', 'v1')).toEqual(c);
    expect(await restarted.daemons()).toEqual([daemon]); // the same process, not a new one
    expect(await qemuIo(['-f', 'raw', '-c', 'write -P 0x5a 0 1M', url(c)])).toMatch(/wrote/);
    expect(await nbdHolds(c, '0x5a')).toBe(true);
    await restarted.unexport('a1');
    expect(await restarted.list()).toEqual([]);
  });

  it('an export whose daemon died is not listed, and export() starts it again', async () => {
    await volumes.create('v1', 1);
    await exports.export('a1', 'v1');
    const [daemon] = await exports.daemons();
    process.kill(daemon.pid, 'SIGKILL');
    for (let i = 0; i < 100 && (await exports.list()).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await exports.list()).toEqual([]);
    const c = await exports.export('a1', 'v1');
    expect(await exports.list()).toEqual(['a1']);
    expect(await nbdSize(c)).toBe(GiB);
  });

  it('resizes online: a new NBD client sees the new size, and the data stays', async () => {
    await volumes.create('v1', 1);
    const c = await exports.export('a1', 'v1');
    await qemuIo(['-f', 'raw', '-c', 'write -P 0xab 0 1M', url(c)]);
    expect(await nbdSize(c)).toBe(GiB);

    await exports.resize('a1', 2 * GiB);
    expect(await nbdSize(c)).toBe(2 * GiB);
    // Through the VolumeStore: extend of an exported volume goes through the daemon.
    await volumes.extend('v1', 3);
    await volumes.extend('v1', 3);
    expect(await nbdSize(c)).toBe(3 * GiB);
    expect(await nbdHolds(c, '0xab')).toBe(true);
    expect(await qemuIo(['-f', 'raw', '-c', 'write -P 0xcd 2900M 1M', url(c)])).toMatch(/wrote/);

    await exports.unexport('a1');
    expect((await volumes.info('v1'))?.virtualSizeBytes).toBe(3 * GiB);
  });

  it('multiattach: two attachments of one volume share one daemon; a read-only one refuses writes', async () => {
    await volumes.create('v1', 1);
    const rw = await exports.export('a1', 'v1');
    const ro = await exports.export('a2', 'v1', { readOnly: true });
    expect(ro.port).toBe(rw.port);
    expect(ro.exportName).not.toBe(rw.exportName);
    expect((await exports.daemons()).length).toBe(1);
    expect(await exports.list()).toEqual(['a1', 'a2']);

    expect(await qemuIo(['-f', 'raw', '-c', 'write -P 0x77 0 1M', url(rw)])).toMatch(/wrote/);
    expect(await nbdHolds(ro, '0x77')).toBe(true); // a write through one is seen through the other
    expect(await qemuIo(['-f', 'raw', '-c', 'write -P 0x11 0 1M', url(ro)])).toMatch(/Permission denied|read-only/i);

    await exports.unexport('a1');
    expect(await exports.list()).toEqual(['a2']); // the daemon stays for the other attachment
    expect(await nbdHolds(ro, '0x77')).toBe(true);
    await exports.unexport('a2');
    expect(await exports.daemons()).toEqual([]);
  });

  it('a snapshot of an exported volume is a point-in-time copy taken through the daemon', async () => {
    await volumes.create('v1', 1);
    const c = await exports.export('a1', 'v1');
    await qemuIo(['-f', 'raw', '-c', 'write -P 0xab 0 1M', url(c)]);
    await volumes.snapshot('v1', 's1');
    await qemuIo(['-f', 'raw', '-c', 'write -P 0xcd 0 1M', url(c)]);
    await volumes.create('v2', 1, 'qcow2', { kind: 'snapshot', path: volumes.snapshotPath('s1') });
    const out = await qemuIo(['-f', 'qcow2', '-c', 'read -P 0xab 0 1M', volumes.volumePath('v2')]);
    expect(out).toMatch(/^read 1048576\/1048576 bytes/m);
    expect((await volumes.list()).temps).toEqual([]);
  });

  it('an attached volume is backed up and cloned through its daemon; reading its file directly is refused, not copied wrong', async () => {
    const backups = new BackupStore(dir);
    await volumes.create('v1', 1);
    const c = await exports.export('a1', 'v1');
    await qemuIo(['-f', 'raw', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x3c 700M 1M', url(c)]);
    // qemu-img on the file the daemon holds: its lock refuses (rather than reading stale metadata).
    await expect(backups.backup(volumes.volumePath('v1'), 'direct')).rejects.toThrow(/lock/);

    const result = await backups.backupVolume(volumes, 'v1', 'b1');
    await volumes.create('v2', 1, 'qcow2', { kind: 'volume', path: volumes.volumePath('v1') });
    await exports.unexport('a1');
    const now = await volumeChecksum(volumes.volumePath('v1'));
    expect(result).toEqual({ checksum: now.sha256, sizeBytes: GiB });
    // qemu-img compare exits 0 only when the guest-visible data are identical (and is faster than hashing 1 GiB).
    await exec('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', volumes.volumePath('v2'), volumes.volumePath('v1')]);
    await volumes.create('v3', 1, 'qcow2', { kind: 'backup', path: backups.backupDir('b1') });
    await exec('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', volumes.volumePath('v3'), volumes.volumePath('v1')]);
  }, 180_000);

  it('an export outlives the agent process that started it: another process adopts it', async () => {
    await volumes.create('v1', 1);
    // A separate agent process exports the volume, prints the connection and exits.
    const script = join(dir, 'agent.mts');
    await writeFile(
      script,
      `import { NbdExports } from ${JSON.stringify(new URL('./nbd-exports.ts', import.meta.url).pathname)};\n` +
        `const c = await new NbdExports(${JSON.stringify(dir)}).export('a1', 'v1');\n` +
        `console.log(JSON.stringify(c));\n`,
    );
    const { stdout } = await exec(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd() });
    const c = JSON.parse(stdout.trim()) as NbdConnection;

    expect(await exports.list()).toEqual(['a1']);
    expect(await exports.export('a1', 'v1')).toEqual(c);
    expect(await qemuIo(['-f', 'raw', '-c', 'write -P 0x42 0 1M', url(c)])).toMatch(/wrote/);
    expect(await nbdHolds(c, '0x42')).toBe(true);
    await exports.unexport('a1');
    expect(await exports.daemons()).toEqual([]);
  });

  it('crashes part-way converge: a recorded attachment with no export is re-exported, a daemon with no attachment is reaped', async () => {
    await volumes.create('v1', 1);
    await volumes.create('v2', 1);
    await exports.export('a1', 'v1');
    await exports.export('a2', 'v2');
    const daemons = await exports.daemons();
    // A crash inside export(), after the record and before the export was added: simulate it by
    // deleting a1's export behind the agent's back (QMP block-export-del).
    const { QmpClient } = await import('../compute/qmp.js');
    const q = await QmpClient.connect(join(dir, 'exports', 'volume-v1.qmp'));
    await q.execute('block-export-del', { id: 'att-a1', mode: 'hard' });
    q.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(await exports.list()).toEqual(['a2']);
    const c = await exports.export('a1', 'v1'); // repeated: the same daemon adds the export again
    expect(await exports.list()).toEqual(['a1', 'a2']);
    expect(await exports.daemons()).toEqual(daemons);
    expect(await nbdSize(c)).toBe(GiB);

    // A crash inside unexport(), after its record went and before the daemon stopped.
    await rm(join(dir, 'exports', 'attachment-a2.json'));
    expect(await exports.list()).toEqual(['a1']);
    expect(await exports.reap()).toEqual(['v2']);
    expect((await exports.daemons()).map((d) => d.volumeId)).toEqual(['v1']);
    expect(await exited(daemons.find((d) => d.volumeId === 'v2')!.pid)).toBe(true);
    await exports.unexport('a1');
    expect(await exports.daemons()).toEqual([]);

    // A crash inside export() after the daemon started and before its record was written: the
    // daemon runs (pidfile) unrecorded. The repeated export stops it and starts a recorded one.
    await exports.export('a1', 'v1');
    const [unrecorded] = await exports.daemons();
    await rm(join(dir, 'exports', 'volume-v1.json'));
    expect(await exports.list()).toEqual([]);
    await exports.export('a1', 'v1');
    const [fresh] = await exports.daemons();
    expect(fresh.pid).not.toBe(unrecorded.pid);
    expect(await exited(unrecorded.pid)).toBe(true);
    expect(await exports.list()).toEqual(['a1']);
    await exports.unexport('a1');
    expect(await exports.daemons()).toEqual([]);
  });
});
