// Backups on the backup host's own disk, until object storage exists:
//
//   <stateDir>/backups/<backupId>/chunk-00000 ... chunk-NNNNN   the volume's raw data, 64 MiB each
//   <stateDir>/backups/<backupId>/manifest.json                 sizes and sha256s, written last
//
// The manifest is the commit point: it is written under a temp name and renamed once every chunk
// is on disk, so a directory without one is a partial backup (list() does not show it, backup()
// of the same id starts it over). A chunk that is all zeros is recorded in the manifest with its
// sha256 and no file (a sparse volume's backup costs its data, not its size).
//
// Data is streamed: at most one read piece (a few MiB) is in memory, never a chunk or a volume.
// A volume file is first converted to a sparse raw temp (qemu-img cannot write raw to a pipe,
// see checksum.ts), then streamed into chunks. restore() checks every chunk's size and sha256 as
// it streams it and fails naming the chunk whose data does not match (or whose file is missing).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { convertToRaw } from './checksum.js';
import { commitFile, run, tempPathFor, type VolumeFormat } from './qemu-img.js';
import type { VolumeStore } from './volume-store.js';

export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;

export interface BackupChunk {
  /** chunk-00000, ... */
  name: string;
  bytes: number;
  sha256: string;
  /** All zeros: no file is stored. */
  zero: boolean;
}

export interface BackupManifest {
  version: 1;
  backupId: string;
  sizeBytes: number;
  /** sha256 (hex) of the whole raw data. */
  checksum: string;
  chunkBytes: number;
  chunks: BackupChunk[];
}

export interface BackupResult {
  checksum: string;
  sizeBytes: number;
}

/** A backup's data does not match its manifest; `chunk` names the chunk when one is to blame. */
export class BackupCorruptError extends Error {
  constructor(
    message: string,
    readonly chunk?: string,
  ) {
    super(message);
  }
}

export class BackupNotFoundError extends Error {}

export class BackupStore {
  readonly backupsDir: string;

  constructor(
    readonly stateDir: string,
    private readonly options: { chunkBytes?: number } = {},
  ) {
    this.backupsDir = join(stateDir, 'backups');
  }

  backupDir(backupId: string): string {
    return join(this.backupsDir, backupId);
  }

  /**
   * Backs up `source` as `backupId`: a volume file (or a qemu-img source such as an NBD URL, in
   * `format`), or a readable stream of raw data. An existing whole backup is not redone: its
   * checksum and size are returned. A partial one (no manifest) is removed and started over.
   */
  async backup(source: string | Readable, backupId: string, options: { format?: string } = {}): Promise<BackupResult> {
    const existing = await this.manifest(backupId);
    if (existing) return { checksum: existing.checksum, sizeBytes: existing.sizeBytes };
    const dir = this.backupDir(backupId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    if (typeof source !== 'string') return this.writeChunks(source, backupId);
    const raw = join(dir, '.tmp-source.raw');
    try {
      await convertToRaw(source, raw, options.format);
      return await this.writeChunks(createReadStream(raw, { highWaterMark: 4 * 1024 * 1024 }), backupId);
    } finally {
      await rm(raw, { force: true });
    }
  }

  /**
   * Backs up volume `volumeId` of `volumes` as `backupId` (whole backup existing: returned as is).
   * The data is a point-in-time copy: taken by the volume's daemon when the volume is attached
   * (crash-consistent), else read from the file.
   */
  async backupVolume(volumes: Pick<VolumeStore, 'copyRaw'>, volumeId: string, backupId: string): Promise<BackupResult> {
    const existing = await this.manifest(backupId);
    if (existing) return { checksum: existing.checksum, sizeBytes: existing.sizeBytes };
    const dir = this.backupDir(backupId);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const raw = join(dir, '.tmp-source.raw');
    try {
      await volumes.copyRaw(volumeId, raw);
      return await this.writeChunks(createReadStream(raw, { highWaterMark: 4 * 1024 * 1024 }), backupId);
    } finally {
      await rm(raw, { force: true });
    }
  }

  /** Restores `backupId` into a new image at `targetPath` (existing: no-op). See restoreBackupDir. */
  async restore(backupId: string, targetPath: string, format: VolumeFormat = 'qcow2'): Promise<void> {
    if (await exists(targetPath)) return;
    await restoreBackupDir(this.backupDir(backupId), targetPath, format);
  }

  async delete(backupId: string): Promise<void> {
    await rm(this.backupDir(backupId), { recursive: true, force: true });
  }

  /** Ids of whole backups (those with a manifest). */
  async list(): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await readdir(this.backupsDir).catch(() => [] as string[])) {
      if (await exists(join(this.backupsDir, name, 'manifest.json'))) ids.push(name);
    }
    return ids.sort();
  }

  async manifest(backupId: string): Promise<BackupManifest | undefined> {
    return readManifest(this.backupDir(backupId));
  }

  private async writeChunks(data: AsyncIterable<unknown>, backupId: string): Promise<BackupResult> {
    const dir = this.backupDir(backupId);
    const chunkBytes = this.options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    const total = createHash('sha256');
    const chunks: BackupChunk[] = [];
    let sizeBytes = 0;
    // The chunk being written: its file is opened only at its first non-zero byte, and pieces are
    // written at their offsets, so zero runs stay holes and an all-zero chunk never gets a file.
    // The chunk's own hash starts only at its first non-zero byte (hashing the zeros before it
    // then): an all-zero chunk takes the cached hash of zeros, so a sparse volume's empty chunks
    // are hashed once (for the total), not twice.
    let cur: { name: string; hash?: ReturnType<typeof createHash>; bytes: number; fh?: FileHandle; tmp: string } | undefined;

    const finish = async () => {
      if (!cur) return;
      const zero = !cur.fh;
      if (cur.fh) {
        await cur.fh.truncate(cur.bytes); // a zero tail is a hole, but the file has its full length
        await cur.fh.close();
        await commitFile(cur.tmp, join(dir, cur.name));
      }
      const sha256 = cur.hash ? cur.hash.digest('hex') : zeroHash(cur.bytes);
      chunks.push({ name: cur.name, bytes: cur.bytes, sha256, zero });
      cur = undefined;
    };

    try {
      for await (const item of data) {
        let buf = Buffer.isBuffer(item) ? item : Buffer.from(item as Uint8Array);
        total.update(buf);
        sizeBytes += buf.length;
        while (buf.length > 0) {
          if (!cur) {
            const name = `chunk-${String(chunks.length).padStart(5, '0')}`;
            cur = { name, bytes: 0, tmp: join(dir, `.tmp-${name}`) };
          }
          const piece = buf.subarray(0, chunkBytes - cur.bytes);
          buf = buf.subarray(piece.length);
          if (!isZero(piece)) {
            if (!cur.hash) {
              cur.hash = createHash('sha256');
              hashZeros(cur.hash, cur.bytes);
            }
            cur.fh ??= await open(cur.tmp, 'w');
            await writeAll(cur.fh, piece, cur.bytes);
          }
          cur.hash?.update(piece);
          cur.bytes += piece.length;
          if (cur.bytes === chunkBytes) await finish();
        }
      }
      await finish();
    } finally {
      await cur?.fh?.close().catch(() => undefined);
    }

    const manifest: BackupManifest = { version: 1, backupId, sizeBytes, checksum: total.digest('hex'), chunkBytes, chunks };
    const manifestPath = join(dir, 'manifest.json');
    const tmp = tempPathFor(manifestPath);
    await writeFile(tmp, JSON.stringify(manifest, null, 2));
    await commitFile(tmp, manifestPath);
    return { checksum: manifest.checksum, sizeBytes };
  }
}

/**
 * Restores the backup in directory `dir` into a new image at `targetPath` in `format`, checking
 * each chunk's size and sha256 while it streams (BackupCorruptError naming the chunk on a mismatch
 * or a missing chunk file). The image is assembled as a sparse raw temp beside
 * the target (converted to qcow2 when asked) and renamed to `targetPath` only when whole.
 */
export async function restoreBackupDir(dir: string, targetPath: string, format: VolumeFormat): Promise<void> {
  const manifest = await readManifest(dir);
  if (!manifest) throw new BackupNotFoundError(`backup ${dir}: no manifest (absent or partial)`);
  await mkdir(dirname(targetPath), { recursive: true });
  const raw = tempPathFor(targetPath, '.raw');
  const converted = tempPathFor(targetPath);
  try {
    const fh = await open(raw, 'w');
    try {
      await fh.truncate(manifest.sizeBytes);
      // Every chunk's bytes and sha256 are checked, in the manifest's order; together they cover
      // the whole data, so the total is not hashed again (it was computed at backup).
      let offset = 0;
      for (const chunk of manifest.chunks) {
        let sha256: string;
        let bytes = 0;
        if (chunk.zero) {
          // Not read: it is a hole in the target. The manifest still has to agree it is zeros.
          sha256 = zeroHash(chunk.bytes);
          bytes = chunk.bytes;
        } else {
          const path = join(dir, chunk.name);
          if (!(await exists(path))) throw new BackupCorruptError(`backup ${manifest.backupId}: ${chunk.name} is missing`, chunk.name);
          const hash = createHash('sha256');
          for await (const item of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
            const piece = item as Buffer;
            hash.update(piece);
            if (!isZero(piece)) await writeAll(fh, piece, offset + bytes);
            bytes += piece.length;
          }
          sha256 = hash.digest('hex');
        }
        if (bytes !== chunk.bytes || sha256 !== chunk.sha256) {
          throw new BackupCorruptError(
            `backup ${manifest.backupId}: ${chunk.name} is corrupt: expected ${chunk.bytes} bytes with sha256 ${chunk.sha256}, read ${bytes} bytes with sha256 ${sha256}`,
            chunk.name,
          );
        }
        offset += bytes;
      }
      if (offset !== manifest.sizeBytes) {
        throw new BackupCorruptError(`backup ${manifest.backupId}: chunks hold ${offset} bytes, the manifest says ${manifest.sizeBytes}`);
      }
    } finally {
      await fh.close();
    }
    if (format === 'raw') {
      await commitFile(raw, targetPath);
    } else {
      await run('qemu-img', ['convert', '-f', 'raw', '-O', format, raw, converted]);
      await commitFile(converted, targetPath);
    }
  } finally {
    await rm(raw, { force: true });
    await rm(converted, { force: true });
  }
}

async function readManifest(dir: string): Promise<BackupManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as BackupManifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** Feeds `length` zero bytes to `hash`. */
function hashZeros(hash: ReturnType<typeof createHash>, length: number): void {
  for (let done = 0; done < length; ) {
    const n = Math.min(ZEROS.length, length - done);
    hash.update(ZEROS.subarray(0, n));
    done += n;
  }
}

/** sha256 (hex) of `length` zero bytes, cached (most chunks of a sparse volume are full zero chunks). */
function zeroHash(length: number): string {
  let h = zeroHashes.get(length);
  if (!h) {
    const hash = createHash('sha256');
    hashZeros(hash, length);
    h = hash.digest('hex');
    zeroHashes.set(length, h);
  }
  return h;
}
const zeroHashes = new Map<number, string>();

function isZero(buf: Buffer): boolean {
  // Compare against a zero buffer in slices: fast (memcmp) and no allocation of buf's size.
  for (let i = 0; i < buf.length; i += ZEROS.length) {
    const slice = buf.subarray(i, Math.min(buf.length, i + ZEROS.length));
    if (!slice.equals(ZEROS.subarray(0, slice.length))) return false;
  }
  return true;
}
const ZEROS = Buffer.alloc(1024 * 1024);

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
