// TLS material for the API: a private CA and a server certificate it signs, made with the
// openssl command on first start and reused after. Clients trust the CA (ca.crt).
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';

const run = promisify(execFile);

export interface TlsMaterial {
  caCertPath: string;
  certPath: string;
  keyPath: string;
  caCert: Buffer;
  cert: Buffer;
  key: Buffer;
}

export async function ensureTlsMaterial(dir: string, hosts: string[] = ['localhost', '127.0.0.1']): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => join(dir, f);
  const paths = { caCertPath: p('ca.crt'), certPath: p('server.crt'), keyPath: p('server.key') };
  if (!existsSync(paths.caCertPath) || !existsSync(paths.certPath) || !existsSync(paths.keyPath)) {
    const openssl = async (args: string[]) => {
      try {
        await run('openssl', args, { cwd: dir });
      } catch (e) {
        throw new Error(`openssl ${args[0]} failed (is the openssl package installed?): ${(e as { stderr?: string }).stderr ?? (e as Error).message}`);
      }
    };
    const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    await openssl(['req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '3650', '-subj', '/CN=Strata local CA', '-out', 'ca.crt']);
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key']);
    await openssl(['req', '-new', '-key', 'server.key', '-subj', `/CN=${hosts[0]}`, '-out', 'server.csr']);
    writeFileSync(p('server.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
    await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '825', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt']);
    for (const f of ['ca.key', 'server.key']) chmodSync(p(f), 0o600);
  }
  return {
    ...paths,
    caCert: readFileSync(paths.caCertPath),
    cert: readFileSync(paths.certPath),
    key: readFileSync(paths.keyPath),
  };
}

export const serverCredentials = (m: TlsMaterial | 'insecure'): ServerCredentials =>
  m === 'insecure' ? ServerCredentials.createInsecure() : ServerCredentials.createSsl(null, [{ private_key: m.key, cert_chain: m.cert }], false);

export const channelCredentials = (caCert: Buffer): ChannelCredentials => credentials.createSsl(caCert);
