// Swift's proxy data path: an object's bytes go to the object servers of its ring partition and
// come back from them, streamed both ways and never held whole. A PUT streams to every primary at
// once (a handoff stands in for a primary that cannot be reached) and succeeds once a write
// quorum stored it with the same ETag; a GET reads from the first node that has the object and,
// if that node's stream breaks (a dead server, a corrupt chunk its server refused to send), goes
// on from the next node at the byte where it stopped, for the same version only.
import { Agent, request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { Ring, RingDevice } from '../../domains/object/ring.js';
import { nodesFor, partitionOf, replicaPath, splitHost, writeQuorum } from './placement.js';

export interface StoredMeta {
  etag: string;
  timestamp: string;
  /** The timestamp of the PUT that wrote the bytes (timestamp is a later POST's, if any). */
  dataTimestamp?: string;
  size: number;
  contentType: string;
  metadata: Record<string, string>;
}

export interface PutHeader {
  account: string;
  container: string;
  name: string;
  contentType: string;
  metadata: Record<string, string>;
  timestamp: string;
  /** The MD5 the client says the body has (Swift's ETag header). */
  expectedEtag?: string;
}

export interface PutResult {
  etag: string;
  size: number;
  partition: number;
  ringVersion: number;
  replicasWritten: number;
}

export interface ReadResult {
  meta: StoredMeta;
  /** Bytes of this response (the range's, or the whole object's). */
  contentLength: number;
  /** "bytes a-b/size" for a ranged read. */
  contentRange?: string;
  body: Readable;
}

export interface ByteRange {
  start: number;
  /** Inclusive. */
  end: number;
}

/** No write quorum, or no node could serve a read (gRPC UNAVAILABLE, Swift's 503). */
export class ObjectUnavailableError extends Error {
  override readonly name = 'ObjectUnavailableError';
}
/** The body's MD5 is not the ETag the client sent (Swift's 422). */
export class ObjectEtagMismatchError extends Error {
  override readonly name = 'ObjectEtagMismatchError';
}
/** No node holds a live version (Swift's 404); `tombstone` is the newest delete seen. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(
    message: string,
    readonly tombstone = '',
  ) {
    super(message);
  }
}
/** A newer version is already stored (Swift's 409 from every node). */
export class ObjectConflictError extends Error {
  override readonly name = 'ObjectConflictError';
}
/** The range does not overlap the object (Swift's 416). */
export class RangeNotSatisfiableError extends Error {
  override readonly name = 'RangeNotSatisfiableError';
}

export interface ObjectProxyOptions {
  /** The current ring (the feed's); undefined until the first rebalance. */
  ring: () => Ring | undefined;
  connectTimeoutMs?: number;
  /** A node that sends nothing for this long is given up on. */
  idleTimeoutMs?: number;
}


const metaHeaders = (metadata: Record<string, string>) => Object.fromEntries(Object.entries(metadata).map(([k, v]) => [`x-object-meta-${k.toLowerCase()}`, encodeURIComponent(v)]));

/** The timestamp of the data a replica serves (a POST's .meta gives x-timestamp its own). */
const dataTimestampOf = (headers: IncomingHttpHeaders) => String(headers['x-backend-data-timestamp'] ?? headers['x-timestamp'] ?? '');

export function storedMetaOf(headers: IncomingHttpHeaders): StoredMeta {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.startsWith('x-object-meta-') && typeof v === 'string') metadata[k.slice(14)] = safeDecode(v);
  const range = /\/(\d+)$/.exec(String(headers['content-range'] ?? ''));
  return {
    etag: String(headers.etag ?? '').replace(/"/g, ''),
    timestamp: String(headers['x-timestamp'] ?? ''),
    dataTimestamp: dataTimestampOf(headers),
    size: range ? Number(range[1]) : Number(headers['x-backend-size'] ?? headers['content-length'] ?? 0),
    contentType: String(headers['content-type'] ?? 'application/octet-stream'),
    metadata,
  };
}

const safeDecode = (v: string) => {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
};

interface NodeReply {
  status: number;
  headers: IncomingHttpHeaders;
  response: IncomingMessage;
}

export class ObjectProxy {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly connectTimeoutMs: number;
  private readonly idleTimeoutMs: number;

  constructor(private readonly o: ObjectProxyOptions) {
    this.connectTimeoutMs = o.connectTimeoutMs ?? 2_000;
    this.idleTimeoutMs = o.idleTimeoutMs ?? 15_000;
  }

  ring(): Ring {
    const ring = this.o.ring();
    if (!ring || ring.devices.length === 0) throw new ObjectUnavailableError('object storage has no ring yet: add devices and rebalance (strata ring add-device, strata ring rebalance)');
    return ring;
  }

  partitionOf(account: string, container: string, name: string): number {
    return partitionOf(this.ring(), account, container, name);
  }

  /** Streams the body to the partition's primaries; resolves once a write quorum stored it. */
  async put(h: PutHeader, body: AsyncIterable<Uint8Array>): Promise<PutResult> {
    const ring = this.ring();
    const partition = partitionOf(ring, h.account, h.container, h.name);
    const { primaries, handoffs } = nodesFor(ring, partition);
    const quorum = writeQuorum(ring.replicas);
    const path = replicaPath(partition, h.account, h.container, h.name);
    const headers = {
      'x-timestamp': h.timestamp,
      'content-type': h.contentType || 'application/octet-stream',
      'transfer-encoding': 'chunked',
      ...(h.expectedEtag ? { etag: h.expectedEtag } : {}),
      ...metaHeaders(h.metadata),
    };
    // Connect to each primary; one that cannot be reached is replaced by the next handoff.
    const spare = [...handoffs];
    const open = async (device: RingDevice): Promise<Upload | undefined> => {
      let d: RingDevice | undefined = device;
      while (d) {
        const upload = await this.startUpload(d, path, headers).catch(() => undefined);
        if (upload) return upload;
        d = spare.shift();
      }
      return undefined;
    };
    const uploads = (await Promise.all(primaries.map(open))).filter((u): u is Upload => u !== undefined);
    const alive = () => uploads.filter((u) => !u.failed);
    if (uploads.length < quorum) {
      for (const u of uploads) u.abort();
      throw new ObjectUnavailableError(`only ${uploads.length} of ${ring.replicas} object servers of partition ${partition} could be reached (a write needs ${quorum})`);
    }
    let size = 0;
    try {
      for await (const chunk of body) {
        size += chunk.length;
        const writing = alive();
        if (writing.length < quorum) {
          // Nodes that refused the body said why: a newer version there (409) is a conflict, not an outage.
          const refused = uploads.map((u) => u.status);
          if (refused.filter((x) => x === 409).length >= quorum) throw new ObjectConflictError(`a newer version of ${h.container}/${h.name} than ${h.timestamp} is stored`);
          if (refused.includes(422)) throw new ObjectEtagMismatchError(`etag: the body's MD5 is not ${h.expectedEtag}`);
          throw new ObjectUnavailableError(`the write lost its quorum: ${writing.length} of ${ring.replicas} object servers still take it (a write needs ${quorum}; answers: ${refused.map((x) => x ?? 'none').join(', ')})`);
        }
        // Backpressure: the next chunk waits for the slowest live node's buffer to drain.
        await Promise.all(writing.map((u) => u.write(chunk)));
      }
    } catch (e) {
      for (const u of uploads) u.abort();
      throw e;
    }
    const replies = await Promise.all(alive().map((u) => u.finish()));
    const stored = replies.filter((r) => r.status === 201);
    if (replies.some((r) => r.status === 422)) throw new ObjectEtagMismatchError(`etag: the body's MD5 is not ${h.expectedEtag}`);
    const etags = new Set(stored.map((r) => String(r.headers.etag ?? '').replace(/"/g, '')));
    if (etags.size > 1) throw new ObjectUnavailableError(`the object servers stored different ETags (${[...etags].join(', ')}): the body changed in flight`);
    if (stored.length < quorum) {
      if (replies.filter((r) => r.status === 409).length >= quorum) throw new ObjectConflictError(`a newer version of ${h.container}/${h.name} than ${h.timestamp} is stored`);
      const why = replies.map((r) => `${r.status}${r.error ? ` ${r.error}` : ''}`).join(', ');
      throw new ObjectUnavailableError(`only ${stored.length} of ${ring.replicas} replicas were stored (a write needs ${quorum}; replies: ${why || 'none'})`);
    }
    return { etag: [...etags][0], size, partition, ringVersion: ring.version, replicasWritten: stored.length };
  }

  private startUpload(device: RingDevice, path: string, headers: Record<string, string>): Promise<Upload> {
    return new Promise((resolve, reject) => {
      const [host, port] = splitHost(device.host);
      const req = request({ host, port, method: 'PUT', path, headers, agent: this.agent });
      const timer = setTimeout(() => {
        req.destroy(new Error(`connect timeout to ${device.host}`));
      }, this.connectTimeoutMs);
      req.once('socket', (socket) => {
        const ready = () => {
          clearTimeout(timer);
          resolve(new Upload(req, device, this.idleTimeoutMs));
        };
        if (socket.connecting) socket.once('connect', ready);
        else ready();
      });
      req.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  }

  /** Sends a request to one node and returns its status and headers (the body left unread). */
  private send(device: RingDevice, method: string, path: string, headers: Record<string, string> = {}): Promise<NodeReply> {
    return new Promise((resolve, reject) => {
      const [host, port] = splitHost(device.host);
      const req = request({ host, port, method, path, headers, agent: this.agent, timeout: this.idleTimeoutMs });
      req.once('timeout', () => req.destroy(new Error(`${device.host} did not answer within ${this.idleTimeoutMs} ms`)));
      req.once('error', reject);
      req.once('response', (response) => resolve({ status: response.statusCode ?? 0, headers: response.headers, response }));
      req.end();
    });
  }

  private async each(account: string, container: string, name: string, method: string, headers: Record<string, string> = {}): Promise<{ ring: Ring; replies: (NodeReply | undefined)[] }> {
    const ring = this.ring();
    const partition = partitionOf(ring, account, container, name);
    const { primaries } = nodesFor(ring, partition);
    const path = replicaPath(partition, account, container, name);
    const replies = await Promise.all(
      primaries.map(async (d) => {
        try {
          const r = await this.send(d, method, path, headers);
          r.response.resume();
          return r;
        } catch {
          return undefined;
        }
      }),
    );
    return { ring, replies };
  }

  /** Writes a tombstone on the primaries; resolves with whether any held a live version. */
  async delete(account: string, container: string, name: string, timestamp: string): Promise<{ found: boolean }> {
    const { ring, replies } = await this.each(account, container, name, 'DELETE', { 'x-timestamp': timestamp });
    const done = replies.filter((r) => r && (r.status === 204 || r.status === 404));
    if (done.length < writeQuorum(ring.replicas)) throw new ObjectUnavailableError(`only ${done.length} of ${ring.replicas} object servers recorded the delete (it needs ${writeQuorum(ring.replicas)})`);
    return { found: done.some((r) => r!.status === 204) };
  }

  /** Replaces the user metadata on the primaries (Swift's fast-POST). */
  async post(account: string, container: string, name: string, timestamp: string, metadata: Record<string, string>, contentType?: string): Promise<void> {
    const { ring, replies } = await this.each(account, container, name, 'POST', { 'x-timestamp': timestamp, ...(contentType ? { 'content-type': contentType } : {}), ...metaHeaders(metadata) });
    const done = replies.filter((r) => r?.status === 202);
    if (done.length === 0 && replies.some((r) => r?.status === 404)) throw new ObjectNotFoundError(`${container}/${name} not found`);
    if (done.length < writeQuorum(ring.replicas)) throw new ObjectUnavailableError(`only ${done.length} of ${ring.replicas} object servers took the metadata (it needs ${writeQuorum(ring.replicas)})`);
  }

  /** The newest live version any node of the partition answers for (primaries first, then handoffs). */
  async head(account: string, container: string, name: string): Promise<StoredMeta | undefined> {
    for await (const reply of this.nodeReplies(account, container, name, 'HEAD')) {
      reply.response.resume();
      if (reply.status === 200) return storedMetaOf(reply.headers);
    }
    return undefined;
  }

  /** Tries the partition's nodes in order and yields each reply (404s and errors move on). */
  private async *nodeReplies(account: string, container: string, name: string, method: string, headers: Record<string, string> = {}, skip = new Set<number>()) {
    const ring = this.ring();
    const partition = partitionOf(ring, account, container, name);
    const { primaries, handoffs } = nodesFor(ring, partition);
    const path = replicaPath(partition, account, container, name);
    for (const d of [...primaries, ...handoffs]) {
      if (skip.has(d.id)) continue;
      let reply: NodeReply;
      try {
        reply = await this.send(d, method, path, headers);
      } catch {
        continue;
      }
      yield Object.assign(reply, { device: d });
    }
  }

  /**
   * Reads an object (or a range of it). The body resumes from another node if the one serving it
   * breaks off, asking for the same timestamp and ETag, so it is never a mix of two versions; if
   * no node can finish it the stream ends in an error, never in wrong bytes.
   */
  async get(account: string, container: string, name: string, range?: ByteRange | { suffix: number }, want?: { timestamp: string; etag: string }): Promise<ReadResult> {
    const rangeHeader = range ? ('suffix' in range ? `bytes=-${range.suffix}` : `bytes=${range.start}-${range.end === Infinity ? '' : range.end}`) : undefined;
    let tombstone = '';
    let unsatisfiable = false;
    const tried = new Set<number>();
    for await (const reply of this.nodeReplies(account, container, name, 'GET', rangeHeader ? { range: rangeHeader } : {})) {
      tried.add(reply.device.id);
      if (reply.status === 200 || reply.status === 206) {
        const meta = storedMetaOf(reply.headers);
        if (want && (dataTimestampOf(reply.headers) !== want.timestamp || meta.etag !== want.etag)) {
          // Another version than the one asked for (a replica behind, or ahead of the log): try the next node.
          reply.response.resume();
          continue;
        }
        const contentLength = Number(reply.headers['content-length'] ?? 0);
        const contentRange = reply.status === 206 ? String(reply.headers['content-range']) : undefined;
        const first = contentRange ? Number(/bytes (\d+)-/.exec(contentRange)![1]) : 0;
        const body = this.resumable(account, container, name, meta, reply.response, first, contentLength, tried);
        return { meta, contentLength, contentRange, body };
      }
      reply.response.resume();
      if (reply.status === 416) unsatisfiable = true;
      const ts = String(reply.headers['x-backend-timestamp'] ?? '');
      if (ts > tombstone) tombstone = ts;
    }
    if (unsatisfiable) throw new RangeNotSatisfiableError(`range ${rangeHeader} is outside ${container}/${name}`);
    throw new ObjectNotFoundError(`${container}/${name} not found`, tombstone);
  }

  private resumable(account: string, container: string, name: string, meta: StoredMeta, first: IncomingMessage, start: number, length: number, tried: Set<number>): Readable {
    let current: IncomingMessage | undefined = first;
    let delivered = 0;
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      while (delivered < length) {
        if (!current) {
          current = await self.resumeFrom(account, container, name, meta, start + delivered, start + length - 1, tried);
          if (!current) throw new ObjectUnavailableError(`${container}/${name}: the node serving it broke off after ${delivered} of ${length} bytes and no other node holds version ${meta.timestamp}`);
        }
        try {
          for await (const chunk of current as AsyncIterable<Buffer>) {
            const take = chunk.length > length - delivered ? chunk.subarray(0, length - delivered) : chunk;
            delivered += take.length;
            yield take;
          }
        } catch {
          // The node broke off: carry on from the next one.
        }
        if (delivered < length) {
          current.destroy();
          current = undefined;
        }
      }
    }
    const out = Readable.from(chunks(), { objectMode: false, highWaterMark: 256 * 1024 });
    out.once('close', () => current?.destroy());
    return out;
  }

  private async resumeFrom(account: string, container: string, name: string, meta: StoredMeta, from: number, to: number, tried: Set<number>): Promise<IncomingMessage | undefined> {
    for await (const reply of this.nodeReplies(account, container, name, 'GET', { range: `bytes=${from}-${to}` }, tried)) {
      tried.add(reply.device.id);
      const m = storedMetaOf(reply.headers);
      const same = dataTimestampOf(reply.headers) === meta.dataTimestamp && m.etag === meta.etag;
      if (reply.status === 206 && same) return reply.response;
      if (reply.status === 200 && from === 0 && same) return reply.response;
      reply.response.resume();
    }
    return undefined;
  }

  /** Whether a device's object server answers its health check. */
  async healthy(device: RingDevice, timeoutMs = 1_000): Promise<boolean> {
    return new Promise((resolve) => {
      const [host, port] = splitHost(device.host);
      const req = request({ host, port, method: 'GET', path: '/healthcheck', agent: this.agent, timeout: timeoutMs }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.once('timeout', () => req.destroy());
      req.once('error', () => resolve(false));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}


/** One replica's PUT in flight. */
class Upload {
  failed = false;
  /** The node's answer, once it gave one. */
  status: number | undefined;
  error = '';
  private response: Promise<{ status: number; headers: IncomingHttpHeaders; error: string }>;

  constructor(
    private readonly req: ClientRequest,
    readonly device: RingDevice,
    idleTimeoutMs: number,
  ) {
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`${device.host} stalled for ${idleTimeoutMs} ms`)));
    this.response = new Promise((resolve) => {
      req.once('response', (res) => {
        // A node that answers before the body is all sent has refused it (409, 400, 507): it takes no more.
        this.status = res.statusCode ?? 0;
        if (res.statusCode !== 201) this.failed = true;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          if (text.length < 1024) text += d;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, error: res.statusCode === 201 ? '' : text.trim() }));
        res.once('error', (e) => resolve({ status: 0, headers: {}, error: e.message }));
      });
      req.once('error', (e) => {
        this.failed = true;
        this.error = e.message;
        resolve({ status: 0, headers: {}, error: `${device.host}: ${e.message}` });
      });
    });
  }

  /** Resolves when the chunk is handed on (at once, or once the socket drained); a broken node just fails. */
  write(chunk: Uint8Array): Promise<void> {
    // A request already closed emits no more drain, error or close: waiting on them would hang.
    if (this.failed || this.req.destroyed || this.req.writableEnded) {
      this.failed = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        this.req.off('drain', done);
        this.req.off('error', done);
        this.req.off('close', done);
        resolve();
      };
      const ok = this.req.write(chunk, (e) => {
        if (e) {
          this.failed = true;
          done();
        }
      });
      if (ok) return resolve();
      if (this.req.destroyed) {
        this.failed = true;
        return resolve();
      }
      this.req.once('drain', done);
      this.req.once('error', done);
      this.req.once('close', done);
    });
  }

  finish(): Promise<{ status: number; headers: IncomingHttpHeaders; error: string }> {
    if (!this.failed) this.req.end();
    return this.response;
  }

  abort(): void {
    this.failed = true;
    this.req.destroy();
  }
}
