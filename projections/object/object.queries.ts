// Queries over the object storage read models, shaped as Swift shows them: a container with its
// object count and bytes used (HEAD container), an account's containers and totals (GET / HEAD
// account), an object's recorded version (HEAD object), a container's listing with Swift's prefix,
// delimiter, marker, end_marker, limit and reverse, the quarantined replicas and a policy's ring.
// Names are in byte order of their UTF-8, compared through their name_key (object.projection.ts).
// A listing reads one page of the index at a time and never the whole container.
import { DEFAULT_RING, LIMITS, type Container, type ObjectVersion, type Segment } from '../../domains/object/object.types.js';
import type { Store } from '../../infra/store/store.js';
import { nameKey } from './object.projection.js';

type Row = Record<string, any>;

const parse = <T>(text: unknown, fallback: T): T => {
  if (typeof text !== 'string' || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
};

/** A container as HEAD shows it: its fields, X-Container-Object-Count / -Bytes-Used and when it last changed. */
export type ContainerRecord = Container & { objectCount: number; bytesUsed: number; lastModifiedMs: number };

/** An entry of an account listing (Swift's JSON {name, count, bytes, last_modified}). */
export interface ContainerListing {
  name: string;
  count: number;
  bytes: number;
  lastModifiedMs: number;
}

/** An object's recorded version, with its Last-Modified (from its timestamp). */
export type ObjectRecord = ObjectVersion & { lastModifiedMs: number };

/** An entry of a container listing: an object (Swift's {name, hash, bytes, content_type, last_modified}) or a pseudo-folder. */
export type ObjectListing = { name: string; hash: string; bytes: number; contentType: string; lastModifiedMs: number } | { subdir: string };

export interface AccountStats {
  containerCount: number;
  objectCount: number;
  bytesUsed: number;
}

export interface QuarantineRecord {
  objectId: string;
  deviceId: number;
  timestamp: string;
  reason: string;
  atMs: number;
}

export interface RingDeviceRecord {
  id: number;
  region: number;
  zone: number;
  host: string;
  device: string;
  weight: number;
}

export interface RingRecord {
  partPower: number;
  replicas: number;
  /** 0 until the first rebalance. */
  version: number;
  /** The devices of the current assignment (the last rebalance's). */
  devices: RingDeviceRecord[];
  /** The builder's devices by id: what the next rebalance assigns. */
  builder: RingDeviceRecord[];
  /** The last rebalance's table (domains/object/ring.ts encodeAssignment); '' before the first. */
  assignment: string;
  /** Partition replicas the last rebalance moved. */
  lastMoved: number;
}

export interface ListContainersOptions {
  prefix?: string;
  marker?: string;
  endMarker?: string;
  limit?: number;
  reverse?: boolean;
}

export interface ListObjectsOptions extends ListContainersOptions {
  delimiter?: string;
}

/** Swift's limit: default and maximum LIMITS.listing (a larger one is cut to it); 0 lists nothing. */
const limitOf = (limit: number | undefined) => {
  if (limit === undefined || !Number.isFinite(limit)) return LIMITS.listing;
  return Math.max(0, Math.min(LIMITS.listing, Math.floor(limit)));
};

/** The first page of a listing with a delimiter (it doubles while no name rolls up). */
const FIRST_PAGE = 16;

/** The smallest byte string greater than every string that starts with `key` (undefined: there is none). */
export function keySuccessor(key: Buffer): Buffer | undefined {
  let end = key.length;
  while (end > 0 && key[end - 1] === 0xff) end--;
  if (end === 0) return undefined;
  const next = Buffer.from(key.subarray(0, end));
  next[end - 1]++;
  return next;
}

/** A key range: lower bound (inclusive or not) and upper bound (exclusive). */
interface Range {
  lower?: { key: Buffer; inclusive: boolean };
  upper?: Buffer;
}

/**
 * The range of names a listing covers: starting with prefix, after marker and before end_marker
 * in forward order; reversed, the marker bounds it from above and end_marker from below (Swift
 * swaps them), so that paging backwards by the last name seen works as forwards.
 */
function rangeOf(o: ListContainersOptions): Range {
  const prefix = o.prefix ? nameKey(o.prefix) : undefined;
  const [after, before] = o.reverse ? [o.endMarker, o.marker] : [o.marker, o.endMarker];
  const range: Range = {};
  if (prefix) range.lower = { key: prefix, inclusive: true };
  if (after) {
    const k = nameKey(after);
    if (!range.lower || Buffer.compare(k, range.lower.key) >= 0) range.lower = { key: k, inclusive: false };
  }
  const upper = [before ? nameKey(before) : undefined, prefix ? keySuccessor(prefix) : undefined].filter((k): k is Buffer => k !== undefined);
  if (upper.length) range.upper = upper.reduce((a, b) => (Buffer.compare(a, b) <= 0 ? a : b));
  return range;
}

/** `name_key` conditions of a range, their params appended to `params`. */
function rangeWhere(range: Range, params: unknown[]): string[] {
  const where: string[] = [];
  if (range.lower) where.push(`name_key ${range.lower.inclusive ? '>=' : '>'} $${params.push(range.lower.key)}`);
  if (range.upper) where.push(`name_key < $${params.push(range.upper)}`);
  return where;
}

const emptyRange = (r: Range) => r.lower !== undefined && r.upper !== undefined && Buffer.compare(r.lower.key, r.upper) >= 0;

const containerOf = (r: Row): Container => ({
  account: r.account, name: r.name, metadata: parse(r.metadata, {}), readAcl: parse(r.read_acl, []), writeAcl: parse(r.write_acl, []),
  quotaBytes: Number(r.quota_bytes), quotaCount: Number(r.quota_count), createdAtMs: Number(r.created_at_ms),
});

const objectOf = (r: Row): ObjectRecord => ({
  account: r.account, container: r.container, name: r.name, timestamp: r.timestamp, etag: r.etag, size: Number(r.size), contentType: r.content_type,
  metadata: parse(r.metadata, {}), partition: Number(r.partition), segments: parse<Segment[]>(r.segments, []), ringVersion: Number(r.ring_version),
  lastModifiedMs: Number(r.last_modified_ms),
});

const listingOf = (r: Row): ObjectListing => ({
  name: r.name, hash: r.etag, bytes: Number(r.size), contentType: r.content_type, lastModifiedMs: Number(r.last_modified_ms),
});

const deviceOf = (d: Row): RingDeviceRecord => ({
  id: Number(d.id), region: Number(d.region), zone: Number(d.zone), host: String(d.host ?? ''), device: String(d.device ?? ''), weight: Number(d.weight),
});

const CONTAINER_SELECT = `SELECT c.*, COALESCE(s.object_count, 0) AS object_count, COALESCE(s.bytes_used, 0) AS bytes_used
  FROM object_containers c LEFT JOIN object_container_stats s ON s.account = c.account AND s.container = c.name`;

export class ObjectQueries {
  constructor(readonly store: Store) {}

  /** A container with its counts (HEAD container); undefined when it does not exist. */
  async getContainer(account: string, name: string): Promise<ContainerRecord | undefined> {
    const [r] = await this.store.query<Row>(`${CONTAINER_SELECT} WHERE c.account = $1 AND c.name = $2`, [account, name]);
    return r && { ...containerOf(r), objectCount: Number(r.object_count), bytesUsed: Number(r.bytes_used), lastModifiedMs: Number(r.updated_at_ms) };
  }

  /** An account's containers in byte order of their names (GET account), with prefix, marker, end_marker, limit and reverse. */
  async listContainers(account: string, options: ListContainersOptions = {}): Promise<ContainerListing[]> {
    const limit = limitOf(options.limit);
    const range = rangeOf(options);
    if (limit === 0 || emptyRange(range)) return [];
    const params: unknown[] = [account];
    const where = ['c.account = $1', ...rangeWhere(range, params).map((w) => `c.${w}`)];
    const rows = await this.store.query<Row>(
      `${CONTAINER_SELECT} WHERE ${where.join(' AND ')} ORDER BY c.name_key ${options.reverse ? 'DESC' : 'ASC'} LIMIT ${limit}`,
      params,
    );
    return rows.map((r) => ({ name: r.name, count: Number(r.object_count), bytes: Number(r.bytes_used), lastModifiedMs: Number(r.updated_at_ms) }));
  }

  /** HEAD account: its containers, and the objects and bytes of those containers. */
  async accountStats(account: string): Promise<AccountStats> {
    const [r] = await this.store.query<Row>(
      `SELECT COUNT(*) AS containers, COALESCE(SUM(s.object_count), 0) AS objects, COALESCE(SUM(s.bytes_used), 0) AS bytes
       FROM object_containers c LEFT JOIN object_container_stats s ON s.account = c.account AND s.container = c.name WHERE c.account = $1`,
      [account],
    );
    return { containerCount: Number(r?.containers ?? 0), objectCount: Number(r?.objects ?? 0), bytesUsed: Number(r?.bytes ?? 0) };
  }

  /** An object's recorded version; undefined when none is (never written, or deleted). */
  async getObject(account: string, container: string, name: string): Promise<ObjectRecord | undefined> {
    const [r] = await this.store.query<Row>('SELECT * FROM object_objects WHERE account = $1 AND container = $2 AND name = $3', [account, container, name]);
    return r && objectOf(r);
  }

  /**
   * A container's listing as Swift's container server gives it: names starting with prefix,
   * strictly after marker and strictly before end_marker, in byte order (reversed: from the end,
   * marker and end_marker bounding from above and below). With a delimiter, the names that have it
   * after the prefix roll up into one {subdir} (the prefix and the name's part up to and including
   * the delimiter), each once and counted in the limit. It reads a page at a time: after a subdir it
   * goes on past every name under it, so a pseudo-folder of a million objects costs one row.
   */
  async listObjects(account: string, container: string, options: ListObjectsOptions = {}): Promise<ObjectListing[]> {
    const limit = limitOf(options.limit);
    const range = rangeOf(options);
    const out: ObjectListing[] = [];
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter ?? '';
    const order = options.reverse ? 'DESC' : 'ASC';
    let pageSize = FIRST_PAGE;
    while (out.length < limit && !emptyRange(range)) {
      const params: unknown[] = [account, container];
      const where = ['account = $1', 'container = $2', ...rangeWhere(range, params)];
      // Without a delimiter every row read is listed; with one, the rows after a subdir are not,
      // so pages start small and grow while no name rolls up.
      const page = delimiter ? Math.min(limit - out.length, pageSize) : limit - out.length;
      const rows = await this.store.query<Row>(
        `SELECT name, name_key, etag, size, content_type, last_modified_ms FROM object_objects WHERE ${where.join(' AND ')} ORDER BY name_key ${order} LIMIT ${page}`,
        params,
      );
      if (rows.length === 0) break;
      let rolledUp = false;
      for (const r of rows) {
        const name = r.name as string;
        const at = delimiter ? name.indexOf(delimiter, prefix.length) : -1;
        if (at >= 0) {
          const subdir = name.slice(0, at + delimiter.length);
          if (subdir !== options.marker) out.push({ subdir });
          // Go on past every name under the subdir.
          const key = nameKey(subdir);
          if (options.reverse) range.upper = key;
          else {
            const next = keySuccessor(key);
            if (next === undefined) return out;
            range.lower = { key: next, inclusive: true };
          }
          rolledUp = true;
          break;
        }
        out.push(listingOf(r));
        const key = Buffer.from(r.name_key as Uint8Array);
        if (options.reverse) range.upper = key;
        else range.lower = { key, inclusive: false };
      }
      if (!rolledUp && rows.length < page) break;
      pageSize = rolledUp ? FIRST_PAGE : pageSize * 2;
    }
    return out;
  }

  /** How many objects a container lists (the API refuses to delete a container that has any). */
  async objectsInContainer(account: string, container: string): Promise<number> {
    const [r] = await this.store.query<Row>('SELECT object_count FROM object_container_stats WHERE account = $1 AND container = $2', [account, container]);
    return Number(r?.object_count ?? 0);
  }

  /** Quarantined replicas (of one object, given its id "<account>/<container>/<object>"), oldest first. */
  async quarantines(objectId?: string): Promise<QuarantineRecord[]> {
    const rows =
      objectId === undefined
        ? await this.store.query<Row>('SELECT * FROM object_quarantines ORDER BY at_ms, object_id, device_id, timestamp')
        : await this.store.query<Row>('SELECT * FROM object_quarantines WHERE object_id = $1 ORDER BY at_ms, device_id, timestamp', [objectId]);
    return rows.map((r) => ({ objectId: r.object_id, deviceId: Number(r.device_id), timestamp: r.timestamp, reason: r.reason, atMs: Number(r.at_ms) }));
  }

  /** A storage policy's ring; undefined before it is created. */
  async getRing(policy: string = DEFAULT_RING): Promise<RingRecord | undefined> {
    const [r] = await this.store.query<Row>('SELECT * FROM object_ring WHERE policy = $1', [policy]);
    if (!r) return undefined;
    const builder = await this.store.query<Row>(
      'SELECT device_id AS id, region, zone, host, device, weight FROM object_ring_builder WHERE policy = $1 ORDER BY device_id',
      [policy],
    );
    // A device's address can change without a rebalance (SetRingDeviceAddress): the builder's is the current one.
    const hosts = new Map(builder.map((b) => [Number(b.id), String(b.host)]));
    return {
      partPower: Number(r.part_power), replicas: Number(r.replicas), version: Number(r.version),
      devices: parse<Row[]>(r.devices, []).map(deviceOf).map((d) => ({ ...d, host: hosts.get(d.id) ?? d.host })),
      builder: builder.map(deviceOf), assignment: r.assignment, lastMoved: Number(r.last_moved),
    };
  }
}
