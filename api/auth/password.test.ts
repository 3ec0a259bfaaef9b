// Password hashes: self-describing, verifiable, and refusing what they cannot vouch for.
// Low parameters (ln 4) keep the tests fast; one test runs the defaults.
import { afterEach, describe, expect, it } from 'vitest';
import { defaultParams, dummyVerify, hashPassword, needsRehash, SCRYPT_DEFAULTS, verifyPassword } from './password.js';

const FAST = { ln: 4, r: 8, p: 1 };
const FORMAT = /^scrypt\$ln=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;

const envBefore = process.env.STRATA_SCRYPT_LN;
afterEach(() => {
  if (envBefore === undefined) delete process.env.STRATA_SCRYPT_LN;
  else process.env.STRATA_SCRYPT_LN = envBefore;
});

describe('hashPassword / verifyPassword', () => {
  it('verifies the right password and refuses a wrong one', async () => {
    const h = await hashPassword('correct horse battery staple', FAST);
    expect(await verifyPassword('correct horse battery staple', h)).toBe(true);
    expect(await verifyPassword('correct horse battery stapler', h)).toBe(false);
    expect(await verifyPassword('', h)).toBe(false);
  });

  it('embeds its parameters, a 16-byte salt and a 32-byte hash', async () => {
    const h = await hashPassword('pw', { ln: 5, r: 4, p: 2 });
    const m = FORMAT.exec(h)!;
    expect(m).not.toBeNull();
    expect(m.slice(1, 4)).toEqual(['5', '4', '2']);
    expect(Buffer.from(m[4], 'base64').length).toBe(16);
    expect(Buffer.from(m[5], 'base64').length).toBe(32);
    expect(await verifyPassword('pw', h)).toBe(true);
    // Verification follows the embedded parameters, whatever the defaults are now.
    process.env.STRATA_SCRYPT_LN = '6';
    expect(await verifyPassword('pw', h)).toBe(true);
  });

  it('salts: the same password hashes differently each time', async () => {
    const [a, b] = [await hashPassword('same', FAST), await hashPassword('same', FAST)];
    expect(a).not.toBe(b);
    expect(await verifyPassword('same', a)).toBe(true);
    expect(await verifyPassword('same', b)).toBe(true);
  });

  it('handles unicode passwords byte-exactly (no normalization)', async () => {
    const h = await hashPassword('pässwörd-密码-🙂', FAST);
    expect(await verifyPassword('pässwörd-密码-🙂', h)).toBe(true);
    expect(await verifyPassword('pa\u0308sswörd-密码-🙂', h)).toBe(false); // decomposed ä
  });

  it('answers false to a malformed or out-of-bounds encoding', async () => {
    const good = await hashPassword('pw', FAST);
    const [, , salt, hash] = good.split('$');
    const bad = [
      '',
      'pw',
      'scrypt',
      good.replace('scrypt$', 'bcrypt$'),
      good.replace('ln=4', 'ln=x'),
      good.replace('ln=4', 'ln=0'),
      good.replace('ln=4', 'ln=40'), // would need terabytes
      good.replace('r=8', 'r=0'),
      good.replace('p=1', 'p=999'),
      good.replace(',p=1', ''),
      `scrypt$ln=4,r=8,p=1$${salt}`,
      `scrypt$ln=4,r=8,p=1$$${hash}`,
      `scrypt$ln=4,r=8,p=1$${salt}$`,
      `${good}$`,
      `${good}=`,
      `${good} `,
      `scrypt$ln=4,r=8,p=1$${salt}$${hash.slice(0, 10)}`, // hash too short
      `scrypt$ln=4,r=8,p=1$${salt.slice(0, 4)}$${hash}`, // salt too short
      `scrypt$ln=4,r=8,p=1$${salt}$${hash.replace(/.$/, '-')}`, // not standard base64
      `scrypt$ln=4,r=8,p=1$${salt}$${hash.slice(0, -1)}B`, // non-canonical trailing bits
    ];
    for (const e of bad) expect(await verifyPassword('pw', e), e).toBe(false);
    expect(await verifyPassword('pw', undefined as unknown as string)).toBe(false);
  });

  it('refuses passwords over 4096 bytes with a RangeError naming password', async () => {
    const limit = 'a'.repeat(4096);
    const h = await hashPassword(limit, FAST);
    expect(await verifyPassword(limit, h)).toBe(true);
    const over = 'é'.repeat(2049); // 4098 bytes in 2049 characters
    await expect(hashPassword(over, FAST)).rejects.toThrow(RangeError);
    await expect(hashPassword(over, FAST)).rejects.toThrow(/password/);
    await expect(verifyPassword(over, h)).rejects.toThrow(/password/);
    await expect(dummyVerify(over)).rejects.toThrow(/password/);
  });

  it('refuses out-of-bounds parameters when hashing', async () => {
    for (const p of [{ ln: 0, r: 8, p: 1 }, { ln: 21, r: 8, p: 1 }, { ln: 4, r: 0, p: 1 }, { ln: 4, r: 8, p: 1.5 }]) {
      await expect(hashPassword('pw', p)).rejects.toThrow(RangeError);
    }
  });
});

describe('defaults and STRATA_SCRYPT_LN', () => {
  it('states N=2^15, r=8, p=1, 16-byte salt, 32-byte key, and hashes with them', async () => {
    delete process.env.STRATA_SCRYPT_LN;
    expect(SCRYPT_DEFAULTS).toEqual({ ln: 15, r: 8, p: 1, saltBytes: 16, keyBytes: 32 });
    expect(defaultParams()).toEqual({ ln: 15, r: 8, p: 1 });
    const h = await hashPassword('at the defaults');
    expect(h).toMatch(/^scrypt\$ln=15,r=8,p=1\$/);
    expect(await verifyPassword('at the defaults', h)).toBe(true);
    expect(needsRehash(h)).toBe(false);
  });

  it('takes log2 N from STRATA_SCRYPT_LN, and says so when it is wrong', async () => {
    process.env.STRATA_SCRYPT_LN = '6';
    const h = await hashPassword('pw');
    expect(h).toMatch(/^scrypt\$ln=6,r=8,p=1\$/);
    expect(needsRehash(h)).toBe(false);
    expect(needsRehash(h, { ln: 7, r: 8, p: 1 })).toBe(true);
    expect(needsRehash('garbage')).toBe(true);
    for (const bad of ['abc', '0', '99', '4.5']) {
      process.env.STRATA_SCRYPT_LN = bad;
      await expect(hashPassword('pw')).rejects.toThrow(/STRATA_SCRYPT_LN/);
    }
  });
});

describe('dummyVerify', () => {
  it('is always false', async () => {
    process.env.STRATA_SCRYPT_LN = '4';
    expect(await dummyVerify('anything')).toBe(false);
    expect(await dummyVerify('')).toBe(false);
  });

  it('costs about what verifying a wrong password costs', async () => {
    process.env.STRATA_SCRYPT_LN = '13';
    const h = await hashPassword('right');
    // Alternating samples, so that a machine busy with other work slows both alike.
    const real: number[] = [];
    const dummy: number[] = [];
    const timed = async (f: () => Promise<unknown>, into: number[]) => {
      const start = process.hrtime.bigint();
      await f();
      into.push(Number(process.hrtime.bigint() - start));
    };
    for (let i = 0; i < 9; i++) {
      await timed(() => verifyPassword('wrong', h), real);
      await timed(() => dummyVerify('wrong'), dummy);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ratio = median(dummy) / median(real);
    // Same work by construction; the bounds are loose so a busy machine does not fail them.
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(2);
  });
});
