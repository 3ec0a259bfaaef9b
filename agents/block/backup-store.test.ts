// BackupStore against real qemu-img and qemu-io, in a temp directory.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupCorruptError, BackupStore } from './backup-store.js';
import { volumeChecksum } from './checksum.js';
import { GiB } from './qemu-img.js';
import { VolumeStore } from './volume-store.js';

const exec = promisify(execFile);
const MiB = 1024 * 1024;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-backups-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 16 MiB qcow2 image with a pattern written at two places (one chunk left all zeros). */
async function smallImage(name: string): Promise<string> {
  const path = join(dir, name);
  await exec('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(16 * MiB)]);
  await exec('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x5c 9M 3M', path]);
  return path;
}

describe('BackupStore', () => {
  it('backup then restore into a new volume: the checksums are equal (acceptance c)', async () => {
    const volumes = new VolumeStore(dir);
    const backups = new BackupStore(dir);
    await volumes.create('v1', 1);
    await exec('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0x17 300M 2M', volumes.volumePath('v1')]);
    const original = await volumeChecksum(volumes.volumePath('v1'));

    const result = await backups.backup(volumes.volumePath('v1'), 'b1');
    expect(result).toEqual({ checksum: original.sha256, sizeBytes: GiB });
    expect(await backups.list()).toEqual(['b1']);
    // 16 chunks of 64 MiB; only the two that hold data have files.
    const manifest = await backups.manifest('b1');
    expect(manifest?.chunks.length).toBe(16);
    expect(manifest?.chunks.filter((c) => !c.zero).map((c) => c.name)).toEqual(['chunk-00000', 'chunk-00004']);
    expect((await readdir(backups.backupDir('b1'))).sort()).toEqual(['chunk-00000', 'chunk-00004', 'manifest.json']);

    await volumes.create('v2', 1, 'qcow2', { kind: 'backup', path: backups.backupDir('b1') });
    expect((await volumeChecksum(volumes.volumePath('v2'))).sha256).toBe(original.sha256);
    // A larger volume from the backup: the backup's data, then zeros.
    await volumes.create('v3', 2, 'raw', { kind: 'backup', path: backups.backupDir('b1') });
    expect((await volumes.info('v3'))?.virtualSizeBytes).toBe(2 * GiB);
    await exec('qemu-io', ['-f', 'raw', '-c', 'read -P 0x17 300M 2M', volumes.volumePath('v3', 'raw')]);
  }, 180_000); // hashes 1 GiB four times

  it('restore into qcow2 and raw gives the same guest data; a repeated backup is not redone', async () => {
    const backups = new BackupStore(dir, { chunkBytes: 4 * MiB });
    const src = await smallImage('src.qcow2');
    const original = await volumeChecksum(src);
    const first = await backups.backup(src, 'b1');
    expect(first).toEqual({ checksum: original.sha256, sizeBytes: 16 * MiB });
    const manifestBefore = await readFile(join(backups.backupDir('b1'), 'manifest.json'), 'utf8');
    expect(await backups.backup(src, 'b1')).toEqual(first);
    expect(await readFile(join(backups.backupDir('b1'), 'manifest.json'), 'utf8')).toBe(manifestBefore);

    await backups.restore('b1', join(dir, 'out.qcow2'), 'qcow2');
    await backups.restore('b1', join(dir, 'out.raw'), 'raw');
    await backups.restore('b1', join(dir, 'out.raw'), 'raw'); // exists: no-op
    expect((await volumeChecksum(join(dir, 'out.qcow2'))).sha256).toBe(original.sha256);
    expect((await volumeChecksum(join(dir, 'out.raw'))).sha256).toBe(original.sha256);
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    await backups.delete('b1');
    await backups.delete('b1');
    expect(await backups.list()).toEqual([]);
  });

  it('backs up a raw stream', async () => {
    const backups = new BackupStore(dir, { chunkBytes: 4 * MiB });
    const data = Buffer.alloc(10 * MiB + 123, 7);
    const result = await backups.backup(Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]), 'b1');
    expect(result.sizeBytes).toBe(10 * MiB + 123);
    await backups.restore('b1', join(dir, 'out.raw'), 'raw');
    // Buffer.equals, not toEqual: vitest's deep equality walks 10 MiB byte by byte for minutes.
    expect((await readFile(join(dir, 'out.raw'))).equals(data)).toBe(true);
  });

  it('a corrupted chunk makes restore fail naming it, and leaves no target', async () => {
    const backups = new BackupStore(dir, { chunkBytes: 4 * MiB });
    await backups.backup(await smallImage('src.qcow2'), 'b1');
    const chunk = join(backups.backupDir('b1'), 'chunk-00002'); // 8..12 MiB: holds 0x5c from 9 MiB
    const bytes = await readFile(chunk);
    bytes[2 * MiB] ^= 0xff;
    await writeFile(chunk, bytes);

    const target = join(dir, 'out.qcow2');
    const err = await backups.restore('b1', target, 'qcow2').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackupCorruptError);
    expect((err as BackupCorruptError).chunk).toBe('chunk-00002');
    expect((err as Error).message).toMatch(/chunk-00002 is corrupt/);
    await expect(stat(target)).rejects.toThrow();
    expect((await readdir(dir)).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    // A missing chunk is named too.
    await rm(chunk);
    await expect(backups.restore('b1', target, 'qcow2')).rejects.toThrow(/chunk-00002 is missing/);
  });

  it('a backup interrupted before its manifest is not listed, and is redone whole', async () => {
    const backups = new BackupStore(dir, { chunkBytes: 4 * MiB });
    const src = await smallImage('src.qcow2');
    // What a crash mid-backup leaves: chunks, no manifest.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(backups.backupDir('b1'), { recursive: true });
    await writeFile(join(backups.backupDir('b1'), 'chunk-00000'), 'garbage');
    expect(await backups.list()).toEqual([]);
    await expect(backups.restore('b1', join(dir, 'out.raw'), 'raw')).rejects.toThrow(/no manifest/);

    const result = await backups.backup(src, 'b1');
    expect(result.checksum).toBe((await volumeChecksum(src)).sha256);
    await backups.restore('b1', join(dir, 'out.raw'), 'raw');
    expect((await volumeChecksum(join(dir, 'out.raw'))).sha256).toBe(result.checksum);
  });
});
