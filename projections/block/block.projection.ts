// The block storage read models (Cinder's tables): volume types, volumes with their status,
// attach_status, storage host and last status reason, their attachments (one row each), snapshots,
// backups with their checksum, quotas (a project's limits and what each consumer holds) and the
// storage hosts with their last capacity report. Pure: an event in, statements out (SQL that
// SQLite and PostgreSQL share; booleans are 0/1 integers, JSON is TEXT). Every row is written by
// the events of one aggregate only (a volume's attachments by the volume, a quota's reservations
// by the project's quota), so the result does not depend on how partitions interleave; what joins
// aggregates (a type's name beside a volume, a host's allocated gigabytes) is joined when read.
import { blockCodecFor } from '../../infra/codecs/block.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement } from '../../infra/store/store.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';

type Ev = Record<string, any> & { type: string };

const b = (v: unknown) => (v ? 1 : 0);
const json = (v: unknown) => JSON.stringify(v ?? null);
const int = (v: unknown) => Number(v ?? 0);

export const BLOCK_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS block_volume_types (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL, is_public INTEGER NOT NULL,
     extra_specs TEXT NOT NULL, backend TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  // attach_status is derived from the volume's attachment rows each time one changes (both are the volume's).
  `CREATE TABLE IF NOT EXISTS block_volumes (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL,
     description TEXT NOT NULL, size_gb INTEGER NOT NULL, volume_type_id TEXT NOT NULL, backend TEXT NOT NULL, availability_zone TEXT NOT NULL,
     bootable INTEGER NOT NULL, multiattach INTEGER NOT NULL, metadata TEXT NOT NULL, format TEXT NOT NULL, source_kind TEXT NOT NULL,
     source_id TEXT NOT NULL, status TEXT NOT NULL, attach_status TEXT NOT NULL, host_id TEXT NOT NULL, status_reason TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS block_volume_attachments (id TEXT PRIMARY KEY, volume_id TEXT NOT NULL, server_id TEXT NOT NULL, host_id TEXT NOT NULL,
     status TEXT NOT NULL, device TEXT NOT NULL, mode TEXT NOT NULL, delete_on_termination INTEGER NOT NULL, connection TEXT NOT NULL,
     seq BIGINT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS block_snapshots (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, volume_id TEXT NOT NULL, name TEXT NOT NULL,
     description TEXT NOT NULL, size_gb INTEGER NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL, status_reason TEXT NOT NULL,
     host_id TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS block_backups (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, volume_id TEXT NOT NULL, snapshot_id TEXT NOT NULL,
     name TEXT NOT NULL, description TEXT NOT NULL, size_gb INTEGER NOT NULL, status TEXT NOT NULL, status_reason TEXT NOT NULL, checksum TEXT NOT NULL,
     size_bytes BIGINT NOT NULL, host_id TEXT NOT NULL, restore_volume_id TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS block_quota_limits (project_id TEXT NOT NULL, name TEXT NOT NULL, quota_limit BIGINT NOT NULL,
     PRIMARY KEY (project_id, name))`,
  // What a consumer (a volume, snapshot or backup) holds, one row per quota name: in use is a SUM.
  `CREATE TABLE IF NOT EXISTS block_quota_reservations (project_id TEXT NOT NULL, consumer_id TEXT NOT NULL, name TEXT NOT NULL, amount BIGINT NOT NULL,
     PRIMARY KEY (project_id, consumer_id, name))`,
  `CREATE TABLE IF NOT EXISTS block_storage_hosts (host_id TEXT PRIMARY KEY, backend TEXT NOT NULL, availability_zone TEXT NOT NULL,
     total_gb BIGINT NOT NULL, free_gb BIGINT NOT NULL, state_dir TEXT NOT NULL, backup_store INTEGER NOT NULL, enabled INTEGER NOT NULL,
     registered_at_ms BIGINT NOT NULL, reported_at_ms BIGINT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS block_volume_types_name ON block_volume_types (name)`,
  `CREATE INDEX IF NOT EXISTS block_volumes_project ON block_volumes (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS block_volumes_type ON block_volumes (volume_type_id)`,
  `CREATE INDEX IF NOT EXISTS block_volumes_host ON block_volumes (host_id)`,
  `CREATE INDEX IF NOT EXISTS block_volume_attachments_volume ON block_volume_attachments (volume_id, seq)`,
  `CREATE INDEX IF NOT EXISTS block_volume_attachments_server ON block_volume_attachments (server_id, seq)`,
  `CREATE INDEX IF NOT EXISTS block_snapshots_project ON block_snapshots (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS block_snapshots_volume ON block_snapshots (volume_id, id)`,
  `CREATE INDEX IF NOT EXISTS block_backups_project ON block_backups (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS block_backups_volume ON block_backups (volume_id, id)`,
];

export const BLOCK_TABLES = [
  'block_volume_types',
  'block_volumes',
  'block_volume_attachments',
  'block_snapshots',
  'block_backups',
  'block_quota_limits',
  'block_quota_reservations',
  'block_storage_hosts',
];

/**
 * The events this projection turns into rows. It passes the others: statuses come from the
 * *StatusChanged events (VolumeDeleting, VolumeExtending, VolumeBackupStarted, VolumeRestoreStarted, VolumeUploadStarted,
 * SnapshotDeleting and BackupDeleting move nothing else shown), and a volume's snapshot list is the
 * snapshots' volume_id (VolumeSnapshotAdded/Removed are the decider's own bookkeeping).
 */
export const BLOCK_PROJECTED_EVENTS = [
  'VolumeTypeCreated', 'VolumeTypeUpdated', 'VolumeTypeDeleted',
  'VolumeCreated', 'VolumeUpdated', 'VolumeStatusChanged', 'VolumeExtended', 'VolumeRetyped', 'VolumeDeleted',
  'AttachmentReserved', 'AttachmentUpdated', 'AttachmentRemoved',
  'SnapshotCreated', 'SnapshotUpdated', 'SnapshotStatusChanged', 'SnapshotDeleted',
  'BackupCreated', 'BackupStored', 'BackupStatusChanged', 'BackupRestoring', 'BackupDeleted',
  'BlockQuotaLimitsSet', 'BlockQuotaReserved', 'BlockQuotaReleased', 'BlockQuotaAdjusted',
  'BlockHostRegistered', 'BlockCapacityReported', 'BlockHostRemoved',
] as const;

/**
 * The volume's attach_status from its attachment rows, as Cinder shows it: attached if any is
 * attached, else the most advanced of detaching, attaching, reserved, else detached.
 */
const attachStatus = (volumeId: string): Statement => ({
  sql: `UPDATE block_volumes SET attach_status = CASE
          WHEN EXISTS (SELECT 1 FROM block_volume_attachments a WHERE a.volume_id = block_volumes.id AND a.status = 'attached') THEN 'attached'
          WHEN EXISTS (SELECT 1 FROM block_volume_attachments a WHERE a.volume_id = block_volumes.id AND a.status = 'detaching') THEN 'detaching'
          WHEN EXISTS (SELECT 1 FROM block_volume_attachments a WHERE a.volume_id = block_volumes.id AND a.status = 'attaching') THEN 'attaching'
          WHEN EXISTS (SELECT 1 FROM block_volume_attachments a WHERE a.volume_id = block_volumes.id AND a.status = 'reserved') THEN 'reserved'
          ELSE 'detached' END
        WHERE id = $1`,
  params: [volumeId],
});

/** A connection as the storage host exported it (host '' while there is none). */
const connectionOf = (c: Ev | null | undefined) => ({ host: c?.host ?? '', port: int(c?.port), exportName: c?.exportName ?? '' });

export function blockStatements(event: EventEnvelope): Statement[] {
  const e = blockCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Ev;
  const id = event.aggregateId;
  const at = event.occurredAtMs;
  switch (e.type) {
    case 'VolumeTypeCreated':
    case 'VolumeTypeUpdated': {
      const t = e.volumeType ?? {};
      return [
        {
          sql: `INSERT INTO block_volume_types (id, name, description, is_public, extra_specs, backend, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description, is_public = excluded.is_public,
                  extra_specs = excluded.extra_specs, backend = excluded.backend, updated_at_ms = excluded.updated_at_ms`,
          params: [id, t.name ?? '', t.description ?? '', b(t.isPublic), json(t.extraSpecs ?? {}), t.backend ?? '', at],
        },
      ];
    }
    case 'VolumeTypeDeleted':
      return [{ sql: 'DELETE FROM block_volume_types WHERE id = $1', params: [id] }];

    case 'VolumeCreated': {
      const v = e.volume ?? {};
      const source = v.source ?? {};
      return [
        {
          sql: `INSERT INTO block_volumes (id, project_id, user_id, name, description, size_gb, volume_type_id, backend, availability_zone, bootable,
                  multiattach, metadata, format, source_kind, source_id, status, attach_status, host_id, status_reason, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'creating', 'detached', $16, '', $17, $18)
                ON CONFLICT (id) DO NOTHING`,
          params: [id, v.projectId ?? '', v.userId ?? '', v.name ?? '', v.description ?? '', int(v.sizeGb), v.volumeTypeId ?? '', v.backend ?? '',
            v.availabilityZone ?? '', b(v.bootable), b(v.multiattach), json(v.metadata ?? {}), v.format ?? '', source.kind ?? '', source.id ?? '',
            e.hostId ?? '', int(v.createdAtMs) || at, at],
        },
      ];
    }
    case 'VolumeUpdated': {
      // The volume as it is after the update: only what UpdateVolume may change is taken.
      const v = e.volume ?? {};
      return [
        {
          sql: 'UPDATE block_volumes SET name = $2, description = $3, metadata = $4, bootable = $5, updated_at_ms = $6 WHERE id = $1',
          params: [id, v.name ?? '', v.description ?? '', json(v.metadata ?? {}), b(v.bootable), at],
        },
      ];
    }
    case 'VolumeStatusChanged':
      // The reason is the last change's: a success clears a failure's reason.
      return [{ sql: 'UPDATE block_volumes SET status = $2, status_reason = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.status ?? '', e.reason ?? '', at] }];
    case 'VolumeExtended':
      return [{ sql: 'UPDATE block_volumes SET size_gb = $2, updated_at_ms = $3 WHERE id = $1', params: [id, int(e.sizeGb), at] }];
    case 'VolumeRetyped':
      return [
        {
          sql: 'UPDATE block_volumes SET volume_type_id = $2, backend = $3, multiattach = $4, updated_at_ms = $5 WHERE id = $1',
          params: [id, e.volumeTypeId ?? '', e.backend ?? '', b(e.multiattach), at],
        },
      ];
    case 'VolumeDeleted':
      return [
        { sql: 'DELETE FROM block_volumes WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM block_volume_attachments WHERE volume_id = $1', params: [id] },
      ];

    case 'AttachmentReserved':
    case 'AttachmentUpdated': {
      // The attachment as it is now (its status, connection and device so far).
      const a = e.attachment ?? {};
      return [
        {
          sql: `INSERT INTO block_volume_attachments (id, volume_id, server_id, host_id, status, device, mode, delete_on_termination, connection, seq,
                  created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
                ON CONFLICT (id) DO UPDATE SET server_id = excluded.server_id, host_id = excluded.host_id, status = excluded.status, device = excluded.device,
                  mode = excluded.mode, delete_on_termination = excluded.delete_on_termination, connection = excluded.connection,
                  updated_at_ms = excluded.updated_at_ms`,
          params: [a.id ?? '', id, a.serverId ?? '', a.hostId ?? '', a.status ?? '', a.device ?? '', a.mode ?? '', b(a.deleteOnTermination),
            json(connectionOf(a.connection)), event.version, at],
        },
        attachStatus(id),
      ];
    }
    case 'AttachmentRemoved':
      return [
        { sql: 'DELETE FROM block_volume_attachments WHERE id = $1 AND volume_id = $2', params: [e.attachmentId ?? '', id] },
        attachStatus(id),
      ];

    case 'SnapshotCreated': {
      const s = e.snapshot ?? {};
      return [
        {
          sql: `INSERT INTO block_snapshots (id, project_id, volume_id, name, description, size_gb, metadata, status, status_reason, host_id,
                  created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'creating', '', $8, $9, $10) ON CONFLICT (id) DO NOTHING`,
          params: [id, s.projectId ?? '', s.volumeId ?? '', s.name ?? '', s.description ?? '', int(s.sizeGb), json(s.metadata ?? {}), e.hostId ?? '',
            int(s.createdAtMs) || at, at],
        },
      ];
    }
    case 'SnapshotUpdated': {
      const s = e.snapshot ?? {};
      return [
        {
          sql: 'UPDATE block_snapshots SET name = $2, description = $3, metadata = $4, updated_at_ms = $5 WHERE id = $1',
          params: [id, s.name ?? '', s.description ?? '', json(s.metadata ?? {}), at],
        },
      ];
    }
    case 'SnapshotStatusChanged':
      return [{ sql: 'UPDATE block_snapshots SET status = $2, status_reason = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.status ?? '', e.reason ?? '', at] }];
    case 'SnapshotDeleted':
      return [{ sql: 'DELETE FROM block_snapshots WHERE id = $1', params: [id] }];

    case 'BackupCreated': {
      const k = e.backup ?? {};
      return [
        {
          sql: `INSERT INTO block_backups (id, project_id, volume_id, snapshot_id, name, description, size_gb, status, status_reason, checksum, size_bytes,
                  host_id, restore_volume_id, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'creating', '', '', 0, $8, '', $9, $10)
                ON CONFLICT (id) DO NOTHING`,
          params: [id, k.projectId ?? '', k.volumeId ?? '', k.snapshotId ?? '', k.name ?? '', k.description ?? '', int(k.sizeGb), e.hostId ?? '',
            int(k.createdAtMs) || at, at],
        },
      ];
    }
    case 'BackupStored':
      return [{ sql: 'UPDATE block_backups SET checksum = $2, size_bytes = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.checksum ?? '', int(e.sizeBytes), at] }];
    case 'BackupRestoring':
      return [{ sql: 'UPDATE block_backups SET restore_volume_id = $2, updated_at_ms = $3 WHERE id = $1', params: [id, e.volumeId ?? '', at] }];
    case 'BackupStatusChanged':
      return [{ sql: 'UPDATE block_backups SET status = $2, status_reason = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.status ?? '', e.reason ?? '', at] }];
    case 'BackupDeleted':
      return [{ sql: 'DELETE FROM block_backups WHERE id = $1', params: [id] }];

    // A quota's aggregate id is its project.
    case 'BlockQuotaLimitsSet':
      return Object.entries((e.limits ?? {}) as Record<string, number>).map(([name, limit]) => ({
        sql: `INSERT INTO block_quota_limits (project_id, name, quota_limit) VALUES ($1, $2, $3)
              ON CONFLICT (project_id, name) DO UPDATE SET quota_limit = excluded.quota_limit`,
        params: [id, name, Number(limit)],
      }));
    case 'BlockQuotaReserved':
      // What the consumer holds from now on (a reservation again replaces the former one).
      return [
        { sql: 'DELETE FROM block_quota_reservations WHERE project_id = $1 AND consumer_id = $2', params: [id, e.consumerId ?? ''] },
        ...holdings(id, e.consumerId ?? '', e.usage),
      ];
    case 'BlockQuotaAdjusted':
      // The consumer's new holding of each quota named (an extend's gigabytes); the others stay. As
      // the decider keeps them, holdings are positive: a zero one is no row.
      return Object.entries((e.usage ?? {}) as Record<string, number>).map(([name, n]) =>
        Number(n) > 0
          ? {
              sql: `INSERT INTO block_quota_reservations (project_id, consumer_id, name, amount) VALUES ($1, $2, $3, $4)
                    ON CONFLICT (project_id, consumer_id, name) DO UPDATE SET amount = excluded.amount`,
              params: [id, e.consumerId ?? '', name, Number(n)],
            }
          : { sql: 'DELETE FROM block_quota_reservations WHERE project_id = $1 AND consumer_id = $2 AND name = $3', params: [id, e.consumerId ?? '', name] },
      );
    case 'BlockQuotaReleased':
      return [{ sql: 'DELETE FROM block_quota_reservations WHERE project_id = $1 AND consumer_id = $2', params: [id, e.consumerId ?? ''] }];

    // A storage host's aggregate id is the host.
    case 'BlockHostRegistered':
      // Free is the total until the host reports otherwise; registering again keeps the last report's free.
      return [
        {
          sql: `INSERT INTO block_storage_hosts (host_id, backend, availability_zone, total_gb, free_gb, state_dir, backup_store, enabled, registered_at_ms,
                  reported_at_ms) VALUES ($1, $2, $3, $4, $4, $5, $6, 1, $7, $7)
                ON CONFLICT (host_id) DO UPDATE SET backend = excluded.backend, availability_zone = excluded.availability_zone, total_gb = excluded.total_gb,
                  state_dir = excluded.state_dir, backup_store = excluded.backup_store, enabled = 1, registered_at_ms = excluded.registered_at_ms`,
          params: [id, e.backend ?? '', e.availabilityZone ?? '', int(e.totalGb), e.stateDir ?? '', b(e.backupStore), at],
        },
      ];
    case 'BlockCapacityReported':
      return [{ sql: 'UPDATE block_storage_hosts SET total_gb = $2, free_gb = $3, reported_at_ms = $4 WHERE host_id = $1', params: [id, int(e.totalGb), int(e.freeGb), at] }];
    case 'BlockHostRemoved':
      return [{ sql: 'DELETE FROM block_storage_hosts WHERE host_id = $1', params: [id] }];
    default:
      return [];
  }
}

function holdings(projectId: string, consumerId: string, usage: unknown): Statement[] {
  return Object.entries((usage ?? {}) as Record<string, number>).filter(([, n]) => Number(n) > 0).map(([name, n]) => ({
    sql: 'INSERT INTO block_quota_reservations (project_id, consumer_id, name, amount) VALUES ($1, $2, $3, $4)',
    params: [projectId, consumerId, name, Number(n)],
  }));
}

export const blockProjection: Projection = {
  name: 'block',
  topics: [domainTopics(BLOCK_DOMAIN).events],
  handles: BLOCK_PROJECTED_EVENTS,
  schema: BLOCK_SCHEMA,
  tables: BLOCK_TABLES,
  apply: (event: EventEnvelope, _position: Position) => blockStatements(event),
};
