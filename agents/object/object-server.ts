// The HTTP object server of one storage device: Swift's object-server protocol over a ReplicaStore.
//
//   PUT|GET|HEAD|DELETE|POST /o/<partition>/<account>/<container>/<object>
//   GET /p/<partition>?list     ReplicaMeta[] (newest state per name, tombstones included)
//   GET /p/<partition>?hash     {"hash": "..."}  ("" for an empty partition)
//   GET /partitions             number[]
//   GET /healthcheck            {"deviceId", "bytes", "objects"}
//
// Path segments are percent-encoded one by one; account and container are one segment each, the
// object name is the rest of the path and may contain '/'. Writes carry X-Timestamp (the proxy's
// clock decides; last write wins), PUT may carry ETag (the body's md5; mismatch 422), Content-Type
// and X-Object-Meta-*. A 404 or 409 carries X-Backend-Timestamp when the device has a newer or
// tombstoned state; a 404 with X-Backend-Quarantined: 1 means the replica was found corrupt just now.
//
// Bodies stream both ways with backpressure. A GET whose replica turns out corrupt after the
// headers went out is cut off (the socket is destroyed): the client sees a short, failed response,
// never a wrong byte. Every error body is one line of plain text.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream';
import {
  ConflictError,
  CorruptReplicaError,
  NotFoundError,
  RangeNotSatisfiableError,
  normalizeTimestamp,
  type ByteRange,
  type ReplicaMeta,
  type ReplicaStore,
} from './replica-store.js';

export interface ObjectServerOptions {
  store: ReplicaStore;
  deviceId: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = any free port. */
  port?: number;
}

// Swift's constraints (swift/common/constraints.py).
const MAX_OBJECT_NAME_BYTES = 1024;
const MAX_ACCOUNT_NAME_BYTES = 256;
const MAX_CONTAINER_NAME_BYTES = 256;
const MAX_META_NAME_BYTES = 128;
const MAX_META_VALUE_BYTES = 256;
const MAX_META_COUNT = 90;
const MAX_META_OVERALL_BYTES = 4096;
const META_PREFIX = 'x-object-meta-';

/** A request we refuse: status and a one-line reason. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ObjectPath {
  partition: number;
  account: string;
  container: string;
  object: string;
}

export class ObjectServer {
  private readonly store: ReplicaStore;
  private readonly deviceId: number;
  private server?: Server;

  constructor(private readonly options: ObjectServerOptions) {
    this.store = options.store;
    this.deviceId = options.deviceId;
  }

  async start(): Promise<{ address: string }> {
    if (this.server) throw new Error('object server already started');
    const server = createServer((req, res) => void this.handle(req, res));
    // A slow peer gets time; a dead one does not hold a socket forever.
    server.requestTimeout = 0;
    server.headersTimeout = 60_000;
    this.server = server;
    const host = this.options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    return { address: `${host}:${port}` };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://device');
      const raw = url.pathname;
      if (raw.startsWith('/o/')) return await this.object(req, res, parseObjectPath(raw));
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method} not allowed on ${raw}`, { allow: 'GET, HEAD' });
      if (raw === '/healthcheck') return sendJson(res, 200, { deviceId: this.deviceId, ...(await this.store.usage()) });
      if (raw === '/partitions') return sendJson(res, 200, await this.store.partitions());
      const p = /^\/p\/([^/]+)$/.exec(raw);
      if (p) {
        const partition = parsePartition(p[1]);
        if (url.searchParams.has('list')) return sendJson(res, 200, await this.store.listPartition(partition));
        if (url.searchParams.has('hash')) return sendJson(res, 200, { hash: await this.store.partitionHash(partition) });
        throw new HttpError(400, `/p/<partition> needs ?list or ?hash`);
      }
      throw new HttpError(400, `unknown path ${raw}: expected /o/<partition>/<account>/<container>/<object>, /p/<partition>?list|hash, /partitions or /healthcheck`);
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private async object(req: IncomingMessage, res: ServerResponse, path: ObjectPath): Promise<void> {
    const { partition, account, container, object } = path;
    switch (req.method) {
      case 'PUT': {
        const timestamp = requireTimestamp(req);
        const metadata = userMetadata(req);
        if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) {
          throw new HttpError(411, 'PUT needs Content-Length or Transfer-Encoding: chunked');
        }
        const etag = header(req, 'etag');
        const meta = await this.store.put(
          partition,
          { account, container, object, timestamp, contentType: header(req, 'content-type') || 'application/octet-stream', metadata, expectedEtag: etag || undefined },
          req,
        );
        res.writeHead(201, { etag: meta.etag, 'x-timestamp': meta.timestamp, 'content-length': 0 });
        res.end();
        return;
      }
      case 'DELETE': {
        const timestamp = requireTimestamp(req);
        const { existed } = await this.store.delete(partition, account, container, object, timestamp);
        if (!existed) throw new HttpError(404, `${account}/${container}/${object} was not there (tombstone written)`, { 'x-backend-timestamp': normalizeTimestamp(timestamp)! });
        res.writeHead(204, { 'x-timestamp': normalizeTimestamp(timestamp)! });
        res.end();
        return;
      }
      case 'POST': {
        const timestamp = requireTimestamp(req);
        const metadata = userMetadata(req);
        const meta = await this.store.postMetadata(partition, account, container, object, timestamp, metadata, header(req, 'content-type') || undefined);
        res.writeHead(202, { 'x-timestamp': meta.timestamp, 'content-length': 0 });
        res.end();
        return;
      }
      case 'HEAD': {
        const meta = await this.store.head(partition, account, container, object);
        if (!meta || meta.deleted) throw notFound(path, meta);
        res.writeHead(200, { ...objectHeaders(meta), 'content-length': meta.size });
        res.end();
        return;
      }
      case 'GET': {
        const range = parseRange(header(req, 'range'));
        const { meta, body, range: served } = await this.store.read(partition, account, container, object, range);
        const headers: Record<string, string | number> = objectHeaders(meta);
        if (served) {
          headers['content-range'] = `bytes ${served.start}-${served.end}/${meta.size}`;
          headers['content-length'] = served.end - served.start + 1;
        } else {
          headers['content-length'] = meta.size;
        }
        res.writeHead(served ? 206 : 200, headers);
        // On a bad chunk (or a client gone) pipeline destroys the response and with it the socket:
        // the client sees a body shorter than Content-Length and an aborted connection.
        pipeline(body, res, () => {});
        return;
      }
      default:
        throw new HttpError(405, `method ${req.method} not allowed on objects`, { allow: 'PUT, GET, HEAD, DELETE, POST' });
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let status = 500;
    let message = err instanceof Error ? err.message : String(err);
    const headers: Record<string, string> = {};
    if (err instanceof HttpError) {
      status = err.status;
      Object.assign(headers, err.headers);
    } else if (err instanceof CorruptReplicaError) {
      status = 404;
      headers['x-backend-quarantined'] = '1';
    } else if (err instanceof ConflictError) {
      status = 409;
      headers['x-backend-timestamp'] = err.existingTimestamp;
    } else if (err instanceof NotFoundError) {
      status = 404;
      if (err.tombstoneTimestamp) headers['x-backend-timestamp'] = err.tombstoneTimestamp;
    } else if (err instanceof RangeNotSatisfiableError) {
      status = 416;
      headers['content-range'] = `bytes */${err.size}`;
    } else if (typeof (err as { httpStatus?: unknown }).httpStatus === 'number') {
      status = (err as { httpStatus: number }).httpStatus;
    }
    // The client went away (mid-PUT or mid-GET): nobody to answer.
    if (req.destroyed && !req.complete) {
      res.destroy();
      return;
    }
    if (status === 500) console.error(`object server device ${this.deviceId}: ${req.method} ${req.url}:`, err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // A request body we did not read (refused before, or failed midway): close rather than drain it.
    if (!req.complete) headers.connection = 'close';
    const body = `${message.replace(/[\r\n]+/g, ' ')}\n`;
    res.writeHead(status, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

function parseObjectPath(raw: string): ObjectPath {
  const segments = raw.slice('/o/'.length).split('/');
  if (segments.length < 4) throw new HttpError(400, `object path needs /o/<partition>/<account>/<container>/<object>, got ${raw}`);
  const [p, a, c, ...o] = segments;
  const partition = parsePartition(p);
  const account = decodeSegment(a, 'account');
  const container = decodeSegment(c, 'container');
  const object = o.map((s) => decodeSegment(s, 'object', true)).join('/');
  if (!account) throw new HttpError(400, 'empty account name');
  if (!container) throw new HttpError(400, 'empty container name');
  if (!object) throw new HttpError(400, 'empty object name');
  if (account.includes('/')) throw new HttpError(400, `account name may not contain '/'`);
  if (container.includes('/')) throw new HttpError(400, `container name may not contain '/'`);
  if (Buffer.byteLength(account) > MAX_ACCOUNT_NAME_BYTES) throw new HttpError(400, `account name longer than ${MAX_ACCOUNT_NAME_BYTES} bytes`);
  if (Buffer.byteLength(container) > MAX_CONTAINER_NAME_BYTES) throw new HttpError(400, `container name longer than ${MAX_CONTAINER_NAME_BYTES} bytes`);
  if (Buffer.byteLength(object) > MAX_OBJECT_NAME_BYTES) throw new HttpError(400, `object name longer than ${MAX_OBJECT_NAME_BYTES} bytes`);
  return { partition, account, container, object };
}

function decodeSegment(segment: string, what: string, allowEmpty = false): string {
  let value: string;
  try {
    value = decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `${what} name is not valid percent-encoded UTF-8: ${segment}`);
  }
  if (value.includes('\0')) throw new HttpError(400, `${what} name may not contain NUL`);
  if (!allowEmpty && !value) throw new HttpError(400, `empty ${what} name`);
  return value;
}

function parsePartition(segment: string): number {
  const n = Number(segment);
  if (!/^\d+$/.test(segment) || !Number.isSafeInteger(n)) throw new HttpError(400, `bad partition ${JSON.stringify(segment)}: expected a non-negative integer`);
  return n;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function requireTimestamp(req: IncomingMessage): string {
  const raw = header(req, 'x-timestamp');
  if (raw === undefined) throw new HttpError(400, 'missing X-Timestamp header');
  const ts = normalizeTimestamp(raw.trim());
  if (!ts) throw new HttpError(400, `bad X-Timestamp ${JSON.stringify(raw)}: expected seconds like 1764640000.12345`);
  return ts;
}

/** A metadata value off the wire: percent-encoded UTF-8 (header values are Latin-1 only); a bad escape is taken as it is. */
const decodeValue = (v: string) => {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
};

/** X-Object-Meta-* headers, prefix stripped, keys lower-case, values decoded; Swift's size limits apply to the decoded values. */
function userMetadata(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  let count = 0;
  let overall = 0;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith(META_PREFIX) || value === undefined) continue;
    const key = name.slice(META_PREFIX.length);
    const v = decodeValue(Array.isArray(value) ? value.join(',') : value);
    if (!key) throw new HttpError(400, 'metadata name is empty');
    if (Buffer.byteLength(key) > MAX_META_NAME_BYTES) throw new HttpError(400, `metadata name ${key.slice(0, 40)}... longer than ${MAX_META_NAME_BYTES} bytes`);
    if (Buffer.byteLength(v) > MAX_META_VALUE_BYTES) throw new HttpError(400, `metadata value of ${key} longer than ${MAX_META_VALUE_BYTES} bytes`);
    count++;
    overall += Buffer.byteLength(key) + Buffer.byteLength(v);
    out[key] = v;
  }
  if (count > MAX_META_COUNT) throw new HttpError(400, `more than ${MAX_META_COUNT} metadata items`);
  if (overall > MAX_META_OVERALL_BYTES) throw new HttpError(400, `metadata larger than ${MAX_META_OVERALL_BYTES} bytes`);
  return out;
}

/**
 * A single `bytes=a-b`, `bytes=a-` or `bytes=-n`; anything else (absent, several ranges, not
 * bytes, a > b) is ignored and the whole body served, as RFC 9110 allows.
 */
export function parseRange(value: string | undefined): ByteRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  const end = m[2] === '' ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (end < start) return undefined;
  return { start, end };
}

function objectHeaders(meta: ReplicaMeta): Record<string, string | number> {
  const headers: Record<string, string | number> = {
    etag: meta.etag,
    'x-timestamp': meta.timestamp,
    'content-type': meta.contentType,
    // Swift rounds up: a client comparing If-Modified-Since never sees a time before the write.
    'last-modified': new Date(Math.ceil(Number(meta.timestamp)) * 1000).toUTCString(),
    'accept-ranges': 'bytes',
  };
  if (meta.dataTimestamp) headers['x-backend-data-timestamp'] = meta.dataTimestamp;
  for (const [k, v] of Object.entries(meta.metadata)) {
    // Values go out percent-encoded, as they come in (header values are Latin-1 only).
    if (/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(k)) headers[META_PREFIX + k] = encodeURIComponent(v);
  }
  return headers;
}

function notFound(path: ObjectPath, meta: ReplicaMeta | undefined): HttpError {
  return new HttpError(404, `${path.account}/${path.container}/${path.object} not found`, meta?.deleted ? { 'x-backend-timestamp': meta.timestamp } : {});
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
