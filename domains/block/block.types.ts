// The block storage resources as the domain sees them (Cinder's, shared/reference §5): the
// messages of proto/strata/block/v1/resources.proto with camelCase fields. Sizes are in GiB
// (`sizeGb`, whole numbers); ids are strings the API draws; times come from command envelopes.

export const BLOCK_DOMAIN = 'block';

/**
 * A volume's statuses, spelled as Cinder spells them (the machine's live states; it also has
 * `absent` before creation and `deleted` after). `retyping` is only reached by an admin's reset:
 * a retype that needs no migration is immediate here (migration is not supported). `uploading`
 * is Cinder's os-volume_upload_image: the volume's data goes to a new image, then it is back.
 */
export const VOLUME_STATUSES = [
  'creating',
  'available',
  'reserved',
  'attaching',
  'in-use',
  'detaching',
  'deleting',
  'error',
  'error_deleting',
  'extending',
  'error_extending',
  'backing-up',
  'restoring-backup',
  'error_restoring',
  'retyping',
  'uploading',
] as const;
export type VolumeStatus = (typeof VOLUME_STATUSES)[number];

/** A snapshot's statuses (live states; the machine also has `absent` and `deleted`). */
export const SNAPSHOT_STATUSES = ['creating', 'available', 'deleting', 'error', 'error_deleting'] as const;
export type SnapshotStatus = (typeof SNAPSHOT_STATUSES)[number];

/** A backup's statuses (live states; the machine also has `absent` and `deleted`). */
export const BACKUP_STATUSES = ['creating', 'available', 'deleting', 'restoring', 'error', 'error_deleting'] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

/** An attachment's statuses (Cinder's attach_status, the error ones aside: a failed attachment is removed). */
export const ATTACHMENT_STATUSES = ['reserved', 'attaching', 'attached', 'detaching'] as const;
export type AttachmentStatus = (typeof ATTACHMENT_STATUSES)[number];

export const VOLUME_FORMATS = ['raw', 'qcow2'] as const;
export type VolumeFormat = (typeof VOLUME_FORMATS)[number];

export const SOURCE_KINDS = ['', 'snapshot', 'volume', 'backup', 'image'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

export const ATTACH_MODES = ['rw', 'ro'] as const;
export type AttachMode = (typeof ATTACH_MODES)[number];

/** Cinder's quota names and defaults (groups aside: there are none here). -1 means unlimited. */
export const BLOCK_QUOTA_DEFAULTS = {
  volumes: 10,
  gigabytes: 1000,
  snapshots: 10,
  backups: 10,
  backup_gigabytes: 1000,
} as const;
export type BlockQuotaName = keyof typeof BLOCK_QUOTA_DEFAULTS;

/** The volume type extra spec that makes its volumes multiattach, and Cinder's value for true. */
export const MULTIATTACH_SPEC = 'multiattach';
export const MULTIATTACH_TRUE = '<is> True';

/** Cinder: a type's volumes are multiattach when its extra spec multiattach is "<is> True". */
export const isMultiattach = (extraSpecs: Readonly<Record<string, string>>): boolean =>
  (extraSpecs[MULTIATTACH_SPEC] ?? '').trim().toLowerCase() === MULTIATTACH_TRUE.toLowerCase();

/** An admin-defined kind of volume. */
export interface VolumeType {
  id: string;
  name: string;
  description: string;
  isPublic: boolean;
  extraSpecs: Record<string, string>;
  /** The volume_backend_name extra spec made explicit: '' = any backend. */
  backend: string;
}

/** What a volume was made from; kind '' = an empty volume. */
export interface VolumeSource {
  kind: SourceKind;
  id: string;
}

export interface Volume {
  id: string;
  projectId: string;
  userId: string;
  name: string;
  description: string;
  sizeGb: number;
  volumeTypeId: string;
  /** The backend of the storage host holding it. */
  backend: string;
  availabilityZone: string;
  bootable: boolean;
  /** From its type's extra spec multiattach="<is> True". */
  multiattach: boolean;
  metadata: Record<string, string>;
  format: VolumeFormat;
  source: VolumeSource;
  /** Set by the decider from the command's time. */
  createdAtMs: number;
}

/** Where a compute host reaches an attached volume (an NBD export of the storage host). */
export interface Connection {
  /** '' = no export yet. */
  host: string;
  port: number;
  exportName: string;
}

export interface Attachment {
  id: string;
  serverId: string;
  /** The compute host of the server. */
  hostId: string;
  mode: AttachMode;
  deleteOnTermination: boolean;
  status: AttachmentStatus;
  connection: Connection;
  /** The guest's device ('/dev/vdb'); '' until attached. */
  device: string;
}

export interface Snapshot {
  id: string;
  projectId: string;
  volumeId: string;
  name: string;
  description: string;
  sizeGb: number;
  metadata: Record<string, string>;
  createdAtMs: number;
}

export interface Backup {
  id: string;
  projectId: string;
  volumeId: string;
  /** '' = backed up from the volume itself. */
  snapshotId: string;
  name: string;
  description: string;
  sizeGb: number;
  createdAtMs: number;
}

/** A storage host as it registers itself (the block_host aggregate). */
export interface BlockHost {
  hostId: string;
  backend: string;
  availabilityZone: string;
  totalGb: number;
  /** Where it keeps volume files; absent = the agent's default. */
  stateDir?: string;
  /** It also stores backups. */
  backupStore: boolean;
}

export const emptyConnection = (): Connection => ({ host: '', port: 0, exportName: '' });
