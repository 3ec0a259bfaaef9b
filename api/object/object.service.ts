// ObjectService: Swift's account, container and object API over gRPC. Containers are commands
// (ObjectWriter) and read models (ObjectQueries); an object's bytes stream through the proxy
// (infra/object/object-proxy.ts) to a write quorum of object servers, and only then is its
// version recorded in the log, which is what makes the write acknowledged: a PUT that fails
// anywhere before that leaves no record (stray replicas are reclaimed by the replicators).
// Deletes are recorded first and the tombstones written after; a replicator finishes any the
// object servers missed. Access is decided here, per Swift's keystoneauth (object.access.ts).
import { createHash } from 'node:crypto';
import { status as grpcStatus, type ServerReadableStream, type ServerWritableStream, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { DEFAULT_RING, LIMITS, containerId, objectId, timestampOf, type Container, type ObjectVersion, type Segment } from '../../domains/object/object.types.js';
import { checkAcl, checkContainerName, checkMetadata, checkObjectName } from '../../domains/object/object.validation.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import {
  ObjectConflictError,
  ObjectEtagMismatchError,
  ObjectNotFoundError,
  ObjectUnavailableError,
  RangeNotSatisfiableError,
  type ByteRange,
  type ObjectProxy,
  type StoredMeta,
} from '../../infra/object/object-proxy.js';
import type { ObjectFeed } from '../../infra/sagas/object.feed.js';
import { tracer } from '../../infra/telemetry/telemetry.js';
import type { ObjectQueries } from '../../projections/object/object.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse, toServiceError } from '../errors.js';
import { objectPolicy, objectRule } from '../policy/object.policy.js';
import type { Caller } from '../policy/policy.js';
import { actorOf, camel, type Req, type Res } from '../request.js';
import { unaryRpcs } from '../unary-rpc.js';
import { accountFor, requireAccount, requireContainer } from './object.access.js';
import type { ObjectWriter } from './object.writer.js';

export interface ObjectServiceOptions {
  writer: ObjectWriter;
  queries: ObjectQueries;
  feed: ObjectFeed;
  proxy: ObjectProxy;
  authenticator: Authenticator;
  now?: () => number;
}

/** Bytes per GetObject chunk message. */
const CHUNK = 256 * 1024;

const asError = (e: unknown): unknown => {
  if (e instanceof ObjectUnavailableError) return refuse('UNAVAILABLE', e.message);
  if (e instanceof ObjectEtagMismatchError) return invalid('etag', e.message.replace(/^etag: /, ''));
  if (e instanceof ObjectNotFoundError) return refuse('NOT_FOUND', e.message);
  if (e instanceof ObjectConflictError) return refuse('FAILED_PRECONDITION', e.message, { state: 'stored' });
  if (e instanceof RangeNotSatisfiableError) return refuse('OUT_OF_RANGE', e.message);
  return e;
};

const maskOf = (req: Req): string[] => [...((req.updateMask?.paths ?? req.updateMask ?? []) as string[])].map(camel);

const lastModifiedOf = (timestamp: string) => Math.floor(Number(timestamp) * 1000);

/** Swift's ETag of a static large object: the MD5 of its segments' ETags, concatenated. */
const manifestEtag = (segments: Segment[]) => createHash('md5').update(segments.map((s) => s.etag).join('')).digest('hex');

function parseRange(req: Req, size: number): ByteRange | undefined {
  if (!req.hasRange) return undefined;
  let start = Number(req.rangeStart);
  let end = Number(req.rangeEnd);
  if (start < 0) {
    // A suffix: the last `end` bytes.
    if (!(end > 0)) throw invalid('range_end', 'a suffix range needs range_end > 0');
    start = Math.max(0, size - end);
    end = size - 1;
  } else if (end < 0 || end >= size) end = size - 1;
  if (start >= size || start > end) throw refuse('OUT_OF_RANGE', `range ${req.rangeStart}-${req.rangeEnd} is outside the object's ${size} bytes`);
  return { start, end };
}

/** Swift's conditional requests against the version about to be served. */
function checkConditions(req: Req, meta: { etag: string }, isGet: boolean): void {
  const ifMatch = String(req.ifMatch ?? '');
  const ifNoneMatch = String(req.ifNoneMatch ?? '');
  const matches = (header: string) => header.split(',').map((x) => x.trim().replace(/"/g, '')).some((t) => t === '*' || t === meta.etag);
  if (ifMatch && !matches(ifMatch)) throw refuse('FAILED_PRECONDITION', `If-Match: ${ifMatch} does not match ETag ${meta.etag} (412 Precondition Failed)`, { state: 'stored' });
  if (ifNoneMatch && matches(ifNoneMatch)) {
    throw refuse('FAILED_PRECONDITION', `If-None-Match: ${ifNoneMatch} matches ETag ${meta.etag} (${isGet ? '304 Not Modified' : '412 Precondition Failed'})`, { state: 'stored' });
  }
}

export function createObjectService(o: ObjectServiceOptions): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const now = o.now ?? Date.now;
  const register = unaryRpcs({ service: 'strata.object.v1.ObjectService', policy: objectPolicy, ruleOf: objectRule, authenticator: o.authenticator, impl, label: 'object' });
  // Every rule is enforced up front (no rule needs the target): the account and ACL checks come after, in the handlers.
  const rpc = (name: string, handler: Parameters<typeof register>[1]) => register(name, handler, () => ({}));

  // Swift's X-Timestamp, strictly increasing in this process (10 µs steps), so two writes of a name in one millisecond still order.
  let lastTs = 0;
  const nextTimestamp = () => {
    lastTs = Math.max(lastTs + 1, now() * 100);
    const ms = Math.floor(lastTs / 100);
    return timestampOf(ms, lastTs % 100);
  };

  const containerOf = async (account: string, name: string) => {
    checkContainerName(name, 'container');
    return o.queries.getContainer(account, name);
  };
  const existingContainer = async (account: string, name: string) => {
    const c = await containerOf(account, name);
    if (!c) throw refuse('NOT_FOUND', `container ${account}/${name} not found`);
    return c;
  };

  const containerDetail = async (account: string, name: string): Promise<Res> => {
    const c = await existingContainer(account, name);
    const { objectCount, bytesUsed, lastModifiedMs: _l, ...container } = c as Container & { objectCount: number; bytesUsed: number; lastModifiedMs: number };
    return { container, objectCount, bytesUsed };
  };

  // ---- account and containers -------------------------------------------------------------

  rpc('GetAccount', async (req, c) => {
    const account = accountFor(c, req.account);
    requireAccount(c, account, 'read');
    return { account, ...(await o.queries.accountStats(account)) };
  });

  rpc('ListContainers', async (req, c) => {
    const account = accountFor(c, req.account);
    requireAccount(c, account, 'read');
    const limit = Number(req.limit ?? 0);
    if (limit < 0 || limit > LIMITS.listing) throw invalid('limit', `must be between 0 and ${LIMITS.listing}`);
    const containers = await o.queries.listContainers(account, { prefix: req.prefix || undefined, marker: req.marker || undefined, endMarker: req.endMarker || undefined, limit: limit || LIMITS.listing });
    return { containers };
  });

  rpc('CreateContainer', async (req, c) => {
    const given = (req.container ?? {}) as Partial<Container>;
    const account = accountFor(c, given.account);
    requireAccount(c, account, 'write');
    checkContainerName(given.name, 'container.name');
    checkMetadata(given.metadata, 'container.metadata');
    checkAcl(given.readAcl, 'container.read_acl', false);
    checkAcl(given.writeAcl, 'container.write_acl', true);
    const id = containerId(account, given.name!);
    const existing = await o.queries.getContainer(account, given.name!);
    if (existing) {
      // Swift's PUT on an existing container: 202, and the headers it carried are applied.
      const mask = ['metadata', 'readAcl', 'writeAcl', 'quotaBytes', 'quotaCount'].filter((f) => {
        const v = (given as Record<string, unknown>)[f];
        return Array.isArray(v) ? v.length > 0 : typeof v === 'object' ? Object.keys(v ?? {}).length > 0 : Number(v) > 0;
      });
      if (mask.length > 0) {
        const merged = { ...given, metadata: { ...existing.metadata, ...(given.metadata ?? {}) } };
        await o.writer.send('container', id, { type: 'UpdateContainer', container: merged, updateMask: mask }, actorOf(c));
      }
      return { container: await containerDetail(account, given.name!), created: false };
    }
    const container: Container = {
      account, name: given.name!, metadata: given.metadata ?? {}, readAcl: given.readAcl ?? [], writeAcl: given.writeAcl ?? [],
      quotaBytes: Number(given.quotaBytes ?? 0), quotaCount: Number(given.quotaCount ?? 0), createdAtMs: 0,
    };
    const reply = await o.writer.reply('container', id, { type: 'CreateContainer', container }, actorOf(c));
    // A concurrent create won: Swift answers 202 to the second PUT.
    if (reply.kind === 'rejected' && reply.rejection.code !== 'ALREADY_EXISTS') throw new ApiError(reply.rejection);
    return { container: await containerDetail(account, given.name!), created: reply.kind === 'accepted' };
  });

  rpc('GetContainer', async (req, c) => {
    const account = accountFor(c, req.account);
    const container = await containerOf(account, String(req.name ?? ''));
    requireContainer(c, account, container, 'read');
    return { container: await containerDetail(account, String(req.name)) };
  });

  rpc('UpdateContainer', async (req, c) => {
    const given = (req.container ?? {}) as Partial<Container>;
    const account = accountFor(c, given.account);
    requireAccount(c, account, 'write');
    await existingContainer(account, String(given.name ?? ''));
    checkMetadata(given.metadata, 'container.metadata');
    checkAcl(given.readAcl, 'container.read_acl', false);
    checkAcl(given.writeAcl, 'container.write_acl', true);
    const mask = maskOf(req);
    if (mask.length === 0) throw invalid('update_mask', 'names no field (metadata, readAcl, writeAcl, quotaBytes, quotaCount)');
    await o.writer.send('container', containerId(account, given.name!), { type: 'UpdateContainer', container: { ...given, account }, updateMask: mask }, actorOf(c));
    return { container: await containerDetail(account, given.name!) };
  });

  rpc('DeleteContainer', async (req, c) => {
    const account = accountFor(c, req.account);
    requireAccount(c, account, 'write');
    const container = await existingContainer(account, String(req.name ?? ''));
    const count = await o.queries.objectsInContainer(account, container.name);
    if (count > 0) throw refuse('FAILED_PRECONDITION', `container ${account}/${container.name} is not empty: it holds ${count} objects (409 Conflict)`, { state: 'not_empty' });
    await o.writer.send('container', containerId(account, container.name), { type: 'DeleteContainer' }, actorOf(c));
    return {};
  });

  rpc('ListObjects', async (req, c) => {
    const account = accountFor(c, req.account);
    const container = await containerOf(account, String(req.container ?? ''));
    requireContainer(c, account, container, 'read');
    if (!container) throw refuse('NOT_FOUND', `container ${account}/${req.container} not found`);
    const limit = Number(req.limit ?? 0);
    if (limit < 0 || limit > LIMITS.listing) throw invalid('limit', `must be between 0 and ${LIMITS.listing}`);
    const rows = await o.queries.listObjects(account, container.name, {
      prefix: req.prefix || undefined, delimiter: req.delimiter || undefined, marker: req.marker || undefined, endMarker: req.endMarker || undefined,
      limit: limit || LIMITS.listing, reverse: Boolean(req.reverse),
    });
    return { objects: rows.map((r) => ('subdir' in r ? { subdir: r.subdir } : { name: r.name, hash: r.hash, bytes: r.bytes, contentType: r.contentType, lastModifiedMs: r.lastModifiedMs })) };
  });

  // ---- objects ----------------------------------------------------------------------------

  const recordedOf = (account: string, container: string, name: string) => o.queries.getObject(account, container, name);

  const headerOf = (account: string, container: string, name: string, meta: StoredMeta, large: boolean, extra: Res = {}): Res => ({
    account, container, name, etag: meta.etag, size: meta.size, contentType: meta.contentType, metadata: meta.metadata, timestamp: meta.timestamp,
    lastModifiedMs: lastModifiedOf(meta.timestamp), contentLength: meta.size, largeObject: large, ...extra,
  });

  const versionMeta = (v: ObjectVersion): StoredMeta => ({ etag: v.etag, timestamp: v.timestamp, size: v.size, contentType: v.contentType, metadata: v.metadata });

  /** Where an object request points, checked: its account, container (which must exist) and name. */
  const target = async (c: Caller, req: Req, need: 'read' | 'write') => {
    const account = accountFor(c, req.account);
    checkObjectName(req.name, 'name');
    const container = await containerOf(account, String(req.container ?? ''));
    requireContainer(c, account, container, need);
    if (!container) throw refuse('NOT_FOUND', `container ${account}/${req.container} not found`);
    return { account, container, name: String(req.name) };
  };

  // HEAD answers from the log's record: the version a GET serves, with the metadata the last POST set.
  rpc('HeadObject', async (req, c) => {
    const t = await target(c, req, 'read');
    const recorded = await recordedOf(t.account, t.container.name, t.name);
    if (!recorded) throw refuse('NOT_FOUND', `object ${t.container.name}/${t.name} not found`);
    checkConditions(req, recorded, false);
    return { object: headerOf(t.account, t.container.name, t.name, versionMeta(recorded), recorded.segments.length > 0) };
  });

  rpc('UpdateObjectMetadata', async (req, c) => {
    const t = await target(c, req, 'write');
    checkMetadata(req.metadata, 'metadata');
    const timestamp = nextTimestamp();
    const reply = await o.writer.send('object', objectId(t.account, t.container.name, t.name), { type: 'UpdateObjectMetadata', timestamp, metadata: req.metadata ?? {}, contentType: req.contentType ?? '' }, actorOf(c));
    const version = o.writer.events('object', reply)[0]?.object as ObjectVersion;
    if (version.segments.length === 0) await o.proxy.post(t.account, t.container.name, t.name, timestamp, req.metadata ?? {}, req.contentType || undefined).catch((e) => Promise.reject(asError(e)));
    return { object: headerOf(t.account, t.container.name, t.name, versionMeta(version), version.segments.length > 0) };
  });

  rpc('DeleteObject', async (req, c) => {
    const t = await target(c, req, 'write');
    const timestamp = nextTimestamp();
    const reply = await o.writer.send('object', objectId(t.account, t.container.name, t.name), { type: 'RecordObjectDeleted', timestamp }, actorOf(c));
    const version = o.writer.events('object', reply)[0]?.object as ObjectVersion;
    // The log has the delete; the tombstones are owed, and a replicator writes any that fail here.
    if (version.segments.length === 0) await o.proxy.delete(t.account, t.container.name, t.name, timestamp).catch(() => undefined);
    return { timestamp };
  });

  rpc('PutManifest', async (req, c) => {
    const t = await target(c, req, 'write');
    checkMetadata(req.metadata, 'metadata');
    const given = (req.segments ?? []) as { path: string; etag: string; size: number }[];
    if (given.length === 0) throw invalid('segments', 'a manifest needs at least one segment');
    if (given.length > LIMITS.segments) throw invalid('segments', `has ${given.length} segments (at most ${LIMITS.segments})`);
    const segments: Segment[] = [];
    for (const [i, s] of given.entries()) {
      const m = /^([^/]+)\/(.+)$/.exec(s.path ?? '');
      if (!m) throw invalid(`segments[${i}].path`, `"${s.path}" is not "container/object"`);
      const segContainer = await containerOf(t.account, m[1]);
      requireContainer(c, t.account, segContainer, 'read');
      const v = segContainer ? await recordedOf(t.account, m[1], m[2]) : undefined;
      if (!v) throw refuse('NOT_FOUND', `segments[${i}]: ${s.path} not found`, { field: `segments[${i}].path` });
      if (v.segments.length > 0) throw invalid(`segments[${i}].path`, `${s.path} is itself a large object`);
      if (s.etag && s.etag.replace(/"/g, '') !== v.etag) throw invalid(`segments[${i}].etag`, `${s.path} has ETag ${v.etag}, not ${s.etag}`);
      if (Number(s.size) > 0 && Number(s.size) !== v.size) throw invalid(`segments[${i}].size`, `${s.path} has ${v.size} bytes, not ${s.size}`);
      segments.push({ path: s.path, etag: v.etag, size: v.size });
    }
    const size = segments.reduce((n, s) => n + s.size, 0);
    const timestamp = nextTimestamp();
    const version: ObjectVersion = {
      account: t.account, container: t.container.name, name: t.name, timestamp, etag: manifestEtag(segments), size,
      contentType: req.contentType || 'application/octet-stream', metadata: req.metadata ?? {}, partition: 0, segments, ringVersion: 0,
    };
    await o.writer.send('object', objectId(t.account, t.container.name, t.name), { type: 'RecordObject', object: version, ifNoneMatch: false }, actorOf(c));
    return { etag: version.etag, timestamp, size };
  });

  // PutObject: client streaming. The first message is the header, the rest are chunks.
  impl.PutObject = (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) => {
    const span = tracer().startSpan('strata.object.v1.ObjectService/PutObject', { kind: SpanKind.SERVER, attributes: { 'rpc.method': 'PutObject' } });
    void context.with(trace.setSpan(context.active(), span), async () => {
      try {
        const c = o.authenticator.authenticate(call.metadata);
        objectPolicy.enforce(objectRule('PutObject'), c, {});
        const messages = call[Symbol.asyncIterator]() as AsyncIterator<Req>;
        const first = await messages.next();
        const header = first.done ? undefined : (first.value.header as Req | undefined);
        if (!header) throw invalid('header', 'the first PutObject message must be the header');
        const t = await target(c, header, 'write');
        checkMetadata(header.metadata, 'metadata');
        const declared = Number(header.contentLength ?? 0);
        if (declared > LIMITS.objectSize) throw refuse('RESOURCE_EXHAUSTED', `content_length ${declared} is over the ${LIMITS.objectSize}-byte limit of one object: upload segments and a manifest (413)`);
        if (header.etag && !/^[0-9a-f]{32}$/.test(String(header.etag).replace(/"/g, ''))) throw invalid('etag', `"${header.etag}" is not an MD5 hex digest`);
        const recorded = await recordedOf(t.account, t.container.name, t.name);
        if (header.ifNoneMatch && recorded) throw refuse('FAILED_PRECONDITION', `object ${t.container.name}/${t.name} exists (If-None-Match: *; 412)`, { state: 'stored' });
        const stats = t.container as unknown as { objectCount: number; bytesUsed: number };
        const quota = (extra: number) => {
          if (t.container.quotaBytes > 0 && stats.bytesUsed - (recorded?.size ?? 0) + extra > t.container.quotaBytes) {
            throw refuse('RESOURCE_EXHAUSTED', `container ${t.container.name} quota_bytes ${t.container.quotaBytes} would be exceeded (${stats.bytesUsed} used, ${extra} more; 413)`);
          }
          if (t.container.quotaCount > 0 && !recorded && stats.objectCount + 1 > t.container.quotaCount) {
            throw refuse('RESOURCE_EXHAUSTED', `container ${t.container.name} quota_count ${t.container.quotaCount} would be exceeded (413)`);
          }
        };
        quota(declared > 0 ? declared : 0);
        const timestamp = nextTimestamp();
        let received = 0;
        // Every refusal that depends on the body happens here, before its last byte is handed on: an
        // object server commits a replica (and drops the older one) only once its request ends.
        async function* body(): AsyncGenerator<Uint8Array> {
          for (;;) {
            const next = await messages.next();
            if (next.done) {
              if (declared > 0 && received !== declared) throw invalid('content_length', `the body has ${received} bytes, not content_length ${declared}`);
              return;
            }
            const chunk = next.value.chunk as Uint8Array | undefined;
            if (!chunk) throw invalid('chunk', 'after the header every PutObject message must be a chunk');
            received += chunk.length;
            if (received > LIMITS.objectSize) throw refuse('RESOURCE_EXHAUSTED', `the body is over the ${LIMITS.objectSize}-byte limit of one object (413)`);
            if (declared > 0 && received > declared) throw invalid('content_length', `the body is longer than content_length ${declared}`);
            quota(received);
            yield chunk;
          }
        }
        const stored = await o.proxy
          .put({ account: t.account, container: t.container.name, name: t.name, contentType: header.contentType || 'application/octet-stream', metadata: header.metadata ?? {}, timestamp, expectedEtag: header.etag ? String(header.etag).replace(/"/g, '') : undefined }, body())
          .catch((e) => Promise.reject(asError(e)));
        const version: ObjectVersion = {
          account: t.account, container: t.container.name, name: t.name, timestamp, etag: stored.etag, size: stored.size,
          contentType: header.contentType || 'application/octet-stream', metadata: header.metadata ?? {}, partition: stored.partition, segments: [], ringVersion: stored.ringVersion,
        };
        await o.writer.send('object', objectId(t.account, t.container.name, t.name), { type: 'RecordObject', object: version, ifNoneMatch: Boolean(header.ifNoneMatch) }, actorOf(c));
        span.setAttribute('strata.object.bytes', stored.size);
        callback(null, { etag: stored.etag, timestamp, size: stored.size, replicasWritten: stored.replicasWritten });
      } catch (e) {
        const err = toServiceError(asError(e));
        if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError) && err.code === grpcStatus.INTERNAL) console.error('object PutObject:', e);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
        callback(err as never, null);
      } finally {
        span.end();
      }
    });
  };

  // GetObject: server streaming. A header message, then the body in chunks of at most CHUNK bytes.
  impl.GetObject = (call: ServerWritableStream<Req, Res>) => {
    const span = tracer().startSpan('strata.object.v1.ObjectService/GetObject', { kind: SpanKind.SERVER, attributes: { 'rpc.method': 'GetObject' } });
    void context.with(trace.setSpan(context.active(), span), async () => {
      try {
        const c = o.authenticator.authenticate(call.metadata);
        objectPolicy.enforce(objectRule('GetObject'), c, {});
        const req = call.request ?? {};
        const t = await target(c, req, 'read');
        const recorded = await recordedOf(t.account, t.container.name, t.name);
        if (!recorded) throw refuse('NOT_FOUND', `object ${t.container.name}/${t.name} not found`);
        if (recorded.segments.length > 0) await sendLarge(call, t.account, t.container.name, t.name, recorded, req);
        else await sendSimple(call, t.account, t.container.name, t.name, recorded, req);
        call.end();
      } catch (e) {
        const err = toServiceError(asError(e));
        if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError) && err.code === grpcStatus.INTERNAL) console.error('object GetObject:', e);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
        call.emit('error', err);
      } finally {
        span.end();
      }
    });
  };

  /** Writes one message, waiting while the client's window is full (backpressure). */
  const send = (call: ServerWritableStream<Req, Res>, message: Res) =>
    new Promise<void>((resolve, reject) => {
      if (call.cancelled || call.destroyed) return reject(refuse('ABORTED', 'the client went away'));
      if (call.write(message)) return resolve();
      const done = () => {
        call.off('drain', done);
        call.off('close', closed);
        resolve();
      };
      const closed = () => {
        call.off('drain', done);
        reject(refuse('ABORTED', 'the client went away'));
      };
      call.once('drain', done);
      call.once('close', closed);
    });

  const pump = async (call: ServerWritableStream<Req, Res>, body: AsyncIterable<Uint8Array>) => {
    for await (const data of body) {
      for (let i = 0; i < data.length; i += CHUNK) await send(call, { chunk: data.subarray(i, i + CHUNK) });
    }
  };

  /** The recorded version's bytes (a replica holding another version, newer or older, is passed over), with the log's metadata. */
  async function sendSimple(call: ServerWritableStream<Req, Res>, account: string, container: string, name: string, recorded: ObjectVersion, req: Req) {
    let range: ByteRange | { suffix: number } | undefined;
    if (req.hasRange) {
      const start = Number(req.rangeStart);
      const end = Number(req.rangeEnd);
      if (start < 0) {
        if (!(end > 0)) throw invalid('range_end', 'a suffix range needs range_end > 0');
        range = { suffix: end };
      } else range = { start, end: end < 0 ? Infinity : end };
    }
    checkConditions(req, recorded, true);
    const read = await o.proxy.get(account, container, name, range, { timestamp: recorded.timestamp, etag: recorded.etag }).catch((e) => Promise.reject(asError(e)));
    try {
      await send(call, { header: headerOf(account, container, name, versionMeta(recorded), false, { contentRange: read.contentRange ?? '', contentLength: read.contentLength }) });
      await pump(call, read.body);
    } finally {
      read.body.destroy();
    }
  }

  async function sendLarge(call: ServerWritableStream<Req, Res>, account: string, container: string, name: string, v: ObjectVersion, req: Req) {
    checkConditions(req, v, true);
    if (req.manifest) {
      const text = Buffer.from(JSON.stringify(v.segments.map((s) => ({ path: s.path, etag: s.etag, size: s.size }))));
      await send(call, { header: headerOf(account, container, name, { ...versionMeta(v), size: text.length }, true, { contentLength: text.length }) });
      await send(call, { chunk: text });
      return;
    }
    const range = parseRange(req, v.size);
    const from = range?.start ?? 0;
    const to = range?.end ?? v.size - 1;
    const length = v.size === 0 ? 0 : to - from + 1;
    await send(call, { header: headerOf(account, container, name, versionMeta(v), true, { contentRange: range ? `bytes ${from}-${to}/${v.size}` : '', contentLength: length }) });
    let offset = 0;
    for (const s of v.segments) {
      const segStart = offset;
      const segEnd = offset + s.size - 1;
      offset += s.size;
      if (s.size === 0 || segEnd < from || segStart > to) continue;
      const [segContainer, ...rest] = s.path.split('/');
      const read = await o.proxy
        .get(account, segContainer, rest.join('/'), { start: Math.max(from, segStart) - segStart, end: Math.min(to, segEnd) - segStart })
        .catch((e) => Promise.reject(asError(e)));
      try {
        if (read.meta.etag !== s.etag) throw refuse('FAILED_PRECONDITION', `segment ${s.path} changed since the manifest was written (ETag ${read.meta.etag}, manifest says ${s.etag}; 409)`, { state: 'stored' });
        await pump(call, read.body);
      } finally {
        read.body.destroy();
      }
    }
  }

  // ---- the ring (admin) -------------------------------------------------------------------

  const ringDetail = async (): Promise<Res> => {
    const view = o.feed.view;
    const ring = view.ring();
    const builder = view.builderDevices();
    const counts = new Map<number, number>();
    for (const row of ring?.assignment ?? []) for (const d of row) counts.set(d, (counts.get(d) ?? 0) + 1);
    const inRing = new Set((ring?.devices ?? []).map((d) => d.id));
    const all = [...builder, ...(ring?.devices ?? []).filter((d) => !builder.some((b) => b.id === d.id))];
    const devices = await Promise.all(
      all.map(async (device) => ({ device, partitions: counts.get(device.id) ?? 0, pending: !inRing.has(device.id) || !builder.some((b) => b.id === device.id), up: await o.proxy.healthy(device) })),
    );
    const stored = await o.queries.getRing(DEFAULT_RING);
    return { ring: { version: ring?.version ?? 0, partPower: ring?.partPower ?? stored?.partPower ?? 0, replicas: ring?.replicas ?? stored?.replicas ?? 0, devices, lastMoved: stored?.lastMoved ?? 0 } };
  };
  const ringCommand = async (c: Caller, command: Record<string, unknown> & { type: string }) => {
    const reply = await o.writer.send('object_ring', DEFAULT_RING, command, actorOf(c));
    await o.feed.caughtUp(reply.position, reply.events.length);
    return ringDetail();
  };

  rpc('GetRing', async () => ringDetail());
  rpc('AddRingDevice', async (req, c) => ringCommand(c, { type: 'AddRingDevice', device: req.device ?? {} }));
  rpc('RemoveRingDevice', async (req, c) => ringCommand(c, { type: 'RemoveRingDevice', deviceId: Number(req.deviceId) }));
  rpc('SetRingDeviceWeight', async (req, c) => ringCommand(c, { type: 'SetRingDeviceWeight', deviceId: Number(req.deviceId), weight: Number(req.weight) }));
  rpc('RebalanceRing', async (_req, c) => ringCommand(c, { type: 'RebalanceRing' }));

  return impl;
}
