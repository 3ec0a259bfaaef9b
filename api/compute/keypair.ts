// Key pairs as Nova makes them: an ed25519 key generated with node:crypto, its public half in
// OpenSSH's one-line form and its private half in OpenSSH's own format (what `ssh-keygen -t
// ed25519` writes, unencrypted), and Nova's fingerprints: MD5 of the key blob for SSH keys,
// SHA-1 of the DER certificate for x509, colon-separated hex.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** An SSH wire string: length, then bytes. */
const sshString = (s: Buffer | string) => {
  const b = typeof s === 'string' ? Buffer.from(s) : s;
  return Buffer.concat([u32(b.length), b]);
};

export interface GeneratedKeypair {
  publicKey: string;
  privateKey: string;
}

/** A new ed25519 key pair, with `comment` at the end of the public key and inside the private one. */
export function generateEd25519(comment: string): GeneratedKeypair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // SPKI and PKCS#8 DER of ed25519 end with the raw 32-byte public key and seed.
  const pub = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
  const seed = privateKey.export({ type: 'pkcs8', format: 'der' }).subarray(-32);
  const blob = Buffer.concat([sshString('ssh-ed25519'), sshString(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, sshString('ssh-ed25519'), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'), // cipher
    sshString('none'), // kdf
    sshString(''), // kdf options
    u32(1),
    sshString(blob),
    sshString(secret),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return {
    publicKey: `ssh-ed25519 ${blob.toString('base64')} ${comment}`.trim(),
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join('\n')}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}

const colons = (hex: string) => hex.match(/../g)!.join(':');

/** Nova's fingerprint of an OpenSSH public key: MD5 of the base64-decoded key blob. */
export function sshFingerprint(publicKey: string): string {
  const blob = publicKey.trim().split(/\s+/)[1] ?? '';
  return colons(createHash('md5').update(Buffer.from(blob, 'base64')).digest('hex'));
}

/** Nova's fingerprint of an x509 certificate: SHA-1 of its DER. */
export function x509Fingerprint(pem: string): string {
  const b64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return colons(createHash('sha1').update(Buffer.from(b64, 'base64')).digest('hex'));
}
