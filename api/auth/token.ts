// Strata's tokens: a compact binary payload under Fernet, nothing stored server-side (as
// Keystone's fernet provider). The payload (format version 1), every integer big-endian:
//   u8  format version = 1
//   u8  scope kind: 0 unscoped, 1 domain, 2 project, 8 system (Keystone's payload versions)
//   u8  methods bit set: password = 2, token = 4 (Keystone's bits)
//   id  userId, id userDomainId
//   id  scope ids: project -> projectId, domainId; domain -> domainId; others none
//   varint count, then strings: roles
//   u64 issuedAtMs, u64 expiresAtMs
//   varint count, then ids: auditIds
// A string is a varint (LEB128) byte length then UTF-8. An id is a flag byte, then:
//   0 a string; 1 16 bytes of a 32-char lowercase hex id; 2 16 bytes of a canonical (lowercase)
//   UUID; 3 16 bytes of a 22-char url-safe base64 id (audit ids).
// Methods come back in canonical order (password, token), as in Keystone.
// The Fernet timestamp is floor(issuedAtMs / 1000) and must agree with the payload.
import { randomBytes } from 'node:crypto';
import { decrypt, decodeBase64Url, encrypt, InvalidTokenError } from './fernet.js';
import type { KeyRepository } from './key-repository.js';

export { InvalidTokenError, type InvalidTokenReason } from './fernet.js';

export type TokenScope =
  | { kind: 'unscoped' }
  | { kind: 'project'; projectId: string; domainId: string }
  | { kind: 'domain'; domainId: string }
  | { kind: 'system' };

export type AuthMethod = 'password' | 'token';

export interface TokenPayload {
  userId: string;
  userDomainId: string;
  methods: AuthMethod[];
  scope: TokenScope;
  /** Effective role names on the scope. */
  roles: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  /** [own audit id, original audit id when rescoped]. */
  auditIds: string[];
}

export const PAYLOAD_VERSION = 1;

const SCOPE_CODE = { unscoped: 0, domain: 1, project: 2, system: 8 } as const;
const METHOD_BIT: Record<AuthMethod, number> = { password: 2, token: 4 };
const METHODS: AuthMethod[] = ['password', 'token'];
const ALL_METHOD_BITS = METHOD_BIT.password | METHOD_BIT.token;

const ID_STRING = 0;
const ID_HEX = 1;
const ID_UUID = 2;
const ID_B64 = 3;
const HEX32 = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const B64_22 = /^[A-Za-z0-9_-]{22}$/;

/** Longest string (bytes) and longest list the decoder accepts: tokens are small. */
const MAX_STRING_BYTES = 4096;
const MAX_LIST = 1024;

/** A new audit id: 16 random bytes, url-safe base64 without padding (22 chars), as Keystone. */
export function newAuditId(): string {
  return randomBytes(16).toString('base64url');
}

// ---------------------------------------------------------------- encoding

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private at = 0;

  private room(n: number) {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }
  u8(v: number) {
    this.room(1);
    this.buf[this.at++] = v;
  }
  varint(v: number) {
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    this.u8(v);
  }
  bytes(b: Uint8Array) {
    this.room(b.length);
    this.buf.set(b, this.at);
    this.at += b.length;
  }
  string(s: string, what: string) {
    const b = Buffer.from(s, 'utf8');
    if (b.length > MAX_STRING_BYTES) throw new RangeError(`${what} is longer than ${MAX_STRING_BYTES} bytes`);
    this.varint(b.length);
    this.bytes(b);
  }
  id(s: string, what: string) {
    if (typeof s !== 'string' || s.length === 0) throw new TypeError(`${what} must be a non-empty string`);
    if (HEX32.test(s)) {
      this.u8(ID_HEX);
      this.bytes(Buffer.from(s, 'hex'));
    } else if (UUID.test(s)) {
      this.u8(ID_UUID);
      this.bytes(Buffer.from(s.replace(/-/g, ''), 'hex'));
    } else if (B64_22.test(s) && decodeBase64Url(s) !== undefined) {
      this.u8(ID_B64);
      this.bytes(decodeBase64Url(s)!);
    } else {
      this.u8(ID_STRING);
      this.string(s, what);
    }
  }
  u64(v: number, what: string) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer (ms)`);
    this.room(8);
    this.buf.writeUInt32BE(Math.floor(v / 2 ** 32), this.at);
    this.buf.writeUInt32BE(v >>> 0, this.at + 4);
    this.at += 8;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.at);
  }
}

/** The binary payload of a token (exported for tests and size checks). */
export function encodePayload(p: TokenPayload): Buffer {
  const w = new Writer();
  w.u8(PAYLOAD_VERSION);
  const scopeCode = SCOPE_CODE[p.scope.kind];
  if (scopeCode === undefined) throw new TypeError(`unknown scope kind ${String(p.scope.kind)}`);
  w.u8(scopeCode);
  let methods = 0;
  for (const m of p.methods) {
    if (!(m in METHOD_BIT)) throw new TypeError(`unknown auth method ${String(m)}`);
    methods |= METHOD_BIT[m];
  }
  if (methods === 0) throw new TypeError('a token needs at least one auth method');
  w.u8(methods);
  w.id(p.userId, 'userId');
  w.id(p.userDomainId, 'userDomainId');
  if (p.scope.kind === 'project') {
    w.id(p.scope.projectId, 'scope.projectId');
    w.id(p.scope.domainId, 'scope.domainId');
  } else if (p.scope.kind === 'domain') {
    w.id(p.scope.domainId, 'scope.domainId');
  }
  if (p.roles.length > MAX_LIST) throw new RangeError(`more than ${MAX_LIST} roles`);
  w.varint(p.roles.length);
  for (const r of p.roles) w.string(r, 'role');
  w.u64(p.issuedAtMs, 'issuedAtMs');
  w.u64(p.expiresAtMs, 'expiresAtMs');
  if (p.auditIds.length === 0 || p.auditIds.length > 2) throw new RangeError('auditIds holds one or two ids');
  w.varint(p.auditIds.length);
  for (const a of p.auditIds) w.id(a, 'auditId');
  return w.done();
}

// ---------------------------------------------------------------- decoding

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Thrown inside the reader; turned into InvalidTokenError('malformed') by decodePayload. */
class Malformed extends Error {}

class Reader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  u8(): number {
    if (this.at >= this.buf.length) throw new Malformed();
    return this.buf[this.at++];
  }
  varint(max: number): number {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.u8();
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (v > max || (b === 0 && shift > 0)) throw new Malformed(); // too big, or not minimal
        return v;
      }
    }
    throw new Malformed();
  }
  bytes(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Malformed();
    const b = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return b;
  }
  string(): string {
    const b = this.bytes(this.varint(MAX_STRING_BYTES));
    try {
      return utf8.decode(b);
    } catch {
      throw new Malformed();
    }
  }
  id(): string {
    switch (this.u8()) {
      case ID_STRING: {
        const s = this.string();
        if (s.length === 0) throw new Malformed();
        return s;
      }
      case ID_HEX:
        return this.bytes(16).toString('hex');
      case ID_UUID: {
        const h = this.bytes(16).toString('hex');
        return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      }
      case ID_B64:
        return this.bytes(16).toString('base64url');
      default:
        throw new Malformed();
    }
  }
  u64(): number {
    const hi = this.bytes(4).readUInt32BE(0);
    const lo = this.bytes(4).readUInt32BE(0);
    if (hi >= 2 ** 21) throw new Malformed(); // beyond Number.MAX_SAFE_INTEGER
    return hi * 2 ** 32 + lo;
  }
  end() {
    if (this.at !== this.buf.length) throw new Malformed();
  }
}

/** Decode a binary payload; InvalidTokenError 'version' or 'malformed' when it is not one. */
export function decodePayload(buf: Buffer): TokenPayload {
  if (buf.length === 0) throw new InvalidTokenError('malformed');
  if (buf[0] !== PAYLOAD_VERSION) throw new InvalidTokenError('version');
  try {
    const r = new Reader(buf);
    r.u8();
    const scopeCode = r.u8();
    const methodBits = r.u8();
    if (methodBits === 0 || (methodBits & ~ALL_METHOD_BITS) !== 0) throw new Malformed();
    const methods = METHODS.filter((m) => (methodBits & METHOD_BIT[m]) !== 0);
    const userId = r.id();
    const userDomainId = r.id();
    let scope: TokenScope;
    switch (scopeCode) {
      case SCOPE_CODE.unscoped:
        scope = { kind: 'unscoped' };
        break;
      case SCOPE_CODE.project: {
        const projectId = r.id();
        scope = { kind: 'project', projectId, domainId: r.id() };
        break;
      }
      case SCOPE_CODE.domain:
        scope = { kind: 'domain', domainId: r.id() };
        break;
      case SCOPE_CODE.system:
        scope = { kind: 'system' };
        break;
      default:
        throw new Malformed();
    }
    const roles: string[] = [];
    for (let n = r.varint(MAX_LIST); n > 0; n--) roles.push(r.string());
    const issuedAtMs = r.u64();
    const expiresAtMs = r.u64();
    const auditIds: string[] = [];
    const auditCount = r.varint(2);
    if (auditCount === 0) throw new Malformed();
    for (let n = auditCount; n > 0; n--) auditIds.push(r.id());
    r.end();
    return { userId, userDomainId, methods, scope, roles, issuedAtMs, expiresAtMs, auditIds };
  } catch (e) {
    if (e instanceof Malformed) throw new InvalidTokenError('malformed');
    throw e;
  }
}

// ---------------------------------------------------------------- the codec

/** Issues and validates tokens with the keys of a repository (primary encrypts, all decrypt). */
export class TokenCodec {
  constructor(private readonly keys: KeyRepository) {}

  issue(payload: TokenPayload): string {
    if (!(payload.expiresAtMs > payload.issuedAtMs)) throw new RangeError('expiresAtMs must be after issuedAtMs');
    return encrypt(this.keys.primary(), encodePayload(payload), Math.floor(payload.issuedAtMs / 1000));
  }

  /**
   * The payload of a valid, unexpired token. Throws InvalidTokenError: 'malformed', 'signature'
   * (no key of the repository made it), 'version' (Fernet or payload format), 'expired'
   * (nowMs >= expiresAtMs). Revocation is checked elsewhere (revocations.ts).
   */
  validate(token: string, nowMs: number): TokenPayload {
    const { plaintext, timestampSeconds } = decrypt(this.keys.keys(), token);
    const payload = decodePayload(plaintext);
    if (Math.floor(payload.issuedAtMs / 1000) !== timestampSeconds) throw new InvalidTokenError('malformed');
    if (nowMs >= payload.expiresAtMs) throw new InvalidTokenError('expired');
    return payload;
  }
}
