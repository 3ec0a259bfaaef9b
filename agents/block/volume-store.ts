// The volumes and snapshots of one storage host, as files under a state directory:
//
//   <stateDir>/volumes/volume-<id>.qcow2   (or volume-<id>.raw)
//   <stateDir>/snapshots/snapshot-<id>.qcow2
//
// Contract, for the reconciler that drives it: every operation is idempotent and safe to repeat
// after a crash. Whatever writes a file writes it under a temp name `.tmp-...` in the same
// directory, flushes it, and renames it to its real name last, so a real name always holds a whole
// volume; a crash leaves at most a temp file, which list()/reconcileReport() show and cleanTemps()
// removes. "Already done" is success (create of an existing volume, delete of an absent one,
// extend to a size the volume already has), so a repeated command after a crash converges.
//
// A volume that a storage daemon holds open (exported over NBD, see nbd-exports.ts) cannot be
// touched by qemu-img (qcow2 locks refuse it, which is what keeps it from corrupting the image):
// extend and snapshot of such a volume go through the daemon via the OnlineVolumeOps given to
// the constructor, and delete refuses.
import { mkdir, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { restoreBackupDir } from './backup-store.js';
import { commitFile, formatFromName, GiB, imageInfo, run, tempPathFor, type VolumeFormat } from './qemu-img.js';

export type { VolumeFormat } from './qemu-img.js';

export interface VolumeSource {
  /** snapshot, volume, image: a path to an image file; backup: a backup directory (backup-store.ts). */
  kind: 'snapshot' | 'volume' | 'backup' | 'image';
  path: string;
  /** The source's format; default: from its name (.qcow2, .raw, .img), else probed (images only). */
  format?: VolumeFormat;
}

/** What a running storage daemon can do to a volume it holds open (nbd-exports.ts implements it). */
export interface OnlineVolumeOps {
  /** Whether a daemon holds the volume open now. */
  isExported(volumeId: string): Promise<boolean>;
  /** Grows the volume through its daemon; false when no daemon holds it (do it offline then). */
  resizeVolume(volumeId: string, newSizeBytes: number): Promise<boolean>;
  /** A point-in-time copy of the volume into a new file at `targetPath`; false when no daemon holds it. */
  copyVolume(volumeId: string, targetPath: string, format: VolumeFormat): Promise<boolean>;
}

export interface VolumeStoreOptions {
  /** Capacity to report; default: the size of the filesystem holding the state directory. */
  totalGb?: number;
  online?: OnlineVolumeOps;
}

export interface VolumeInfo {
  virtualSizeBytes: number;
  actualBytes: number;
}

export interface StoreListing {
  volumes: string[];
  snapshots: string[];
  /** Temp files left by interrupted operations, relative to the state directory. */
  temps: string[];
}

export interface ReconcileReport {
  /** Volume files with no volume in the log. */
  orphanVolumes: string[];
  orphanSnapshots: string[];
  /** Volumes the log says exist here whose file is absent. */
  missingVolumes: string[];
  missingSnapshots: string[];
  temps: string[];
}

/** The volume is held open by a storage daemon (attached); detach it first. */
export class VolumeInUseError extends Error {}
/** The volume (or snapshot) has no file here. */
export class VolumeNotFoundError extends Error {}
/** A requested size is smaller than the data it must hold (volumes never shrink). */
export class VolumeSizeError extends Error {}

const VOLUME_RE = /^volume-(.+)\.(qcow2|raw)$/;
const SNAPSHOT_RE = /^snapshot-(.+)\.qcow2$/;

/** Where a volume's file is, if it exists (qcow2 first, then raw). */
export async function findVolumeFile(stateDir: string, volumeId: string): Promise<{ path: string; format: VolumeFormat } | undefined> {
  for (const format of ['qcow2', 'raw'] as const) {
    const path = join(stateDir, 'volumes', `volume-${volumeId}.${format}`);
    if (await exists(path)) return { path, format };
  }
  return undefined;
}

export class VolumeStore {
  readonly volumesDir: string;
  readonly snapshotsDir: string;

  constructor(
    readonly stateDir: string,
    private readonly options: VolumeStoreOptions = {},
  ) {
    this.volumesDir = join(stateDir, 'volumes');
    this.snapshotsDir = join(stateDir, 'snapshots');
  }

  /** The path volume `id` has (or will have, in `format`). */
  volumePath(volumeId: string, format: VolumeFormat = 'qcow2'): string {
    return join(this.volumesDir, `volume-${volumeId}.${format}`);
  }

  snapshotPath(snapshotId: string): string {
    return join(this.snapshotsDir, `snapshot-${snapshotId}.qcow2`);
  }

  /**
   * Creates volume `volumeId` of `sizeGb` GiB: blank, or a full copy of `source` grown to `sizeGb`.
   * A volume that exists already (in any format) is left as it is.
   * Throws VolumeSizeError when the source holds more than `sizeGb`.
   */
  async create(volumeId: string, sizeGb: number, format: VolumeFormat = 'qcow2', source?: VolumeSource): Promise<void> {
    if (await findVolumeFile(this.stateDir, volumeId)) return;
    await mkdir(this.volumesDir, { recursive: true });
    const finalPath = this.volumePath(volumeId, format);
    const tmp = tempPathFor(finalPath);
    const sizeBytes = sizeGb * GiB;
    try {
      if (!source) {
        await run('qemu-img', ['create', '-q', '-f', format, tmp, String(sizeBytes)]);
      } else {
        if (source.kind === 'backup') {
          await restoreBackupDir(source.path, tmp, format);
        } else {
          // A source volume of this store that a daemon holds open (attached) is copied by the
          // daemon, point-in-time; qemu-img would be refused by its lock.
          const sourceId = source.kind === 'volume' ? this.volumeIdOf(source.path) : undefined;
          const online = sourceId !== undefined && (await this.options.online?.copyVolume(sourceId, tmp, format));
          if (!online) {
            const srcFormat = source.format ?? formatFromName(source.path) ?? (await imageInfo(source.path)).format;
            await run('qemu-img', ['convert', '-f', srcFormat, '-O', format, source.path, tmp]);
          }
        }
        const { virtualSizeBytes } = await imageInfo(tmp, format);
        if (virtualSizeBytes > sizeBytes) {
          throw new VolumeSizeError(`volume ${volumeId}: source ${source.kind} ${source.path} holds ${virtualSizeBytes} bytes, more than ${sizeGb} GiB`);
        }
        if (virtualSizeBytes < sizeBytes) await run('qemu-img', ['resize', '-q', '-f', format, tmp, String(sizeBytes)]);
      }
      await commitFile(tmp, finalPath);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Deletes the volume's file; absent is fine. Throws VolumeInUseError while it is exported. */
  async delete(volumeId: string): Promise<void> {
    if (await this.options.online?.isExported(volumeId)) {
      throw new VolumeInUseError(`volume ${volumeId} is exported (attached); unexport it first`);
    }
    for (const format of ['qcow2', 'raw'] as const) await rm(this.volumePath(volumeId, format), { force: true });
  }

  /**
   * Grows the volume to `newSizeGb` GiB: through its storage daemon when exported (online), else
   * with qemu-img resize. A volume already that big is left alone; smaller is a VolumeSizeError.
   */
  async extend(volumeId: string, newSizeGb: number): Promise<void> {
    const file = await findVolumeFile(this.stateDir, volumeId);
    if (!file) throw new VolumeNotFoundError(`volume ${volumeId} not found`);
    const newSizeBytes = newSizeGb * GiB;
    const { virtualSizeBytes } = await imageInfo(file.path, file.format);
    if (virtualSizeBytes === newSizeBytes) return;
    if (virtualSizeBytes > newSizeBytes) {
      throw new VolumeSizeError(`volume ${volumeId} has ${virtualSizeBytes} bytes; cannot shrink to ${newSizeGb} GiB`);
    }
    if (await this.options.online?.resizeVolume(volumeId, newSizeBytes)) return;
    // qemu-img resize takes the image's write lock: if a daemon opened it meanwhile, this fails
    // rather than corrupting it, and the retry goes online.
    await run('qemu-img', ['resize', '-q', '-f', file.format, file.path, String(newSizeBytes)]);
  }

  async info(volumeId: string): Promise<VolumeInfo | undefined> {
    const file = await findVolumeFile(this.stateDir, volumeId);
    if (!file) return undefined;
    const { virtualSizeBytes, actualBytes } = await imageInfo(file.path, file.format);
    return { virtualSizeBytes, actualBytes };
  }

  /**
   * A full, independent qcow2 copy of the volume as snapshot `snapshotId` (existing: no-op).
   * Offline: qemu-img convert of the file. Exported: a point-in-time copy taken inside the daemon
   * (blockdev-backup sync=full, copy-before-write), i.e. crash-consistent: what the disk held at
   * one instant, as after a power cut, without the guest's unflushed caches.
   */
  async snapshot(volumeId: string, snapshotId: string): Promise<void> {
    const finalPath = this.snapshotPath(snapshotId);
    if (await exists(finalPath)) return;
    const file = await findVolumeFile(this.stateDir, volumeId);
    if (!file) throw new VolumeNotFoundError(`volume ${volumeId} not found`);
    await mkdir(this.snapshotsDir, { recursive: true });
    const tmp = tempPathFor(finalPath);
    try {
      const online = await this.options.online?.copyVolume(volumeId, tmp, 'qcow2');
      if (!online) await run('qemu-img', ['convert', '-f', file.format, '-O', 'qcow2', file.path, tmp]);
      await commitFile(tmp, finalPath);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /**
   * A point-in-time raw copy of the volume's guest data at `rawPath` (a new file; the caller owns
   * it): through its daemon when exported, else qemu-img convert. What a backup reads.
   */
  async copyRaw(volumeId: string, rawPath: string): Promise<void> {
    const file = await findVolumeFile(this.stateDir, volumeId);
    if (!file) throw new VolumeNotFoundError(`volume ${volumeId} not found`);
    if (await this.options.online?.copyVolume(volumeId, rawPath, 'raw')) return;
    await run('qemu-img', ['convert', '-f', file.format, '-O', 'raw', file.path, rawPath]);
  }

  /** The id of the volume whose file `path` is, when it is one of this store's volume files. */
  private volumeIdOf(path: string): string | undefined {
    const rel = relative(resolve(this.volumesDir), resolve(path));
    if (rel.startsWith('..') || rel.includes(sep)) return undefined;
    return VOLUME_RE.exec(rel)?.[1];
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    await rm(this.snapshotPath(snapshotId), { force: true });
  }

  /** What the directories hold: volume ids, snapshot ids, and temp files (relative paths). */
  async list(): Promise<StoreListing> {
    const volumes: string[] = [];
    const snapshots: string[] = [];
    const temps: string[] = [];
    for (const name of await readdirOrEmpty(this.volumesDir)) {
      const m = VOLUME_RE.exec(name);
      if (name.startsWith('.tmp-')) temps.push(join('volumes', name));
      else if (m) volumes.push(m[1]);
    }
    for (const name of await readdirOrEmpty(this.snapshotsDir)) {
      const m = SNAPSHOT_RE.exec(name);
      if (name.startsWith('.tmp-')) temps.push(join('snapshots', name));
      else if (m) snapshots.push(m[1]);
    }
    return { volumes: [...new Set(volumes)].sort(), snapshots: snapshots.sort(), temps: temps.sort() };
  }

  /** Files against the log's view: orphans (files, no volume), missing (volume, no file), temps. */
  async reconcileReport(known: { volumeIds: Iterable<string>; snapshotIds: Iterable<string> }): Promise<ReconcileReport> {
    const listing = await this.list();
    const volumeIds = new Set(known.volumeIds);
    const snapshotIds = new Set(known.snapshotIds);
    const haveVolumes = new Set(listing.volumes);
    const haveSnapshots = new Set(listing.snapshots);
    return {
      orphanVolumes: listing.volumes.filter((id) => !volumeIds.has(id)),
      orphanSnapshots: listing.snapshots.filter((id) => !snapshotIds.has(id)),
      missingVolumes: [...volumeIds].filter((id) => !haveVolumes.has(id)).sort(),
      missingSnapshots: [...snapshotIds].filter((id) => !haveSnapshots.has(id)).sort(),
      temps: listing.temps,
    };
  }

  /**
   * Removes temp files left by interrupted operations; returns what it removed. Call it when no
   * operation of this store runs (at agent start, before the first reconcile), or give
   * `olderThanMs` longer than any operation takes: a temp being written right now is also a temp.
   */
  async cleanTemps(olderThanMs = 0): Promise<string[]> {
    const removed: string[] = [];
    const now = Date.now();
    for (const rel of (await this.list()).temps) {
      const path = join(this.stateDir, rel);
      const st = await stat(path).catch(() => undefined);
      if (!st || now - st.mtimeMs < olderThanMs) continue;
      await rm(path, { force: true, recursive: true });
      removed.push(rel);
    }
    return removed;
  }

  /**
   * Total and free GiB. Free counts allocated sizes, not bytes used: every volume's and snapshot's
   * virtual size is subtracted (thin provisioning is not assumed, as Cinder's capacity filter does
   * with allocated capacity; snapshots are full copies here, so they count too).
   */
  async capacity(): Promise<{ totalGb: number; freeGb: number }> {
    let totalGb = this.options.totalGb;
    if (totalGb === undefined) {
      await mkdir(this.stateDir, { recursive: true });
      const fs = await statfs(this.stateDir);
      totalGb = Math.floor((fs.blocks * fs.bsize) / GiB);
    }
    const listing = await this.list();
    let allocated = 0;
    for (const id of listing.volumes) allocated += (await this.info(id))?.virtualSizeBytes ?? 0;
    for (const id of listing.snapshots) {
      const info = await imageInfo(this.snapshotPath(id), 'qcow2').catch(() => undefined);
      allocated += info?.virtualSizeBytes ?? 0;
    }
    return { totalGb, freeGb: Math.max(0, totalGb - Math.ceil(allocated / GiB)) };
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
