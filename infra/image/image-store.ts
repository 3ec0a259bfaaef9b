// Image data in object storage (Glance's swift store): every image's bytes are one object of the
// account AUTH_glance, container "images", named by the image id. Used by the image API (upload,
// download, delete) and by compute agents (fetching an image to boot from). Bytes stream both
// ways and are never held whole: a write computes md5, sha512, the size and the virtual size on
// the way to the object servers (ObjectProxy.put), then records the object version in the object
// domain (RecordObject), which is what makes it stored; a read checks size and md5 at the end and
// fails the stream if they differ; a removal records the delete first and writes the tombstones
// after (a replicator finishes any the object servers missed).
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { DomainWriter } from '../../api/domain.writer.js';
import { ApiError } from '../../api/errors.js';
import { containerId, objectId, timestampOf, type Container, type ObjectVersion } from '../../domains/object/object.types.js';
import type { Actor } from '../envelope/envelope.js';
import type { ObjectProxy } from '../object/object-proxy.js';

export const IMAGE_ACCOUNT = 'AUTH_glance';
export const IMAGE_CONTAINER = 'images';
export const imageLocation = (imageId: string) => `${IMAGE_ACCOUNT}/${IMAGE_CONTAINER}/${imageId}`;

export interface StoredImageData {
  location: string;
  size: number;
  /** md5 hex. */
  checksum: string;
  osHashAlgo: 'sha512';
  osHashValue: string;
  /** qcow2: from its header (bytes 24..31 big-endian); raw: size; else 0. */
  virtualSize: number;
}

export interface ImageStoreOptions {
  proxy: ObjectProxy;
  /** The object domain's writer (RecordObject, RecordObjectDeleted, CreateContainer). */
  objects: DomainWriter;
  now?: () => number;
}

/** The data read back is not what was stored (size or md5 differ). */
export class ImageDataMismatchError extends Error {
  override readonly name = 'ImageDataMismatchError';
}

/** The image service's own actor on object commands. */
const SYSTEM: Actor = { userId: 'strata-image', projectId: '', roles: ['admin'] };

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/** "<account>/<container>/<object>" split (the object name may hold slashes). */
export function parseLocation(location: string): { account: string; container: string; name: string } {
  const m = /^([^/]+)\/([^/]+)\/(.+)$/.exec(location);
  if (!m) throw new Error(`not an object location <account>/<container>/<object>: "${location}"`);
  return { account: m[1], container: m[2], name: m[3] };
}

/** The virtual size of a disk from its first bytes: qcow2's header field, raw's size, else 0. */
export function virtualSizeOf(head: Buffer, size: number, diskFormat?: string): number {
  const isQcow2 = head.length >= 32 && head.readUInt32BE(0) === QCOW2_MAGIC;
  if (diskFormat === 'qcow2' || (diskFormat === undefined && isQcow2)) return isQcow2 ? Number(head.readBigUInt64BE(24)) : 0;
  if (diskFormat === 'raw' || diskFormat === undefined) return size;
  return 0;
}

export class ImageStore {
  private readonly now: () => number;
  private lastTs = 0;
  private container?: Promise<void>;

  constructor(private readonly o: ImageStoreOptions) {
    this.now = o.now ?? Date.now;
  }

  // Swift's X-Timestamp, strictly increasing in this process (10 µs steps).
  private nextTimestamp(): string {
    this.lastTs = Math.max(this.lastTs + 1, this.now() * 100);
    return timestampOf(Math.floor(this.lastTs / 100), this.lastTs % 100);
  }

  /** Creates the images container if missing (CreateContainer, ALREADY_EXISTS is fine). */
  ensureContainer(): Promise<void> {
    this.container ??= (async () => {
      const container: Container = { account: IMAGE_ACCOUNT, name: IMAGE_CONTAINER, metadata: {}, readAcl: [], writeAcl: [], quotaBytes: 0, quotaCount: 0, createdAtMs: 0 };
      const reply = await this.o.objects.reply('container', containerId(IMAGE_ACCOUNT, IMAGE_CONTAINER), { type: 'CreateContainer', container }, SYSTEM);
      if (reply.kind === 'rejected' && reply.rejection.code !== 'ALREADY_EXISTS') throw new ApiError(reply.rejection);
    })().catch((e) => {
      this.container = undefined;
      throw e;
    });
    return this.container;
  }

  /**
   * Streams the body to object storage (never whole in memory), computing md5, sha512, size and
   * virtual size on the way, then records the object (RecordObject). `diskFormat` decides the
   * virtual size (qcow2: its header; raw: the size; others: 0); without it a qcow2 header is
   * recognised by its magic and anything else counts as raw.
   */
  async write(imageId: string, body: AsyncIterable<Uint8Array>, diskFormat?: string): Promise<StoredImageData> {
    await this.ensureContainer();
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    let size = 0;
    const head: Buffer[] = [];
    let headBytes = 0;
    async function* hashed(): AsyncGenerator<Uint8Array> {
      for await (const chunk of body) {
        md5.update(chunk);
        sha512.update(chunk);
        size += chunk.length;
        if (headBytes < 32) {
          head.push(Buffer.from(chunk.subarray(0, 32 - headBytes)));
          headBytes += Math.min(chunk.length, 32 - headBytes);
        }
        yield chunk;
      }
    }
    const timestamp = this.nextTimestamp();
    const contentType = 'application/octet-stream';
    const stored = await this.o.proxy.put({ account: IMAGE_ACCOUNT, container: IMAGE_CONTAINER, name: imageId, contentType, metadata: {}, timestamp }, hashed());
    const checksum = md5.digest('hex');
    if (stored.etag !== checksum || stored.size !== size) {
      throw new ImageDataMismatchError(`image ${imageId}: object storage stored ${stored.size} bytes with md5 ${stored.etag}, but ${size} bytes with md5 ${checksum} were sent`);
    }
    const version: ObjectVersion = {
      account: IMAGE_ACCOUNT, container: IMAGE_CONTAINER, name: imageId, timestamp, etag: checksum, size, contentType, metadata: {},
      partition: stored.partition, segments: [], ringVersion: stored.ringVersion,
    };
    await this.o.objects.send('object', objectId(IMAGE_ACCOUNT, IMAGE_CONTAINER, imageId), { type: 'RecordObject', object: version, ifNoneMatch: false }, SYSTEM);
    return {
      location: imageLocation(imageId), size, checksum, osHashAlgo: 'sha512', osHashValue: sha512.digest('hex'),
      virtualSize: virtualSizeOf(Buffer.concat(head), size, diskFormat),
    };
  }

  /** Streams an image's data back, and checks size/md5 at the end (the stream errors if they differ). */
  async read(location: string, expected: { size?: number; checksum?: string } = {}): Promise<{ size: number; body: Readable }> {
    const { account, container, name } = parseLocation(location);
    const got = await this.o.proxy.get(account, container, name);
    if (expected.size !== undefined && got.contentLength !== expected.size) {
      got.body.destroy();
      throw new ImageDataMismatchError(`${location} holds ${got.contentLength} bytes, the image ${expected.size}`);
    }
    const md5 = createHash('md5');
    let seen = 0;
    const check = new Transform({
      highWaterMark: 256 * 1024,
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        md5.update(chunk);
        seen += chunk.length;
        cb(null, chunk);
      },
      flush(cb: TransformCallback) {
        const want = expected.size ?? got.contentLength;
        if (seen !== want) return cb(new ImageDataMismatchError(`${location}: read ${seen} bytes, expected ${want}`));
        const sum = md5.digest('hex');
        if (expected.checksum && sum !== expected.checksum) return cb(new ImageDataMismatchError(`${location}: the data read has md5 ${sum}, the image ${expected.checksum}`));
        cb();
      },
    });
    got.body.once('error', (e) => check.destroy(e));
    check.once('close', () => got.body.destroy());
    got.body.pipe(check);
    return { size: got.contentLength, body: check };
  }

  /** Deletes the data (RecordObjectDeleted + tombstones). */
  async remove(location: string): Promise<void> {
    const { account, container, name } = parseLocation(location);
    const timestamp = this.nextTimestamp();
    const reply = await this.o.objects.reply('object', objectId(account, container, name), { type: 'RecordObjectDeleted', timestamp }, SYSTEM);
    // Not stored (never recorded, or deleted already): nothing is owed but the tombstones.
    if (reply.kind === 'rejected' && reply.rejection.code !== 'NOT_FOUND' && reply.rejection.state !== 'absent') throw new ApiError(reply.rejection);
    // The log has the delete; a replicator writes any tombstone that fails here.
    await this.o.proxy.delete(account, container, name, timestamp).catch(() => undefined);
  }
}
