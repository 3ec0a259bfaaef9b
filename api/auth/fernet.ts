// Fernet (https://github.com/fernet/spec), the authenticated encryption under Strata's tokens,
// as Keystone uses it: a token is
//   0x80 | timestamp (u64 BE, seconds) | IV (16) | AES-128-CBC(PKCS7(plaintext)) | HMAC-SHA256 (32)
// where the HMAC covers everything before it, written as url-safe base64 with the `=` padding
// stripped (Keystone strips it; the spec's own vectors keep it, so both are accepted).
// A key is 32 bytes, url-safe base64: the first 16 sign, the last 16 encrypt.
//
// Validation runs on every API call, so key objects are built once per key (FernetKey), not per
// call, and a failure says only why in general terms: never which key was tried, never anything
// about padding (the HMAC is checked before decryption, so there is no padding oracle anyway).
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export type InvalidTokenReason = 'malformed' | 'signature' | 'version' | 'expired';

const MESSAGES: Record<InvalidTokenReason, string> = {
  malformed: 'invalid token: malformed',
  signature: 'invalid token: signature does not verify',
  version: 'invalid token: unsupported version',
  expired: 'invalid token: expired',
};

/** A token that does not validate. The message is safe to show a caller. */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
  constructor(readonly reason: InvalidTokenReason) {
    super(MESSAGES[reason]);
  }
}

const VERSION = 0x80;
const HEADER = 1 + 8 + 16; // version, timestamp, IV
const MAC = 32;
const BLOCK = 16;
const MIN_TOKEN_BYTES = HEADER + BLOCK + MAC; // PKCS7 always adds at least one block

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Strict url-safe base64 decoding, padded or not. Buffer.from(s, 'base64url') silently skips
 * characters it does not know and ignores stray bits, so the input is checked first and the
 * result re-encoded: only the one canonical spelling of the bytes is accepted.
 */
export function decodeBase64Url(s: string): Buffer | undefined {
  let body = s;
  if (body.endsWith('=')) {
    if (body.length % 4 !== 0) return undefined;
    body = body.endsWith('==') ? body.slice(0, -2) : body.slice(0, -1);
  }
  if (body.length % 4 === 1 || !B64URL.test(body)) return undefined;
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.toString('base64url') !== body) return undefined; // non-zero trailing bits
  return bytes;
}

/** A Fernet key, split and turned into key objects once. Its material is never printed. */
export class FernetKey {
  private constructor(
    /** @internal */ readonly signing: KeyObject,
    /** @internal */ readonly encryption: KeyObject,
  ) {}

  /** From the url-safe base64 of 32 bytes (as in a key file; padding optional). */
  static fromString(encoded: string): FernetKey {
    const raw = decodeBase64Url(encoded.trim());
    if (raw === undefined || raw.length !== 32) throw new Error('a Fernet key is the url-safe base64 of 32 bytes');
    return FernetKey.fromBytes(raw);
  }

  static fromBytes(raw: Uint8Array): FernetKey {
    if (raw.length !== 32) throw new Error('a Fernet key is 32 bytes');
    return new FernetKey(createSecretKey(Buffer.from(raw.subarray(0, 16))), createSecretKey(Buffer.from(raw.subarray(16, 32))));
  }

  static generate(): FernetKey {
    return FernetKey.fromBytes(randomBytes(32));
  }

  /** The url-safe base64 form, padded as Keystone writes key files. For storage only. */
  encode(): string {
    return Buffer.concat([this.signing.export(), this.encryption.export()]).toString('base64url') + '=';
  }

  /** Same key material (used to drop duplicates in a key repository). */
  equals(other: FernetKey): boolean {
    return this.signing.equals(other.signing) && this.encryption.equals(other.encryption);
  }

  toString(): string {
    return 'FernetKey(<redacted>)';
  }
  toJSON(): string {
    return this.toString();
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function hmac(key: FernetKey, data: Buffer): Buffer {
  return createHmac('sha256', key.signing).update(data).digest();
}

/**
 * Encrypt `plaintext` into a token (unpadded url-safe base64). `nowSeconds` is the Fernet
 * timestamp; `iv` is random unless given (tests pin it to reproduce the spec's vectors).
 */
export function encrypt(key: FernetKey, plaintext: Uint8Array, nowSeconds: number, iv: Uint8Array = randomBytes(16)): string {
  if (!Number.isSafeInteger(nowSeconds) || nowSeconds < 0) throw new RangeError('nowSeconds must be a non-negative integer');
  if (iv.length !== 16) throw new RangeError('iv must be 16 bytes');
  const header = Buffer.allocUnsafe(HEADER);
  header[0] = VERSION;
  header.writeUInt32BE(Math.floor(nowSeconds / 2 ** 32), 1);
  header.writeUInt32BE(nowSeconds >>> 0, 5);
  header.set(iv, 9);
  const cipher = createCipheriv('aes-128-cbc', key.encryption, iv); // PKCS7 padding is the default
  const body = Buffer.concat([header, cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([body, hmac(key, body)]).toString('base64url');
}

export interface Decrypted {
  plaintext: Buffer;
  timestampSeconds: number;
  /** Index in `keys` of the key that verified (0 = the primary, if keys come primary first). */
  keyIndex: number;
}

/**
 * Verify and decrypt a token with the first of `keys` whose HMAC matches (MultiFernet).
 * Throws InvalidTokenError: 'malformed' (encoding, length, or content after a valid HMAC),
 * 'version' (first byte not 0x80), 'signature' (no key's HMAC matches).
 */
export function decrypt(keys: readonly FernetKey[], token: string): Decrypted {
  const data = typeof token === 'string' ? decodeBase64Url(token) : undefined;
  if (data === undefined || data.length < MIN_TOKEN_BYTES || (data.length - HEADER - MAC) % BLOCK !== 0) {
    throw new InvalidTokenError('malformed');
  }
  if (data[0] !== VERSION) throw new InvalidTokenError('version');
  const signed = data.subarray(0, data.length - MAC);
  const mac = data.subarray(data.length - MAC);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (!timingSafeEqual(hmac(key, signed), mac)) continue;
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-128-cbc', key.encryption, data.subarray(9, HEADER));
      plaintext = Buffer.concat([decipher.update(data.subarray(HEADER, data.length - MAC)), decipher.final()]);
    } catch {
      // Only a holder of the key can get here (the HMAC verified): report it as malformed,
      // without the padding detail.
      throw new InvalidTokenError('malformed');
    }
    const timestampSeconds = data.readUInt32BE(1) * 2 ** 32 + data.readUInt32BE(5);
    if (!Number.isSafeInteger(timestampSeconds)) throw new InvalidTokenError('malformed');
    return { plaintext, timestampSeconds, keyIndex: i };
  }
  throw new InvalidTokenError('signature');
}
