// The image read models (Glance's images and image_members tables): every field of an image with
// its status and the reason of its last status change (a failed upload's), tags and properties as
// JSON; one row per member project of an image. Pure: an event in, statements out (SQL that SQLite
// and PostgreSQL share; booleans are 0/1 integers, JSON is TEXT). Every row is written by the
// events of one image only, so the result does not depend on how partitions interleave. A deleted
// image's rows go (Glance answers 404 for it).
import { imageCodecFor } from '../../infra/codecs/image.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement } from '../../infra/store/store.js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';

type Ev = Record<string, any> & { type: string };

const b = (v: unknown) => (v ? 1 : 0);
const int = (v: unknown) => Number(v ?? 0);
/** Tags unique and sorted, properties by key: the same JSON whatever order they came in. */
const tagsJson = (v: unknown) => JSON.stringify([...new Set((v as string[] | undefined) ?? [])].sort());
const propsJson = (v: unknown) => JSON.stringify(Object.fromEntries(Object.entries((v ?? {}) as Record<string, string>).sort(([a], [c]) => (a < c ? -1 : a > c ? 1 : 0))));

export const IMAGE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS image_images (id TEXT PRIMARY KEY, name TEXT NOT NULL, owner TEXT NOT NULL, status TEXT NOT NULL,
     visibility TEXT NOT NULL, disk_format TEXT NOT NULL, container_format TEXT NOT NULL, min_disk INTEGER NOT NULL, min_ram INTEGER NOT NULL,
     protected INTEGER NOT NULL, os_hidden INTEGER NOT NULL, tags TEXT NOT NULL, properties TEXT NOT NULL, size BIGINT NOT NULL,
     virtual_size BIGINT NOT NULL, checksum TEXT NOT NULL, os_hash_algo TEXT NOT NULL, os_hash_value TEXT NOT NULL, location TEXT NOT NULL,
     status_reason TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS image_members (image_id TEXT NOT NULL, member_project_id TEXT NOT NULL, status TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL, PRIMARY KEY (image_id, member_project_id))`,
  `CREATE INDEX IF NOT EXISTS image_images_owner ON image_images (owner, id)`,
  `CREATE INDEX IF NOT EXISTS image_images_visibility ON image_images (visibility, id)`,
  `CREATE INDEX IF NOT EXISTS image_members_project ON image_members (member_project_id, image_id)`,
];

export const IMAGE_TABLES = ['image_images', 'image_members'];

/** The events this projection turns into rows (all the image deciders emit). */
export const IMAGE_PROJECTED_EVENTS = [
  'ImageCreated', 'ImageUpdated', 'ImageUploadStarted', 'ImageActivated', 'ImageUploadFailed', 'ImageStatusChanged', 'ImageDeleted',
  'ImageMemberAdded', 'ImageMemberUpdated', 'ImageMemberRemoved',
] as const;

export function imageStatements(event: EventEnvelope): Statement[] {
  const e = imageCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Ev;
  const id = event.aggregateId;
  const at = event.occurredAtMs;
  switch (e.type) {
    case 'ImageCreated': {
      const i = e.image ?? {};
      return [
        {
          sql: `INSERT INTO image_images (id, name, owner, status, visibility, disk_format, container_format, min_disk, min_ram, protected, os_hidden,
                  tags, properties, size, virtual_size, checksum, os_hash_algo, os_hash_value, location, status_reason, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, '', '', '', '', '', $14, $15)
                ON CONFLICT (id) DO NOTHING`,
          params: [id, i.name ?? '', i.owner ?? '', i.status || 'queued', i.visibility ?? '', i.diskFormat ?? '', i.containerFormat ?? '', int(i.minDisk),
            int(i.minRam), b(i.protected), b(i.osHidden), tagsJson(i.tags), propsJson(i.properties), int(i.createdAtMs) || at, int(i.updatedAtMs) || at],
        },
      ];
    }
    case 'ImageUpdated': {
      // The image as it is after the update: only what UpdateImage may change is taken.
      const i = e.image ?? {};
      return [
        {
          sql: `UPDATE image_images SET name = $2, visibility = $3, disk_format = $4, container_format = $5, min_disk = $6, min_ram = $7, protected = $8,
                  os_hidden = $9, tags = $10, properties = $11, updated_at_ms = $12 WHERE id = $1`,
          params: [id, i.name ?? '', i.visibility ?? '', i.diskFormat ?? '', i.containerFormat ?? '', int(i.minDisk), int(i.minRam), b(i.protected), b(i.osHidden),
            tagsJson(i.tags), propsJson(i.properties), int(i.updatedAtMs) || at],
        },
      ];
    }
    case 'ImageUploadStarted':
      return [{ sql: 'UPDATE image_images SET location = $2 WHERE id = $1', params: [id, e.location ?? ''] }];
    case 'ImageActivated':
      return [
        {
          sql: 'UPDATE image_images SET size = $2, virtual_size = $3, checksum = $4, os_hash_algo = $5, os_hash_value = $6, location = $7 WHERE id = $1',
          params: [id, int(e.size), int(e.virtualSize), e.checksum ?? '', e.osHashAlgo ?? '', e.osHashValue ?? '', e.location ?? ''],
        },
      ];
    case 'ImageUploadFailed':
      return [{ sql: "UPDATE image_images SET location = '' WHERE id = $1", params: [id] }];
    case 'ImageStatusChanged':
      return [{ sql: 'UPDATE image_images SET status = $2, status_reason = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.status ?? '', e.reason ?? '', int(e.updatedAtMs) || at] }];
    case 'ImageDeleted':
      return [
        { sql: 'DELETE FROM image_members WHERE image_id = $1', params: [id] },
        { sql: 'DELETE FROM image_images WHERE id = $1', params: [id] },
      ];
    case 'ImageMemberAdded':
    case 'ImageMemberUpdated': {
      const m = e.member ?? {};
      return [
        {
          sql: `INSERT INTO image_members (image_id, member_project_id, status, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (image_id, member_project_id) DO UPDATE SET status = excluded.status, updated_at_ms = excluded.updated_at_ms`,
          params: [id, m.memberProjectId ?? '', m.status ?? 'pending', int(m.createdAtMs) || at, int(m.updatedAtMs) || at],
        },
      ];
    }
    case 'ImageMemberRemoved':
      return [{ sql: 'DELETE FROM image_members WHERE image_id = $1 AND member_project_id = $2', params: [id, e.member?.memberProjectId ?? ''] }];
    default:
      return [];
  }
}

export const imageProjection: Projection = {
  name: 'image',
  topics: [domainTopics(IMAGE_DOMAIN).events],
  handles: IMAGE_PROJECTED_EVENTS,
  schema: IMAGE_SCHEMA,
  tables: IMAGE_TABLES,
  apply: (event: EventEnvelope, _position: Position) => imageStatements(event),
};
