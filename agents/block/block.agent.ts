// The block agent: a level-triggered reconciler per storage host. It folds the block domain
// (BlockFeed: the deciders' own states), and for each volume, snapshot, backup and attachment
// the log gives its host it converges the disk to what the status asks and reports the outcome
// as a command to that aggregate:
//   volume creating         -> make the file (blank, or from a snapshot, volume, backup or image:
//                              an image of the image service is downloaded from object storage,
//                              size and MD5 checked, into a temp file, then converted; an id the
//                              image service does not know is looked for in the image directory)
//   volume uploading        -> convert it to the image's disk format in a temp file and upload it
//                              as the image (StartImageUpload, the data to object storage,
//                              CompleteImageUpload), then EndVolumeUpload; a failure kills the
//                              image and ends the upload with its reason (Cinder's upload to image)
//   volume deleting         -> remove the file
//   volume extending        -> grow it (through its NBD daemon when exported: online)
//   attachment attaching    -> start an NBD export for it and report the connection
//   an export no attachment names any more -> stop it
//   snapshot creating/deleting, backup creating/deleting/restoring -> the same, for their files
// Operations are idempotent (agents/block/volume-store.ts, nbd-exports.ts, backup-store.ts), so a
// pass repeated after a crash converges instead of doing anything twice; a report the decider
// refuses (the state moved on meanwhile) is harmless. At start the agent removes the temp files
// an interrupted operation left, registers the host with its backend, zone and capacity, and
// reports the capacity again whenever it changes.
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Image } from '../../domains/image/image.types.js';
import { imageLocation, type ImageStore } from '../../infra/image/image-store.js';
import type { Message } from '../../domains/kernel/decider.js';
import { blockCodecFor } from '../../infra/codecs/block.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { SerialPasses } from '../../infra/runtime/serial-passes.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import { followBlock, type BlockFeed, type VolumeState } from '../../infra/sagas/block.feed.js';
import { BackupStore } from './backup-store.js';
import { NbdExports } from './nbd-exports.js';
import { run, tempPathFor, type VolumeFormat } from './qemu-img.js';
import { findVolumeFile, VolumeStore, type ReconcileReport, type VolumeSource } from './volume-store.js';

/** The image service as a storage host uses it (the same parts as a compute host's ImageServiceSource). */
export interface BlockImageService {
  /** The image record as the log has it (infra/sagas/image.feed.ts); undefined: unknown or deleted. */
  image(id: string): Image | undefined;
  /** Image data in object storage. */
  store: ImageStore;
  /** Sends an image-domain command (StartImageUpload, CompleteImageUpload, FailImageUpload, KillImage). */
  commands(imageId: string, command: Record<string, unknown> & { type: string }): Promise<void>;
}

/** How long a host waits for its image feed to show an image the API has seen (the feeds lag by moments). */
const IMAGE_FEED_WAIT_MS = 10_000;

export interface BlockAgentOptions {
  log: Log;
  topology: TopologyOptions;
  hostId: string;
  /** volume_backend_name of this host's volumes (a type's backend picks it). */
  backend: string;
  availabilityZone: string;
  /** Volume, snapshot, export and backup files live under it. */
  stateDir: string;
  /** Capacity to report; default: the size of the filesystem holding stateDir. */
  totalGb?: number;
  /** The image service: volumes from its images, uploads of volumes to it. */
  images?: BlockImageService;
  /** Where images unknown to the image service are looked for (<id>.qcow2, <id>/disk.qcow2 or <id>.raw). */
  imageDir?: string;
  /** The block domain's name; default 'block'. */
  domain?: string;
  /** Shared with others in the same process; started here when absent. */
  feed?: BlockFeed;
  /** The capacity is reported at least this often, as a heartbeat (default 10 s). */
  heartbeatMs?: number;
  /** Everything is looked at again this often (default 5 s). */
  resyncMs?: number;
  /** The clock that stamps its reports (issuedAtMs: the events' times); default Date.now. */
  now?: () => number;
  onError?: (error: Error) => void;
}

interface Op {
  key: string;
  run: () => Promise<void>;
  /** Housekeeping (the export sweep, the capacity report) asks for no pass when it ends. */
  housekeeping?: boolean;
}

export class BlockAgent {
  readonly volumes: VolumeStore;
  readonly exports: NbdExports;
  readonly backups: BackupStore;
  private readonly actor: Actor;
  private readonly inFlight = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: SerialPasses;
  private lastCapacity = '';
  private lastReportMs = 0;
  private totalGb = 0;
  /** Operations under way (a pass starts them and goes on). */
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  readonly stats = { operations: 0, failures: 0, refusedReports: 0 };

  private constructor(
    private readonly o: BlockAgentOptions,
    readonly feed: BlockFeed,
    private readonly ownFeed: boolean,
    private readonly bus: CommandBus,
  ) {
    this.exports = new NbdExports(o.stateDir);
    this.volumes = new VolumeStore(o.stateDir, { totalGb: o.totalGb, online: this.exports });
    this.backups = new BackupStore(o.stateDir);
    this.actor = { userId: `strata-block-agent/${o.hostId}`, projectId: '', roles: ['admin', 'service'] };
    // Every pass reconciles, then reports the capacity if it changed.
    // A pass only starts operations: it never waits on a daemon, a file or the log.
    this.passes = new SerialPasses(async () => this.reconcile(), (e) => o.onError?.(e));
  }

  static async start(o: BlockAgentOptions): Promise<BlockAgent> {
    const feed = o.feed ?? (await followBlock({ log: o.log, topology: o.topology, domain: o.domain }));
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const agent = new BlockAgent(o, feed, !o.feed, bus);
    // Nothing of ours runs yet: every temp file is a leftover of an interrupted operation.
    await agent.volumes.cleanTemps();
    agent.totalGb = o.totalGb ?? (await filesystemGb(o.stateDir));
    const totalGb = agent.totalGb;
    await agent.report('block_host', o.hostId, { type: 'RegisterBlockHost', hostId: o.hostId, backend: o.backend, availabilityZone: o.availabilityZone, totalGb, backupStore: true }, `register/${o.backend}/${o.availabilityZone}/${totalGb}`);
    feed.onChange(() => agent.kick());
    agent.timer = setInterval(() => agent.kick(), o.resyncMs ?? 5_000);
    agent.timer.unref();
    agent.kick();
    return agent;
  }

  get hostId(): string {
    return this.o.hostId;
  }

  private kick(): void {
    this.passes.kick();
  }

  /**
   * Total and free GiB, as Cinder's volume manager counts them: free is the total minus what the
   * host's volumes and snapshots are allotted in the log (not a walk over the files, which would
   * cost a qemu-img run per volume on every pass).
   */
  capacity(): { totalGb: number; freeGb: number } {
    const view = this.feed.view;
    const me = this.o.hostId;
    let allocated = 0;
    for (const v of view.volumes()) if (v.hostId === me && v.status !== 'deleted') allocated += v.volume.sizeGb;
    for (const s of view.snapshots()) if (s.hostId === me && s.status !== 'deleted') allocated += s.snapshot.sizeGb;
    return { totalGb: this.totalGb, freeGb: Math.max(0, this.totalGb - allocated) };
  }

  private async reportCapacity(): Promise<void> {
    const { totalGb, freeGb } = this.capacity();
    const key = `${totalGb}/${freeGb}`;
    // Also a heartbeat: the API gives no new volumes to a host silent for a minute.
    if (key === this.lastCapacity && Date.now() - this.lastReportMs < (this.o.heartbeatMs ?? 10_000)) return;
    const reply = await this.report('block_host', this.o.hostId, { type: 'ReportBlockCapacity', hostId: this.o.hostId, totalGb, freeGb }, `capacity/${Date.now()}`);
    if (reply.kind === 'accepted') {
      this.lastCapacity = key;
      this.lastReportMs = Date.now();
    }
  }


  /** Sends a report; a refusal (the state moved on) is counted, not thrown. */
  private async report(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, key: string): Promise<Reply> {
    const commandId = `block-agent/${this.o.hostId}/${aggregateType}/${aggregateId}/${key}`;
    const reply = await this.bus.send({
      domain: this.o.domain ?? 'block',
      aggregateType,
      aggregateId,
      type: command.type,
      payload: blockCodecFor(aggregateType).encodeCommand(command),
      actor: this.actor,
      commandId,
      correlationId: commandId,
      issuedAtMs: (this.o.now ?? Date.now)(),
    });
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
    else this.stats.refusedReports++;
    return reply;
  }

  /** Runs an operation once at a time per key; its failure is reported by onFailure. */
  /**
   * Starts an operation unless one of its key runs; a pass does not wait for it (a backup may take
   * minutes; a create behind it must not), and its end asks for another pass.
   */
  private start(op: Op): void {
    if (this.inFlight.has(op.key) || this.closing) return;
    // A failed one waits for the resync timer: no busy retry.
    const p = this.runOp(op).then((ok) => (ok && !op.housekeeping ? this.kick() : undefined));
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async runOp(op: Op): Promise<boolean> {
    this.inFlight.add(op.key);
    try {
      this.stats.operations++;
      await op.run();
      return true;
    } catch (e) {
      this.stats.failures++;
      this.o.onError?.(new Error(`block agent ${this.o.hostId}: ${op.key}: ${(e as Error).message}`));
      return false;
    } finally {
      this.inFlight.delete(op.key);
    }
  }

  /** Runs `work`; reports `done` after it, or `failed(reason)` when it throws. */
  private attempt(work: () => Promise<void>, done: () => Promise<unknown>, failed: (reason: string) => Promise<unknown>): () => Promise<void> {
    return async () => {
      let ok = true;
      try {
        await work();
      } catch (e) {
        ok = false;
        await failed((e as Error).message.slice(0, 250));
      }
      if (ok) await done();
    };
  }

  private imagePath(imageId: string): string | undefined {
    if (!this.o.imageDir || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(imageId)) return undefined;
    for (const p of [join(this.o.imageDir, `${imageId}.qcow2`), join(this.o.imageDir, imageId, 'disk.qcow2'), join(this.o.imageDir, `${imageId}.raw`)]) if (existsSync(p)) return p;
    return undefined;
  }

  private async sourceOf(v: VolumeState): Promise<VolumeSource | undefined> {
    const { kind, id } = v.volume.source ?? { kind: '', id: '' };
    if (!kind) return undefined;
    if (kind === 'snapshot') return { kind, path: this.volumes.snapshotPath(id) };
    if (kind === 'backup') return { kind, path: this.backups.backupDir(id) };
    if (kind === 'volume') {
      const file = await findVolumeFile(this.o.stateDir, id);
      if (!file) throw new Error(`source volume ${id} has no file on storage host ${this.o.hostId}`);
      return { kind, path: file.path, format: file.format };
    }
    const image = await this.serviceImage(id, (i) => i.status === 'active');
    if (image) return this.download(image, v.id);
    const path = this.imagePath(id);
    if (!path) throw new Error(`image ${id} was not found on storage host ${this.o.hostId}${this.o.images ? ' nor in the image service' : ''}`);
    return { kind: 'image', path };
  }

  /**
   * The image service's record of an image, once `ready` says it is as wanted (the API saw it so;
   * this host's feed may lag a moment). Undefined: no image service, or it does not know the id.
   */
  private async serviceImage(id: string, ready: (image: Image) => boolean): Promise<Image | undefined> {
    const images = this.o.images;
    if (!images) return undefined;
    const until = Date.now() + IMAGE_FEED_WAIT_MS;
    let image = images.image(id);
    while (!(image && ready(image)) && Date.now() < until && !this.closing) {
      await new Promise((r) => setTimeout(r, 100));
      image = images.image(id);
    }
    return image;
  }

  /**
   * Downloads an active image's data (size and MD5 checked as it streams) to a temp file beside the
   * volume (a crash leaves a temp that the next start removes); the volume is converted from it.
   */
  private async download(image: Image, volumeId: string): Promise<VolumeSource & { cleanup: () => Promise<void> }> {
    if (image.status !== 'active') throw new Error(`image ${image.id} is ${image.status}, not active`);
    const format: VolumeFormat | undefined = image.diskFormat === 'raw' ? 'raw' : image.diskFormat === 'qcow2' ? 'qcow2' : undefined;
    if (!format) throw new Error(`image ${image.id} has disk_format ${image.diskFormat}: volumes are made from raw and qcow2 images`);
    const tmp = tempPathFor(this.volumes.volumePath(volumeId, 'qcow2'), `.image-${format}`);
    await mkdir(join(this.o.stateDir, 'volumes'), { recursive: true });
    const cleanup = () => rm(tmp, { force: true });
    try {
      const { body } = await this.o.images!.store.read(image.location || imageLocation(image.id), { size: image.size, checksum: image.checksum });
      await pipeline(body, createWriteStream(tmp));
      // An image's qcow2 header could name a backing file on this host: never follow one (Cinder refuses such images).
      if (format === 'qcow2') {
        const info = JSON.parse(await run('qemu-img', ['info', '--output=json', '-f', 'qcow2', tmp])) as Record<string, unknown>;
        if (info['backing-filename'] || info['data-file']) throw new Error(`image ${image.id} names a backing or data file: refused`);
      }
    } catch (e) {
      await cleanup();
      throw e;
    }
    return { kind: 'image', path: tmp, format, cleanup };
  }

  /**
   * Uploads a volume to the (queued) image the API made for it: its data converted to the image's
   * disk format in a temp file (through the storage daemon when the volume is exported: a
   * point-in-time copy of an in-use volume), then StartImageUpload, the data to object storage,
   * CompleteImageUpload. An image already active is a retry's: nothing to do.
   */
  private async upload(volumeId: string, imageId: string): Promise<void> {
    const images = this.o.images;
    if (!images) throw new Error(`storage host ${this.o.hostId} has no image service to upload to`);
    const image = await this.serviceImage(imageId, () => true);
    if (!image) throw new Error(`image ${imageId} is not in the image service`);
    if (image.status === 'active') return;
    if (image.status !== 'queued' && image.status !== 'saving') throw new Error(`image ${imageId} is ${image.status}, not queued`);
    const format: VolumeFormat | undefined = image.diskFormat === 'raw' ? 'raw' : image.diskFormat === 'qcow2' ? 'qcow2' : undefined;
    if (!format) throw new Error(`image ${imageId} has disk_format ${image.diskFormat || 'none'}: volumes are uploaded as raw or qcow2`);
    const file = await findVolumeFile(this.o.stateDir, volumeId);
    if (!file) throw new Error(`volume ${volumeId} has no file on storage host ${this.o.hostId}`);
    const tmp = tempPathFor(this.volumes.volumePath(volumeId, 'qcow2'), `.upload-${format}`);
    try {
      const online = await this.exports.copyVolume(volumeId, tmp, format);
      if (!online) await run('qemu-img', ['convert', '-f', file.format, '-O', format, file.path, tmp]);
      if (image.status === 'saving') await images.commands(imageId, { type: 'FailImageUpload', reason: 'a new upload of the volume starts' });
      await images.commands(imageId, { type: 'StartImageUpload', location: imageLocation(imageId) });
      const stored = await images.store.write(imageId, createReadStream(tmp, { highWaterMark: 1024 * 1024 }), format);
      await images.commands(imageId, { type: 'CompleteImageUpload', ...stored });
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** What the log asks of this host now, as operations. */
  private duties(): Op[] {
    const me = this.o.hostId;
    const view = this.feed.view;
    const ops: Op[] = [];
    const failedVolume = (id: string) => (reason: string) => this.report('volume', id, { type: 'ReportVolumeFailed', hostId: me, reason }, `failed/${reason.length}/${Date.now()}`);
    for (const v of view.volumes()) {
      if (v.hostId !== me) continue;
      const id = v.id;
      if (v.status === 'creating') {
        ops.push({
          key: `volume/${id}`,
          run: this.attempt(
            async () => {
              const source = await this.sourceOf(v);
              try {
                await this.volumes.create(id, v.volume.sizeGb, v.volume.format || 'qcow2', source);
              } finally {
                if (source && 'cleanup' in source) await (source.cleanup as () => Promise<void>)();
              }
            },
            () => this.report('volume', id, { type: 'ReportVolumeCreated', hostId: me }, 'created'),
            failedVolume(id),
          ),
        });
      } else if (v.status === 'deleting') {
        ops.push({
          key: `volume/${id}`,
          run: this.attempt(
            async () => {
              // Exports of attachments gone meanwhile may not be stopped yet: stop them, and their daemons.
              await this.sweepExports();
              for (const a of v.attachments) await this.exports.unexport(a.id);
              await this.exports.reap();
              await this.volumes.delete(id);
            },
            () => this.report('volume', id, { type: 'ReportVolumeDeleted', hostId: me }, 'deleted'),
            failedVolume(id),
          ),
        });
      } else if (v.status === 'uploading' && v.operationId) {
        const imageId = v.operationId;
        const end = (reason: string) => this.report('volume', id, { type: 'EndVolumeUpload', imageId, reason }, `uploaded/${imageId}`);
        ops.push({
          key: `volume/${id}`,
          run: this.attempt(
            () => this.upload(id, imageId),
            () => end(''),
            async (reason) => {
              await this.o.images?.commands(imageId, { type: 'KillImage', reason: `upload of volume ${id} failed: ${reason}` }).catch(() => undefined);
              await end(reason);
            },
          ),
        });
      } else if (v.status === 'extending') {
        const sizeGb = v.extendingToGb;
        if (sizeGb > 0) {
          ops.push({
            key: `volume/${id}`,
            run: this.attempt(
              () => this.volumes.extend(id, sizeGb),
              () => this.report('volume', id, { type: 'ReportVolumeExtended', hostId: me, sizeGb }, `extended/${sizeGb}`),
              failedVolume(id),
            ),
          });
        }
      }
      for (const a of v.attachments) {
        if (a.status !== 'attaching' || a.connection?.host) continue;
        ops.push({
          key: `export/${a.id}`,
          run: this.attempt(
            async () => {
              const connection = await this.exports.export(a.id, id, { readOnly: a.mode === 'ro' });
              await this.report('volume', id, { type: 'ReportAttachmentExported', attachmentId: a.id, hostId: me, connection }, `exported/${a.id}`);
            },
            async () => undefined,
            (reason) => this.report('volume', id, { type: 'ReportAttachmentFailed', attachmentId: a.id, reason }, `export-failed/${a.id}`),
          ),
        });
      }
    }
    for (const s of view.snapshots()) {
      if (s.hostId !== me) continue;
      const failed = (reason: string) => this.report('snapshot', s.id, { type: 'ReportSnapshotFailed', hostId: me, reason }, `failed/${s.status}`);
      if (s.status === 'creating') {
        ops.push({ key: `snapshot/${s.id}`, run: this.attempt(() => this.volumes.snapshot(s.snapshot.volumeId, s.id), () => this.report('snapshot', s.id, { type: 'ReportSnapshotCreated', hostId: me }, 'created'), failed) });
      } else if (s.status === 'deleting') {
        ops.push({ key: `snapshot/${s.id}`, run: this.attempt(() => this.volumes.deleteSnapshot(s.id), () => this.report('snapshot', s.id, { type: 'ReportSnapshotDeleted', hostId: me }, 'deleted'), failed) });
      }
    }
    for (const b of view.backups()) {
      if (b.hostId !== me) continue;
      const failed = (reason: string) => this.report('backup', b.id, { type: 'ReportBackupFailed', hostId: me, reason }, `failed/${b.status}/${b.restoreVolumeId}`);
      if (b.status === 'creating') {
        let result = { checksum: '', sizeBytes: 0 };
        ops.push({
          key: `backup/${b.id}`,
          run: this.attempt(
            async () => {
              if (!(await findVolumeFile(this.o.stateDir, b.backup.volumeId))) throw new Error(`volume ${b.backup.volumeId} has no file on storage host ${me}`);
              result = await this.backups.backupVolume(this.volumes, b.backup.volumeId, b.id);
            },
            () => this.report('backup', b.id, { type: 'ReportBackupCreated', hostId: me, checksum: result.checksum, sizeBytes: result.sizeBytes }, 'created'),
            failed,
          ),
        });
      } else if (b.status === 'deleting') {
        ops.push({ key: `backup/${b.id}`, run: this.attempt(() => this.backups.delete(b.id), () => this.report('backup', b.id, { type: 'ReportBackupDeleted', hostId: me }, 'deleted'), failed) });
      } else if (b.status === 'restoring' && b.restoreVolumeId) {
        const target = view.volume(b.restoreVolumeId);
        const volumeId = b.restoreVolumeId;
        ops.push({
          key: `backup/${b.id}`,
          run: this.attempt(
            async () => {
              if (target?.status !== 'restoring-backup') return;
              await this.restoreInto(b.id, volumeId, target.volume.sizeGb);
            },
            async () => {
              if (target?.status === 'restoring-backup') {
                const sizeGb = Math.max(target.volume.sizeGb, b.backup.sizeGb);
                await this.report('volume', volumeId, { type: 'EndVolumeRestore', backupId: b.id, sizeGb }, `restored/${b.id}`);
              }
              await this.report('backup', b.id, { type: 'ReportBackupRestored', hostId: me, volumeId }, `restored/${volumeId}`);
            },
            async (reason) => {
              if (target?.status === 'restoring-backup') await this.report('volume', volumeId, { type: 'ReportVolumeFailed', hostId: me, reason }, `restore-failed/${b.id}`);
              await failed(reason);
            },
          ),
        });
      }
    }
    return ops;
  }

  /** Replaces a volume's data with a backup's: restored to a temp volume, then swapped in. */
  private async restoreInto(backupId: string, volumeId: string, sizeGb: number): Promise<void> {
    const file = await findVolumeFile(this.o.stateDir, volumeId);
    const format = file?.format ?? 'qcow2';
    const staging = `restore-${backupId}-${volumeId}`;
    await this.volumes.delete(staging);
    await this.volumes.create(staging, sizeGb, format, { kind: 'backup', path: this.backups.backupDir(backupId) });
    await rename(this.volumes.volumePath(staging, format), this.volumes.volumePath(volumeId, format));
  }

  /** The attachments of this host's volumes that may have an export. */
  private wantedExports(): Set<string> {
    return new Set(this.feed.view.volumes().filter((v) => v.hostId === this.o.hostId && v.status !== 'deleted').flatMap((v) => v.attachments.map((a) => a.id)));
  }

  /**
   * Stops the exports no attachment of ours names any more (detached, failed, the volume deleted),
   * and the daemons left with no export.
   */
  private async sweepExports(): Promise<void> {
    const wanted = this.wantedExports();
    const stale = (await this.exports.list()).filter((id) => !wanted.has(id));
    for (const attachmentId of stale) await this.exports.unexport(attachmentId);
    if (stale.length > 0) await this.exports.reap();
  }

  private async reconcile(): Promise<void> {
    for (const op of this.duties()) this.start(op);
    // One sweep of stale exports at a time, beside the duties.
    this.start({ key: 'sweep-exports', housekeeping: true, run: () => this.sweepExports() });
    this.start({ key: 'capacity', housekeeping: true, run: () => this.reportCapacity() });
  }

  /** The host's files against the log: see hostReconcileReport. */
  reconcileReport(): Promise<ReconcileReport> {
    return hostReconcileReport(this.feed, this.o.hostId, this.volumes);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    await this.passes.close();
    await Promise.all([...this.running]);
    await this.bus.close();
    if (this.ownFeed) await this.feed.close();
  }
}

/**
 * A storage host's files against the log (the reconcile report): orphans are files no live volume
 * or snapshot of this host names; missing are volumes and snapshots that should have a file here
 * and have none (creating, failed and deleting ones may rightly have none); temps are leftovers.
 * It only reads, so it can be asked of a host whose agent is down (an operator's check, the fault
 * tests) as well as by the agent itself.
 */
export async function hostReconcileReport(feed: BlockFeed, hostId: string, volumes: VolumeStore): Promise<ReconcileReport> {
  const view = feed.view;
  const mine = <T extends { hostId: string; status: string }>(xs: T[]) => xs.filter((x) => x.hostId === hostId && x.status !== 'deleted');
  const hostVolumes = mine(view.volumes());
  const snapshots = mine(view.snapshots());
  const report = await volumes.reconcileReport({ volumeIds: hostVolumes.map((v) => v.id), snapshotIds: snapshots.map((s) => s.id) });
  const mayLack = new Set(['creating', 'error', 'deleting', 'error_deleting']);
  const lacking = new Set([...hostVolumes, ...snapshots].filter((x) => mayLack.has(x.status)).map((x) => x.id));
  return { ...report, missingVolumes: report.missingVolumes.filter((id) => !lacking.has(id)), missingSnapshots: report.missingSnapshots.filter((id) => !lacking.has(id)) };
}

/** The size of the filesystem holding `dir`, in whole GiB. */
async function filesystemGb(dir: string): Promise<number> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  return Math.floor((fs.blocks * fs.bsize) / 1024 ** 3);
}
