// ImageService (Glance v2): every RPC authenticates the caller, checks that it may see the image
// (imageUsableBy; the list follows imageVisibleTo's rules in the read model), enforces its policy
// rule (api/policy/image.policy.ts), then sends image commands (ImageWriter) or reads the image
// read models. An image's data streams through ImageStore to object storage on upload (queued ->
// saving -> active, or back to queued with the reason if anything fails) and back on download
// (active only; deactivated ones for admins only), with backpressure both ways. Another project's
// image the caller may not see is NOT_FOUND before any rule is asked.
import { createHash, randomUUID } from 'node:crypto';
import { status as grpcStatus, type ServerReadableStream, type ServerWritableStream, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { imageUsableBy, type Image } from '../../domains/image/image.types.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { LIMITS } from '../../domains/object/object.types.js';
import { ImageDataMismatchError, imageLocation, type ImageStore, type StoredImageData } from '../../infra/image/image-store.js';
import { ObjectNotFoundError, ObjectUnavailableError } from '../../infra/object/object-proxy.js';
import { tracer } from '../../infra/telemetry/telemetry.js';
import type { ImageQueries, ImageRecord, MemberRecord } from '../../projections/image/image.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse, toServiceError } from '../errors.js';
import { imagePolicy, imageRule, PUBLICIZE_RULE } from '../policy/image.policy.js';
import type { Caller } from '../policy/policy.js';
import { actorOf, callerProject, pageSize, requestIdOf, required, updateMaskOf, type Req, type Res } from '../request.js';
import { unaryRpcs } from '../unary-rpc.js';
import type { ImageWriter } from './image.writer.js';

export const IMAGE_SERVICE_NAME = 'strata.image.v1.ImageService';

export interface ImageServiceOptions {
  writer: ImageWriter;
  queries: ImageQueries;
  authenticator: Authenticator;
  imageStore: ImageStore;
}

/** Bytes per DownloadImage chunk message. */
const CHUNK = 256 * 1024;
/** Largest image: one object (object storage's single-PUT limit; Glance's 413 above it). */
const MAX_IMAGE_BYTES = LIMITS.objectSize;

/** The fields CreateImage takes from the request (the rest are the domain's). */
const CREATE_FIELDS = ['name', 'visibility', 'diskFormat', 'containerFormat', 'minDisk', 'minRam', 'protected', 'osHidden', 'tags', 'properties'] as const;

const asError = (e: unknown): unknown => {
  if (e instanceof ObjectUnavailableError) return refuse('UNAVAILABLE', `object storage: ${e.message}`);
  if (e instanceof ObjectNotFoundError) return refuse('UNAVAILABLE', `the image's data is missing from object storage (${e.message})`);
  if (e instanceof ImageDataMismatchError) return refuse('UNAVAILABLE', e.message);
  return e;
};

/** A uuid (v4-shaped) derived from a request id, so that a retried create names the same image. */
const uuidFrom = (seed: string) => {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
};

/** An image as the API shows it; its location only to admins (Glance's show_image_direct_url is off). */
function imageView(i: ImageRecord, c: Caller): Res {
  const { statusReason: _r, ...image } = i;
  return { ...image, location: c.isAdmin ? image.location : '' };
}

const memberView = (m: MemberRecord): Res => ({ memberProjectId: m.memberProjectId, status: m.status, createdAtMs: m.createdAtMs, updatedAtMs: m.updatedAtMs });

export function createImageService(o: ImageServiceOptions): UntypedServiceImplementation {
  const { writer, queries, authenticator, imageStore } = o;
  const impl: UntypedServiceImplementation = {};
  const rpc = unaryRpcs({ service: IMAGE_SERVICE_NAME, policy: imagePolicy, ruleOf: imageRule, authenticator, impl, label: 'image' });

  function mustHaveProject(c: Caller): string {
    const p = callerProject(c);
    if (!p) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project');
    return p;
  }

  /** The image if the caller may use it (Glance: show, download, boot); NOT_FOUND otherwise. */
  async function visible(id: string, c: Caller, field = 'id'): Promise<{ image: ImageRecord; members: MemberRecord[] }> {
    const image = await queries.getImage(id);
    const members = image ? await queries.members(id) : [];
    if (!image || !imageUsableBy(image, members, callerProject(c), c.isAdmin)) throw refuse('NOT_FOUND', `No image found with ID ${id}`, { field });
    return { image, members };
  }

  const publicize = (c: Caller) => {
    try {
      imagePolicy.enforce(PUBLICIZE_RULE, c);
    } catch {
      throw refuse('PERMISSION_DENIED', 'visibility: only admins may make an image public (Glance\'s publicize_image)', { field: 'image.visibility' });
    }
  };

  const out = async (id: string, c: Caller) => {
    const image = await queries.getImage(id);
    if (!image) throw refuse('NOT_FOUND', `No image found with ID ${id}`, { field: 'id' });
    return imageView(image, c);
  };

  const readerTarget = (_req: Req, c: Caller) => ({ projectId: callerProject(c) });

  // ---- images ----------------------------------------------------------------------------------

  rpc('CreateImage', async (req, c, enforce) => {
    const given = (req.image ?? {}) as Partial<Image>;
    const owner = c.isAdmin && given.owner ? String(given.owner) : mustHaveProject(c);
    enforce({ projectId: owner });
    if (given.visibility === 'public') publicize(c);
    let id = String(given.id ?? '');
    if (!id) id = req.requestId ? uuidFrom(`strata/image/${owner}/${requestIdOf(req)}`) : randomUUID();
    const existing = await queries.getImage(id);
    if (existing && !given.id && req.requestId && existing.owner === owner) return { image: imageView(existing, c) };
    const image: Record<string, unknown> = { id, owner };
    for (const f of CREATE_FIELDS) if (given[f] !== undefined) image[f] = given[f];
    await writer.send('image', id, { type: 'CreateImage', image }, actorOf(c));
    return { image: await out(id, c) };
  });

  rpc(
    'GetImage',
    async (req, c) => ({ image: imageView((await visible(required('id', req.id), c)).image, c) }),
    readerTarget,
  );

  rpc(
    'ListImages',
    async (req, c) => {
      const size = pageSize(req);
      const memberStatus = String(req.memberStatus ?? '');
      if (memberStatus && !['accepted', 'pending', 'rejected', 'all'].includes(memberStatus)) throw invalid('member_status', `must be accepted, pending, rejected or all, got "${memberStatus}"`);
      const rows = await queries.listImages({
        projectId: c.isAdmin ? undefined : mustHaveProject(c),
        name: String(req.name ?? ''),
        status: String(req.status ?? ''),
        visibility: String(req.visibility ?? ''),
        owner: String(req.owner ?? ''),
        memberStatus,
        osHidden: Boolean(req.osHidden),
        after: String(req.pageToken ?? ''),
        limit: size + 1,
      });
      const items = rows.slice(0, size);
      return { images: items.map((i) => imageView(i, c)), nextPageToken: rows.length > size ? items[items.length - 1].id : '' };
    },
    readerTarget,
  );

  rpc('UpdateImage', async (req, c, enforce) => {
    const given = (req.image ?? {}) as Record<string, unknown>;
    const { image } = await visible(required('image.id', given.id), c, 'image.id');
    enforce({ projectId: image.owner });
    const mask = updateMaskOf(req);
    if (mask.includes('visibility') && given.visibility === 'public' && image.visibility !== 'public') publicize(c);
    const { statusReason: _r, ...current } = image;
    const patch: Record<string, unknown> = { ...current };
    for (const f of mask) patch[f] = given[f];
    await writer.send('image', image.id, { type: 'UpdateImage', image: patch, updateMask: mask }, actorOf(c));
    return { image: await out(image.id, c) };
  });

  rpc('DeleteImage', async (req, c, enforce) => {
    const { image } = await visible(required('id', req.id), c);
    enforce({ projectId: image.owner });
    await writer.send('image', image.id, { type: 'DeleteImage' }, actorOf(c));
    // The image is gone; its data goes after (a failure here is logged: the object's record stays, and its replicas).
    if (image.location) await imageStore.remove(image.location).catch((e: Error) => console.error(`image DeleteImage: removing ${image.location}: ${e.message}`));
    return {};
  });

  rpc('DeactivateImage', async (req, c) => {
    const { image } = await visible(required('id', req.id), c);
    await writer.send('image', image.id, { type: 'DeactivateImage' }, actorOf(c));
    return { image: await out(image.id, c) };
  }, () => ({}));

  rpc('ReactivateImage', async (req, c) => {
    const { image } = await visible(required('id', req.id), c);
    await writer.send('image', image.id, { type: 'ReactivateImage' }, actorOf(c));
    return { image: await out(image.id, c) };
  }, () => ({}));

  // ---- members ---------------------------------------------------------------------------------

  const memberOut = async (imageId: string, project: string) => {
    const m = (await queries.members(imageId)).find((x) => x.memberProjectId === project);
    if (!m) throw refuse('NOT_FOUND', `project ${project} is not a member of image ${imageId}`, { field: 'member_project_id' });
    return memberView(m);
  };

  rpc('AddImageMember', async (req, c, enforce) => {
    const { image } = await visible(required('image_id', req.imageId), c, 'image_id');
    enforce({ projectId: image.owner });
    const project = required('member_project_id', req.memberProjectId);
    await writer.send('image', image.id, { type: 'AddImageMember', memberProjectId: project }, actorOf(c));
    return { member: await memberOut(image.id, project) };
  });

  rpc('UpdateImageMember', async (req, c, enforce) => {
    const { image } = await visible(required('image_id', req.imageId), c, 'image_id');
    const project = required('member_project_id', req.memberProjectId);
    // Only the member project itself (or an admin) answers (Glance); the owner may not.
    enforce({ projectId: project });
    await writer.send('image', image.id, { type: 'UpdateImageMember', memberProjectId: project, status: required('status', req.status) }, actorOf(c));
    return { member: await memberOut(image.id, project) };
  });

  rpc('RemoveImageMember', async (req, c, enforce) => {
    const { image } = await visible(required('image_id', req.imageId), c, 'image_id');
    enforce({ projectId: image.owner });
    await writer.send('image', image.id, { type: 'RemoveImageMember', memberProjectId: required('member_project_id', req.memberProjectId) }, actorOf(c));
    return {};
  });

  rpc(
    'ListImageMembers',
    async (req, c) => {
      const { image, members } = await visible(required('image_id', req.imageId), c, 'image_id');
      const own = c.isAdmin || image.owner === callerProject(c);
      return { members: members.filter((m) => own || m.memberProjectId === callerProject(c)).map(memberView) };
    },
    readerTarget,
  );

  // ---- data ------------------------------------------------------------------------------------

  /** A streaming RPC's span, authentication and error mapping (the unary ones have unaryRpcs). */
  const streaming = (name: string, run: (c: Caller) => Promise<void>, fail: (err: ReturnType<typeof toServiceError>) => void, metadata: () => import('@grpc/grpc-js').Metadata) => {
    const span = tracer().startSpan(`${IMAGE_SERVICE_NAME}/${name}`, { kind: SpanKind.SERVER, attributes: { 'rpc.method': name } });
    void context.with(trace.setSpan(context.active(), span), async () => {
      try {
        const c = authenticator.authenticate(metadata());
        span.setAttribute('strata.user_id', c.userId);
        await run(c);
      } catch (e) {
        const err = toServiceError(asError(e));
        if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError) && err.code === grpcStatus.INTERNAL) console.error(`image ${name}:`, e);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
        fail(err);
      } finally {
        span.end();
      }
    });
  };

  // UploadImage: client streaming. The first message is the header, the rest are chunks.
  impl.UploadImage = (call: ServerReadableStream<Req, Res>, callback: sendUnaryData<Res>) =>
    streaming(
      'UploadImage',
      async (c) => {
        const messages = call[Symbol.asyncIterator]() as AsyncIterator<Req>;
        const first = await messages.next();
        const header = first.done ? undefined : (first.value.header as Req | undefined);
        if (!header) throw invalid('header', 'the first UploadImage message must be the header');
        const { image } = await visible(required('image_id', header.imageId), c, 'image_id');
        imagePolicy.enforce(imageRule('UploadImage'), c, { projectId: image.owner });
        if (image.status !== 'queued') {
          throw refuse('FAILED_PRECONDITION', `UploadImage is not allowed: image ${image.id} is ${image.status} (only a queued image takes data; Glance's 409 Conflict)`, { state: image.status });
        }
        const declared = Number(header.contentLength ?? 0);
        if (!Number.isSafeInteger(declared) || declared < 0) throw invalid('content_length', `must be 0 (unknown) or the data's size, got ${header.contentLength}`);
        if (declared > MAX_IMAGE_BYTES) throw refuse('RESOURCE_EXHAUSTED', `content_length ${declared} is over the ${MAX_IMAGE_BYTES}-byte limit of an image (413)`);
        const actor = actorOf(c);
        await writer.send('image', image.id, { type: 'StartImageUpload', location: imageLocation(image.id) }, actor);
        let stored: StoredImageData | undefined;
        try {
          let received = 0;
          async function* body(): AsyncGenerator<Uint8Array> {
            for (;;) {
              const next = await messages.next();
              if (next.done) break;
              const chunk = next.value.chunk as Uint8Array | undefined;
              if (!chunk) throw invalid('chunk', 'after the header every UploadImage message must be a chunk');
              received += chunk.length;
              if (received > MAX_IMAGE_BYTES) throw refuse('RESOURCE_EXHAUSTED', `the data is over the ${MAX_IMAGE_BYTES}-byte limit of an image (413)`);
              if (declared > 0 && received > declared) throw invalid('content_length', `the data is longer than content_length ${declared}`);
              yield chunk;
            }
            if (declared > 0 && received !== declared) throw invalid('content_length', `the data has ${received} bytes, not content_length ${declared}`);
          }
          stored = await imageStore.write(image.id, body(), image.diskFormat);
          await writer.send('image', image.id, { type: 'CompleteImageUpload', ...stored }, actor);
        } catch (e) {
          const shown = asError(e);
          const reason = shown instanceof ApiError || shown instanceof InvalidArgumentError ? (shown as Error).message : `upload failed: ${(e as Error).message}`;
          // Back to queued with the reason; data stored but not made the image's is removed.
          const failed = await writer.reply('image', image.id, { type: 'FailImageUpload', reason }, actor).catch(() => undefined);
          // Only when the image is back in queued: a CompleteImageUpload that went through after all (a bus timeout) keeps its data.
          if (stored && failed?.kind === 'accepted') await imageStore.remove(stored.location).catch(() => undefined);
          throw e;
        }
        callback(null, { image: await out(image.id, c) });
      },
      (err) => callback(err as never, null),
      () => call.metadata,
    );

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

  // DownloadImage: server streaming. A header message, then the data in chunks of at most CHUNK bytes.
  impl.DownloadImage = (call: ServerWritableStream<Req, Res>) =>
    streaming(
      'DownloadImage',
      async (c) => {
        const req = call.request ?? {};
        const { image } = await visible(required('id', req.id), c);
        imagePolicy.enforce(imageRule('DownloadImage'), c, { projectId: callerProject(c) });
        if (image.status === 'deactivated' && !c.isAdmin) {
          throw refuse('FAILED_PRECONDITION', `image ${image.id} is deactivated: only admins may download it (Glance's 403)`, { state: image.status });
        }
        if (image.status !== 'active' && image.status !== 'deactivated') {
          throw refuse('FAILED_PRECONDITION', `DownloadImage is not allowed: image ${image.id} is ${image.status} (it has no data until active)`, { state: image.status });
        }
        const read = await imageStore.read(image.location, { size: image.size, checksum: image.checksum });
        try {
          await send(call, { header: { image: imageView(image, c), contentLength: read.size } });
          for await (const data of read.body as AsyncIterable<Buffer>) {
            for (let i = 0; i < data.length; i += CHUNK) await send(call, { chunk: data.subarray(i, i + CHUNK) });
          }
        } finally {
          read.body.destroy();
        }
        call.end();
      },
      // grpc-js sends a server stream's status from its 'error' handler (then ends it); destroy() would send none.
      (err) => call.emit('error', err),
      () => call.metadata,
    );

  return impl;
}
