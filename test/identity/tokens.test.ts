// Issue 3 acceptance b and c over the real server: key rotation keeps live tokens valid until
// their key is retired; any single flipped byte, and any token made without the keys, is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FernetKey } from '../../api/auth/fernet.js';
import { encodePayload, type TokenPayload } from '../../api/auth/token.js';
import { encrypt } from '../../api/auth/fernet.js';
import { codeOf, startTestCloud, type TestCloud } from './cloud.js';

const UNAUTHENTICATED = 16;

describe('tokens on a live identity API', () => {
  let t: TestCloud;
  beforeAll(async () => {
    t = await startTestCloud({ maxActiveKeys: 3 });
  }, 120_000);
  afterAll(async () => t?.close());

  it('validate across a rotation, and stop once their key is retired (3 active keys: at the 2nd rotation)', async () => {
    const before = await t.adminToken();
    t.cloud.identity.keys.rotate();
    const afterOne = await t.adminToken();
    expect(await codeOf(t.client(before).call('ValidateToken', { token: before }))).toBe(0);
    t.cloud.identity.keys.rotate();
    expect(await codeOf(t.client(before).call('ValidateToken', { token: before }))).toBe(UNAUTHENTICATED);
    // The token made after the first rotation is signed by a key still active.
    expect(await codeOf(t.client(afterOne).call('ValidateToken', { token: afterOne }))).toBe(0);
  });

  it('refuses every single flipped byte', async () => {
    const token = await t.adminToken();
    const bytes = Buffer.from(token, 'base64url');
    const admin = t.client(token);
    let refused = 0;
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 0x01;
      const forged = flipped.toString('base64url');
      const code = await codeOf(admin.call('ValidateToken', { token: forged }));
      // As the subject: not found; as the caller's own token: unauthenticated.
      const asCaller = await codeOf(t.client(forged).call('ListRoles', {}));
      if (code === 5 && asCaller === UNAUTHENTICATED) refused++;
    }
    expect(refused).toBe(bytes.length);
  });

  it('refuses a well-formed token made with a key the cloud does not hold', async () => {
    const real = await t.client(await t.adminToken()).call('ValidateToken', { token: await t.adminToken() });
    const now = Date.now();
    const payload: TokenPayload = {
      userId: real.info.userId,
      userDomainId: real.info.userDomainId,
      methods: ['password'],
      scope: { kind: 'project', projectId: real.info.projectId, domainId: real.info.domainId },
      roles: ['admin', 'member', 'reader'],
      issuedAtMs: now,
      expiresAtMs: now + 3_600_000,
      auditIds: ['AAAAAAAAAAAAAAAAAAAAAA'],
    };
    const forged = encrypt(FernetKey.generate(), encodePayload(payload), Math.floor(now / 1000));
    expect(await codeOf(t.client(forged).call('CreateProject', { project: { name: 'forged', domainId: 'default' } }))).toBe(UNAUTHENTICATED);
    expect(await codeOf(t.client(forged).call('ListRoles', {}))).toBe(UNAUTHENTICATED);
  });
});
