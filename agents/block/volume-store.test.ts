// VolumeStore against real qemu-img and qemu-io, in a temp directory.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GiB } from './qemu-img.js';
import { VolumeSizeError, VolumeStore } from './volume-store.js';

const exec = promisify(execFile);

/** qemu-io on an image; resolves with its output, also when it exits non-zero (a failed pattern read does). */
async function qemuIo(path: string, format: string, command: string): Promise<string> {
  try {
    const { stdout, stderr } = await exec('qemu-io', ['-f', format, '-c', command, path]);
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return (e.stdout ?? '') + (e.stderr ?? '');
  }
}

/** Whether `len` bytes at `offset` all hold `pattern`. */
async function holds(path: string, format: string, pattern: string, offset = 0, len = '1M'): Promise<boolean> {
  const out = await qemuIo(path, format, `read -P ${pattern} ${offset} ${len}`);
  if (out.includes('Pattern verification failed')) return false;
  if (/^read \d+\/\d+ bytes/m.test(out)) return true;
  throw new Error(`qemu-io read: ${out}`);
}

let dir: string;
let store: VolumeStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-volumes-'));
  store = new VolumeStore(dir, { totalGb: 100 });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('VolumeStore', () => {
  it('creates a blank qcow2 volume once, extends it, and deletes it; each step repeats harmlessly', async () => {
    await store.create('v1', 1);
    const path = store.volumePath('v1');
    await qemuIo(path, 'qcow2', 'write -P 0xab 0 1M');
    await store.create('v1', 1); // repeat: the existing volume (and its data) is left alone
    expect(await holds(path, 'qcow2', '0xab')).toBe(true);
    expect((await store.info('v1'))?.virtualSizeBytes).toBe(GiB);

    await store.extend('v1', 2);
    await store.extend('v1', 2);
    expect((await store.info('v1'))?.virtualSizeBytes).toBe(2 * GiB);
    expect(await holds(path, 'qcow2', '0xab')).toBe(true);
    await expect(store.extend('v1', 1)).rejects.toBeInstanceOf(VolumeSizeError);

    await store.delete('v1');
    await store.delete('v1');
    expect(await store.info('v1')).toBeUndefined();
    expect((await store.list()).volumes).toEqual([]);
  });

  it('supports raw volumes', async () => {
    await store.create('r1', 1, 'raw');
    expect(store.volumePath('r1', 'raw').endsWith('volume-r1.raw')).toBe(true);
    await store.extend('r1', 2);
    expect((await store.info('r1'))?.virtualSizeBytes).toBe(2 * GiB);
    expect((await store.list()).volumes).toEqual(['r1']);
    await store.delete('r1');
    expect((await store.list()).volumes).toEqual([]);
  });

  it('a snapshot keeps the data of its moment: a volume made from it has the old data, not the later writes', async () => {
    await store.create('v1', 1);
    const path = store.volumePath('v1');
    await qemuIo(path, 'qcow2', 'write -P 0xab 0 1M');
    await store.snapshot('v1', 's1');
    await store.snapshot('v1', 's1'); // repeat: no-op
    await qemuIo(path, 'qcow2', 'write -P 0xcd 0 1M');
    expect(await holds(path, 'qcow2', '0xcd')).toBe(true);

    await store.create('v2', 2, 'qcow2', { kind: 'snapshot', path: store.snapshotPath('s1') });
    const v2 = store.volumePath('v2');
    expect(await holds(v2, 'qcow2', '0xab')).toBe(true);
    expect(await holds(v2, 'qcow2', '0xcd')).toBe(false);
    expect((await store.info('v2'))?.virtualSizeBytes).toBe(2 * GiB); // grown to the asked size

    // A volume from a volume is a full copy: same guest data, independent file.
    await store.create('v3', 1, 'raw', { kind: 'volume', path });
    // qemu-img compare exits 0 only when the guest-visible contents are identical.
    await exec('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', store.volumePath('v3', 'raw'), path]);
    expect(await holds(store.volumePath('v3', 'raw'), 'raw', '0xcd')).toBe(true);
    await expect(store.create('v4', 1, 'qcow2', { kind: 'snapshot', path: v2 })).rejects.toBeInstanceOf(VolumeSizeError);

    await store.deleteSnapshot('s1');
    await store.deleteSnapshot('s1');
    expect((await store.list()).snapshots).toEqual([]);
  });

  it('a crash leaves only a temp file: the reconcile report shows it and the orphans, and cleanTemps removes it', async () => {
    await store.create('v1', 1);
    await store.create('ghost', 1); // a file whose volume the log does not know
    await store.snapshot('v1', 's1');
    // What an interrupted create leaves: a temp under the volumes directory, no real name.
    const crashed = join(dir, 'volumes', '.tmp-volume-v2.qcow2-12345-deadbeef');
    await writeFile(crashed, 'half a volume');

    const report = await store.reconcileReport({ volumeIds: ['v1', 'v2'], snapshotIds: ['s1', 's9'] });
    expect(report).toEqual({
      orphanVolumes: ['ghost'],
      orphanSnapshots: [],
      missingVolumes: ['v2'],
      missingSnapshots: ['s9'],
      temps: ['volumes/.tmp-volume-v2.qcow2-12345-deadbeef'],
    });
    expect(await store.cleanTemps()).toEqual(['volumes/.tmp-volume-v2.qcow2-12345-deadbeef']);
    await expect(stat(crashed)).rejects.toThrow();
    expect((await store.list()).temps).toEqual([]);
    // A repeated create after the crash converges: the volume now exists under its real name.
    await store.create('v2', 1);
    expect((await store.reconcileReport({ volumeIds: ['v1', 'v2', 'ghost'], snapshotIds: ['s1'] }))).toEqual({
      orphanVolumes: [],
      orphanSnapshots: [],
      missingVolumes: [],
      missingSnapshots: [],
      temps: [],
    });
    expect((await readdir(join(dir, 'volumes'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('capacity counts allocated (virtual) sizes against the configured total', async () => {
    expect(await store.capacity()).toEqual({ totalGb: 100, freeGb: 100 });
    await store.create('v1', 10);
    await store.create('v2', 5, 'raw');
    await store.snapshot('v2', 's1');
    expect(await store.capacity()).toEqual({ totalGb: 100, freeGb: 80 });
    const fsStore = new VolumeStore(dir);
    const { totalGb, freeGb } = await fsStore.capacity();
    expect(totalGb).toBeGreaterThan(20);
    expect(freeGb).toBe(totalGb - 20);
  });
});
