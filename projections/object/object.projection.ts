// The object storage read models (Swift's account and container databases): containers with their
// metadata, ACLs and quotas; every object's recorded version (the container listing); per container
// counts of objects and bytes; quarantined replicas; and the ring of each storage policy with its
// builder's devices. Pure: an event in, statements out (SQL that SQLite and PostgreSQL share; JSON
// is TEXT). Every row is written by the events of one aggregate type only (a container's row by
// the container, the listing and the container stats by the objects, the ring by the ring), so the
// result does not depend on how partitions interleave; what joins them (a container's counts beside
// its metadata, an account's totals) is joined when read. The container stats row is written by
// every object of the container, from different partitions: it is only ever incremented, and
// increments commute.
//
// Names sort in byte order of their UTF-8 (Swift's listing order). PostgreSQL's TEXT order is its
// collation's and SQLite cannot parse PostgreSQL's COLLATE "C", so one shared DDL cannot declare a
// byte-order text column; every listed name has beside it its UTF-8 bytes (name_key, BYTEA: a BLOB
// on SQLite, compared by memcmp, and bytea on PostgreSQL, compared bytewise) and listings order,
// bound and page by that key through its unique index.
import { objectCodecFor } from '../../infra/codecs/object.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement } from '../../infra/store/store.js';
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';

type Ev = Record<string, any> & { type: string };

const json = (v: unknown) => JSON.stringify(v ?? null);
const int = (v: unknown) => Number(v ?? 0);

/** A name's sort key: its UTF-8 bytes (byte order is Swift's listing order). */
export const nameKey = (name: string): Buffer => Buffer.from(name, 'utf8');

/** Milliseconds of a Swift timestamp ("1764640000.12345"), without going through a float. */
export function timestampMs(timestamp: string): number {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(timestamp ?? '');
  if (!m) return 0;
  return Number(m[1]) * 1000 + Number(((m[2] ?? '') + '000').slice(0, 3));
}

export const OBJECT_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS object_containers (account TEXT NOT NULL, name TEXT NOT NULL, name_key BYTEA NOT NULL, metadata TEXT NOT NULL,
     read_acl TEXT NOT NULL, write_acl TEXT NOT NULL, quota_bytes BIGINT NOT NULL, quota_count BIGINT NOT NULL, created_at_ms BIGINT NOT NULL,
     updated_at_ms BIGINT NOT NULL, PRIMARY KEY (account, name))`,
  // The objects' rows: one per name, the recorded version (a deleted object has none).
  `CREATE TABLE IF NOT EXISTS object_objects (account TEXT NOT NULL, container TEXT NOT NULL, name TEXT NOT NULL, name_key BYTEA NOT NULL,
     timestamp TEXT NOT NULL, etag TEXT NOT NULL, size BIGINT NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL,
     partition INTEGER NOT NULL, segments TEXT NOT NULL, ring_version INTEGER NOT NULL, last_modified_ms BIGINT NOT NULL,
     PRIMARY KEY (account, container, name))`,
  // Written by object events only, by increments: kept when its container is deleted (a container
  // created again under the same name lists the objects still recorded in it).
  `CREATE TABLE IF NOT EXISTS object_container_stats (account TEXT NOT NULL, container TEXT NOT NULL, object_count BIGINT NOT NULL,
     bytes_used BIGINT NOT NULL, PRIMARY KEY (account, container))`,
  `CREATE TABLE IF NOT EXISTS object_quarantines (object_id TEXT NOT NULL, device_id INTEGER NOT NULL, timestamp TEXT NOT NULL, reason TEXT NOT NULL,
     at_ms BIGINT NOT NULL, PRIMARY KEY (object_id, device_id, timestamp))`,
  // The ring of a storage policy: its current assignment (devices, table, version) from the last rebalance.
  `CREATE TABLE IF NOT EXISTS object_ring (policy TEXT PRIMARY KEY, part_power INTEGER NOT NULL, replicas INTEGER NOT NULL, version INTEGER NOT NULL,
     devices TEXT NOT NULL, assignment TEXT NOT NULL, last_moved INTEGER NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  // The ring builder's devices (what the next rebalance assigns), one row each: a row per device
  // keeps the projection pure (a JSON array would need the previous value or dialect-specific JSON functions).
  `CREATE TABLE IF NOT EXISTS object_ring_builder (policy TEXT NOT NULL, device_id INTEGER NOT NULL, region INTEGER NOT NULL, zone INTEGER NOT NULL,
     host TEXT NOT NULL, device TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL, PRIMARY KEY (policy, device_id))`,
  `CREATE UNIQUE INDEX IF NOT EXISTS object_containers_key ON object_containers (account, name_key)`,
  `CREATE UNIQUE INDEX IF NOT EXISTS object_objects_key ON object_objects (account, container, name_key)`,
  `CREATE INDEX IF NOT EXISTS object_quarantines_at ON object_quarantines (at_ms, object_id)`,
];

export const OBJECT_TABLES = ['object_containers', 'object_objects', 'object_container_stats', 'object_quarantines', 'object_ring', 'object_ring_builder'];

export const OBJECT_PROJECTED_EVENTS = [
  'ContainerCreated', 'ContainerUpdated', 'ContainerDeleted',
  'ObjectRecorded', 'ObjectMetadataUpdated', 'ObjectDeleted', 'ReplicaQuarantined',
  'RingCreated', 'RingDeviceAdded', 'RingDeviceRemoved', 'RingDeviceWeightSet', 'RingDeviceAddressSet', 'RingRebalanced',
] as const;

/** The container's counts moved by (objects, bytes): an increment, which commutes with the others. */
const stats = (account: string, container: string, objects: number, bytes: number): Statement => ({
  sql: `INSERT INTO object_container_stats (account, container, object_count, bytes_used) VALUES ($1, $2, $3, $4)
        ON CONFLICT (account, container) DO UPDATE SET object_count = object_container_stats.object_count + excluded.object_count,
          bytes_used = object_container_stats.bytes_used + excluded.bytes_used`,
  params: [account, container, objects, bytes],
});

const deviceOf = (d: Ev | null | undefined) => ({
  id: int(d?.id), region: int(d?.region), zone: int(d?.zone), host: d?.host ?? '', device: d?.device ?? '', weight: Number(d?.weight ?? 0),
});

const segmentsOf = (segments: unknown) => ((segments ?? []) as Ev[]).map((s) => ({ path: s.path ?? '', etag: s.etag ?? '', size: int(s.size) }));

export function objectStatements(event: EventEnvelope): Statement[] {
  const e = objectCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Ev;
  const id = event.aggregateId;
  const at = event.occurredAtMs;
  switch (e.type) {
    case 'ContainerCreated':
    case 'ContainerUpdated': {
      // The whole container after the change.
      const c = e.container ?? {};
      return [
        {
          sql: `INSERT INTO object_containers (account, name, name_key, metadata, read_acl, write_acl, quota_bytes, quota_count, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (account, name) DO UPDATE SET metadata = excluded.metadata, read_acl = excluded.read_acl, write_acl = excluded.write_acl,
                  quota_bytes = excluded.quota_bytes, quota_count = excluded.quota_count, created_at_ms = excluded.created_at_ms,
                  updated_at_ms = excluded.updated_at_ms`,
          params: [c.account ?? '', c.name ?? '', nameKey(c.name ?? ''), json(c.metadata ?? {}), json(c.readAcl ?? []), json(c.writeAcl ?? []),
            int(c.quotaBytes), int(c.quotaCount), int(c.createdAtMs) || at, at],
        },
      ];
    }
    case 'ContainerDeleted': {
      const c = e.container ?? {};
      return [{ sql: 'DELETE FROM object_containers WHERE account = $1 AND name = $2', params: [c.account ?? '', c.name ?? ''] }];
    }

    case 'ObjectRecorded': {
      // The version replaces any older one: one more object unless it replaced one, its size less the replaced one's.
      const o = e.object ?? {};
      const account = o.account ?? '';
      const container = o.container ?? '';
      return [
        {
          sql: `INSERT INTO object_objects (account, container, name, name_key, timestamp, etag, size, content_type, metadata, partition, segments,
                  ring_version, last_modified_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                ON CONFLICT (account, container, name) DO UPDATE SET timestamp = excluded.timestamp, etag = excluded.etag, size = excluded.size,
                  content_type = excluded.content_type, metadata = excluded.metadata, partition = excluded.partition, segments = excluded.segments,
                  ring_version = excluded.ring_version, last_modified_ms = excluded.last_modified_ms`,
          params: [account, container, o.name ?? '', nameKey(o.name ?? ''), o.timestamp ?? '', o.etag ?? '', int(o.size), o.contentType ?? '',
            json(o.metadata ?? {}), int(o.partition), json(segmentsOf(o.segments)), int(o.ringVersion), timestampMs(o.timestamp ?? '')],
        },
        stats(account, container, e.replaced ? 0 : 1, int(o.size) - (e.replaced ? int(e.replacedSize) : 0)),
      ];
    }
    case 'ObjectMetadataUpdated': {
      // Swift's POST replaces the user metadata (and may set the content type); the data and its timestamp stay.
      const o = e.object ?? {};
      return [
        {
          sql: 'UPDATE object_objects SET metadata = $4, content_type = $5 WHERE account = $1 AND container = $2 AND name = $3',
          params: [o.account ?? '', o.container ?? '', o.name ?? '', json(o.metadata ?? {}), o.contentType ?? ''],
        },
      ];
    }
    case 'ObjectDeleted': {
      const o = e.object ?? {};
      const account = o.account ?? '';
      const container = o.container ?? '';
      return [
        { sql: 'DELETE FROM object_objects WHERE account = $1 AND container = $2 AND name = $3', params: [account, container, o.name ?? ''] },
        stats(account, container, -1, -int(o.size)),
      ];
    }
    case 'ReplicaQuarantined':
      // The envelope's aggregate id names the object ("<account>/<container>/<object>").
      return [
        {
          sql: `INSERT INTO object_quarantines (object_id, device_id, timestamp, reason, at_ms) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (object_id, device_id, timestamp) DO UPDATE SET reason = excluded.reason, at_ms = excluded.at_ms`,
          params: [id, int(e.deviceId), e.timestamp ?? '', e.reason ?? '', at],
        },
      ];

    // A ring's aggregate id is its storage policy.
    case 'RingCreated':
      return [
        {
          sql: `INSERT INTO object_ring (policy, part_power, replicas, version, devices, assignment, last_moved, updated_at_ms)
                VALUES ($1, $2, $3, 0, '[]', '', 0, $4) ON CONFLICT (policy) DO NOTHING`,
          params: [id, int(e.partPower), int(e.replicas), at],
        },
      ];
    case 'RingDeviceAdded': {
      const d = deviceOf(e.device);
      return [
        {
          sql: `INSERT INTO object_ring_builder (policy, device_id, region, zone, host, device, weight) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (policy, device_id) DO UPDATE SET region = excluded.region, zone = excluded.zone, host = excluded.host,
                  device = excluded.device, weight = excluded.weight`,
          params: [id, d.id, d.region, d.zone, d.host, d.device, d.weight],
        },
      ];
    }
    case 'RingDeviceRemoved':
      return [{ sql: 'DELETE FROM object_ring_builder WHERE policy = $1 AND device_id = $2', params: [id, int(e.deviceId)] }];
    case 'RingDeviceWeightSet':
      return [{ sql: 'UPDATE object_ring_builder SET weight = $3 WHERE policy = $1 AND device_id = $2', params: [id, int(e.deviceId), Number(e.weight ?? 0)] }];
    // The assignment's copy of the address is overlaid from the builder when read (ObjectQueries.getRing).
    case 'RingDeviceAddressSet':
      return [{ sql: 'UPDATE object_ring_builder SET host = $3 WHERE policy = $1 AND device_id = $2', params: [id, int(e.deviceId), String(e.host ?? '')] }];
    case 'RingRebalanced':
      return [
        {
          sql: `UPDATE object_ring SET part_power = $2, replicas = $3, version = $4, devices = $5, assignment = $6, last_moved = $7, updated_at_ms = $8
                WHERE policy = $1`,
          params: [id, int(e.partPower), int(e.replicas), int(e.ringVersion), json(((e.devices ?? []) as Ev[]).map(deviceOf)), e.assignment ?? '',
            int(e.moved), at],
        },
      ];
    default:
      return [];
  }
}

export const objectProjection: Projection = {
  name: 'object',
  topics: [domainTopics(OBJECT_DOMAIN).events],
  handles: OBJECT_PROJECTED_EVENTS,
  schema: OBJECT_SCHEMA,
  tables: OBJECT_TABLES,
  apply: (event: EventEnvelope, _position: Position) => objectStatements(event),
};
