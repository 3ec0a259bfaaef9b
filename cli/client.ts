// A client of the Strata gRPC API for the CLI and the tests: unary calls by method name, with
// the token in x-auth-token metadata, over TLS that trusts the cloud's CA certificate.
import { credentials, Metadata, type Client, type ServiceError } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { protoRoot } from '../infra/envelope/envelope.codec.js';
import { clientConstructor } from '../api/grpc/service-definition.js';

export const IDENTITY_SERVICE = 'strata.identity.v1.IdentityService';

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

export class StrataClient {
  private readonly client: Client & Record<string, (...args: unknown[]) => unknown>;
  token: string | undefined;

  constructor(private readonly options: ClientOptions) {
    const { address, tls } = parseUrl(options.url);
    const ca = typeof options.caCert === 'string' ? readFileSync(options.caCert) : options.caCert;
    const creds = tls ? credentials.createSsl(ca ?? null) : credentials.createInsecure();
    const Ctor = clientConstructor(protoRoot(), IDENTITY_SERVICE);
    this.client = new Ctor(address, creds) as never;
    this.token = options.token;
  }

  call<T = Record<string, any>>(method: string, request: Record<string, unknown> = {}, token = this.token): Promise<T> {
    const metadata = new Metadata();
    if (token) metadata.set('x-auth-token', token);
    const fn = this.client[method];
    if (typeof fn !== 'function') return Promise.reject(new Error(`no RPC ${method}`));
    return new Promise((resolve, reject) => {
      fn.call(
        this.client,
        request,
        metadata,
        { deadline: Date.now() + (this.options.timeoutMs ?? 30_000) },
        (err: ServiceError | null, res: T) => {
          if (err) {
            reject(new ApiCallError(err.code, err.details, err.metadata?.get('strata-field')[0]?.toString(), err.metadata?.get('strata-state')[0]?.toString()));
          } else resolve(res);
        },
      );
    });
  }

  close(): void {
    this.client.close();
  }
}
