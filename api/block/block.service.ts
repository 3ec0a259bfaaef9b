// VolumeService: every RPC authenticates the caller, enforces its policy rule
// (api/policy/block.policy.ts), validates input, then sends commands (BlockWriter; the
// multi-aggregate ones as the sagas of block.sagas.ts) or reads the block read models. Writes
// return once the read model shows them; the storage host's part (creating, extending, deleting,
// exporting) goes on after, and the status shows it. Another project's volume, snapshot or backup
// is NOT_FOUND before any rule is asked.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Attachment, Backup, Snapshot, Volume, VolumeType } from '../../domains/block/block.types.js';
import { BLOCK_QUOTA_DEFAULTS, isMultiattach, VOLUME_STATUSES } from '../../domains/block/block.types.js';
import { createHash } from 'node:crypto';
import { scheduleVolume } from '../../domains/block/scheduler.js';
import type { BackupRecord, BlockQueries, SnapshotRecord, VolumeRecord } from '../../projections/block/block.queries.js';
import type { ComputeQueries } from '../../projections/compute/compute.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse } from '../errors.js';
import { blockPolicy, blockRule } from '../policy/block.policy.js';
import type { Caller } from '../policy/policy.js';
import { actorOf, callerProject, derivedId, pageSize, requestIdOf, required, updateMaskOf, type Req, type Res } from '../request.js';
import { attachVolume, createBackup, createSnapshot, createVolume, extendVolume, restoreBackup, step, type SagaContext } from './block.sagas.js';
import type { BlockWriter } from './block.writer.js';
import type { BlockImages } from './block.images.js';
import { unaryRpcs } from '../unary-rpc.js';

export interface BlockServiceOptions {
  writer: BlockWriter;
  queries: BlockQueries;
  authenticator: Authenticator;
  servers: Pick<ComputeQueries, 'getServer'>;
  /** The image service (volumes from images, uploads to images); absent: images come from storage hosts' image directories only. */
  images?: BlockImages;
  /** The API's clock (a storage host's last report against it says whether it is up). */
  now?: () => number;
  /** A storage host silent for longer is down and gets no new volumes (Cinder's service_down_time, 60 s). */
  serviceDownMs?: number;
}

/** Cinder's default volume type name: used when a create names none. */
export const DEFAULT_VOLUME_TYPE = '__DEFAULT__';
/** Nova attaches volumes to servers in these states (shared/reference §1, attach volume). */
const ATTACHABLE_VM_STATES = new Set(['active', 'paused', 'stopped', 'resized', 'soft-delete', 'shelved', 'shelved_offloaded']);
const METADATA_LIMIT = 255;

const page = <T extends { id: string }>(rows: T[], size: number) => {
  const items = rows.slice(0, size);
  return { items, next: rows.length > size ? items[items.length - 1].id : '' };
};

const GiB = 1024 ** 3;
/** Cinder's upload disk formats here (what qemu-img writes and the storage hosts read back). */
const UPLOAD_DISK_FORMATS = ['raw', 'qcow2'] as const;

/** A uuid (v4-shaped) derived from a seed, so that a retried upload names the same image. */
const uuidFrom = (seed: string) => {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

// ---- views ---------------------------------------------------------------------------------

interface AttachmentShown {
  id: string;
  serverId: string;
  hostId: string;
  status: string;
  device: string;
  mode: string;
  deleteOnTermination: boolean;
}

const attachmentView = (a: AttachmentShown, volumeId: string): Res => ({
  id: a.id, volumeId, serverId: a.serverId, hostId: a.hostId, status: a.status, device: a.device, mode: a.mode, deleteOnTermination: a.deleteOnTermination,
});

function volumeView(v: VolumeRecord, admin: boolean, typeName = ''): Res {
  const source = v.source ?? { kind: '', id: '' };
  return {
    id: v.id, projectId: v.projectId, userId: v.userId, name: v.name, description: v.description, sizeGb: v.sizeGb, status: v.status,
    attachStatus: v.attachStatus, volumeTypeId: v.volumeTypeId, volumeTypeName: typeName, availabilityZone: v.availabilityZone,
    bootable: v.bootable, multiattach: v.multiattach, metadata: v.metadata ?? {},
    snapshotId: source.kind === 'snapshot' ? source.id : '', sourceVolid: source.kind === 'volume' ? source.id : '',
    backupId: source.kind === 'backup' ? source.id : '', imageId: source.kind === 'image' ? source.id : '',
    hostId: admin ? v.hostId : '', attachments: v.attachments.map((a) => attachmentView(a, v.id)), createdAtMs: v.createdAtMs, statusReason: v.statusReason ?? '',
  };
}

const snapshotView = (s: SnapshotRecord): Res => ({
  id: s.id, projectId: s.projectId, volumeId: s.volumeId, name: s.name, description: s.description, sizeGb: s.sizeGb, status: s.status, metadata: s.metadata ?? {}, createdAtMs: s.createdAtMs,
});

const backupView = (b: BackupRecord): Res => ({
  id: b.id, projectId: b.projectId, volumeId: b.volumeId, snapshotId: b.snapshotId, name: b.name, description: b.description, sizeGb: b.sizeGb,
  status: b.status, checksum: b.checksum, sizeBytes: b.sizeBytes, createdAtMs: b.createdAtMs, statusReason: b.statusReason ?? '',
});

function metadataOf(field: string, value: unknown): Record<string, string> {
  const m = (value ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(m)) {
    if (!k || k.length > METADATA_LIMIT) throw invalid(`${field}`, `keys must be 1 to ${METADATA_LIMIT} characters, got "${k.slice(0, 40)}"`);
    if (String(v).length > METADATA_LIMIT) throw invalid(`${field}.${k}`, `must be at most ${METADATA_LIMIT} characters`);
  }
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));
}

export function createBlockService(o: BlockServiceOptions): UntypedServiceImplementation {
  const { writer, queries, authenticator } = o;
  const impl: UntypedServiceImplementation = {};

  const rpc = unaryRpcs({ service: 'strata.block.v1.VolumeService', policy: blockPolicy, ruleOf: blockRule, authenticator, impl, label: 'block' });

  const notFound = (message: string, field: string) => new ApiError({ code: 'NOT_FOUND', message, field });

  function mustHaveProject(c: Caller): string {
    const p = callerProject(c);
    if (!p) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project');
    return p;
  }

  const isUp = (h: { reportedAtMs: number }) => (o.now ?? Date.now)() - h.reportedAtMs <= (o.serviceDownMs ?? 60_000);
  const ownerOf = (req: Req, c: Caller) => (c.isAdmin && req.projectId ? String(req.projectId) : mustHaveProject(c));
  const saga = (c: Caller, projectId: string, requestId: string): SagaContext => ({ writer, actor: actorOf(c), projectId, requestId });
  const projectTarget = (_req: Req, c: Caller) => ({ projectId: callerProject(c) });
  const all = (req: Req, c: Caller) => c.isAdmin && (req.allProjects || !callerProject(c));

  async function visibleVolume(id: string, c: Caller, field = 'id'): Promise<VolumeRecord> {
    const v = await queries.getVolume(id);
    if (!v || !(c.isAdmin || v.projectId === callerProject(c))) throw notFound(`Volume ${id} could not be found.`, field);
    return v;
  }
  async function visibleSnapshot(id: string, c: Caller, field = 'id'): Promise<SnapshotRecord> {
    const s = await queries.getSnapshot(id);
    if (!s || !(c.isAdmin || s.projectId === callerProject(c))) throw notFound(`Snapshot ${id} could not be found.`, field);
    return s;
  }
  async function visibleBackup(id: string, c: Caller, field = 'id'): Promise<BackupRecord> {
    const b = await queries.getBackup(id);
    if (!b || !(c.isAdmin || b.projectId === callerProject(c))) throw notFound(`Backup ${id} could not be found.`, field);
    return b;
  }
  async function visibleType(idOrName: string, c: Caller, field = 'id'): Promise<VolumeType> {
    const t = await queries.getVolumeType(idOrName);
    if (!t || !(c.isAdmin || t.isPublic)) throw notFound(`Volume type ${idOrName} could not be found.`, field);
    return t;
  }

  async function volumeOut(id: string, c: Caller): Promise<Res> {
    const v = await queries.getVolume(id);
    if (!v) throw notFound(`Volume ${id} could not be found.`, 'id');
    const t = v.volumeTypeId ? await queries.getVolumeType(v.volumeTypeId) : undefined;
    return volumeView(v, c.isAdmin, t?.name ?? '');
  }

  // ---- volume types --------------------------------------------------------------------------

  const typeFields = (req: Req) => {
    const extraSpecs = metadataOf('extra_specs', req.extraSpecs);
    return { extraSpecs, backend: extraSpecs.volume_backend_name ?? '' };
  };

  rpc(
    'CreateVolumeType',
    async (req, c) => {
      const requestId = requestIdOf(req);
      const id = derivedId('volume_type', 'cloud', requestId);
      const name = required('name', req.name);
      const existing = await queries.getVolumeType(name);
      if (existing && existing.id !== id) throw refuse('ALREADY_EXISTS', `Volume Type ${name} already exists.`, { field: 'name' });
      const volumeType: VolumeType = { id, name, description: String(req.description ?? ''), isPublic: req.isPublic ?? true, ...typeFields(req) };
      if (!existing) await writer.send('volume_type', id, { type: 'CreateVolumeType', volumeType }, actorOf(c), { commandId: `block/type/${requestId}`, correlationId: requestId });
      return { volumeType: await queries.getVolumeType(id) };
    },
    () => ({}),
  );

  rpc('GetVolumeType', async (req, c, enforce) => {
    enforce({});
    return { volumeType: await visibleType(required('id', req.id), c) };
  });

  rpc('ListVolumeTypes', async (req, c, enforce) => {
    enforce({});
    const size = pageSize(req);
    const rows = await queries.listVolumeTypes({ includePrivate: c.isAdmin, after: String(req.pageToken ?? ''), limit: size + 1 });
    const { items, next } = page(rows, size);
    return { volumeTypes: items, nextPageToken: next };
  });

  rpc(
    'UpdateVolumeType',
    async (req, c) => {
      const t = await visibleType(required('id', req.id), c);
      const mask = updateMaskOf(req);
      for (const m of mask) if (!['name', 'description', 'isPublic', 'extraSpecs'].includes(m)) throw invalid('update_mask', `${m} cannot be changed`);
      const patch: VolumeType = { ...t, ...Object.fromEntries(mask.map((m) => [m, req[m]])) };
      if (mask.includes('extraSpecs')) Object.assign(patch, typeFields(req));
      if (mask.includes('name')) {
        const other = await queries.getVolumeType(required('name', patch.name));
        if (other && other.id !== t.id) throw refuse('ALREADY_EXISTS', `Volume Type ${patch.name} already exists.`, { field: 'name' });
      }
      // The backend is part of the patch whenever the extra specs are.
      const updateMask = mask.includes('extraSpecs') ? [...mask, 'backend'] : mask;
      await writer.send('volume_type', t.id, { type: 'UpdateVolumeType', volumeType: patch, updateMask }, actorOf(c));
      return { volumeType: await queries.getVolumeType(t.id) };
    },
    () => ({}),
  );

  rpc(
    'DeleteVolumeType',
    async (req, c) => {
      const t = await visibleType(required('id', req.id), c);
      const used = await queries.volumesOfType(t.id);
      if (used > 0) throw refuse('FAILED_PRECONDITION', `Volume Type ${t.id} deletion is not allowed with volumes present with the type (${used}).`, { state: 'in use' });
      await writer.send('volume_type', t.id, { type: 'DeleteVolumeType' }, actorOf(c));
      return {};
    },
    () => ({}),
  );

  // ---- volumes -------------------------------------------------------------------------------

  /** Where a new volume goes: its source's host, or the scheduler's pick among the storage hosts. */
  async function placeVolume(sizeGb: number, backend: string, availabilityZone: string, sourceHost: string): Promise<string> {
    const hosts = (await queries.storageHosts()).map((h) => ({ ...h, enabled: h.enabled && isUp(h) }));
    const candidates = sourceHost ? hosts.filter((h) => h.hostId === sourceHost) : hosts;
    const picked = scheduleVolume(candidates, { sizeGb, backend: sourceHost ? '' : backend, availabilityZone: sourceHost ? '' : availabilityZone });
    if ('rejection' in picked) {
      const r = picked.rejection;
      throw new ApiError(sourceHost ? { ...r, message: `${r.message} (the source is on storage host ${sourceHost})` } : r);
    }
    return picked.hostId;
  }

  rpc(
    'CreateVolume',
    async (req, c, enforce) => {
      const projectId = ownerOf(req, c);
      enforce({ projectId });
      const requestId = requestIdOf(req);
      const id = derivedId('volume', projectId, requestId);
      if (await queries.getVolume(id)) return { volume: await volumeOut(id, c) };

      const sources = (['snapshotId', 'sourceVolid', 'backupId', 'imageId'] as const).filter((f) => req[f]);
      if (sources.length > 1) throw invalid('snapshot_id', `at most one source may be given; got ${sources.map((f) => f.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`)).join(', ')}`);
      let source: Volume['source'] = { kind: '', id: '' };
      let sourceSize = 0;
      let sourceHost = '';
      let sourceType = '';
      let image: Awaited<ReturnType<BlockImages['usable']>>;
      if (req.snapshotId) {
        const s = await visibleSnapshot(String(req.snapshotId), c, 'snapshot_id');
        if (s.status !== 'available') throw refuse('FAILED_PRECONDITION', `snapshot_id: Snapshot ${s.id} status must be available, but it is ${s.status}.`, { state: s.status, field: 'snapshot_id' });
        source = { kind: 'snapshot', id: s.id };
        sourceSize = s.sizeGb;
        sourceHost = s.hostId;
        sourceType = (await queries.getVolume(s.volumeId))?.volumeTypeId ?? '';
      } else if (req.sourceVolid) {
        const v = await visibleVolume(String(req.sourceVolid), c, 'source_volid');
        if (v.status !== 'available' && v.status !== 'in-use') throw refuse('FAILED_PRECONDITION', `source_volid: Volume ${v.id} status must be available or in-use, but it is ${v.status}.`, { state: v.status, field: 'source_volid' });
        source = { kind: 'volume', id: v.id };
        sourceSize = v.sizeGb;
        sourceHost = v.hostId;
        sourceType = v.volumeTypeId;
      } else if (req.backupId) {
        const b = await visibleBackup(String(req.backupId), c, 'backup_id');
        if (b.status !== 'available') throw refuse('FAILED_PRECONDITION', `backup_id: Backup ${b.id} status must be available, but it is ${b.status}.`, { state: b.status, field: 'backup_id' });
        source = { kind: 'backup', id: b.id };
        sourceSize = b.sizeGb;
        sourceHost = b.hostId;
      } else if (req.imageId) {
        // Cinder asks Glance: an image it has must be usable by the project and active, and fit.
        // An id the image service does not know goes to the storage host's image directory.
        const imageId = String(req.imageId);
        image = await o.images?.usable(imageId, c);
        if (image && image.status !== 'active') throw refuse('FAILED_PRECONDITION', `image_id: Image ${imageId} is not active, it is ${image.status}.`, { state: image.status, field: 'image_id' });
        source = { kind: 'image', id: imageId };
        if (image) sourceSize = Math.max(Math.ceil(image.virtualSize / GiB), image.minDisk, 1);
      }
      const sizeGb = Number(req.sizeGb ?? 0) || sourceSize;
      if (!Number.isInteger(sizeGb) || sizeGb < 1) throw invalid('size_gb', `must be a whole number of GiB of at least 1, got ${req.sizeGb ?? 0}`);
      if (image && sizeGb < sourceSize) {
        throw invalid('size_gb', `Image ${image.id} virtual size is ${(image.virtualSize / GiB).toFixed(2)} GiB and min_disk ${image.minDisk} GiB: it doesn't fit in a volume of size ${sizeGb} GiB (at least ${sourceSize}).`);
      }
      if (sizeGb < sourceSize) throw invalid('size_gb', `must be at least the source's size ${sourceSize} GiB, got ${sizeGb}`);

      const typeName = String(req.volumeType ?? '') || sourceType;
      const volumeType = typeName ? await visibleType(typeName, c, 'volume_type') : await queries.getVolumeType(DEFAULT_VOLUME_TYPE);
      const volume: Volume = {
        id,
        projectId,
        userId: c.userId,
        name: String(req.name ?? ''),
        description: String(req.description ?? ''),
        sizeGb,
        volumeTypeId: volumeType?.id ?? '',
        backend: volumeType?.backend ?? '',
        availabilityZone: String(req.availabilityZone ?? ''),
        bootable: Boolean(req.bootable) || source.kind === 'image',
        multiattach: isMultiattach(volumeType?.extraSpecs ?? {}),
        metadata: metadataOf('metadata', req.metadata),
        format: 'qcow2',
        source,
        createdAtMs: 0,
      };
      const hostId = await placeVolume(sizeGb, volume.backend, volume.availabilityZone, sourceHost);
      // The volume's backend and zone are its storage host's (a type may name none).
      const host = (await queries.storageHosts()).find((h) => h.hostId === hostId);
      volume.backend = host?.backend ?? volume.backend;
      volume.availabilityZone = host?.availabilityZone ?? (volume.availabilityZone || 'nova');
      await createVolume(saga(c, projectId, requestId), volume, hostId);
      return { volume: await volumeOut(id, c) };
    },
  );

  rpc('GetVolume', async (req, c, enforce) => {
    const v = await visibleVolume(required('id', req.id), c);
    enforce({ projectId: v.projectId });
    return { volume: await volumeOut(v.id, c) };
  });

  rpc(
    'ListVolumes',
    async (req, c) => {
      const size = pageSize(req);
      if (req.status && !(VOLUME_STATUSES as readonly string[]).includes(String(req.status))) throw invalid('status', `unknown status ${req.status}; one of ${VOLUME_STATUSES.join(', ')}`);
      const rows = await queries.listVolumes({
        ...(all(req, c) ? {} : { projectId: mustHaveProject(c) }),
        status: String(req.status ?? ''),
        name: String(req.name ?? ''),
        after: String(req.pageToken ?? ''),
        limit: size + 1,
      });
      const { items, next } = page(rows, size);
      const types = new Map((await queries.listVolumeTypes({ includePrivate: true, limit: 100_000 })).map((t) => [t.id, t.name]));
      return { volumes: items.map((v) => volumeView(v, c.isAdmin, types.get(v.volumeTypeId) ?? '')), nextPageToken: next };
    },
    projectTarget,
  );

  rpc('UpdateVolume', async (req, c, enforce) => {
    const v = await visibleVolume(required('id', req.id), c);
    enforce({ projectId: v.projectId });
    const mask = updateMaskOf(req);
    if (mask.length === 0) throw invalid('update_mask', 'names no field; name, description, metadata or bootable');
    for (const m of mask) if (!['name', 'description', 'metadata', 'bootable'].includes(m)) throw invalid('update_mask', `${m} cannot be changed; name, description, metadata or bootable`);
    const patch = Object.fromEntries(mask.map((m) => [m, m === 'metadata' ? metadataOf('metadata', req.metadata) : m === 'bootable' ? Boolean(req.bootable) : String(req[m] ?? '')]));
    const { status: _s, attachStatus: _a, hostId: _h, statusReason: _r, attachments: _t, ...volume } = v;
    await writer.send('volume', v.id, { type: 'UpdateVolume', volume: { ...volume, ...patch }, updateMask: mask }, actorOf(c));
    return { volume: await volumeOut(v.id, c) };
  });

  rpc('DeleteVolume', async (req, c, enforce) => {
    const v = await visibleVolume(required('id', req.id), c);
    enforce({ projectId: v.projectId });
    const force = Boolean(req.force);
    if (force && !c.isAdmin) throw refuse('PERMISSION_DENIED', 'force: only admins force-delete a volume', { field: 'force' });
    const cascade = Boolean(req.cascade);
    const actor = actorOf(c);
    await writer.send('volume', v.id, { type: 'DeleteVolume', cascade, force }, actor);
    if (cascade) {
      for (const snapshotId of await queries.snapshotsOfVolume(v.id)) {
        // A snapshot already deleting or gone is fine: the volume's deletion waits for none of them.
        await writer.reply('snapshot', snapshotId, { type: 'DeleteSnapshot', force: false }, actor);
      }
    }
    // The storage host may have deleted it already (the row gone): it was deleting when accepted.
    const after = await queries.getVolume(v.id);
    return { volume: after ? await volumeOut(v.id, c) : volumeView({ ...v, status: 'deleting' }, c.isAdmin) };
  });

  rpc('ExtendVolume', async (req, c, enforce) => {
    const v = await visibleVolume(required('id', req.id), c);
    enforce({ projectId: v.projectId });
    const newSizeGb = Number(req.newSizeGb ?? 0);
    if (!Number.isInteger(newSizeGb) || newSizeGb <= v.sizeGb) throw invalid('new_size', `New size for extend must be greater than current size. (current: ${v.sizeGb}, extended: ${newSizeGb}).`);
    await extendVolume(saga(c, v.projectId, requestIdOf(req)), v, newSizeGb);
    return { volume: await volumeOut(v.id, c) };
  });

  rpc('RetypeVolume', async (req, c, enforce) => {
    const v = await visibleVolume(required('id', req.id), c);
    enforce({ projectId: v.projectId });
    const t = await visibleType(required('volume_type', req.volumeType), c, 'volume_type');
    if (t.id === v.volumeTypeId) throw invalid('volume_type', `Retype needs a new type; volume ${v.id} is of type ${t.name} already`);
    await writer.send('volume', v.id, { type: 'RetypeVolume', volumeTypeId: t.id, backend: t.backend, multiattach: isMultiattach(t.extraSpecs) }, actorOf(c));
    return { volume: await volumeOut(v.id, c) };
  });

  rpc(
    'ResetVolumeStatus',
    async (req, c) => {
      const v = await visibleVolume(required('id', req.id), c);
      const status = required('status', req.status);
      if (!(VOLUME_STATUSES as readonly string[]).includes(status)) throw invalid('status', `unknown status ${status}; one of ${VOLUME_STATUSES.join(', ')}`);
      await writer.send('volume', v.id, { type: 'ResetVolumeStatus', status, reason: `reset by ${c.userId}` }, actorOf(c));
      return { volume: await volumeOut(v.id, c) };
    },
    () => ({}),
  );

  // Cinder's os-volume_upload_image: the image is created (queued, the volume's project's), the
  // volume goes uploading, and its storage host converts and uploads it, then reports the end.
  rpc('UploadVolumeToImage', async (req, c, enforce) => {
    const v = await visibleVolume(required('volume_id', req.volumeId), c, 'volume_id');
    enforce({ projectId: v.projectId });
    const images = o.images;
    if (!images) throw refuse('UNAVAILABLE', 'the image service is not running');
    const name = required('image_name', req.imageName);
    if (name.length > 255) throw invalid('image_name', `must be at most 255 characters, got ${name.length}`);
    const diskFormat = String(req.diskFormat ?? '') || 'raw';
    if (!(UPLOAD_DISK_FORMATS as readonly string[]).includes(diskFormat)) throw invalid('disk_format', `must be one of ${UPLOAD_DISK_FORMATS.join(', ')}, got "${diskFormat}"`);
    const containerFormat = String(req.containerFormat ?? '') || 'bare';
    if (containerFormat !== 'bare') throw invalid('container_format', `must be bare, got "${containerFormat}"`);
    const force = Boolean(req.force);
    const requestId = requestIdOf(req);
    const imageId = uuidFrom(`strata/volume-upload/${v.id}/${requestId}`);
    // A retry of an upload that started meets it (the volume uploading to it, or the image made).
    const started = v.status === 'uploading' || (await images.usable(imageId, c));
    if (!started) {
      // Refused before an image is made for nothing; the decider says the same (and decides).
      if (!(v.status === 'available' || (force && v.status === 'in-use'))) {
        const why = v.status === 'in-use' ? ' (an in-use volume needs force)' : '';
        throw refuse('FAILED_PRECONDITION', `Volume ${v.id} status must be available${force ? ' or in-use' : ''} to upload it to an image, but it is ${v.status}${why}.`, { state: v.status, field: 'volume_id' });
      }
      await images.create(
        {
          id: imageId, owner: v.projectId, name, diskFormat: diskFormat as 'raw' | 'qcow2', containerFormat: 'bare', minDisk: v.sizeGb,
          properties: { volume_id: v.id, image_type: 'volume' },
        },
        c,
      );
    }
    const reply = await writer.reply('volume', v.id, { type: 'BeginVolumeUpload', imageId, force }, actorOf(c), step(saga(c, v.projectId, requestId), 'upload', imageId, 'begin'));
    if (reply.kind === 'rejected') {
      await images.kill(imageId, `the volume's upload did not start: ${reply.rejection.message}`, c);
      throw new ApiError(reply.rejection);
    }
    return { imageId, volume: await volumeOut(v.id, c) };
  });

  // ---- attachments ---------------------------------------------------------------------------

  async function visibleServer(id: string, c: Caller) {
    const s = await o.servers.getServer(id);
    if (!s || !(c.isAdmin || s.projectId === callerProject(c))) throw notFound(`Instance ${id} could not be found.`, 'server_id');
    return s;
  }

  rpc('AttachVolume', async (req, c, enforce) => {
    const server = await visibleServer(required('server_id', req.serverId), c);
    const v = await visibleVolume(required('volume_id', req.volumeId), c, 'volume_id');
    enforce({ projectId: v.projectId });
    if (v.projectId !== server.projectId) throw invalid('volume_id', `volume ${v.id} belongs to another project than server ${server.id}`);
    if (!ATTACHABLE_VM_STATES.has(server.vmState) || server.taskState) {
      throw refuse('FAILED_PRECONDITION', `Cannot 'attach_volume' instance ${server.id} while it is in vm_state ${server.vmState}${server.taskState ? `, task_state ${server.taskState}` : ''}`, { state: server.vmState });
    }
    if (!server.host) throw refuse('FAILED_PRECONDITION', `server ${server.id} has no host to attach volume ${v.id} to (vm_state ${server.vmState})`, { state: server.vmState });
    const requestId = requestIdOf(req);
    const attachment: Attachment = {
      id: derivedId('attachment', `${server.id}/${v.id}`, requestId),
      serverId: server.id,
      hostId: server.host,
      mode: 'rw',
      deleteOnTermination: Boolean(req.deleteOnTermination),
      status: 'reserved',
      connection: { host: '', port: 0, exportName: '' },
      device: '',
    };
    const existing = v.attachments.find((a) => a.id === attachment.id);
    if (!existing) await attachVolume(saga(c, v.projectId, requestId), attachment, v.id);
    const after = (await queries.getVolume(v.id))!;
    return { attachment: attachmentView(after.attachments.find((a) => a.id === attachment.id) ?? attachment, v.id) };
  });

  rpc('DetachVolume', async (req, c, enforce) => {
    const server = await visibleServer(required('server_id', req.serverId), c);
    const v = await visibleVolume(required('volume_id', req.volumeId), c, 'volume_id');
    enforce({ projectId: v.projectId });
    const a = v.attachments.find((x) => x.serverId === server.id);
    if (!a) throw notFound(`volume ${v.id} is not attached to server ${server.id}`, 'volume_id');
    const command = a.status === 'attached' ? { type: 'BeginDetaching', attachmentId: a.id } : { type: 'DeleteAttachment', attachmentId: a.id };
    await writer.send('volume', v.id, command, actorOf(c));
    const after = (await queries.getVolume(v.id))!;
    return { attachment: attachmentView(after.attachments.find((x) => x.id === a.id) ?? { ...a, status: 'detached' }, v.id) };
  });

  rpc('ListServerVolumes', async (req, c, enforce) => {
    const server = await visibleServer(required('server_id', req.serverId), c);
    enforce({ projectId: server.projectId });
    return { attachments: (await queries.attachmentsOfServer(server.id)).map((a) => attachmentView(a, a.volumeId)) };
  });

  // ---- snapshots -----------------------------------------------------------------------------

  rpc('CreateSnapshot', async (req, c, enforce) => {
    const v = await visibleVolume(required('volume_id', req.volumeId), c, 'volume_id');
    enforce({ projectId: v.projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('snapshot', v.projectId, requestId);
    const existing = await queries.getSnapshot(id);
    if (existing) return { snapshot: snapshotView(existing) };
    const snapshot: Snapshot = {
      id, projectId: v.projectId, volumeId: v.id, name: String(req.name ?? ''), description: String(req.description ?? ''), sizeGb: v.sizeGb,
      metadata: metadataOf('metadata', req.metadata), createdAtMs: 0,
    };
    await createSnapshot(saga(c, v.projectId, requestId), snapshot, v.hostId);
    return { snapshot: snapshotView((await queries.getSnapshot(id))!) };
  });

  rpc('GetSnapshot', async (req, c, enforce) => {
    const s = await visibleSnapshot(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    return { snapshot: snapshotView(s) };
  });

  rpc(
    'ListSnapshots',
    async (req, c) => {
      const size = pageSize(req);
      if (req.volumeId) await visibleVolume(String(req.volumeId), c, 'volume_id');
      const rows = await queries.listSnapshots({
        ...(all(req, c) ? {} : { projectId: mustHaveProject(c) }),
        volumeId: String(req.volumeId ?? ''),
        after: String(req.pageToken ?? ''),
        limit: size + 1,
      });
      const { items, next } = page(rows, size);
      return { snapshots: items.map(snapshotView), nextPageToken: next };
    },
    projectTarget,
  );

  rpc('UpdateSnapshot', async (req, c, enforce) => {
    const s = await visibleSnapshot(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    const mask = updateMaskOf(req);
    if (mask.length === 0) throw invalid('update_mask', 'names no field; name, description or metadata');
    for (const m of mask) if (!['name', 'description', 'metadata'].includes(m)) throw invalid('update_mask', `${m} cannot be changed; name, description or metadata`);
    const patch = Object.fromEntries(mask.map((m) => [m, m === 'metadata' ? metadataOf('metadata', req.metadata) : String(req[m] ?? '')]));
    const { status: _s, hostId: _h, ...snapshot } = s;
    await writer.send('snapshot', s.id, { type: 'UpdateSnapshot', snapshot: { ...snapshot, ...patch }, updateMask: mask }, actorOf(c));
    return { snapshot: snapshotView((await queries.getSnapshot(s.id))!) };
  });

  rpc('DeleteSnapshot', async (req, c, enforce) => {
    const s = await visibleSnapshot(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    const force = Boolean(req.force);
    if (force && !c.isAdmin) throw refuse('PERMISSION_DENIED', 'force: only admins force-delete a snapshot', { field: 'force' });
    await writer.send('snapshot', s.id, { type: 'DeleteSnapshot', force }, actorOf(c));
    return { snapshot: snapshotView((await queries.getSnapshot(s.id)) ?? { ...s, status: 'deleting' }) };
  });

  // ---- backups -------------------------------------------------------------------------------

  rpc('CreateBackup', async (req, c, enforce) => {
    const v = await visibleVolume(required('volume_id', req.volumeId), c, 'volume_id');
    enforce({ projectId: v.projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('backup', v.projectId, requestId);
    const existing = await queries.getBackup(id);
    if (existing) return { backup: backupView(existing) };
    const backup: Backup = {
      id, projectId: v.projectId, volumeId: v.id, snapshotId: '', name: String(req.name ?? ''), description: String(req.description ?? ''), sizeGb: v.sizeGb, createdAtMs: 0,
    };
    // Backups are kept by the storage host of the volume until object storage exists (issue 8).
    await createBackup(saga(c, v.projectId, requestId), backup, v.hostId, Boolean(req.force));
    return { backup: backupView((await queries.getBackup(id))!) };
  });

  rpc('GetBackup', async (req, c, enforce) => {
    const b = await visibleBackup(required('id', req.id), c);
    enforce({ projectId: b.projectId });
    return { backup: backupView(b) };
  });

  rpc(
    'ListBackups',
    async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listBackups({
        ...(all(req, c) ? {} : { projectId: mustHaveProject(c) }),
        volumeId: String(req.volumeId ?? ''),
        after: String(req.pageToken ?? ''),
        limit: size + 1,
      });
      const { items, next } = page(rows, size);
      return { backups: items.map(backupView), nextPageToken: next };
    },
    projectTarget,
  );

  rpc('DeleteBackup', async (req, c, enforce) => {
    const b = await visibleBackup(required('id', req.id), c);
    enforce({ projectId: b.projectId });
    const force = Boolean(req.force);
    if (force && !c.isAdmin) throw refuse('PERMISSION_DENIED', 'force: only admins force-delete a backup', { field: 'force' });
    await writer.send('backup', b.id, { type: 'DeleteBackup', force }, actorOf(c));
    return { backup: backupView((await queries.getBackup(b.id)) ?? { ...b, status: 'deleting' }) };
  });

  rpc('RestoreBackup', async (req, c, enforce) => {
    const b = await visibleBackup(required('id', req.id), c);
    enforce({ projectId: b.projectId });
    const requestId = requestIdOf(req);
    if (!req.volumeId) {
      // A new volume from the backup: made on the backup's host, restored as it is created.
      if (b.status !== 'available') throw refuse('FAILED_PRECONDITION', `Backup ${b.id} status must be available, but it is ${b.status}.`, { state: b.status });
      const id = derivedId('volume', b.projectId, requestId);
      if (!(await queries.getVolume(id))) {
        const source = await queries.getVolume(b.volumeId);
        const volume: Volume = {
          id, projectId: b.projectId, userId: c.userId, name: String(req.name ?? '') || `restore_backup_${b.id}`, description: '', sizeGb: b.sizeGb,
          volumeTypeId: source?.volumeTypeId ?? '', backend: source?.backend ?? '', availabilityZone: source?.availabilityZone ?? '', bootable: source?.bootable ?? false,
          multiattach: source?.multiattach ?? false, metadata: {}, format: 'qcow2', source: { kind: 'backup', id: b.id }, createdAtMs: 0,
        };
        const hostId = await placeVolume(b.sizeGb, '', '', b.hostId);
        const host = (await queries.storageHosts()).find((h) => h.hostId === hostId);
        Object.assign(volume, { backend: host?.backend ?? volume.backend, availabilityZone: host?.availabilityZone ?? volume.availabilityZone });
        await createVolume(saga(c, b.projectId, requestId), volume, hostId);
      }
      return { backup: backupView((await queries.getBackup(b.id))!), volume: await volumeOut(id, c) };
    }
    const v = await visibleVolume(String(req.volumeId), c, 'volume_id');
    if (v.sizeGb < b.sizeGb) throw invalid('volume_id', `volume ${v.id} (${v.sizeGb} GiB) is smaller than backup ${b.id} (${b.sizeGb} GiB)`);
    if (v.hostId !== b.hostId) throw refuse('FAILED_PRECONDITION', `volume ${v.id} is on storage host ${v.hostId}, but backup ${b.id} is kept on ${b.hostId}: restore into a new volume instead`, { state: v.status, field: 'volume_id' });
    await restoreBackup(saga(c, b.projectId, requestId), b.id, v);
    return { backup: backupView((await queries.getBackup(b.id))!), volume: await volumeOut(v.id, c) };
  });

  // ---- quotas and hosts ----------------------------------------------------------------------

  async function quotaOut(projectId: string): Promise<Res> {
    const q = await queries.getBlockQuota(projectId);
    return { quota: { projectId, limits: q.limits, inUse: q.inUse } };
  }

  rpc('GetBlockQuota', async (req, c, enforce) => {
    const projectId = required('project_id', String(req.projectId ?? '') || callerProject(c));
    if (!c.isAdmin && projectId !== callerProject(c)) throw notFound(`Quota for project ${projectId} could not be found.`, 'project_id');
    enforce({ projectId });
    return quotaOut(projectId);
  });

  rpc(
    'SetBlockQuota',
    async (req, c) => {
      const projectId = required('project_id', req.projectId);
      const limits: Record<string, number> = {};
      for (const [k, v] of Object.entries((req.limits ?? {}) as Record<string, unknown>)) {
        if (!(k in BLOCK_QUOTA_DEFAULTS)) throw invalid(`limits.${k}`, `unknown quota; one of ${Object.keys(BLOCK_QUOTA_DEFAULTS).join(', ')}`);
        const n = Number(v);
        if (!Number.isInteger(n) || n < -1) throw invalid(`limits.${k}`, `must be -1 (unlimited) or more, got ${v}`);
        limits[k] = n;
      }
      await writer.send('block_quota', projectId, { type: 'SetBlockQuotaLimits', limits }, actorOf(c));
      return quotaOut(projectId);
    },
    () => ({}),
  );

  rpc(
    'ListStorageHosts',
    async () => ({ hosts: (await queries.storageHosts()).map((h) => ({ ...h, up: isUp(h) })) }),
    () => ({}),
  );

  return impl;
}
