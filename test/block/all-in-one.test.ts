// `npm start` serves block storage beside the other APIs: the all-in-one process runs a storage
// host of its own (STRATA_BLOCK_LOCAL, on by default) keeping volume files under its state
// directory, so a volume is created, grown and deleted with no agent to set up.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StrataClient } from '../../cli/client.js';

const MAIN = new URL('../../infra/main.ts', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the all-in-one process', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('serves VolumeService with a local storage host: a volume file is made, grown and removed', { timeout: 120_000 }, async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'strata-aio-block-'));
    child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      env: { ...process.env, STRATA_STATE_DIR: stateDir, STRATA_API_PORT: '0', STRATA_BOOTSTRAP_PASSWORD: 'aio-pw', STRATA_LOG: 'embedded' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no bootstrap within 60 s:\n${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const u = /block API at (grpcs:\/\/[\d.]+:\d+)/.exec(out)?.[1];
        if (u && out.includes('strata: bootstrapped')) {
          clearTimeout(timer);
          resolve(u);
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', onData);
      child!.on('exit', (code) => reject(new Error(`exited with ${code}:\n${out}`)));
    });
    expect(out).toMatch(/storage host local in this process/);
    const ca = readFileSync(join(stateDir, 'tls', 'ca.crt'));
    const anon = new StrataClient({ url, caCert: ca });
    const { token } = await anon.call('IssueToken', {
      password: { userName: 'admin', domainName: 'Default', password: 'aio-pw' },
      scope: { project: { name: 'admin', domainName: 'Default' } },
    });
    const admin = new StrataClient({ url, caCert: ca, token });
    const status = async (id: string, want: string) => {
      let s = '';
      for (let i = 0; i < 300 && s !== want; i++) {
        await sleep(100);
        s = (await admin.call('GetVolume', { id })).volume.status;
      }
      return s;
    };
    const v = (await admin.call('CreateVolume', { sizeGb: 1, name: 'aio' })).volume;
    expect(await status(v.id, 'available')).toBe('available');
    const files = () => readdirSync(join(stateDir, 'block', 'volumes')).filter((f) => !f.startsWith('.'));
    expect(files()).toEqual([`volume-${v.id}.qcow2`]);
    await admin.call('ExtendVolume', { id: v.id, newSizeGb: 2 });
    expect(await status(v.id, 'available')).toBe('available');
    expect((await admin.call('GetVolume', { id: v.id })).volume.sizeGb).toBe(2);
    await admin.call('DeleteVolume', { id: v.id });
    for (let i = 0; i < 300 && files().length > 0; i++) await sleep(100);
    expect(files()).toEqual([]);
    expect(existsSync(join(stateDir, 'block'))).toBe(true);
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
