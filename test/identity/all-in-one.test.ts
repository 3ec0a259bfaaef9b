// `npm start` serves identity: the all-in-one process on a fresh state directory bootstraps
// itself (STRATA_BOOTSTRAP_PASSWORD), answers over TLS with its own CA, keeps what it was told
// across a restart, and stops cleanly on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StrataClient } from '../../cli/client.js';

const MAIN = new URL('../../infra/main.ts', import.meta.url).pathname;

function start(stateDir: string): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, STRATA_STATE_DIR: stateDir, STRATA_API_PORT: '0', STRATA_BOOTSTRAP_PASSWORD: 'all-in-one-pw', STRATA_LOG: 'embedded' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no bootstrap within 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const url = /identity API at (grpcs:\/\/[\d.]+:\d+)/.exec(out)?.[1];
      if (url && out.includes('strata: bootstrapped')) {
        clearTimeout(timer);
        resolve({ child, url, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
  });
}

const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });

describe('the all-in-one process', () => {
  let running: ChildProcess | undefined;
  afterEach(() => {
    running?.kill('SIGKILL');
  });

  it('serves identity over TLS, keeps its state across a restart, and stops on SIGTERM', { timeout: 120_000 }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'strata-aio-'));
    const first = await start(stateDir);
    running = first.child;
    const ca = readFileSync(join(stateDir, 'tls', 'ca.crt'));
    const anon = new StrataClient({ url: first.url, caCert: ca });
    const login = () =>
      anon.call('IssueToken', { password: { userName: 'admin', domainName: 'Default', password: 'all-in-one-pw' }, scope: { project: { name: 'admin', domainName: 'Default' } } });
    const { token } = await login();
    const admin = new StrataClient({ url: first.url, caCert: ca, token });
    const project = (await admin.call('CreateProject', { project: { name: 'survivor', domainId: 'default' } })).project;
    admin.close();
    anon.close();
    expect(await stop(first.child)).toBe(0);

    const second = await start(stateDir);
    running = second.child;
    const again = new StrataClient({ url: second.url, caCert: readFileSync(join(stateDir, 'tls', 'ca.crt')), token });
    // The token issued before the restart still validates: the keys are on disk.
    expect((await again.call('GetProject', { id: project.id })).project.name).toBe('survivor');
    again.close();
    expect(await stop(second.child)).toBe(0);
    running = undefined;
  });
});
