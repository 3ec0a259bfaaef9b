// `npm start` serves compute beside identity: the all-in-one process answers ComputeService on the
// same TLS port, with the compute read models behind it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StrataClient } from '../../cli/client.js';

const MAIN = new URL('../../infra/main.ts', import.meta.url).pathname;

describe('the all-in-one process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('serves ComputeService on the identity API\'s port and boots servers on its fake hosts', { timeout: 120_000 }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'strata-aio-compute-'));
    child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { ...process.env, STRATA_STATE_DIR: stateDir, STRATA_API_PORT: '0', STRATA_BOOTSTRAP_PASSWORD: 'aio-pw', STRATA_LOG: 'embedded', STRATA_COMPUTE_FAKE_HOSTS: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no bootstrap within 60 s:\n${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const u = /compute API at (grpcs:\/\/[\d.]+:\d+)/.exec(out)?.[1];
        if (u && out.includes('strata: bootstrapped')) {
          clearTimeout(timer);
          resolve(u);
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
      child!.on('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
    });
    const ca = readFileSync(join(stateDir, 'tls', 'ca.crt'));
    const anon = new StrataClient({ url, caCert: ca });
    const { token } = await anon.call('IssueToken', {
      password: { userName: 'admin', domainName: 'Default', password: 'aio-pw' },
      scope: { project: { name: 'admin', domainName: 'Default' } },
    });
    const admin = new StrataClient({ url, caCert: ca, token });
    const f = (await admin.call('CreateFlavor', { flavor: { id: 'm1.small', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20 } })).flavor;
    expect(f).toMatchObject({ id: 'm1.small', isPublic: true });
    expect((await admin.call('ListFlavors', {})).flavors.map((x: { id: string }) => x.id)).toEqual(['m1.small']);
    expect((await admin.call('GetQuota', {})).quota.limits.instances).toBe(10);
    // The conductor and the two fake hosts run in the process: a server boots to ACTIVE.
    const created = (await admin.call('CreateServer', { name: 'aio-1', flavorId: 'm1.small', imageId: 'cirros' })).servers[0];
    let status = '';
    for (let i = 0; i < 100 && status !== 'ACTIVE'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await admin.call('GetServer', { id: created.id })).server.status;
    }
    expect(status).toBe('ACTIVE');
    expect((await admin.call('GetServer', { id: created.id })).server.host).toMatch(/^fake-000[01]$/);
    admin.close();
    anon.close();
    child.removeAllListeners('exit');
    const code = await new Promise<number | null>((resolve) => {
      child!.on('exit', resolve);
      child!.kill('SIGTERM');
    });
    expect(code).toBe(0);
    child = undefined;
  });
});
