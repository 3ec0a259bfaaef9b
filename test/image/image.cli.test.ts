// The strata CLI's image commands, run as a user runs them (a process of its own) against a test
// cloud with object storage and ImageService: create --file (create and upload in one go), list,
// show by name, download to a file (the same bytes, no temporary file left), set, a protected
// delete refused, members shared and accepted, upload into an existing image, deactivate refused
// to members, delete; help and usage errors.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../support/cli-runner.js';
import { startImageRig, type ImageRig } from '../support/image-rig.js';

describe('strata image (CLI)', () => {
  let rig: ImageRig;
  let a: Awaited<ReturnType<ImageRig['newMember']>>;
  let b: Awaited<ReturnType<ImageRig['newMember']>>;
  const cli = cliRunner('image', () => ({ url: rig.imageUrl, tls: { caCertPath: rig.tls.caCertPath } }));
  const dir = mkdtempSync(join(tmpdir(), 'strata-image-cli-'));
  const data = randomBytes(3 * 1024 * 1024 + 5);
  const file = join(dir, 'disk.raw');
  writeFileSync(file, data);
  const md5 = createHash('md5').update(data).digest('hex');

  beforeAll(async () => {
    rig = await startImageRig();
    a = await rig.newMember();
    b = await rig.newMember();
  }, 120_000);
  afterAll(async () => rig?.close(), 60_000);

  it('create --file, list, show by name, download, set, protected delete, members, upload, deactivate, delete', async () => {
    const name = `cli-${randomBytes(3).toString('hex')}`;
    const created = cli.json(await cli.strata(['--output', 'json', 'image', 'create', '--name', name, '--disk-format', 'raw', '--container-format', 'bare', '--file', file], a.token));
    expect(created).toMatchObject({ name, status: 'active', size: data.length, checksum: md5, osHashValue: createHash('sha512').update(data).digest('hex') });
    const id = created.id as string;

    expect(cli.json(await cli.strata(['--output', 'json', 'image', 'list'], a.token)).images.map((i: { id: string }) => i.id)).toContain(id);
    const table = await cli.strata(['image', 'list'], a.token);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${id}\\s+${name}\\s+active`));
    const shown = await cli.strata(['image', 'show', name], a.token);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`checksum\\s+${md5}`));

    const out = join(dir, 'out.raw');
    const got = await cli.strata(['image', 'download', name, '--file', out], a.token);
    expect(got.code, got.stderr).toBe(0);
    expect(readFileSync(out).equals(data)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['disk.raw', 'out.raw']);

    const set = cli.json(await cli.strata(['--output', 'json', 'image', 'set', id, '--protected', '--property', 'os_distro=cirros', '--tag', 'x', '--min-ram', '128'], a.token));
    expect(set).toMatchObject({ protected: true, properties: { os_distro: 'cirros' }, tags: ['x'], minRam: 128 });
    const refused = await cli.strata(['image', 'delete', id], a.token);
    expect(refused.code).toBe(8);
    expect(refused.stderr).toMatch(/protected/);
    expect((await cli.strata(['image', 'set', id, '--unprotected'], a.token)).code).toBe(0);

    // Sharing: B sees nothing until added, accepts, lists it.
    expect((await cli.strata(['image', 'show', id], b.token)).code).toBe(3);
    const added = await cli.strata(['image', 'member', 'add', id, b.projectId], a.token);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/pending/);
    expect((await cli.strata(['image', 'member', 'set', id, b.projectId, '--status', 'accepted'], a.token)).code).toBe(4);
    expect(cli.json(await cli.strata(['--output', 'json', 'image', 'member', 'set', id, b.projectId, '--status', 'accepted'], b.token))).toMatchObject({ status: 'accepted' });
    expect(cli.json(await cli.strata(['--output', 'json', 'image', 'list'], b.token)).images.map((i: { id: string }) => i.id)).toContain(id);
    expect(cli.json(await cli.strata(['--output', 'json', 'image', 'member', 'list', id], a.token)).members).toMatchObject([{ memberProjectId: b.projectId, status: 'accepted' }]);
    expect((await cli.strata(['image', 'member', 'remove', id, b.projectId], a.token)).code).toBe(0);
    expect((await cli.strata(['image', 'show', id], b.token)).code).toBe(3);

    // A queued image: nothing to download (exit 8); upload into it; members may not deactivate.
    const queued = cli.json(await cli.strata(['--output', 'json', 'image', 'create', '--name', `${name}-2`, '--disk-format', 'qcow2', '--container-format', 'bare'], a.token));
    expect(queued.status).toBe('queued');
    const nothing = await cli.strata(['image', 'download', queued.id, '--file', join(dir, 'none')], a.token);
    expect(nothing.code).toBe(8);
    expect(nothing.stderr).toMatch(/queued/);
    expect(readdirSync(dir).sort()).toEqual(['disk.raw', 'out.raw']);
    expect(cli.json(await cli.strata(['--output', 'json', 'image', 'upload', queued.id, '--file', file], a.token))).toMatchObject({ status: 'active', size: data.length, checksum: md5 });
    expect((await cli.strata(['image', 'deactivate', queued.id], a.token)).code).toBe(4);

    const deleted = await cli.strata(['image', 'delete', id], a.token);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/deleted/);
    expect((await cli.strata(['image', 'show', id], a.token)).code).toBe(3);
  });

  it('help for each verb, and usage errors before any call', async () => {
    const help = await cli.strata(['image', '--help'], a.token);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/strata image create/);
    expect(help.stdout).toMatch(/strata image member set IMAGE PROJECT --status/);
    for (const verb of ['create', 'upload', 'download', 'list', 'show', 'set', 'deactivate', 'reactivate', 'delete']) {
      const r = await cli.strata(['image', verb, '--help'], a.token);
      expect(r.code, verb).toBe(0);
      expect(r.stdout, verb).toMatch(/Usage: strata image/);
    }
    expect((await cli.strata(['image', 'member', 'add', '--help'], a.token)).stdout).toMatch(/image member add IMAGE PROJECT/);
    const noFile = await cli.strata(['image', 'upload', '00000000-0000-4000-8000-000000000000'], a.token);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/--file/);
    const noFormats = await cli.strata(['image', 'create', '--file', file], a.token);
    expect(noFormats.code).toBe(2);
    expect(noFormats.stderr).toMatch(/--disk-format/);
    expect((await cli.strata(['image', 'frobnicate'], a.token)).code).toBe(2);
  }, 60_000);
});
