// Field rules of block commands, shared by the API (before it sends), the codec (for any other
// sender) and the deciders (which refuse what the rules refuse): Cinder's request rules restated
// on the commands. A broken rule throws InvalidArgumentError naming the field by its proto path
// ("volume.size_gb", "attachment.mode"). Rules the state decides (a size not larger than the
// volume's, a status that forbids the command) are the deciders'.
import { InvalidArgumentError, type Rejection } from '../kernel/rejection.js';
import {
  ATTACH_MODES,
  BLOCK_QUOTA_DEFAULTS,
  SOURCE_KINDS,
  VOLUME_FORMATS,
} from './block.types.js';
import { REASON_WIRE_MAX } from '../kernel/reason.js';
export { clipReason, REASON_MAX } from '../kernel/reason.js';

type Fields = Record<string, any>;

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** proto int32: the largest size in GiB a field can carry. */
const INT32_MAX = 2_147_483_647;
/** Cinder's limit on names, descriptions, metadata keys and values. */
const TEXT_MAX = 255;

/**
 * Statuses an admin may reset a volume to: Cinder's VolumeAdminController.valid_status (creating,
 * available, deleting, error, error_deleting, attaching, in-use, detaching; its managing and
 * maintenance statuses do not exist here).
 */
export const VOLUME_RESET_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting', 'attaching', 'in-use', 'detaching'] as const;
/** Cinder's SnapshotAdminController.valid_status, less the statuses that do not exist here. */
export const SNAPSHOT_RESET_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting'] as const;
/** Cinder's BackupAdminController.valid_status. */
export const BACKUP_RESET_STATUSES = ['available', 'error'] as const;

function text(field: string, value: unknown, max: number, required: boolean): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (required && s.trim() === '') throw new InvalidArgumentError(field, 'is required');
  if (s.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters, got ${s.length}`);
  if (CONTROL.test(s)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

/** Free text that may hold line breaks (a failure reason), of at most max characters. */
function reason(field: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (s.length > REASON_WIRE_MAX) throw new InvalidArgumentError(field, `must be at most ${REASON_WIRE_MAX} characters, got ${s.length}`);
}

function id(field: string, value: unknown): void {
  text(field, value, 64, true);
  if (!ID.test(value as string)) throw new InvalidArgumentError(field, `"${value}" is not an id (letters, digits, _ . : -; at most 64)`);
}

function int(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `must be an integer, got ${String(value)}`);
  if (value < min || value > max) throw new InvalidArgumentError(field, `must be from ${min} to ${max}, got ${value}`);
}

function bool(field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(field, 'must be true or false');
}

function oneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(value as string)) throw new InvalidArgumentError(field, `must be one of ${allowed.map((a) => a || "''").join(', ')}, got "${String(value)}"`);
}

function present(field: string, value: unknown): asserts value is Fields {
  if (value === undefined || value === null || typeof value !== 'object') throw new InvalidArgumentError(field, 'is required');
}

/** Cinder's metadata (and extra specs) rule: keys 1..255 characters, values at most 255. */
function stringMap(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a map of strings');
  for (const [k, v] of Object.entries(value as Fields)) {
    if (k.length === 0 || k.length > TEXT_MAX) throw new InvalidArgumentError(field, `keys must be 1 to ${TEXT_MAX} characters, got "${k.slice(0, 40)}"`);
    if (CONTROL.test(k)) throw new InvalidArgumentError(field, 'keys must not contain control characters');
    text(`${field}.${k}`, v, TEXT_MAX, false);
  }
}

const sizeGb = (field: string, value: unknown) => int(field, value, 1, INT32_MAX);
const hostId = (field: string, value: unknown) => text(field, value, TEXT_MAX, true);

/** An update mask: non-empty, naming known fields (camelCase) that may change. */
function mask(kind: string, mutable: readonly string[], known: readonly string[], m: unknown): string[] {
  const names = mutable.map(snake).join(', ');
  if (!Array.isArray(m) || m.length === 0) throw new InvalidArgumentError('update_mask', `name the fields to change (any of ${names})`);
  for (const path of m as string[]) {
    if (!known.includes(path)) throw new InvalidArgumentError('update_mask', `${kind} has no field ${snake(path)}`);
    if (!mutable.includes(path)) throw new InvalidArgumentError(`${kind}.${snake(path)}`, `cannot be changed (a ${kind}'s changeable fields: ${names})`);
  }
  return m as string[];
}

// Volume types.

const VOLUME_TYPE_RULES: Record<string, (v: unknown, p: string) => void> = {
  id: (v, p) => id(`${p}.id`, v),
  name: (v, p) => text(`${p}.name`, v, TEXT_MAX, true),
  description: (v, p) => text(`${p}.description`, v, TEXT_MAX, false),
  isPublic: (v, p) => bool(`${p}.is_public`, v),
  extraSpecs: (v, p) => stringMap(`${p}.extra_specs`, v),
  backend: (v, p) => text(`${p}.backend`, v, TEXT_MAX, false),
};
export const VOLUME_TYPE_MUTABLE = ['name', 'description', 'isPublic', 'extraSpecs', 'backend'] as const;

// Volumes.

const VOLUME_RULES: Record<string, (v: unknown, p: string) => void> = {
  id: (v, p) => id(`${p}.id`, v),
  projectId: (v, p) => text(`${p}.project_id`, v, TEXT_MAX, true),
  userId: (v, p) => text(`${p}.user_id`, v, TEXT_MAX, false),
  name: (v, p) => text(`${p}.name`, v, TEXT_MAX, false),
  description: (v, p) => text(`${p}.description`, v, TEXT_MAX, false),
  sizeGb: (v, p) => sizeGb(`${p}.size_gb`, v),
  volumeTypeId: (v, p) => text(`${p}.volume_type_id`, v, TEXT_MAX, false),
  backend: (v, p) => text(`${p}.backend`, v, TEXT_MAX, false),
  availabilityZone: (v, p) => text(`${p}.availability_zone`, v, TEXT_MAX, false),
  bootable: (v, p) => bool(`${p}.bootable`, v),
  multiattach: (v, p) => bool(`${p}.multiattach`, v),
  metadata: (v, p) => stringMap(`${p}.metadata`, v),
  format: (v, p) => oneOf(`${p}.format`, v, VOLUME_FORMATS),
  source: (v, p) => {
    present(`${p}.source`, v);
    oneOf(`${p}.source.kind`, v.kind, SOURCE_KINDS);
    if (v.kind) id(`${p}.source.id`, v.id);
    else if (v.id) throw new InvalidArgumentError(`${p}.source.id`, 'must be empty for a blank volume (source.kind empty)');
  },
  createdAtMs: () => undefined,
};
export const VOLUME_MUTABLE = ['name', 'description', 'metadata', 'bootable'] as const;

function connection(field: string, c: unknown): void {
  present(field, c);
  text(`${field}.host`, c.host, TEXT_MAX, true);
  int(`${field}.port`, c.port, 1, 65535);
  text(`${field}.export_name`, c.exportName, TEXT_MAX, true);
}

function attachment(field: string, a: unknown): void {
  present(field, a);
  id(`${field}.id`, a.id);
  text(`${field}.server_id`, a.serverId, TEXT_MAX, true);
  // A server not yet on a host (attached at boot) has no compute host yet, as Cinder's connector-less attachment.
  text(`${field}.host_id`, a.hostId, TEXT_MAX, false);
  oneOf(`${field}.mode`, a.mode, ATTACH_MODES);
  bool(`${field}.delete_on_termination`, a.deleteOnTermination);
  if (a.status !== 'reserved') throw new InvalidArgumentError(`${field}.status`, `a new attachment is reserved, got "${String(a.status)}"`);
  if (a.connection && (a.connection.host || a.connection.port || a.connection.exportName)) throw new InvalidArgumentError(`${field}.connection`, 'is made by the storage host, not given');
  if (a.device) throw new InvalidArgumentError(`${field}.device`, 'is set when the attachment completes');
}

// Snapshots and backups.

const SNAPSHOT_RULES: Record<string, (v: unknown, p: string) => void> = {
  id: (v, p) => id(`${p}.id`, v),
  projectId: (v, p) => text(`${p}.project_id`, v, TEXT_MAX, true),
  volumeId: (v, p) => id(`${p}.volume_id`, v),
  name: (v, p) => text(`${p}.name`, v, TEXT_MAX, false),
  description: (v, p) => text(`${p}.description`, v, TEXT_MAX, false),
  sizeGb: (v, p) => sizeGb(`${p}.size_gb`, v),
  metadata: (v, p) => stringMap(`${p}.metadata`, v),
  createdAtMs: () => undefined,
};
export const SNAPSHOT_MUTABLE = ['name', 'description', 'metadata'] as const;

const BACKUP_RULES: Record<string, (v: unknown, p: string) => void> = {
  id: (v, p) => id(`${p}.id`, v),
  projectId: (v, p) => text(`${p}.project_id`, v, TEXT_MAX, true),
  volumeId: (v, p) => id(`${p}.volume_id`, v),
  snapshotId: (v, p) => {
    if (v) id(`${p}.snapshot_id`, v);
  },
  name: (v, p) => text(`${p}.name`, v, TEXT_MAX, false),
  description: (v, p) => text(`${p}.description`, v, TEXT_MAX, false),
  sizeGb: (v, p) => sizeGb(`${p}.size_gb`, v),
  createdAtMs: () => undefined,
};

function whole(field: string, value: unknown, rules: Record<string, (v: unknown, p: string) => void>): void {
  present(field, value);
  for (const [f, rule] of Object.entries(rules)) rule(value[f], field);
}

function patch(field: string, value: unknown, rules: Record<string, (v: unknown, p: string) => void>, mutable: readonly string[], m: unknown): void {
  present(field, value);
  for (const f of mask(field, mutable, Object.keys(rules), m)) rules[f](value[f], field);
}

// Quotas.

const QUOTA_NAMES = Object.keys(BLOCK_QUOTA_DEFAULTS);

function usage(field: string, value: unknown): void {
  present(field, value);
  const names = Object.keys(value);
  if (names.length === 0) throw new InvalidArgumentError(field, 'name at least one resource');
  for (const name of names) {
    if (!QUOTA_NAMES.includes(name)) throw new InvalidArgumentError(field, `unknown quota "${name}" (one of ${QUOTA_NAMES.join(', ')})`);
    int(`${field}.${name}`, value[name], 0, INT32_MAX);
  }
}

const COMMAND_RULES: Record<string, (c: Fields) => void> = {
  CreateVolumeType: (c) => whole('volume_type', c.volumeType, VOLUME_TYPE_RULES),
  UpdateVolumeType: (c) => patch('volume_type', c.volumeType, VOLUME_TYPE_RULES, VOLUME_TYPE_MUTABLE, c.updateMask),

  CreateVolume: (c) => {
    whole('volume', c.volume, VOLUME_RULES);
    hostId('host_id', c.hostId);
  },
  ReportVolumeCreated: (c) => hostId('host_id', c.hostId),
  ReportVolumeFailed: (c) => {
    hostId('host_id', c.hostId);
    reason('reason', c.reason);
  },
  UpdateVolume: (c) => patch('volume', c.volume, VOLUME_RULES, VOLUME_MUTABLE, c.updateMask),
  DeleteVolume: (c) => {
    bool('cascade', c.cascade);
    bool('force', c.force);
  },
  ReportVolumeDeleted: (c) => hostId('host_id', c.hostId),
  ExtendVolume: (c) => sizeGb('new_size_gb', c.newSizeGb),
  ReportVolumeExtended: (c) => {
    hostId('host_id', c.hostId);
    sizeGb('size_gb', c.sizeGb);
  },
  RetypeVolume: (c) => {
    text('volume_type_id', c.volumeTypeId, TEXT_MAX, true);
    text('backend', c.backend, TEXT_MAX, false);
    bool('multiattach', c.multiattach);
  },
  ReserveAttachment: (c) => attachment('attachment', c.attachment),
  UpdateAttachment: (c) => id('attachment_id', c.attachmentId),
  ReportAttachmentExported: (c) => {
    id('attachment_id', c.attachmentId);
    hostId('host_id', c.hostId);
    connection('connection', c.connection);
  },
  CompleteAttachment: (c) => {
    id('attachment_id', c.attachmentId);
    text('device', c.device, TEXT_MAX, true);
  },
  ReportAttachmentFailed: (c) => {
    id('attachment_id', c.attachmentId);
    reason('reason', c.reason);
  },
  BeginDetaching: (c) => id('attachment_id', c.attachmentId),
  DeleteAttachment: (c) => id('attachment_id', c.attachmentId),
  ReportAttachmentDetached: (c) => id('attachment_id', c.attachmentId),
  AddVolumeSnapshot: (c) => id('snapshot_id', c.snapshotId),
  RemoveVolumeSnapshot: (c) => id('snapshot_id', c.snapshotId),
  BeginVolumeBackup: (c) => {
    id('backup_id', c.backupId);
    bool('force', c.force);
  },
  EndVolumeBackup: (c) => id('backup_id', c.backupId),
  BeginVolumeRestore: (c) => id('backup_id', c.backupId),
  EndVolumeRestore: (c) => {
    id('backup_id', c.backupId);
    sizeGb('size_gb', c.sizeGb);
  },
  BeginVolumeUpload: (c) => {
    id('image_id', c.imageId);
    bool('force', c.force);
  },
  EndVolumeUpload: (c) => {
    id('image_id', c.imageId);
    reason('reason', c.reason);
  },
  ResetVolumeStatus: (c) => {
    oneOf('status', c.status, VOLUME_RESET_STATUSES);
    reason('reason', c.reason);
  },

  CreateSnapshot: (c) => {
    whole('snapshot', c.snapshot, SNAPSHOT_RULES);
    hostId('host_id', c.hostId);
  },
  ReportSnapshotCreated: (c) => hostId('host_id', c.hostId),
  ReportSnapshotFailed: (c) => {
    hostId('host_id', c.hostId);
    reason('reason', c.reason);
  },
  UpdateSnapshot: (c) => patch('snapshot', c.snapshot, SNAPSHOT_RULES, SNAPSHOT_MUTABLE, c.updateMask),
  DeleteSnapshot: (c) => bool('force', c.force),
  ReportSnapshotDeleted: (c) => hostId('host_id', c.hostId),
  ResetSnapshotStatus: (c) => {
    oneOf('status', c.status, SNAPSHOT_RESET_STATUSES);
    reason('reason', c.reason);
  },

  CreateBackup: (c) => {
    whole('backup', c.backup, BACKUP_RULES);
    hostId('host_id', c.hostId);
  },
  ReportBackupCreated: (c) => {
    hostId('host_id', c.hostId);
    if (typeof c.checksum !== 'string' || !SHA256.test(c.checksum)) throw new InvalidArgumentError('checksum', `must be a sha256 in lower-case hex (64 characters), got "${String(c.checksum).slice(0, 80)}"`);
    int('size_bytes', c.sizeBytes, 0);
  },
  ReportBackupFailed: (c) => {
    hostId('host_id', c.hostId);
    reason('reason', c.reason);
  },
  DeleteBackup: (c) => bool('force', c.force),
  ReportBackupDeleted: (c) => hostId('host_id', c.hostId),
  RestoreBackup: (c) => id('volume_id', c.volumeId),
  ReportBackupRestored: (c) => {
    hostId('host_id', c.hostId);
    id('volume_id', c.volumeId);
  },
  ResetBackupStatus: (c) => {
    oneOf('status', c.status, BACKUP_RESET_STATUSES);
    reason('reason', c.reason);
  },

  SetBlockQuotaLimits: (c) => {
    const limits = (c.limits as Fields | undefined) ?? {};
    if (Object.keys(limits).length === 0) throw new InvalidArgumentError('limits', 'name at least one quota to set');
    for (const [name, limit] of Object.entries(limits)) {
      if (!QUOTA_NAMES.includes(name)) throw new InvalidArgumentError('limits', `unknown quota "${name}" (one of ${QUOTA_NAMES.join(', ')})`);
      int(`limits.${name}`, limit, -1, INT32_MAX);
    }
  },
  ReserveBlockQuota: (c) => {
    text('consumer_id', c.consumerId, TEXT_MAX, true);
    usage('usage', c.usage);
  },
  ReleaseBlockQuota: (c) => text('consumer_id', c.consumerId, TEXT_MAX, true),
  AdjustBlockQuota: (c) => {
    text('consumer_id', c.consumerId, TEXT_MAX, true);
    usage('usage', c.usage);
  },

  RegisterBlockHost: (c) => {
    hostId('host_id', c.hostId);
    text('backend', c.backend, TEXT_MAX, false);
    text('availability_zone', c.availabilityZone, TEXT_MAX, false);
    int('total_gb', c.totalGb, 0, INT32_MAX);
    if (c.stateDir !== undefined && c.stateDir !== null) text('state_dir', c.stateDir, 4096, true);
    bool('backup_store', c.backupStore);
  },
  ReportBlockCapacity: (c) => {
    hostId('host_id', c.hostId);
    int('total_gb', c.totalGb, 0, INT32_MAX);
    int('free_gb', c.freeGb, 0, INT32_MAX);
    if (c.freeGb > c.totalGb) throw new InvalidArgumentError('free_gb', `must be at most total_gb (${c.totalGb}), got ${c.freeGb}`);
  },
};

/** Every field rule of one block command; throws InvalidArgumentError naming the field. */
export function validateBlockCommand(command: { type: string } & Fields): void {
  COMMAND_RULES[command.type]?.(command);
}

/** The same rules as a rejection, for the deciders (undefined: the command passes). */
export function fieldProblem(command: { type: string } & Fields): Rejection | undefined {
  try {
    validateBlockCommand(command);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidArgumentError) return { code: 'INVALID_ARGUMENT', field: e.field, message: e.message };
    throw e;
  }
}
