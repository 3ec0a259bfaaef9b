// Token authentication shared by every Strata service: the token a call carries (x-auth-token,
// or authorization: Bearer), validated by the token codec (no log read), checked against the
// revocation list, and turned into the policy's Caller. Services differ in what they allow a
// caller; who the caller is, they learn here.
import type { Metadata } from '@grpc/grpc-js';
import { refuse } from '../errors.js';
import { caller as callerOf, type Caller } from '../policy/policy.js';
import { InvalidTokenError } from './fernet.js';
import type { RevocationIndex } from './revocations.js';
import type { TokenCodec, TokenPayload } from './token.js';

/** The token a call carries: x-auth-token, or authorization: Bearer <token>. */
export function tokenFromMetadata(metadata: Metadata): string | undefined {
  const direct = metadata.get('x-auth-token')[0];
  if (direct) return String(direct);
  const auth = metadata.get('authorization')[0];
  const m = auth ? /^Bearer\s+(\S+)$/i.exec(String(auth)) : null;
  return m ? m[1] : undefined;
}

export interface AuthenticatorOptions {
  tokens: TokenCodec;
  revocations: RevocationIndex;
  /** Keystone's admin_project: the admin role there makes a cloud admin. */
  adminProjectId: string;
  /** The API's clock; tests move it. */
  now?: () => number;
}

export class Authenticator {
  private readonly now: () => number;

  constructor(private readonly o: AuthenticatorOptions) {
    this.now = o.now ?? Date.now;
  }

  get adminProjectId(): string {
    return this.o.adminProjectId;
  }

  /** A token's payload, or UNAUTHENTICATED saying why not (invalid, expired, revoked). */
  validateToken(token: string): TokenPayload {
    let payload: TokenPayload;
    try {
      payload = this.o.tokens.validate(token, this.now());
    } catch (e) {
      if (e instanceof InvalidTokenError) {
        throw refuse('UNAUTHENTICATED', e.reason === 'expired' ? 'the token has expired' : 'the token is not valid');
      }
      throw e;
    }
    const why = this.o.revocations.revoked(payload);
    if (why) throw refuse('UNAUTHENTICATED', `the token was revoked: ${why}`);
    return payload;
  }

  /** The caller of a gRPC call, from its metadata; UNAUTHENTICATED without a valid token. */
  authenticate(metadata: Metadata): Caller {
    const token = tokenFromMetadata(metadata);
    if (!token) throw refuse('UNAUTHENTICATED', 'no token: send it in x-auth-token or authorization: Bearer <token> metadata');
    return callerOf(this.validateToken(token), { adminProjectId: this.o.adminProjectId });
  }

  /** Whether a payload still validates now (expiry and revocation): long streams check it as they go. */
  stillValid(payload: TokenPayload): boolean {
    return payload.expiresAtMs > this.now() && !this.o.revocations.revoked(payload);
  }
}
