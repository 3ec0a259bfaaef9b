// Issue 3 acceptance d: the strata CLI end to end against a real cloud: bootstrap, login as
// admin, create a project and a user, assign member, login as that user, list what the user may
// see, and fail clearly (message and exit code) on what it may not.
import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, startTestCloud, type TestCloud } from './cloud.js';

const CLI = new URL('../../cli/strata.mjs', import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describe('the strata CLI', () => {
  let t: TestCloud;
  let config: string;
  // Async on purpose: this process hosts the deciders that answer the CLI's bootstrap commands.
  const strata = (args: string[], extraEnv: Record<string, string> = {}): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: config,
            XDG_CONFIG_HOME: config,
            STRATA_LOG: 'embedded',
            STRATA_LOG_PATH: t.logPath,
            STRATA_URL: t.url,
            STRATA_CA_CERT: t.tls.caCertPath,
            ...extraEnv,
          },
          timeout: 60_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const json = (r: Run) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  beforeAll(async () => {
    t = await startTestCloud();
    config = mkdtempSync(join(tmpdir(), 'strata-cli-'));
  }, 120_000);
  afterAll(async () => t?.close());

  it('takes an operator from bootstrap to a member who sees only their project', { timeout: 180_000 }, async () => {
    // Bootstrap again through the CLI: idempotent, same ids.
    const boot = json(await strata(['--output', 'json', 'bootstrap', '--password', ADMIN_PASSWORD]));
    expect(boot.admin_project).toBe(t.boot.adminProjectId);

    const login = await strata(['login', '--user', 'admin', '--password', ADMIN_PASSWORD, '--project', 'admin']);
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toContain('admin');
    expect(statSync(join(config, 'strata', 'credentials.json')).mode & 0o777).toBe(0o600);

    const project = json(await strata(['--output', 'json', 'project', 'create', '--name', 'cli-proj', '--domain', 'default', '--description', 'made by the CLI']));
    const user = json(await strata(['--output', 'json', 'user', 'create', '--name', 'cli-user', '--domain', 'default', '--password', 'cli-pw', '--email', 'cli@example.org']));
    const grant = json(await strata(['--output', 'json', 'role', 'assignment', 'create', '--user', user.id, '--project', project.id, '--role', 'member']));
    expect(grant.roleId).toBeTruthy();
    const table = await strata(['project', 'list']);
    expect(table.stdout).toMatch(/^id\s+name/m);
    expect(table.stdout).toContain('cli-proj');

    const asUser = await strata(['login', '--user', 'cli-user', '--password', 'cli-pw', '--project', 'cli-proj']);
    expect(asUser.code, asUser.stderr).toBe(0);
    const visible = json(await strata(['--output', 'json', 'project', 'list']));
    expect(visible.projects.map((p: { id: string }) => p.id)).toEqual([project.id]);
    const me = json(await strata(['--output', 'json', 'token', 'show']));
    expect(me.roles).toEqual(['member', 'reader']);
    expect(json(await strata(['--output', 'json', 'role', 'list'])).roles.map((r: { name: string }) => r.name)).toContain('member');

    const denied = await strata(['project', 'create', '--name', 'nope', '--domain', 'default']);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('identity:create_project');
    const hidden = await strata(['project', 'show', t.boot.adminProjectId]);
    expect(hidden.code).toBe(4);
    expect((await strata(['user', 'list'])).code).toBe(4);
    const badPassword = await strata(['login', '--user', 'cli-user', '--password', 'wrong']);
    expect(badPassword.code).toBe(5);
    expect(badPassword.stderr).toContain('invalid credentials');

    const out = await strata(['logout']);
    expect(out.code, out.stderr).toBe(0);
    const anonymous = await strata(['project', 'list']);
    expect(anonymous.code).toBe(5);
    expect(anonymous.stderr).toContain('strata login');
  });

  it('explains usage with exit code 2, and answers --help with 0', async () => {
    const bad = await strata(['project', 'frobnicate']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('strata project create');
    const unknown = await strata(['project', 'create', '--colour', 'red']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--colour');
    const help = await strata(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes');
    const sub = await strata(['user', 'create', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--password');
  });

  it('names the field of bad input with exit code 6', async () => {
    expect((await strata(['login', '--user', 'admin', '--password', ADMIN_PASSWORD, '--project', 'admin'])).code).toBe(0);
    const r = await strata(['endpoint', 'create', '--service', 'x', '--region', 'RegionOne', '--interface', 'sideways', '--url', 'https://x']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('interface');
  });
});
