// The strata CLI's compute commands end to end against a real cloud (this process hosts the
// deciders, the conductor and two fake-driver hosts): an admin makes a flavor and sees the hosts,
// a member makes a key pair and boots a server with --wait until ACTIVE, stops it with --wait,
// is refused an illegal action (exit 8, the state named) and an admin-only one (exit 4), hits the
// quota (exit 10, the quota named), and deletes the server.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startComputeCloud, type ComputeTestCloud, type Member } from './compute-cloud.js';

const CLI = new URL('../../cli/strata.mjs', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the strata CLI for compute', () => {
  let t: ComputeTestCloud;
  let m: Member;
  let config: string;
  // Async on purpose: this process hosts the deciders, conductor and agents that answer the CLI.
  const strata = (args: string[], token: string): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        { env: { PATH: process.env.PATH ?? '', HOME: config, XDG_CONFIG_HOME: config, STRATA_URL: t.url, STRATA_CA_CERT: t.tls.caCertPath, STRATA_TOKEN: token }, timeout: 90_000 },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = (r: Run) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };
  let adminToken: string;

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 2 });
    config = mkdtempSync(join(tmpdir(), 'strata-cli-compute-'));
    adminToken = await t.adminToken();
    m = await t.member();
  }, 120_000);
  afterAll(async () => t?.close());

  it('takes a member from a flavor to a running server and back, with clear refusals', { timeout: 240_000 }, async () => {
    const admin = (args: string[]) => strata(args, adminToken);
    const member = (args: string[]) => strata(args, m.token);

    const flavor = json(await admin(['--output', 'json', 'flavor', 'create', '--name', 'cli.small', '--vcpus', '1', '--ram', '512', '--disk', '1', '--property', 'hw:cpu_policy=shared']));
    expect(flavor).toMatchObject({ name: 'cli.small', isPublic: true, extraSpecs: { 'hw:cpu_policy': 'shared' } });
    const hosts = await admin(['host', 'list']);
    expect(hosts.code, hosts.stderr).toBe(0);
    expect(hosts.stdout).toMatch(/^id\s+zone\s+state/m);
    expect(hosts.stdout).toContain('compute-1');
    expect((await member(['host', 'list'])).code).toBe(4);
    expect((await member(['flavor', 'list'])).stdout).toContain('cli.small');

    const keyFile = join(config, 'id_cli');
    const key = await member(['keypair', 'create', 'cli-key', '--private-key', keyFile]);
    expect(key.code, key.stderr).toBe(0);
    expect(key.stdout).toContain(`private key written to ${keyFile}`);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(keyFile, 'utf8')).toContain('BEGIN OPENSSH PRIVATE KEY');

    // Boot by flavor name, and wait until ACTIVE.
    const created = json(await member(['--output', 'json', 'server', 'create', '--name', 'cli-vm', '--flavor', 'cli.small', '--image', 'cirros', '--key-name', 'cli-key', '--wait']));
    expect(created).toMatchObject({ name: 'cli-vm', status: 'ACTIVE', keyName: 'cli-key' });
    const list = await member(['server', 'list']);
    expect(list.stdout).toMatch(/^id\s+name\s+status/m);
    expect(list.stdout).toMatch(/cli-vm\s+ACTIVE/);
    const show = await member(['server', 'show', created.id]);
    expect(show.stdout).toMatch(/allowed_actions\s+.*stop/);

    const illegal = await member(['server', 'start', created.id]);
    expect(illegal.code).toBe(8);
    expect(illegal.stderr).toContain(`Cannot 'start' instance ${created.id} while it is in vm_state active (state active)`);
    const adminOnly = await member(['server', 'migrate', created.id]);
    expect(adminOnly.code).toBe(4);
    expect(adminOnly.stderr).toContain('compute:migrate_server');

    const stopped = await member(['server', 'stop', created.id, '--wait']);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/stop .*: done .*status SHUTOFF/);
    const actions = json(await member(['--output', 'json', 'server', 'actions', created.id]));
    expect(actions.operations.map((o: { action: string }) => o.action)).toEqual(['stop', 'create']);
    const op = json(await member(['--output', 'json', 'operation', 'show', actions.operations[0].name]));
    expect(op).toMatchObject({ action: 'stop', done: true, result: 'success' });

    const quota = await admin(['quota', 'set', m.project.id, '--instances', '1']);
    expect(quota.code, quota.stderr).toBe(0);
    expect(quota.stdout).toMatch(/instances\s+1\s+1/);
    const over = await member(['server', 'create', '--name', 'one-too-many', '--flavor', 'cli.small', '--image', 'cirros']);
    expect(over.code).toBe(10);
    expect(over.stderr).toContain('Quota exceeded for instances');

    const deleted = await member(['server', 'delete', created.id, '--wait']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain('status DELETED');
    expect((await member(['server', 'show', created.id])).code).toBe(3);
  });

  it('explains itself: help lists the actions from the API table, usage errors exit 2', async () => {
    const help = await strata(['server', '--help'], '');
    expect(help.code).toBe(0);
    for (const verb of ['create', 'live-migrate', 'shelve-offload', 'reset-state', 'confirm-resize', '--wait']) expect(help.stdout).toContain(verb);
    const top = await strata(['--help'], '');
    expect(top.stdout).toContain('server-group');
    expect(top.stdout).toContain('10 quota exceeded');
    const bad = await strata(['server', 'frobnicate'], m.token);
    expect(bad.code).toBe(2);
    const noFlavor = await strata(['server', 'create', '--name', 'x'], m.token);
    expect(noFlavor.code).toBe(2);
    expect(noFlavor.stderr).toContain('--flavor');
  });
});
