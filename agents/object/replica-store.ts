// One storage device's object replicas on local disk, Swift-style:
//
//   <root>/objects/<partition>/<md5 hex of "/a/c/o">/<timestamp>.data   the object (body + trailer)
//   <root>/objects/<partition>/<hash>/<timestamp>.ts                      a tombstone (JSON: the name)
//   <root>/objects/<partition>/<hash>/<timestamp>.meta                    a fast-POST (JSON: name, metadata)
//   <root>/tmp/<unique>                                                   writes in progress
//   <root>/quarantined/objects/<hash>[-<unique>]/...                      corrupt replicas, kept for a human
//
// Timestamps are Swift's normal form, 16 characters ("1764640000.12345"), so file names sort in
// time order as strings. A name's state is its newest .data or .ts; a .meta newer than that .data
// replaces its user metadata (and content type, when it names one). Every write must be newer than
// every file the name has (else ConflictError, 409): last write wins, whatever order writes arrive.
//
// A .data file is the body followed by a trailer that makes the file self-describing and checkable:
//
//   [body: size bytes][trailer: UTF-8 JSON, L bytes][footer: 32 bytes]
//   footer = md5 of the trailer JSON (16 raw bytes) | L as uint64 big-endian (8) | magic "STRTOBJ1" (8)
//   trailer = { v: 1, account, container, object, timestamp, etag, size, contentType, metadata,
//               chunkSize, chunks }   chunks: the md5 hex of each chunkSize piece of the body, concatenated
//
// A footer without the magic, a trailer whose md5 differs, or a file whose length is not
// size + L + 32 is corruption, as is a chunk whose md5 differs from its digest.
//
// Durability: a write goes to <root>/tmp, is fsynced, renamed into the name's directory and the
// directory fsynced; only then are the name's older files removed. Nothing half-written is ever
// under objects/, and a crash between rename and cleanup leaves old files that the newest outranks.
// Bodies are streamed in both directions: at most a chunk or one network piece is in memory.
//
// Writes to one name are serialized by an in-process lock; one process owns a device's root.
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

export const DEFAULT_CHUNK_SIZE = 64 * 1024;
const FOOTER_BYTES = 32;
const MAGIC = Buffer.from('STRTOBJ1', 'ascii');
/** A trailer this long is garbage, not metadata (a 5 GiB object at 4 KiB chunks needs ~42 MB). */
const MAX_TRAILER_BYTES = 64 * 1024 * 1024;
/** The etag of an empty body. */
export const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

export interface ReplicaMeta {
  account: string;
  container: string;
  object: string;
  /** Swift normal form, 16 characters: the newest write (PUT, POST or DELETE) of the name. */
  timestamp: string;
  /** md5 hex of the whole body; "" for a tombstone. */
  etag: string;
  size: number;
  contentType: string;
  /** User metadata (X-Object-Meta-*), lower-case keys without the prefix. */
  metadata: Record<string, string>;
  /** A tombstone. */
  deleted: boolean;
  /** Only when a POST's .meta applies: the timestamp of the .data it applies to. */
  dataTimestamp?: string;
}

export type PutMeta = Omit<ReplicaMeta, 'etag' | 'size' | 'deleted' | 'dataTimestamp'> & { expectedEtag?: string };

/** Inclusive byte range; end past the body is clamped. Or the last `suffix` bytes. */
export type ByteRange = { start: number; end: number } | { suffix: number };

export class BadRequestError extends Error {
  readonly httpStatus = 400;
}

export class NotFoundError extends Error {
  readonly httpStatus = 404;
  /** Set when the name's newest state is a tombstone: its timestamp. */
  constructor(
    message: string,
    readonly tombstoneTimestamp?: string,
  ) {
    super(message);
  }
}

export class ConflictError extends Error {
  readonly httpStatus = 409;
  constructor(
    message: string,
    /** The name's newest existing timestamp, which the write did not beat. */
    readonly existingTimestamp: string,
  ) {
    super(message);
  }
}

export class RangeNotSatisfiableError extends Error {
  readonly httpStatus = 416;
  constructor(
    message: string,
    readonly size: number,
  ) {
    super(message);
  }
}

export class EtagMismatchError extends Error {
  readonly httpStatus = 422;
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(message);
  }
}

export class InsufficientStorageError extends Error {
  readonly httpStatus = 507;
}

/** A replica's bytes do not match their digests; it has been quarantined. */
export class CorruptReplicaError extends Error {
  // The proxy treats it as "this replica is missing": try another.
  readonly httpStatus = 404;
}

/** Swift's normal form of a timestamp ("1764640000.12345"), or undefined when `value` is not one. */
export function normalizeTimestamp(value: string): string | undefined {
  if (!/^\d{1,10}(\.\d{1,5})?$/.test(value)) return undefined;
  const [whole, frac = ''] = value.split('.');
  return `${whole.padStart(10, '0')}.${frac.padEnd(5, '0')}`;
}

/** md5 hex of "/account/container/object": the name's directory under its partition. */
export function nameHash(account: string, container: string, object: string): string {
  return createHash('md5').update(`/${account}/${container}/${object}`).digest('hex');
}

interface Trailer {
  v: 1;
  account: string;
  container: string;
  object: string;
  timestamp: string;
  etag: string;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
  chunkSize: number;
  chunks: string;
}

interface NameFile {
  /** The JSON of a .ts or .meta. */
  account: string;
  container: string;
  object: string;
  timestamp: string;
  metadata?: Record<string, string>;
  contentType?: string;
}

/** A name's files, newest first per kind. */
interface NameFiles {
  data: string[];
  ts: string[];
  meta: string[];
  newest?: string;
}

/** A name's current .data, as the auditor walks them. */
export interface DataFileRef {
  partition: number;
  hash: string;
  /** File name, "<timestamp>.data". */
  file: string;
}

/** A file of the replica is unreadable or does not match its digests; `file` when not the .data. */
class Corrupt extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message);
  }
}

export class ReplicaStore {
  readonly objectsDir: string;
  readonly tmpDir: string;
  readonly quarantineDir: string;
  readonly chunkSize: number;
  private readonly locks = new Map<string, Promise<void>>();

  constructor(
    readonly root: string,
    options: { chunkSize?: number } = {},
  ) {
    this.objectsDir = join(root, 'objects');
    this.tmpDir = join(root, 'tmp');
    this.quarantineDir = join(root, 'quarantined', 'objects');
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < 1) throw new Error(`chunkSize must be a positive integer`);
  }

  hashDir(partition: number, hash: string): string {
    return join(this.objectsDir, String(partition), hash);
  }

  /**
   * Stores a new version of the name from `body`. Rejects without reading the body when the name
   * already has a write at or after `meta.timestamp` (ConflictError); after reading it when its
   * md5 is not `expectedEtag` (EtagMismatchError) or the disk fills (InsufficientStorageError).
   * In every failure the temp file is removed and the name is as before.
   */
  async put(partition: number, meta: PutMeta, body: NodeJS.ReadableStream | AsyncIterable<Uint8Array>): Promise<ReplicaMeta> {
    checkPartition(partition);
    checkName(meta.account, meta.container, meta.object);
    const timestamp = checkTimestamp(meta.timestamp);
    const hash = nameHash(meta.account, meta.container, meta.object);
    const dir = this.hashDir(partition, hash);
    // Fail fast, before taking the body; checked again at commit, when it counts.
    this.checkNewer(await this.nameFiles(dir), timestamp);

    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, `${process.pid}-${randomUUID()}`);
    const fh = await open(tmp, 'wx');
    let closed = false;
    try {
      const whole = createHash('md5');
      const digests: string[] = [];
      let chunk = createHash('md5');
      let inChunk = 0;
      let size = 0;
      for await (const piece of body as AsyncIterable<Uint8Array | string>) {
        let buf = typeof piece === 'string' ? Buffer.from(piece) : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        if (buf.length === 0) continue;
        await this.writeAll(fh, buf);
        whole.update(buf);
        size += buf.length;
        // Split the piece at chunk boundaries for the per-chunk digests.
        while (buf.length > 0) {
          const take = Math.min(buf.length, this.chunkSize - inChunk);
          chunk.update(buf.subarray(0, take));
          inChunk += take;
          buf = buf.subarray(take);
          if (inChunk === this.chunkSize) {
            digests.push(chunk.digest('hex'));
            chunk = createHash('md5');
            inChunk = 0;
          }
        }
      }
      if (inChunk > 0) digests.push(chunk.digest('hex'));
      const etag = whole.digest('hex');
      const expected = meta.expectedEtag?.trim().replace(/^"|"$/g, '').toLowerCase();
      if (expected && expected !== etag) throw new EtagMismatchError(`body md5 ${etag} is not the etag given, ${expected}`, expected, etag);

      const trailer: Trailer = {
        v: 1,
        account: meta.account,
        container: meta.container,
        object: meta.object,
        timestamp,
        etag,
        size,
        contentType: meta.contentType || 'application/octet-stream',
        metadata: { ...meta.metadata },
        chunkSize: this.chunkSize,
        chunks: digests.join(''),
      };
      const json = Buffer.from(JSON.stringify(trailer), 'utf8');
      const footer = Buffer.alloc(FOOTER_BYTES);
      createHash('md5').update(json).digest().copy(footer, 0);
      footer.writeBigUInt64BE(BigInt(json.length), 16);
      MAGIC.copy(footer, 24);
      await this.writeAll(fh, json);
      await this.writeAll(fh, footer);
      await fh.sync();
      await fh.close();
      closed = true;

      await this.withNameLock(dir, async () => {
        const files = await this.nameFiles(dir);
        this.checkNewer(files, timestamp);
        await this.commit(partition, dir, tmp, `${timestamp}.data`);
        await this.removeFiles(dir, [...files.data, ...files.ts, ...files.meta]);
      });
      return trailerMeta(trailer);
    } catch (err) {
      if (!closed) await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new InsufficientStorageError(`device full writing ${meta.account}/${meta.container}/${meta.object}`);
      throw err;
    }
  }

  /**
   * Writes a tombstone at `timestamp` and drops the name's older files. The tombstone is written
   * also when nothing was live, so a late older PUT still loses. `existed`: a live object was there.
   */
  async delete(partition: number, account: string, container: string, object: string, timestamp: string): Promise<{ existed: boolean }> {
    checkPartition(partition);
    checkName(account, container, object);
    const ts = checkTimestamp(timestamp);
    const dir = this.hashDir(partition, nameHash(account, container, object));
    return this.withNameLock(dir, async () => {
      const files = await this.nameFiles(dir);
      this.checkNewer(files, ts);
      const existed = !!files.data[0] && (!files.ts[0] || fileTimestamp(files.data[0]) > fileTimestamp(files.ts[0]));
      const body: NameFile = { account, container, object, timestamp: ts };
      await this.writeSmallFile(partition, dir, `${ts}.ts`, body);
      await this.removeFiles(dir, [...files.data, ...files.ts, ...files.meta]);
      return { existed };
    });
  }

  /**
   * Swift fast-POST: a .meta at `timestamp` whose metadata REPLACES the object's user metadata
   * (and its content type, when given). NotFoundError when there is no live object.
   */
  async postMetadata(
    partition: number,
    account: string,
    container: string,
    object: string,
    timestamp: string,
    metadata: Record<string, string>,
    contentType?: string,
  ): Promise<ReplicaMeta> {
    checkPartition(partition);
    checkName(account, container, object);
    const ts = checkTimestamp(timestamp);
    const dir = this.hashDir(partition, nameHash(account, container, object));
    await this.withNameLock(dir, async () => {
      const files = await this.nameFiles(dir);
      const state = await this.resolve(partition, dir, files, true);
      if (!state || state.deleted) throw new NotFoundError(`${account}/${container}/${object} not found`, state?.timestamp);
      this.checkNewer(files, ts);
      const body: NameFile = { account, container, object, timestamp: ts, metadata: { ...metadata } };
      if (contentType) body.contentType = contentType;
      await this.writeSmallFile(partition, dir, `${ts}.meta`, body);
      await this.removeFiles(dir, files.meta);
    });
    const after = await this.head(partition, account, container, object);
    if (!after || after.deleted) throw new NotFoundError(`${account}/${container}/${object} not found`, after?.timestamp);
    return after;
  }

  /** The name's newest state (a tombstone: deleted true), or undefined (never stored, or quarantined). */
  async head(partition: number, account: string, container: string, object: string): Promise<ReplicaMeta | undefined> {
    checkPartition(partition);
    checkName(account, container, object);
    const dir = this.hashDir(partition, nameHash(account, container, object));
    return this.resolve(partition, dir, await this.nameFiles(dir));
  }

  /**
   * The live object's metadata and a stream of its body (or of `range` of it). Every chunk is
   * checked against its digest before any byte of it is emitted; the first chunk is checked before
   * this resolves, so a replica bad from its first byte rejects with CorruptReplicaError (after
   * being quarantined). A later bad chunk destroys the stream with CorruptReplicaError, having
   * emitted only good bytes, and quarantines the replica.
   */
  async read(
    partition: number,
    account: string,
    container: string,
    object: string,
    range?: ByteRange,
  ): Promise<{ meta: ReplicaMeta; body: Readable; range?: { start: number; end: number } }> {
    checkPartition(partition);
    checkName(account, container, object);
    const hash = nameHash(account, container, object);
    const dir = this.hashDir(partition, hash);
    const files = await this.nameFiles(dir);
    const meta = await this.resolve(partition, dir, files);
    if (!meta || meta.deleted) throw new NotFoundError(`${account}/${container}/${object} not found`, meta?.timestamp);
    const dataFile = files.data[0];

    let fh: FileHandle;
    try {
      fh = await open(join(dir, dataFile), 'r');
    } catch (err) {
      // Replaced or quarantined since we looked: the caller may retry.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${account}/${container}/${object} not found`);
      throw err;
    }
    let handedOff = false;
    try {
      let trailer: Trailer;
      try {
        trailer = await readTrailer(fh);
      } catch (err) {
        if (!(err instanceof Corrupt)) throw err;
        await this.quarantineFile(partition, hash, dataFile, err.message);
        throw new CorruptReplicaError(`${account}/${container}/${object}: ${err.message}; quarantined`);
      }
      const size = trailer.size;
      let start = 0;
      let end = size - 1;
      let resolved: { start: number; end: number } | undefined;
      if (range) {
        if ('suffix' in range) {
          if (!(range.suffix > 0) || size === 0) throw new RangeNotSatisfiableError(`range not satisfiable: last ${range.suffix} of ${size} bytes`, size);
          start = Math.max(0, size - range.suffix);
        } else {
          if (!(range.start >= 0) || range.start >= size || range.end < range.start) {
            throw new RangeNotSatisfiableError(`range not satisfiable: ${range.start}-${range.end} of ${size} bytes`, size);
          }
          start = range.start;
          end = Math.min(range.end, size - 1);
        }
        resolved = { start, end };
      }

      const cs = trailer.chunkSize;
      const firstChunk = Math.floor(start / cs);
      const lastChunk = size === 0 ? -1 : Math.floor(end / cs);
      const where = `${account}/${container}/${object}`;
      const readChunk = async (i: number): Promise<Buffer> => {
        const offset = i * cs;
        const length = Math.min(cs, size - offset);
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        const digest = trailer.chunks.slice(i * 32, i * 32 + 32);
        if (bytesRead !== length || createHash('md5').update(buf).digest('hex') !== digest) {
          const reason = `chunk ${i} (bytes ${offset}-${offset + length - 1}) does not match its digest`;
          await this.quarantineFile(partition, hash, dataFile, reason).catch(() => {});
          throw new CorruptReplicaError(`${where}: ${reason}; quarantined`);
        }
        return buf.subarray(Math.max(start, offset) - offset, Math.min(end + 1, offset + length) - offset);
      };
      const first = firstChunk <= lastChunk ? await readChunk(firstChunk) : undefined;

      async function* chunks(): AsyncGenerator<Buffer> {
        if (first) yield first;
        for (let i = firstChunk + 1; i <= lastChunk; i++) yield await readChunk(i);
      }
      const body = Readable.from(chunks(), { objectMode: false, highWaterMark: cs });
      // Closed once the stream is done or destroyed, also when it is never read.
      body.once('close', () => void fh.close().catch(() => {}));
      handedOff = true;
      return { meta, body, range: resolved };
    } finally {
      if (!handedOff) await fh.close().catch(() => {});
    }
  }

  /** Partitions that have a directory on this device, ascending. */
  async partitions(): Promise<number[]> {
    const names = await readdirOrEmpty(this.objectsDir);
    return names
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** The newest state of every name in the partition, tombstones included, in name order. */
  async listPartition(partition: number): Promise<ReplicaMeta[]> {
    checkPartition(partition);
    const partDir = join(this.objectsDir, String(partition));
    const out: ReplicaMeta[] = [];
    for (const hash of await readdirOrEmpty(partDir)) {
      const dir = join(partDir, hash);
      const state = await this.resolve(partition, dir, await this.nameFiles(dir));
      if (state) out.push(state);
    }
    return out.sort((a, b) => compareNames(a, b));
  }

  /**
   * md5 hex of the partition's sorted lines "<a>/<c>/<o> <timestamp> <etag> <deleted>" (each name
   * part percent-encoded, so names with spaces or newlines cannot collide), "" when it has none.
   * Two devices with equal hashes hold the same states.
   */
  async partitionHash(partition: number): Promise<string> {
    const lines = (await this.listPartition(partition)).map(
      (m) =>
        `${encodeURIComponent(m.account)}/${encodeURIComponent(m.container)}/${encodeURIComponent(m.object)} ${m.timestamp} ${m.etag} ${m.deleted}`,
    );
    if (lines.length === 0) return '';
    lines.sort();
    return createHash('md5').update(lines.join('\n')).digest('hex');
  }

  /** Drops every file of the name (a handoff's copy, once the primaries have it). */
  async removeReplica(partition: number, account: string, container: string, object: string): Promise<void> {
    checkPartition(partition);
    checkName(account, container, object);
    const dir = this.hashDir(partition, nameHash(account, container, object));
    await this.withNameLock(dir, async () => {
      await rm(dir, { recursive: true, force: true });
      await this.pruneEmptyPartition(partition);
    });
  }

  /** Moves the name's files to quarantined/ with `reason`; the name is then absent here. */
  async quarantine(partition: number, account: string, container: string, object: string, reason: string): Promise<void> {
    checkPartition(partition);
    checkName(account, container, object);
    const hash = nameHash(account, container, object);
    await this.withNameLock(this.hashDir(partition, hash), () => this.moveToQuarantine(partition, hash, reason));
  }

  /**
   * Quarantines the name in `hash` if `file` is still one of its files (a newer write may have
   * replaced the bad file meanwhile: then the good newer state stays).
   */
  async quarantineFile(partition: number, hash: string, file: string, reason: string): Promise<boolean> {
    return this.withNameLock(this.hashDir(partition, hash), () => this.quarantineFileLocked(partition, hash, file, reason));
  }

  private async quarantineFileLocked(partition: number, hash: string, file: string, reason: string): Promise<boolean> {
    if (!(await readdirOrEmpty(this.hashDir(partition, hash))).includes(file)) return false;
    await this.moveToQuarantine(partition, hash, `${file}: ${reason}`);
    return true;
  }

  /** Live objects and the bytes of their .data files (bodies plus trailers). */
  async usage(): Promise<{ bytes: number; objects: number }> {
    let bytes = 0;
    let objects = 0;
    for await (const ref of this.dataFiles()) {
      try {
        bytes += (await stat(join(this.hashDir(ref.partition, ref.hash), ref.file))).size;
        objects++;
      } catch {
        // removed since listed
      }
    }
    return { bytes, objects };
  }

  /** Every name's current .data (names whose newest state is a tombstone have none). */
  async *dataFiles(): AsyncGenerator<DataFileRef> {
    for (const partition of await this.partitions()) {
      const partDir = join(this.objectsDir, String(partition));
      for (const hash of await readdirOrEmpty(partDir)) {
        const files = await this.nameFiles(join(partDir, hash));
        const data = files.data[0];
        if (data && (!files.ts[0] || fileTimestamp(data) > fileTimestamp(files.ts[0]))) yield { partition, hash, file: data };
      }
    }
  }

  /**
   * Reads the whole .data and checks the trailer, every chunk digest and the body's md5 against
   * the etag. `onBytes` is awaited after each chunk (the auditor's rate limit). Returns the
   * replica's metadata and, when it is bad, why; undefined when the file is gone.
   */
  async verifyDataFile(
    ref: DataFileRef,
    onBytes?: (bytes: number) => Promise<void>,
  ): Promise<{ meta?: ReplicaMeta; problem?: string } | undefined> {
    let fh: FileHandle;
    try {
      fh = await open(join(this.hashDir(ref.partition, ref.hash), ref.file), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    try {
      let trailer: Trailer;
      try {
        trailer = await readTrailer(fh);
      } catch (err) {
        if (err instanceof Corrupt) return { problem: err.message };
        throw err;
      }
      const meta = trailerMeta(trailer);
      const whole = createHash('md5');
      const cs = trailer.chunkSize;
      const buf = Buffer.allocUnsafe(cs);
      for (let i = 0, offset = 0; offset < trailer.size; i++, offset += cs) {
        const length = Math.min(cs, trailer.size - offset);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        const piece = buf.subarray(0, length);
        if (bytesRead !== length || createHash('md5').update(piece).digest('hex') !== trailer.chunks.slice(i * 32, i * 32 + 32)) {
          return { meta, problem: `chunk ${i} (bytes ${offset}-${offset + length - 1}) does not match its digest` };
        }
        whole.update(piece);
        if (onBytes) await onBytes(length);
      }
      const md5 = whole.digest('hex');
      if (md5 !== trailer.etag) return { meta, problem: `body md5 ${md5} is not the etag ${trailer.etag}` };
      return { meta };
    } finally {
      await fh.close().catch(() => {});
    }
  }

  /** Removes temp files left by a crash (none of them is ever visible). Call before serving. */
  async sweepTmp(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
  }

  // --- internals ---

  /** Writes all of `buf` (a hook for tests that simulate a full disk). */
  protected async writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await fh.write(buf, done, buf.length - done);
      done += bytesWritten;
    }
  }

  private async nameFiles(dir: string): Promise<NameFiles> {
    const files: NameFiles = { data: [], ts: [], meta: [] };
    for (const name of await readdirOrEmpty(dir)) {
      if (name.endsWith('.data')) files.data.push(name);
      else if (name.endsWith('.ts')) files.ts.push(name);
      else if (name.endsWith('.meta')) files.meta.push(name);
    }
    for (const list of [files.data, files.ts, files.meta]) list.sort().reverse();
    const all = [files.data[0], files.ts[0], files.meta[0]].filter((f): f is string => !!f).map(fileTimestamp);
    files.newest = all.sort().at(-1);
    return files;
  }

  private checkNewer(files: NameFiles, timestamp: string): void {
    if (files.newest !== undefined && files.newest >= timestamp) {
      throw new ConflictError(`timestamp ${timestamp} is not newer than the existing ${files.newest}`, files.newest);
    }
  }

  /**
   * The state `files` describe; a corrupt file quarantines the name and counts as absent.
   * `locked`: the caller holds the name's lock.
   */
  private async resolve(partition: number, dir: string, files: NameFiles, locked = false): Promise<ReplicaMeta | undefined> {
    const data = files.data[0];
    const ts = files.ts[0];
    if (!data && !ts) return undefined;
    const hash = dir.slice(dir.lastIndexOf('/') + 1);
    try {
      if (ts && (!data || fileTimestamp(ts) > fileTimestamp(data))) {
        const t = await readNameFile(join(dir, ts));
        return { account: t.account, container: t.container, object: t.object, timestamp: fileTimestamp(ts), etag: '', size: 0, contentType: '', metadata: {}, deleted: true };
      }
      const fh = await open(join(dir, data!), 'r');
      let meta: ReplicaMeta;
      try {
        meta = trailerMeta(await readTrailer(fh));
      } finally {
        await fh.close();
      }
      const post = files.meta[0];
      if (post && fileTimestamp(post) > fileTimestamp(data!)) {
        const m = await readNameFile(join(dir, post));
        meta.dataTimestamp = meta.timestamp;
        meta.timestamp = fileTimestamp(post);
        meta.metadata = { ...(m.metadata ?? {}) };
        if (m.contentType) meta.contentType = m.contentType;
      }
      return meta;
    } catch (err) {
      // Replaced meanwhile: look again.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !locked) return this.resolve(partition, dir, await this.nameFiles(dir));
      if (!(err instanceof Corrupt)) throw err;
      const bad = err.file ?? data!;
      if (locked) await this.quarantineFileLocked(partition, hash, bad, err.message);
      else await this.quarantineFile(partition, hash, bad, err.message);
      return undefined;
    }
  }

  /** Renames `tmp` into the name's directory as `file`, fsyncing the file's new home. */
  private async commit(partition: number, dir: string, tmp: string, file: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const created = await mkdir(dir, { recursive: true });
        await rename(tmp, join(dir, file));
        await fsyncDir(dir);
        // A new name's directory entry must itself be durable.
        if (created) {
          await fsyncDir(join(this.objectsDir, String(partition)));
          await fsyncDir(this.objectsDir);
        }
        return;
      } catch (err) {
        // A concurrent prune of the (then empty) partition directory: make it again.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  /** A .ts or .meta: small JSON, written to tmp, fsynced, renamed in. */
  private async writeSmallFile(partition: number, dir: string, file: string, body: NameFile): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true });
    const tmp = join(this.tmpDir, `${process.pid}-${randomUUID()}`);
    try {
      const fh = await open(tmp, 'wx');
      try {
        await this.writeAll(fh, Buffer.from(JSON.stringify(body), 'utf8'));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.commit(partition, dir, tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw new InsufficientStorageError(`device full writing ${body.account}/${body.container}/${body.object}`);
      throw err;
    }
  }

  private async removeFiles(dir: string, files: string[]): Promise<void> {
    for (const f of files) await rm(join(dir, f), { force: true });
  }

  private async moveToQuarantine(partition: number, hash: string, reason: string): Promise<void> {
    const dir = this.hashDir(partition, hash);
    if ((await readdirOrEmpty(dir)).length === 0) return;
    await mkdir(this.quarantineDir, { recursive: true });
    let target = join(this.quarantineDir, hash);
    if (await exists(target)) target = join(this.quarantineDir, `${hash}-${Date.now()}-${randomUUID().slice(0, 8)}`);
    await rename(dir, target);
    await writeFile(join(target, 'QUARANTINE_REASON'), `${new Date().toISOString()} partition ${partition}: ${reason}\n`);
    await fsyncDir(join(this.objectsDir, String(partition))).catch(() => {});
    await this.pruneEmptyPartition(partition);
  }

  private async pruneEmptyPartition(partition: number): Promise<void> {
    await rmdir(join(this.objectsDir, String(partition))).catch(() => {});
  }

  private async withNameLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = previous.then(() => new Promise<void>((r) => (release = r)));
    this.locks.set(key, mine);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(key) === mine) this.locks.delete(key);
    }
  }
}

async function readTrailer(fh: FileHandle): Promise<Trailer> {
  const { size: fileSize } = await fh.stat();
  if (fileSize < FOOTER_BYTES) throw new Corrupt(`file of ${fileSize} bytes is shorter than its footer`);
  const footer = Buffer.alloc(FOOTER_BYTES);
  await fh.read(footer, 0, FOOTER_BYTES, fileSize - FOOTER_BYTES);
  if (!footer.subarray(24).equals(MAGIC)) throw new Corrupt('footer has no magic (truncated or garbled)');
  const length = Number(footer.readBigUInt64BE(16));
  if (length > MAX_TRAILER_BYTES || length > fileSize - FOOTER_BYTES) throw new Corrupt(`trailer length ${length} is impossible`);
  const json = Buffer.alloc(length);
  await fh.read(json, 0, length, fileSize - FOOTER_BYTES - length);
  if (!createHash('md5').update(json).digest().equals(footer.subarray(0, 16))) throw new Corrupt('trailer does not match its md5');
  let t: Trailer;
  try {
    t = JSON.parse(json.toString('utf8')) as Trailer;
  } catch {
    throw new Corrupt('trailer is not JSON');
  }
  if (t.v !== 1 || !Number.isSafeInteger(t.size) || !Number.isSafeInteger(t.chunkSize) || t.chunkSize < 1) throw new Corrupt('trailer fields are invalid');
  if (t.size + length + FOOTER_BYTES !== fileSize) throw new Corrupt(`file is ${fileSize} bytes, trailer says ${t.size} of body`);
  if (t.chunks.length !== Math.ceil(t.size / t.chunkSize) * 32) throw new Corrupt('trailer has the wrong number of chunk digests');
  return t;
}

async function readNameFile(path: string): Promise<NameFile> {
  const text = await readFile(path, 'utf8');
  const file = path.slice(path.lastIndexOf('/') + 1);
  try {
    const n = JSON.parse(text) as NameFile;
    if (typeof n.account !== 'string' || typeof n.container !== 'string' || typeof n.object !== 'string') throw new Error('no name');
    return n;
  } catch {
    throw new Corrupt(`${file} is not valid JSON naming the object`, file);
  }
}

function trailerMeta(t: Trailer): ReplicaMeta {
  return {
    account: t.account,
    container: t.container,
    object: t.object,
    timestamp: t.timestamp,
    etag: t.etag,
    size: t.size,
    contentType: t.contentType,
    metadata: { ...t.metadata },
    deleted: false,
  };
}

function fileTimestamp(file: string): string {
  return file.slice(0, file.lastIndexOf('.'));
}

function compareNames(a: ReplicaMeta, b: ReplicaMeta): number {
  const ka = `${a.account}\0${a.container}\0${a.object}`;
  const kb = `${b.account}\0${b.container}\0${b.object}`;
  return Buffer.compare(Buffer.from(ka), Buffer.from(kb));
}

function checkPartition(partition: number): void {
  if (!Number.isSafeInteger(partition) || partition < 0) throw new BadRequestError(`bad partition ${partition}`);
}

function checkName(account: string, container: string, object: string): void {
  if (!account || account.includes('/')) throw new BadRequestError(`bad account name ${JSON.stringify(account)}`);
  if (!container || container.includes('/')) throw new BadRequestError(`bad container name ${JSON.stringify(container)}`);
  if (!object) throw new BadRequestError('empty object name');
  if (`${account}${container}${object}`.includes('\0')) throw new BadRequestError('names may not contain NUL');
}

function checkTimestamp(timestamp: string): string {
  const ts = normalizeTimestamp(timestamp);
  if (!ts) throw new BadRequestError(`bad timestamp ${JSON.stringify(timestamp)}`);
  return ts;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

