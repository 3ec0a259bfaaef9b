// Queries over the block storage read models, shaped as Cinder shows them (and as the
// VolumeService's *Detail messages carry them): volume types, volumes with their attachments,
// snapshots, backups, a project's quotas, and the storage hosts with what their volumes allocate
// (the scheduler's input). Lists are ordered by id and paged by `after` (the last id of the
// previous page) and `limit`.
import { BLOCK_QUOTA_DEFAULTS } from '../../domains/block/block.types.js';
import type { Attachment, AttachMode, AttachmentStatus, Backup, BlockQuotaName, Snapshot, SourceKind, Volume, VolumeFormat, VolumeType } from '../../domains/block/block.types.js';
import type { Store } from '../../infra/store/store.js';

type Row = Record<string, any>;

const QUOTA_NAMES = Object.keys(BLOCK_QUOTA_DEFAULTS) as BlockQuotaName[];

export type { BlockQuotaName };

export type VolumeTypeRecord = VolumeType;

/** An attachment with its volume. */
export type AttachmentRecord = Attachment & { volumeId: string };

/** A volume as the API shows it. */
export type VolumeRecord = Volume & {
  /** The type's name ('' without a type, or when the type is gone). */
  volumeTypeName: string;
  /** Cinder's status (creating, available, in-use, ...). */
  status: string;
  /** detached, reserved, attaching, attached or detaching (from the attachments). */
  attachStatus: string;
  /** The storage host holding it (os-vol-host-attr:host). */
  hostId: string;
  /** The reason of the last status change ('' unless a host reported a failure or an admin gave one). */
  statusReason: string;
  /** In the order they were reserved. */
  attachments: AttachmentRecord[];
};

/** A snapshot with its status and storage host. */
export type SnapshotRecord = Snapshot & {
  /** creating, available, deleting, error or error_deleting. */
  status: string;
  statusReason: string;
  /** The storage host holding it (its volume's). */
  hostId: string;
};

/** A backup with its status and what its host stored. */
export type BackupRecord = Backup & {
  /** creating, available, deleting, restoring, error or error_deleting. */
  status: string;
  statusReason: string;
  /** sha256 hex of the data, '' until stored. */
  checksum: string;
  sizeBytes: number;
  /** The host whose backup store holds it. */
  hostId: string;
  /** The volume of the last restore ('' never restored). */
  restoreVolumeId: string;
};

export interface BlockQuotaRecord {
  projectId: string;
  /** Every quota name -> the project's limit, or Cinder's default (-1: unlimited). */
  limits: Record<BlockQuotaName, number>;
  /** Every quota name -> what the project's volumes, snapshots and backups hold. */
  inUse: Record<BlockQuotaName, number>;
}

export interface StorageHostRecord {
  hostId: string;
  backend: string;
  availabilityZone: string;
  /** From the last capacity report (the registration's until then). */
  totalGb: number;
  /** What the host last reported free (its total until it reports). */
  freeGb: number;
  /** The sum of the sizes of the volumes it holds. */
  allocatedGb: number;
  /** How many volumes it holds. */
  volumes: number;
  /** Whether it has a backup store. */
  backupStore: boolean;
  enabled: boolean;
  /** When it last registered or reported (its heartbeat; ms since the epoch). */
  reportedAtMs: number;
}

export interface Page {
  /** At most this many (all when absent). */
  limit?: number;
  /** The last id of the previous page. */
  after?: string;
}

const parse = <T>(v: unknown, fallback: T): T => (typeof v === 'string' && v !== '' ? (JSON.parse(v) as T) : fallback);

const typeOf = (r: Row): VolumeTypeRecord => ({
  id: r.id, name: r.name, description: r.description, isPublic: Boolean(r.is_public), extraSpecs: parse(r.extra_specs, {}), backend: r.backend,
});

const attachmentOf = (r: Row): AttachmentRecord => ({
  id: r.id, volumeId: r.volume_id, serverId: r.server_id, hostId: r.host_id, status: r.status as AttachmentStatus, device: r.device,
  mode: r.mode as AttachMode, deleteOnTermination: Boolean(r.delete_on_termination), connection: parse(r.connection, { host: '', port: 0, exportName: '' }),
});

const volumeOf = (r: Row, attachments: AttachmentRecord[]): VolumeRecord => ({
  id: r.id, projectId: r.project_id, userId: r.user_id, name: r.name, description: r.description, sizeGb: Number(r.size_gb),
  volumeTypeId: r.volume_type_id, volumeTypeName: r.volume_type_name ?? '', backend: r.backend, availabilityZone: r.availability_zone,
  bootable: Boolean(r.bootable), multiattach: Boolean(r.multiattach), metadata: parse(r.metadata, {}), format: r.format as VolumeFormat,
  source: { kind: r.source_kind as SourceKind, id: r.source_id }, createdAtMs: Number(r.created_at_ms), status: r.status, attachStatus: r.attach_status,
  hostId: r.host_id, statusReason: r.status_reason, attachments,
});

const snapshotOf = (r: Row): SnapshotRecord => ({
  id: r.id, projectId: r.project_id, volumeId: r.volume_id, name: r.name, description: r.description, sizeGb: Number(r.size_gb),
  metadata: parse(r.metadata, {}), status: r.status, statusReason: r.status_reason, hostId: r.host_id, createdAtMs: Number(r.created_at_ms),
});

const backupOf = (r: Row): BackupRecord => ({
  id: r.id, projectId: r.project_id, volumeId: r.volume_id, snapshotId: r.snapshot_id, name: r.name, description: r.description,
  sizeGb: Number(r.size_gb), status: r.status, statusReason: r.status_reason, checksum: r.checksum, sizeBytes: Number(r.size_bytes),
  hostId: r.host_id, restoreVolumeId: r.restore_volume_id, createdAtMs: Number(r.created_at_ms),
});

const VOLUME_SELECT = 'SELECT v.*, t.name AS volume_type_name FROM block_volumes v LEFT JOIN block_volume_types t ON t.id = v.volume_type_id';

/** WHERE clauses and params, plus the page's `after` and limit. */
function paged(where: string[], params: unknown[], page: Page, column = 'id'): { sql: string; params: unknown[] } {
  const w = [...where];
  const p = [...params];
  if (page.after) w.push(`${column} > $${p.push(page.after)}`);
  let sql = w.length ? ` WHERE ${w.join(' AND ')}` : '';
  sql += ` ORDER BY ${column}`;
  if (page.limit) sql += ` LIMIT ${Math.max(1, Math.floor(page.limit))}`;
  return { sql, params: p };
}

/** `column = $n` for each filter given (undefined and '' are no filter). */
function filters(pairs: readonly (readonly [string, string | undefined])[], params: unknown[]): string[] {
  const where: string[] = [];
  for (const [column, value] of pairs) if (value !== undefined && value !== '') where.push(`${column} = $${params.push(value)}`);
  return where;
}

export class BlockQueries {
  constructor(readonly store: Store) {}

  /** A volume type by id, else by name (the API takes either). */
  async getVolumeType(idOrName: string): Promise<VolumeTypeRecord | undefined> {
    const [byId] = await this.store.query<Row>('SELECT * FROM block_volume_types WHERE id = $1', [idOrName]);
    if (byId) return typeOf(byId);
    const [byName] = await this.store.query<Row>('SELECT * FROM block_volume_types WHERE name = $1 ORDER BY id LIMIT 1', [idOrName]);
    return byName && typeOf(byName);
  }

  /** The public volume types, and with includePrivate the private ones too (admins). */
  async listVolumeTypes(options: { includePrivate?: boolean } & Page = {}): Promise<VolumeTypeRecord[]> {
    const q = paged(options.includePrivate ? [] : ['is_public = 1'], [], options);
    return (await this.store.query<Row>(`SELECT * FROM block_volume_types${q.sql}`, q.params)).map(typeOf);
  }

  /** How many volumes (not deleted) are of a type: a type in use cannot be deleted. */
  async volumesOfType(typeId: string): Promise<number> {
    const [row] = await this.store.query<Row>('SELECT COUNT(*) AS n FROM block_volumes WHERE volume_type_id = $1', [typeId]);
    return Number(row?.n ?? 0);
  }

  private async attachmentsOf(volumeIds: string[]): Promise<Map<string, AttachmentRecord[]>> {
    const out = new Map<string, AttachmentRecord[]>(volumeIds.map((id) => [id, []]));
    if (volumeIds.length === 0) return out;
    const rows = await this.store.query<Row>(
      `SELECT * FROM block_volume_attachments WHERE volume_id IN (${volumeIds.map((_, i) => `$${i + 1}`).join(', ')}) ORDER BY seq, id`,
      volumeIds,
    );
    for (const r of rows) out.get(r.volume_id)?.push(attachmentOf(r));
    return out;
  }

  private async volumes(rows: Row[]): Promise<VolumeRecord[]> {
    const attachments = await this.attachmentsOf(rows.map((r) => r.id));
    return rows.map((r) => volumeOf(r, attachments.get(r.id) ?? []));
  }

  async getVolume(id: string): Promise<VolumeRecord | undefined> {
    return (await this.volumes(await this.store.query<Row>(`${VOLUME_SELECT} WHERE v.id = $1`, [id])))[0];
  }

  /** Volumes (projectId undefined: every project's), optionally of one status or name. */
  async listVolumes(options: { projectId?: string; status?: string; name?: string } & Page = {}): Promise<VolumeRecord[]> {
    const params: unknown[] = [];
    const where = filters([['v.project_id', options.projectId], ['v.status', options.status], ['v.name', options.name]], params);
    const q = paged(where, params, options, 'v.id');
    return this.volumes(await this.store.query<Row>(`${VOLUME_SELECT}${q.sql}`, q.params));
  }

  /** A server's volume attachments (any status), in the order they were reserved. */
  async attachmentsOfServer(serverId: string): Promise<AttachmentRecord[]> {
    return (await this.store.query<Row>('SELECT * FROM block_volume_attachments WHERE server_id = $1 ORDER BY seq, id', [serverId])).map(attachmentOf);
  }

  async getAttachment(id: string): Promise<AttachmentRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM block_volume_attachments WHERE id = $1', [id]);
    return row && attachmentOf(row);
  }

  async getSnapshot(id: string): Promise<SnapshotRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM block_snapshots WHERE id = $1', [id]);
    return row && snapshotOf(row);
  }

  async listSnapshots(options: { projectId?: string; volumeId?: string; status?: string } & Page = {}): Promise<SnapshotRecord[]> {
    const params: unknown[] = [];
    const where = filters([['project_id', options.projectId], ['volume_id', options.volumeId], ['status', options.status]], params);
    const q = paged(where, params, options);
    return (await this.store.query<Row>(`SELECT * FROM block_snapshots${q.sql}`, q.params)).map(snapshotOf);
  }

  /** The ids of a volume's snapshots (not deleted): a cascade deletes them. */
  async snapshotsOfVolume(volumeId: string): Promise<string[]> {
    return (await this.store.query<Row>('SELECT id FROM block_snapshots WHERE volume_id = $1 ORDER BY id', [volumeId])).map((r) => r.id);
  }

  async getBackup(id: string): Promise<BackupRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM block_backups WHERE id = $1', [id]);
    return row && backupOf(row);
  }

  async listBackups(options: { projectId?: string; volumeId?: string; status?: string } & Page = {}): Promise<BackupRecord[]> {
    const params: unknown[] = [];
    const where = filters([['project_id', options.projectId], ['volume_id', options.volumeId], ['status', options.status]], params);
    const q = paged(where, params, options);
    return (await this.store.query<Row>(`SELECT * FROM block_backups${q.sql}`, q.params)).map(backupOf);
  }

  /** A project's block quotas: every limit (Cinder's default where none was set) and what is in use. */
  async getBlockQuota(projectId: string): Promise<BlockQuotaRecord> {
    const limits: Record<BlockQuotaName, number> = { ...BLOCK_QUOTA_DEFAULTS };
    const inUse = Object.fromEntries(QUOTA_NAMES.map((n) => [n, 0])) as Record<BlockQuotaName, number>;
    for (const r of await this.store.query<Row>('SELECT name, quota_limit FROM block_quota_limits WHERE project_id = $1', [projectId])) {
      limits[r.name as BlockQuotaName] = Number(r.quota_limit);
    }
    for (const r of await this.store.query<Row>('SELECT name, SUM(amount) AS n FROM block_quota_reservations WHERE project_id = $1 GROUP BY name', [projectId])) {
      inUse[r.name as BlockQuotaName] = Number(r.n);
    }
    return { projectId, limits, inUse };
  }

  /** The storage hosts by id, with what their volumes allocate: the scheduler's input. */
  async storageHosts(): Promise<StorageHostRecord[]> {
    const rows = await this.store.query<Row>(
      `SELECT h.*,
         (SELECT COALESCE(SUM(v.size_gb), 0) FROM block_volumes v WHERE v.host_id = h.host_id AND v.status <> 'deleted') AS allocated_gb,
         (SELECT COUNT(*) FROM block_volumes v WHERE v.host_id = h.host_id AND v.status <> 'deleted') AS volume_count
       FROM block_storage_hosts h ORDER BY h.host_id`,
    );
    return rows.map((r) => ({
      hostId: r.host_id, backend: r.backend, availabilityZone: r.availability_zone, totalGb: Number(r.total_gb), freeGb: Number(r.free_gb),
      allocatedGb: Number(r.allocated_gb), volumes: Number(r.volume_count), backupStore: Boolean(r.backup_store), enabled: Boolean(r.enabled),
      reportedAtMs: Number(r.reported_at_ms),
    }));
  }

  async getStorageHost(hostId: string): Promise<StorageHostRecord | undefined> {
    return (await this.storageHosts()).find((h) => h.hostId === hostId);
  }
}
