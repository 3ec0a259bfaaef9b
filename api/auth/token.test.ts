// Tokens: the payload survives the trip for every scope, and nothing but an unaltered, unexpired
// token from a key of the repository validates.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBase64Url, encrypt } from './fernet.js';
import { KeyRepository } from './key-repository.js';
import { decodePayload, encodePayload, InvalidTokenError, newAuditId, TokenCodec, type InvalidTokenReason, type TokenPayload } from './token.js';

const dirs: string[] = [];
function repo(maxActiveKeys = 3): KeyRepository {
  const dir = mkdtempSync(join(tmpdir(), 'strata-token-'));
  dirs.push(dir);
  return KeyRepository.open(join(dir, 'keys'), { maxActiveKeys });
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function reasonOf(f: () => unknown): InvalidTokenReason | 'no error' {
  try {
    f();
    return 'no error';
  } catch (e) {
    if (e instanceof InvalidTokenError) return e.reason;
    throw e;
  }
}

const t0 = Date.UTC(2026, 0, 1, 12, 0, 0, 123);
const hour = 3_600_000;
const projectToken: TokenPayload = {
  userId: '3f2c1e9a8b7d4c6e5f4a3b2c1d0e9f8a',
  userDomainId: 'default',
  methods: ['password'],
  scope: { kind: 'project', projectId: 'a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5', domainId: 'default' },
  roles: ['admin', 'member', 'reader'],
  issuedAtMs: t0,
  expiresAtMs: t0 + hour,
  auditIds: [newAuditId()],
};

describe('the payload', () => {
  const codec = new TokenCodec(repo());

  const cases: [string, TokenPayload][] = [
    ['unscoped', { ...projectToken, scope: { kind: 'unscoped' }, roles: [] }],
    ['project (hex ids)', projectToken],
    [
      'project (uuid ids, rescoped with two methods)',
      {
        ...projectToken,
        userId: '123e4567-e89b-12d3-a456-426614174000',
        methods: ['password', 'token'],
        scope: { kind: 'project', projectId: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', domainId: '00000000-0000-0000-0000-000000000000' },
        auditIds: [newAuditId(), newAuditId()],
      },
    ],
    ['domain', { ...projectToken, scope: { kind: 'domain', domainId: 'Ünïcödé-域' }, roles: ['domain_admin'] }],
    ['system', { ...projectToken, methods: ['token'], scope: { kind: 'system' }, roles: ['admin', 'reader'] }],
    [
      'non-hex and unicode ids and names',
      {
        ...projectToken,
        userId: 'alice@example.org',
        userDomainId: 'LDAP:corp',
        // Near misses of the packed forms stay strings: upper-case hex, upper-case uuid, 31 hex chars.
        scope: { kind: 'project', projectId: '3F2C1E9A8B7D4C6E5F4A3B2C1D0E9F8A', domainId: '123E4567-E89B-12D3-A456-426614174000' },
        roles: ['rôle-ñ', '管理者', '🙂', ''],
        auditIds: ['3f2c1e9a8b7d4c6e5f4a3b2c1d0e9f8'],
      },
    ],
  ];

  for (const [name, payload] of cases) {
    it(`round-trips: ${name}`, () => {
      expect(codec.validate(codec.issue(payload), payload.issuedAtMs)).toEqual(payload);
      expect(decodePayload(encodePayload(payload))).toEqual(payload);
    });
  }

  it('gives methods back in canonical order (a bit set, as Keystone), without duplicates', () => {
    const p = { ...projectToken, methods: ['token', 'password', 'token'] as TokenPayload['methods'] };
    expect(codec.validate(codec.issue(p), t0).methods).toEqual(['password', 'token']);
  });

  it('packs hex, uuid and audit ids into 16 bytes', () => {
    const asStrings = encodePayload({ ...projectToken, userId: 'x'.repeat(32), auditIds: ['!'.repeat(22)] }).length;
    // 32-char string id: 1 flag + 1 length + 32; packed: 1 flag + 16. Audit id: 1+1+22 vs 1+16.
    expect(asStrings - encodePayload(projectToken).length).toBe(34 - 17 + (24 - 17));
    const p = encodePayload(projectToken);
    expect(p[0]).toBe(1); // payload format version
    expect(p[1]).toBe(2); // project scope
    expect(p[2]).toBe(2); // password
  });

  it('makes a project token with 3 roles under 300 characters', () => {
    const token = codec.issue(projectToken);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThan(300);
  });

  it('refuses to issue a payload it could not give back', () => {
    expect(() => codec.issue({ ...projectToken, userId: '' })).toThrow(/userId/);
    expect(() => codec.issue({ ...projectToken, methods: [] })).toThrow(/method/);
    expect(() => codec.issue({ ...projectToken, methods: ['saml' as 'token'] })).toThrow(/method/);
    expect(() => codec.issue({ ...projectToken, auditIds: [] })).toThrow(/auditIds/);
    expect(() => codec.issue({ ...projectToken, expiresAtMs: t0 })).toThrow(/expiresAtMs/);
    expect(() => codec.issue({ ...projectToken, issuedAtMs: 1.5, expiresAtMs: 10 })).toThrow(/issuedAtMs/);
    expect(() => codec.issue({ ...projectToken, roles: ['x'.repeat(5000)] })).toThrow(/role/);
  });
});

describe('validation', () => {
  const keys = repo();
  const codec = new TokenCodec(keys);
  const token = codec.issue(projectToken);

  it('accepts the token until just before expiresAtMs, and says expired at exactly expiresAtMs', () => {
    expect(codec.validate(token, projectToken.expiresAtMs - 1)).toEqual(projectToken);
    expect(reasonOf(() => codec.validate(token, projectToken.expiresAtMs))).toBe('expired');
    expect(reasonOf(() => codec.validate(token, projectToken.expiresAtMs + hour))).toBe('expired');
  });

  it('rejects the token with any single byte of it flipped', () => {
    const bytes = decodeBase64Url(token)!;
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 0x01;
      expect(reasonOf(() => codec.validate(flipped.toString('base64url'), t0)), `byte ${i}`).toMatch(/^(signature|version)$/);
    }
  });

  it('rejects a token made with a key not in the repository (signature)', () => {
    const stranger = new TokenCodec(repo());
    expect(reasonOf(() => codec.validate(stranger.issue(projectToken), t0))).toBe('signature');
  });

  it('calls empty and garbage tokens malformed', () => {
    for (const t of ['', 'x', 'not a token', '%'.repeat(120), token.slice(0, -1), token.slice(0, 50), token + '=', `${token}\n`, `Bearer ${token}`]) {
      expect(reasonOf(() => codec.validate(t, t0)), JSON.stringify(t)).toBe('malformed');
    }
  });

  it('rejects every truncation: malformed unless it happens to cut whole AES blocks (then a signature failure)', () => {
    for (let n = 0; n < token.length; n++) {
      const prefix = token.slice(0, n);
      const bytes = Math.floor((n * 6) / 8);
      const wellShaped = n % 4 !== 1 && bytes >= 73 && (bytes - 57) % 16 === 0;
      const reason = reasonOf(() => codec.validate(prefix, t0));
      if (wellShaped) expect(reason, `length ${n}`).toMatch(/^(malformed|signature)$/);
      else expect(reason, `length ${n}`).toBe('malformed');
    }
  });

  it('calls another payload version a version failure, and trailing or short payloads malformed', () => {
    const primary = keys.primary();
    const good = encodePayload(projectToken);
    const at = Math.floor(t0 / 1000);
    const v2 = Buffer.from(good);
    v2[0] = 2;
    expect(reasonOf(() => codec.validate(encrypt(primary, v2, at), t0))).toBe('version');
    expect(reasonOf(() => codec.validate(encrypt(primary, Buffer.concat([good, Buffer.from([0])]), at), t0))).toBe('malformed');
    expect(reasonOf(() => codec.validate(encrypt(primary, good.subarray(0, good.length - 1), at), t0))).toBe('malformed');
    expect(reasonOf(() => codec.validate(encrypt(primary, Buffer.alloc(0), at), t0))).toBe('malformed');
    const badScope = Buffer.from(good);
    badScope[1] = 3;
    expect(reasonOf(() => codec.validate(encrypt(primary, badScope, at), t0))).toBe('malformed');
    const badMethods = Buffer.from(good);
    badMethods[2] = 1; // 'external' is not a method Strata has
    expect(reasonOf(() => codec.validate(encrypt(primary, badMethods, at), t0))).toBe('malformed');
  });

  it('calls a payload whose issue time disagrees with the Fernet timestamp malformed', () => {
    const later = encrypt(keys.primary(), encodePayload(projectToken), Math.floor(t0 / 1000) + 1);
    expect(reasonOf(() => codec.validate(later, t0))).toBe('malformed');
  });

  it('calls a payload with invalid UTF-8 malformed', () => {
    const p = encodePayload({ ...projectToken, roles: ['ab'] });
    const at = p.indexOf(Buffer.from('ab'));
    p[at] = 0xff;
    expect(reasonOf(() => codec.validate(encrypt(keys.primary(), p, Math.floor(t0 / 1000)), t0))).toBe('malformed');
  });
});

describe('newAuditId', () => {
  it('is 16 random bytes as 22 url-safe base64 characters', () => {
    const ids = new Set(Array.from({ length: 1000 }, newAuditId));
    expect(ids.size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(decodeBase64Url(id)!.length).toBe(16);
    }
  });
});

describe('key rotation (maxActiveKeys 3: staged, primary, one secondary)', () => {
  it('a token from the primary validates after 1 rotation and fails at the 2nd, when its key is removed', () => {
    const keys = repo(3);
    const codec = new TokenCodec(keys);
    const token = codec.issue(projectToken);
    keys.rotate();
    expect(keys.keyNumbers()).toEqual([0, 1, 2]);
    expect(codec.validate(token, t0)).toEqual(projectToken);
    keys.rotate();
    expect(keys.keyNumbers()).toEqual([0, 2, 3]);
    expect(reasonOf(() => codec.validate(token, t0))).toBe('signature');
  });

  it('in general a primary-key token survives maxActiveKeys-2 rotations and fails at maxActiveKeys-1', () => {
    for (const max of [2, 3, 4, 6]) {
      const keys = repo(max);
      const codec = new TokenCodec(keys);
      const token = codec.issue(projectToken);
      for (let r = 1; r <= max - 2; r++) {
        keys.rotate();
        expect(codec.validate(token, t0), `max ${max}, rotation ${r}`).toEqual(projectToken);
      }
      keys.rotate();
      expect(reasonOf(() => codec.validate(token, t0)), `max ${max}`).toBe('signature');
      expect(keys.keys().length).toBe(max);
    }
  });

  it('a token encrypted with the staged key validates before promotion, and for one rotation longer', () => {
    const keys = repo(3);
    const codec = new TokenCodec(keys);
    const staged = keys.keys()[1];
    const token = encrypt(staged, encodePayload(projectToken), Math.floor(t0 / 1000));
    expect(codec.validate(token, t0)).toEqual(projectToken);
    keys.rotate(); // staged becomes primary
    expect(keys.primary().equals(staged)).toBe(true);
    expect(codec.validate(token, t0)).toEqual(projectToken);
    keys.rotate(); // secondary
    expect(codec.validate(token, t0)).toEqual(projectToken);
    keys.rotate(); // removed
    expect(reasonOf(() => codec.validate(token, t0))).toBe('signature');
  });

  it('a server sees a rotation made by another process through reloadIfChanged', () => {
    const server = repo(3);
    const cli = KeyRepository.open(server.dir, { maxActiveKeys: 3 });
    const serverCodec = new TokenCodec(server);
    cli.rotate();
    // Issued by a node that has the new primary; the server still holds it as its staged key.
    const fromNewPrimary = new TokenCodec(cli).issue(projectToken);
    expect(serverCodec.validate(fromNewPrimary, t0)).toEqual(projectToken);
    cli.rotate();
    const fromNewerPrimary = new TokenCodec(cli).issue(projectToken);
    expect(reasonOf(() => serverCodec.validate(fromNewerPrimary, t0))).toBe('signature');
    expect(server.reloadIfChanged()).toBe(true);
    expect(serverCodec.validate(fromNewerPrimary, t0)).toEqual(projectToken);
  });
});
