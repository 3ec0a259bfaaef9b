// Fernet as the spec has it (github.com/fernet/spec), and every way a token can be bad.
import { createCipheriv, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBase64Url, decrypt, encrypt, FernetKey, InvalidTokenError, type InvalidTokenReason } from './fernet.js';

// generate.json / verify.json of the spec. Its "now" is 1985-10-26T01:20:00-07:00 (499162800,
// the timestamp bytes 00 00 00 00 1d c0 9e b0 of the token), not 2013-04-20 as once briefed.
const SPEC = {
  secret: 'cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=',
  now: Date.parse('1985-10-26T01:20:00-07:00') / 1000,
  iv: Uint8Array.from({ length: 16 }, (_, i) => i),
  src: 'hello',
  token: 'gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==',
};

function reasonOf(f: () => unknown): InvalidTokenReason | 'no error' {
  try {
    f();
    return 'no error';
  } catch (e) {
    if (e instanceof InvalidTokenError) return e.reason;
    throw e;
  }
}

/** A token assembled by hand, for the cases a correct encrypt() never produces. */
function forge(key: Buffer, fields: { version?: number; ts?: number; iv?: Buffer; ciphertext: Buffer }): string {
  const header = Buffer.alloc(25);
  header[0] = fields.version ?? 0x80;
  header.writeUInt32BE(fields.ts ?? 1, 5);
  (fields.iv ?? Buffer.alloc(16)).copy(header, 9);
  const body = Buffer.concat([header, fields.ciphertext]);
  const mac = createHmac('sha256', key.subarray(0, 16)).update(body).digest();
  return Buffer.concat([body, mac]).toString('base64url');
}

describe('the spec vector', () => {
  const key = FernetKey.fromString(SPEC.secret);

  it('carries the timestamp of the spec', () => {
    expect(SPEC.now).toBe(499162800);
    expect(decodeBase64Url(SPEC.token)!.subarray(1, 9).toString('hex')).toBe('000000001dc09eb0');
  });

  it('decrypts, padded as published and unpadded as Keystone writes tokens', () => {
    for (const token of [SPEC.token, SPEC.token.replace(/=+$/, '')]) {
      const out = decrypt([key], token);
      expect(out.plaintext.toString()).toBe(SPEC.src);
      expect(out.timestampSeconds).toBe(SPEC.now);
      expect(out.keyIndex).toBe(0);
    }
  });

  it('re-encrypts to the same token with the fixed iv and time (padding stripped)', () => {
    expect(encrypt(key, Buffer.from(SPEC.src), SPEC.now, SPEC.iv)).toBe(SPEC.token.replace(/=+$/, ''));
  });
});

describe('MultiFernet', () => {
  it('tries each key and says which index verified', () => {
    const [a, b, c] = [FernetKey.generate(), FernetKey.generate(), FernetKey.generate()];
    const token = encrypt(c, Buffer.from('x'), 10);
    expect(decrypt([a, b, c], token).keyIndex).toBe(2);
    expect(decrypt([c, a], token).keyIndex).toBe(0);
    expect(reasonOf(() => decrypt([a, b], token))).toBe('signature');
    expect(reasonOf(() => decrypt([], token))).toBe('signature');
  });

  it('round-trips empty, block-sized and large plaintexts with random ivs', () => {
    const key = FernetKey.generate();
    for (const size of [0, 1, 15, 16, 17, 200, 4096]) {
      const plaintext = Buffer.alloc(size, 7);
      const t1 = encrypt(key, plaintext, 1_700_000_000);
      expect(decrypt([key], t1).plaintext.equals(plaintext)).toBe(true);
      expect(t1).not.toBe(encrypt(key, plaintext, 1_700_000_000));
      expect(t1).not.toContain('=');
    }
  });

  it('carries timestamps beyond 32 bits', () => {
    const key = FernetKey.generate();
    expect(decrypt([key], encrypt(key, Buffer.from('x'), 2 ** 40 + 5)).timestampSeconds).toBe(2 ** 40 + 5);
  });
});

describe('a bad token', () => {
  const key = FernetKey.fromString(SPEC.secret);
  const raw = decodeBase64Url(SPEC.secret)!;

  it('with any single byte flipped is rejected (version byte: version; any other: signature)', () => {
    const bytes = decodeBase64Url(encrypt(key, Buffer.alloc(200, 1), SPEC.now))!;
    for (let i = 0; i < bytes.length; i++) {
      const flipped = Buffer.from(bytes);
      flipped[i] ^= 0x01;
      expect(reasonOf(() => decrypt([key], flipped.toString('base64url'))), `byte ${i}`).toBe(i === 0 ? 'version' : 'signature');
    }
  });

  it('made with another key is a signature failure', () => {
    expect(reasonOf(() => decrypt([FernetKey.generate()], SPEC.token))).toBe('signature');
  });

  it('that is empty, truncated, garbage or badly padded is malformed', () => {
    const unpadded = SPEC.token.replace(/=+$/, '');
    const cases = [
      '',
      'a',
      '%%%%%%%%%%%%%%%%',
      unpadded.slice(0, -1), // one char short: a length no base64 has, or bits left over
      unpadded.slice(0, -4), // 3 bytes short: not whole blocks
      unpadded.slice(0, 40), // shorter than any token
      unpadded + '=', // wrong padding length
      unpadded + '===',
      SPEC.token + '=',
      '=' + unpadded,
      unpadded.slice(0, 20) + '=' + unpadded.slice(21),
      unpadded.replace(/-/g, '+').replace(/_/g, '/'), // standard alphabet is not url-safe base64
      unpadded + ' ',
      ' ' + unpadded,
      unpadded.slice(0, 20) + '\n' + unpadded.slice(20),
      unpadded.slice(0, -1) + 'B', // same length, trailing bits not zero
    ];
    for (const t of cases) expect(reasonOf(() => decrypt([key], t)), JSON.stringify(t)).toBe('malformed');
    expect(reasonOf(() => decrypt([key], undefined as unknown as string))).toBe('malformed');
  });

  it('whose ciphertext is not whole blocks is malformed, even with a valid HMAC', () => {
    expect(reasonOf(() => decrypt([key], forge(raw, { ciphertext: Buffer.alloc(17) })))).toBe('malformed');
    expect(reasonOf(() => decrypt([key], forge(raw, { ciphertext: Buffer.alloc(0) })))).toBe('malformed');
  });

  it('with another version byte and a valid HMAC is a version failure', () => {
    expect(reasonOf(() => decrypt([key], forge(raw, { version: 0x81, ciphertext: Buffer.alloc(16) })))).toBe('version');
  });

  it('with bad PKCS7 under a valid HMAC is malformed, and the error says nothing of padding or keys', () => {
    // A block whose last byte is 0x00: never valid PKCS7.
    const cipher = createCipheriv('aes-128-cbc', raw.subarray(16), Buffer.alloc(16)).setAutoPadding(false);
    const ciphertext = Buffer.concat([cipher.update(Buffer.alloc(16, 0)), cipher.final()]);
    let error: unknown;
    try {
      decrypt([FernetKey.generate(), key], forge(raw, { ciphertext }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidTokenError);
    expect((error as InvalidTokenError).reason).toBe('malformed');
    expect((error as Error).message).not.toMatch(/pad|key|decrypt|1/i);
  });

  it('errors name the reason only', () => {
    for (const reason of ['malformed', 'signature', 'version', 'expired'] as const) {
      const e = new InvalidTokenError(reason);
      expect(e.message).toBe(`invalid token: ${{ malformed: 'malformed', signature: 'signature does not verify', version: 'unsupported version', expired: 'expired' }[reason]}`);
      expect(e.name).toBe('InvalidTokenError');
    }
  });
});

describe('FernetKey', () => {
  it('parses the key-file form, padded or not and with a trailing newline, and encodes it back padded', () => {
    expect(FernetKey.fromString(SPEC.secret).encode()).toBe(SPEC.secret);
    expect(FernetKey.fromString(SPEC.secret.slice(0, -1)).equals(FernetKey.fromString(SPEC.secret + '\n'))).toBe(true);
    const k = FernetKey.generate();
    expect(FernetKey.fromString(k.encode()).equals(k)).toBe(true);
    expect(k.equals(FernetKey.generate())).toBe(false);
  });

  it('refuses anything but 32 bytes of url-safe base64', () => {
    for (const bad of ['', 'abc', SPEC.secret.slice(0, -2), Buffer.alloc(31).toString('base64url'), Buffer.alloc(33).toString('base64url'), SPEC.secret.replace('_', '/')]) {
      expect(() => FernetKey.fromString(bad), bad).toThrow(/32 bytes/);
    }
  });

  it('never prints its material', () => {
    const k = FernetKey.fromString(SPEC.secret);
    const inspect = (k as unknown as Record<symbol, () => string>)[Symbol.for('nodejs.util.inspect.custom')]();
    const shown = [String(k), JSON.stringify({ k }), `${k}`, inspect];
    for (const s of shown) {
      expect(s).toContain('redacted');
      expect(s).not.toContain(SPEC.secret.slice(0, 10));
    }
  });

  it('refuses a bad iv or time when encrypting', () => {
    const k = FernetKey.generate();
    expect(() => encrypt(k, Buffer.from('x'), 1, new Uint8Array(8))).toThrow(RangeError);
    expect(() => encrypt(k, Buffer.from('x'), -1)).toThrow(RangeError);
    expect(() => encrypt(k, Buffer.from('x'), 1.5)).toThrow(RangeError);
  });
});
