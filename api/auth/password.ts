// Password hashing with scrypt (node:crypto), stored self-describing so that the parameters can
// change later without breaking stored hashes:
//   scrypt$ln=15,r=8,p=1$<salt>$<hash>      (salt and hash in standard base64, unpadded)
// Defaults: N = 2^15, r = 8, p = 1 (32 MiB, tens of ms), 16-byte salt, 32-byte key.
// STRATA_SCRYPT_LN (log2 N) overrides the default N of new hashes, for small machines and tests;
// verification always uses the parameters written in the hash.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  /** log2 of the cost N. */
  ln: number;
  r: number;
  p: number;
}

export const SCRYPT_DEFAULTS: Readonly<ScryptParams & { saltBytes: number; keyBytes: number }> = Object.freeze({
  ln: 15,
  r: 8,
  p: 1,
  saltBytes: 16,
  keyBytes: 32,
});

/** Longer passwords are refused before any work (scrypt cost does not depend on it, but memory does). */
export const MAX_PASSWORD_BYTES = 4096;

/** Bounds on parameters, written or read: a hash out of them is refused rather than computed. */
const LN_MIN = 1;
const LN_MAX = 20;
const R_MAX = 32;
const P_MAX = 16;
/** Memory ceiling for one hash (the defaults use 32 MiB). */
const MAX_MEMORY = 1024 * 1024 * 1024;

const ENCODED = /^scrypt\$ln=([0-9]{1,2}),r=([0-9]{1,3}),p=([0-9]{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

/** The parameters new hashes use: SCRYPT_DEFAULTS, with ln from STRATA_SCRYPT_LN if set. */
export function defaultParams(): ScryptParams {
  const env = process.env.STRATA_SCRYPT_LN;
  if (env === undefined || env === '') return { ln: SCRYPT_DEFAULTS.ln, r: SCRYPT_DEFAULTS.r, p: SCRYPT_DEFAULTS.p };
  const ln = Number(env);
  if (!Number.isInteger(ln) || ln < LN_MIN || ln > LN_MAX) {
    throw new RangeError(`STRATA_SCRYPT_LN must be an integer from ${LN_MIN} to ${LN_MAX}, got ${JSON.stringify(env)}`);
  }
  return { ln, r: SCRYPT_DEFAULTS.r, p: SCRYPT_DEFAULTS.p };
}

function checkPassword(password: string): Buffer {
  if (typeof password !== 'string') throw new TypeError('password must be a string');
  const bytes = Buffer.from(password, 'utf8');
  if (bytes.length > MAX_PASSWORD_BYTES) throw new RangeError(`password is longer than ${MAX_PASSWORD_BYTES} bytes`);
  return bytes;
}

function validParams({ ln, r, p }: ScryptParams): boolean {
  return (
    Number.isInteger(ln) && ln >= LN_MIN && ln <= LN_MAX &&
    Number.isInteger(r) && r >= 1 && r <= R_MAX &&
    Number.isInteger(p) && p >= 1 && p <= P_MAX &&
    memoryFor({ ln, r, p }) <= MAX_MEMORY
  );
}

/**
 * maxmem for scrypt: 128*N*r*2, raised for tiny N where OpenSSL's own count
 * (128*r*(N+2) for V plus 128*r*p for B) exceeds it.
 */
function memoryFor({ ln, r, p }: ScryptParams): number {
  const N = 2 ** ln;
  return Math.max(128 * N * r * 2, 128 * r * (N + 2 + p));
}

function derive(password: Buffer, salt: Buffer, params: ScryptParams, keyBytes: number): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: memoryFor(params) };
  return new Promise((resolve, reject) => scrypt(password, salt, keyBytes, options, (err, key) => (err ? reject(err) : resolve(key))));
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

/** Strict standard base64 (unpadded) decode: undefined unless `s` is the canonical spelling. */
function unb64(s: string): Buffer | undefined {
  const b = Buffer.from(s, 'base64');
  return b64(b) === s ? b : undefined;
}

/** Hash a password with a fresh 16-byte salt: `scrypt$ln=..,r=..,p=..$salt$hash`. */
export async function hashPassword(password: string, params: ScryptParams = defaultParams()): Promise<string> {
  const bytes = checkPassword(password);
  if (!validParams(params)) {
    throw new RangeError(`scrypt parameters out of bounds: ln ${LN_MIN}..${LN_MAX}, r 1..${R_MAX}, p 1..${P_MAX}, at most ${MAX_MEMORY} bytes`);
  }
  const salt = randomBytes(SCRYPT_DEFAULTS.saltBytes);
  const hash = await derive(bytes, salt, params, SCRYPT_DEFAULTS.keyBytes);
  return `scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

interface Parsed {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

function parse(encoded: string): Parsed | undefined {
  const m = typeof encoded === 'string' ? ENCODED.exec(encoded) : null;
  if (!m) return undefined;
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const salt = unb64(m[4]);
  const hash = unb64(m[5]);
  if (!validParams(params) || !salt || !hash || salt.length < 8 || hash.length < 16 || hash.length > 64) return undefined;
  return { params, salt, hash };
}

/** Whether `password` matches `encoded`. A malformed or out-of-bounds encoding is false. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const bytes = checkPassword(password);
  const parsed = parse(encoded);
  if (!parsed) return false;
  const candidate = await derive(bytes, parsed.salt, parsed.params, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

const DUMMY_SALT = randomBytes(SCRYPT_DEFAULTS.saltBytes);
const DUMMY_HASH = randomBytes(SCRYPT_DEFAULTS.keyBytes);

/**
 * The work of a verification against a hash at the current default parameters, always false:
 * for an unknown user, so that it costs what a wrong password costs. (A stored hash made with
 * other parameters costs what those parameters cost: rehash on login, see needsRehash.)
 */
export async function dummyVerify(password: string): Promise<boolean> {
  const bytes = checkPassword(password);
  const candidate = await derive(bytes, DUMMY_SALT, defaultParams(), SCRYPT_DEFAULTS.keyBytes);
  timingSafeEqual(candidate, DUMMY_HASH);
  return false;
}

/** Whether a stored hash uses other parameters than new hashes would (rehash after a good login). */
export function needsRehash(encoded: string, params: ScryptParams = defaultParams()): boolean {
  const parsed = parse(encoded);
  return !parsed || parsed.params.ln !== params.ln || parsed.params.r !== params.r || parsed.params.p !== params.p;
}
