// A client of the Strata gRPC API for the CLI and the tests: calls by method name (each method
// goes to the service that has it: IdentityService, ComputeService, NetworkService, VolumeService, ObjectService or
// ImageService), with the token in x-auth-token metadata, over TLS that trusts the cloud's CA certificate. Object and
// image bodies stream both ways with backpressure (upload, download).
import { credentials, Metadata, type Client, type ClientReadableStream, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { protoRoot } from '../infra/envelope/envelope.codec.js';
import { clientConstructor } from '../api/grpc/service-definition.js';

export const IDENTITY_SERVICE = 'strata.identity.v1.IdentityService';
export const COMPUTE_SERVICE = 'strata.compute.v1.ComputeService';
export const NETWORK_SERVICE = 'strata.network.v1.NetworkService';
export const VOLUME_SERVICE = 'strata.block.v1.VolumeService';
export const OBJECT_SERVICE = 'strata.object.v1.ObjectService';
export const IMAGE_SERVICE = 'strata.image.v1.ImageService';
/** The event-stream services (audit, subscriptions, replay, metering), by name. */
const EVENT_SERVICES = ['strata.events.v1.AuditService', 'strata.events.v1.SubscriptionService', 'strata.events.v1.ReplayService', 'strata.metering.v1.UsageService'];

const SERVICES = [IDENTITY_SERVICE, COMPUTE_SERVICE, NETWORK_SERVICE, VOLUME_SERVICE, OBJECT_SERVICE, IMAGE_SERVICE, ...EVENT_SERVICES].filter((name) => {
  try {
    return Boolean(protoRoot().lookupService(name));
  } catch {
    return false;
  }
});

/** Bytes per message of an upload. */
export const UPLOAD_CHUNK = 256 * 1024;

export interface ClientOptions {
  /** grpcs://host:port (TLS) or grpc://host:port (plain). */
  url: string;
  /** PEM of the CA that signed the server certificate (grpcs only). */
  caCert?: Buffer | string;
  token?: string;
  /** Per-call deadline. */
  timeoutMs?: number;
}

export class ApiCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
    readonly field?: string,
    readonly state?: string,
  ) {
    super(details);
    this.name = 'ApiCallError';
  }
}

export function parseUrl(url: string): { address: string; tls: boolean } {
  const m = /^(grpcs?):\/\/([^/]+)\/?$/.exec(url);
  if (!m) throw new Error(`not a Strata API URL (grpcs://host:port or grpc://host:port): ${url}`);
  return { address: m[2], tls: m[1] === 'grpcs' };
}

type Stub = Client & Record<string, (...args: unknown[]) => unknown>;

const toCallError = (err: ServiceError) =>
  new ApiCallError(err.code, err.details, err.metadata?.get('strata-field')[0]?.toString(), err.metadata?.get('strata-state')[0]?.toString());

export class StrataClient {
  /** One stub per service, sharing the channel's address and credentials; method name -> stub. */
  private readonly stubs: Stub[];
  private readonly byMethod = new Map<string, Stub>();
  token: string | undefined;

  constructor(private readonly options: ClientOptions) {
    const { address, tls } = parseUrl(options.url);
    const ca = typeof options.caCert === 'string' ? readFileSync(options.caCert) : options.caCert;
    const creds = tls ? credentials.createSsl(ca ?? null) : credentials.createInsecure();
    this.stubs = SERVICES.map((name) => {
      const Ctor = clientConstructor(protoRoot(), name);
      const stub = new Ctor(address, creds) as Stub;
      for (const m of protoRoot().lookupService(name).methodsArray) if (!this.byMethod.has(m.name)) this.byMethod.set(m.name, stub);
      return stub;
    });
    this.token = options.token;
  }

  private metadata(token: string | undefined): Metadata {
    const metadata = new Metadata();
    if (token) metadata.set('x-auth-token', token);
    return metadata;
  }

  call<T = Record<string, any>>(method: string, request: Record<string, unknown> = {}, token = this.token, options: { timeoutMs?: number } = {}): Promise<T> {
    const stub = this.byMethod.get(method);
    const fn = stub?.[method];
    if (!stub || typeof fn !== 'function') return Promise.reject(new Error(`no RPC ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(
        stub,
        request,
        this.metadata(token),
        { deadline: Date.now() + (options.timeoutMs ?? this.options.timeoutMs ?? 30_000) },
        (err: ServiceError | null, res: T) => (err ? reject(toCallError(err)) : resolve(res)),
      );
    });
  }

  /**
   * A server-streaming call (WatchServers): each message goes to onMessage; the promise settles
   * when the stream ends (an error status rejects it). cancel() ends it from this side.
   */
  stream<T = Record<string, any>>(method: string, request: Record<string, unknown>, onMessage: (message: T) => void, token = this.token): { done: Promise<void>; cancel: () => void } {
    const stub = this.byMethod.get(method);
    const fn = stub?.[method];
    if (!stub || typeof fn !== 'function') return { done: Promise.reject(new Error(`no RPC ${method}`)), cancel: () => undefined };
    const call = fn.call(stub, request, this.metadata(token)) as ClientReadableStream<T>;
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', onMessage);
      call.on('error', (err: ServiceError) => (err.code === 1 ? resolve() : reject(toCallError(err)))); // 1: CANCELLED by us
      call.on('end', () => resolve());
    });
    return { done, cancel: () => call.cancel() };
  }

  /**
   * A client-streaming upload (PutObject, UploadImage): the header message, then the body in
   * chunks of at most UPLOAD_CHUNK bytes, each written once the channel took the one before.
   */
  upload<T = Record<string, any>>(method: string, header: Record<string, unknown>, body: AsyncIterable<Uint8Array>, token = this.token, options: { timeoutMs?: number } = {}): Promise<T> {
    const stub = this.byMethod.get(method);
    const fn = stub?.[method];
    if (!stub || typeof fn !== 'function') return Promise.reject(new Error(`no RPC ${method}`));
    let call!: ClientWritableStream<Record<string, unknown>>;
    let answered = false;
    let fail!: (e: unknown) => void;
    const reply = new Promise<T>((resolve, reject) => {
      fail = reject;
      call = fn.call(stub, this.metadata(token), { deadline: Date.now() + (options.timeoutMs ?? 3_600_000) }, (err: ServiceError | null, res: T) => {
        answered = true;
        if (err) reject(toCallError(err));
        else resolve(res);
      }) as ClientWritableStream<Record<string, unknown>>;
    });
    // Resolves once the channel took the message, or once the call is over (an answer ends the upload).
    const write = (message: Record<string, unknown>) =>
      new Promise<void>((resolve) => {
        if (answered || call.write(message)) return resolve();
        const done = () => {
          call.off('drain', done);
          call.off('close', done);
          call.off('error', done);
          resolve();
        };
        call.once('drain', done);
        call.once('close', done);
        call.once('error', done);
      });
    const pump = (async () => {
      await write({ header });
      for await (const data of body) {
        if (answered) return;
        for (let i = 0; i < data.length; i += UPLOAD_CHUNK) await write({ chunk: data.subarray(i, i + UPLOAD_CHUNK) });
      }
      call.end();
    })();
    // The body failed (a file that cannot be read): cancel the call, so the server lets it go, and say why.
    pump.catch((e) => {
      call.cancel();
      fail(e);
    });
    return reply;
  }

  /**
   * A server-streaming download (GetObject, DownloadImage): resolves with the header message once
   * it arrives; `body` yields the chunks, read on demand (the server waits while it is not read).
   */
  async download<T = Record<string, any>>(method: string, request: Record<string, unknown>, token = this.token): Promise<{ header: T; body: AsyncIterable<Uint8Array>; cancel: () => void }> {
    const stub = this.byMethod.get(method);
    const fn = stub?.[method];
    if (!stub || typeof fn !== 'function') throw new Error(`no RPC ${method}`);
    const call = fn.call(stub, request, this.metadata(token)) as ClientReadableStream<Record<string, any>>;
    const messages = call[Symbol.asyncIterator]();
    let first: IteratorResult<Record<string, any>>;
    try {
      first = await messages.next();
    } catch (e) {
      throw toCallError(e as ServiceError);
    }
    if (first.done || !first.value.header) {
      call.cancel();
      throw new Error(`${method}: the stream did not start with a header`);
    }
    async function* body(): AsyncGenerator<Uint8Array> {
      let ended = false;
      try {
        for (;;) {
          const next = await messages.next();
          if (next.done) {
            ended = true;
            return;
          }
          if (next.value.chunk) yield next.value.chunk as Uint8Array;
        }
      } catch (e) {
        ended = true;
        throw (e as ServiceError).code !== undefined ? toCallError(e as ServiceError) : e;
      } finally {
        // A reader that stops early: the server's stream ends too.
        if (!ended) call.cancel();
      }
    }
    return { header: first.value.header as T, body: body(), cancel: () => call.cancel() };
  }

  close(): void {
    for (const s of this.stubs) s.close();
  }
}
