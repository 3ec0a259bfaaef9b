// The strata CLI's block storage commands (cli/block.ts). Without a cloud: the help names every
// command with its flags and defaults, and bad flags exit 2 naming the flag, before any call (the
// CLI points at an address nothing listens on, so a call would exit 9 instead). Against a real
// cloud (test/support/block-rig.ts: the block API and conductor, a block agent on real files, a
// fake-driver compute host): an admin makes a volume type; a member makes a volume of it with
// --wait until available, shows, lists and changes it (by name), extends it with --wait, is
// refused an extend while it is in error (exit 8, the status named), snapshots it and deletes the
// snapshot, backs it up with --wait and restores the backup into a new volume, attaches it to a
// server and detaches it, sees the block quotas, and deletes the volumes with --wait.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBlockRig, type BlockRig } from '../support/block-rig.js';
import { cliRunner } from '../support/cli-runner.js';

describe('the strata CLI for block storage, without a cloud', () => {
  // Plain gRPC to the discard port: no CA needed, and any RPC would fail as unreachable (exit 9).
  const { strata } = cliRunner('block-offline', () => ({ url: 'grpc://127.0.0.1:9', tls: { caCertPath: '/nonexistent' } }));

  it('lists the block commands in the top help and explains each', { timeout: 120_000 }, async () => {
    const top = await strata(['--help'], '');
    expect(top.code).toBe(0);
    for (const c of ['volume create|list|show|set|delete|extend|retype|reset-state', 'volume-type create', 'snapshot create', 'backup create|list|show|delete|restore', 'server add volume', 'storage-host list']) {
      expect(top.stdout).toContain(c);
    }
    const volume = await strata(['volume', '--help'], '');
    expect(volume.code).toBe(0);
    expect(volume.stdout).toContain('strata volume create --size GIB [--name N]');
    expect(volume.stdout).toContain('strata volume extend VOLUME --size GIB');
    expect(volume.stdout).toContain('strata volume reset-state VOLUME --state STATUS');
    expect(volume.stdout).toContain('(default 600)');
    const create = await strata(['volume', 'create', '--help'], '');
    expect(create.code).toBe(0);
    expect(create.stdout).toBe(volume.stdout);
    expect((await strata(['volume-type', '--help'], '')).stdout).toContain('strata volume-type create NAME [--description D] [--private] [--property K=V]...');
    expect((await strata(['snapshot', '--help'], '')).stdout).toContain('strata snapshot delete SNAPSHOT [--force] [--wait]');
    expect((await strata(['backup', '--help'], '')).stdout).toContain('strata backup restore BACKUP [--volume VOLUME] [--name N]');
    expect((await strata(['storage-host', '--help'], '')).stdout).toContain('Usage: strata storage-host list');
    const server = await strata(['server', '--help'], '');
    expect(server.stdout).toContain('strata server add volume SERVER VOLUME [--delete-on-termination] [--wait]');
    expect(server.stdout).toContain('strata server volume list SERVER');
    expect(server.stdout).toContain('strata server add port SERVER PORT'); // the interface commands are still there
    const quota = await strata(['quota', 'set', '--help'], '');
    expect(quota.stdout).toContain('[--volumes N] [--gigabytes N] [--snapshots N] [--backups N] [--backup-gigabytes N]');
  });

  it('refuses bad flags with exit 2, naming the flag, before calling the cloud', { timeout: 120_000 }, async () => {
    const refused = async (args: string[], message: string) => {
      const r = await strata(args, 'token');
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(message);
    };
    await refused(['volume', 'create', '--sise', '3'], "Unknown option '--sise'");
    await refused(['volume', 'create', '--name', 'x'], '--size is required');
    await refused(['volume', 'create', '--size', 'two'], '--size takes an integer, got "two"');
    await refused(['volume', 'create', '--size', '0'], '--size takes a size in GiB of at least 1, got "0"');
    await refused(['volume', 'create', '--size', '1', '--snapshot', 's', '--backup', 'b'], '--snapshot and --backup exclude each other');
    await refused(['volume', 'create', '--size', '1', '--property', 'novalue'], '--property takes KEY=VALUE, got "novalue"');
    await refused(['volume', 'create', 'big', '--size', '1'], 'unexpected argument big');
    await refused(['volume', 'create', '--size', '1', '--wait', '--timeout', 'soon'], '--timeout takes an integer, got "soon"');
    await refused(['volume', 'set', 'v'], 'nothing to change: --name, --description, --property, --no-property, --bootable or --non-bootable');
    await refused(['volume', 'set', 'v', '--bootable', '--non-bootable'], '--bootable and --non-bootable exclude each other');
    await refused(['volume', 'extend', 'v'], '--size is required');
    await refused(['volume', 'retype', 'v'], '--type is required');
    await refused(['volume', 'reset-state', 'v'], '--state is required');
    await refused(['volume', 'show'], 'name the volume');
    await refused(['volume', 'frobnicate'], 'unknown: frobnicate');
    await refused(['volume-type', 'set', 't', '--public', '--private'], '--public and --private exclude each other');
    await refused(['snapshot', 'create', '--name', 's'], '--volume is required');
    await refused(['backup', 'create'], '--volume is required');
    await refused(['backup', 'restore', 'b', '--volume', 'v', '--name', 'n'], '--volume and --name exclude each other');
    await refused(['server', 'add', 'volume', 'srv'], 'name the volume');
    await refused(['server', 'volume', 'show', 'srv'], 'unknown: show');
    await refused(['quota', 'set', 'p', '--backup-gigabytes', 'lots'], '--backup-gigabytes takes an integer, got "lots"');
  });
});

describe('the strata CLI for block storage, against a cloud', () => {
  let rig: BlockRig;
  let adminToken: string;
  let memberToken: string;
  const { strata, json } = cliRunner('block', () => rig);

  beforeAll(async () => {
    rig = await startBlockRig({ computeHosts: 1 });
    adminToken = await rig.adminToken();
    memberToken = rig.member.token!;
  }, 180_000);
  afterAll(async () => rig?.close(), 60_000);

  it('takes a member from a volume type to a volume, its snapshot and backup, a server and back', { timeout: 600_000 }, async () => {
    const admin = (args: string[]) => strata(args, adminToken);
    const member = (args: string[]) => strata(args, memberToken);
    const ok = (r: { code: number; stderr: string; stdout: string }) => {
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };

    // Volume types: the admin's; members see the public ones.
    const type = json(await admin(['--output', 'json', 'volume-type', 'create', 'cli-gold', '--description', 'fast disks', '--property', 'volume_backend_name=local']));
    expect(type).toMatchObject({ name: 'cli-gold', description: 'fast disks', isPublic: true, backend: 'local', extraSpecs: { volume_backend_name: 'local' } });
    expect((await member(['volume-type', 'create', 'mine'])).code).toBe(4);
    expect(ok(await member(['volume-type', 'list']))).toMatch(/cli-gold\s+true\s+local\s+fast disks/);
    expect(ok(await member(['volume-type', 'show', 'cli-gold']))).toMatch(new RegExp(`id\\s+${type.id}`));

    // Create with --wait: the volume is available when the command returns.
    const vol = json(await member(['--output', 'json', 'volume', 'create', '--size', '1', '--name', 'cli-vol', '--type', 'cli-gold', '--property', 'team=blue', '--wait']));
    expect(vol).toMatchObject({ name: 'cli-vol', status: 'available', sizeGb: 1, volumeTypeName: 'cli-gold', metadata: { team: 'blue' }, bootable: false });
    const shown = ok(await member(['volume', 'show', 'cli-vol']));
    expect(shown).toMatch(new RegExp(`^id\\s+${vol.id}$`, 'm'));
    expect(shown).toMatch(/^status\s+available$/m);
    expect(shown).toMatch(/^size_gb\s+1$/m);
    expect(shown).toMatch(/^properties\s+team=blue$/m);
    expect(ok(await member(['volume', 'list']))).toMatch(/cli-vol\s+available\s+1\s+cli-gold\s+false/);
    expect(ok(await member(['volume', 'list', '--status', 'error']))).toBe('(none)\n');
    // A volume its host fails to make: --wait exits 1 naming the status and the host's reason.
    const failed = await member(['volume', 'create', '--size', '1', '--name', 'cli-broken', '--image', 'no-such-image', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^strata: volume \S+ went to status error: .*image no-such-image was not found/m);
    expect(failed.stdout).toMatch(/^status\s+error$/m);
    expect(ok(await member(['volume', 'delete', 'cli-broken', '--wait']))).toMatch(/^volume \S+ deleted$/m);

    // set: by name; --property adds to the properties the volume has.
    const set = json(await member(['--output', 'json', 'volume', 'set', 'cli-vol', '--description', 'data', '--property', 'tier=2', '--bootable']));
    expect(set).toMatchObject({ id: vol.id, description: 'data', metadata: { team: 'blue', tier: '2' }, bootable: true });

    // extend --wait: back to available with the new size.
    const extended = json(await member(['--output', 'json', 'volume', 'extend', 'cli-vol', '--size', '2', '--wait']));
    expect(extended).toMatchObject({ id: vol.id, status: 'available', sizeGb: 2 });

    // An illegal transition: extend a volume an admin has set to error.
    expect(json(await admin(['--output', 'json', 'volume', 'reset-state', vol.id, '--state', 'error'])).status).toBe('error');
    const illegal = await member(['volume', 'extend', 'cli-vol', '--size', '3']);
    expect(illegal.code).toBe(8);
    expect(illegal.stderr).toContain(`volume ${vol.id} is error`);
    expect(illegal.stderr).toContain('(state error)');
    expect((await member(['volume', 'reset-state', vol.id, '--state', 'available'])).code).toBe(4);
    expect(json(await admin(['--output', 'json', 'volume', 'reset-state', vol.id, '--state', 'available'])).status).toBe('available');

    // A snapshot, made and deleted with --wait.
    const snap = json(await member(['--output', 'json', 'snapshot', 'create', '--volume', 'cli-vol', '--name', 'cli-snap', '--wait']));
    expect(snap).toMatchObject({ volumeId: vol.id, name: 'cli-snap', status: 'available', sizeGb: 2 });
    expect(ok(await member(['snapshot', 'list', '--volume', 'cli-vol']))).toMatch(new RegExp(`${snap.id}\\s+cli-snap\\s+${vol.id}\\s+available\\s+2`));
    expect(ok(await member(['snapshot', 'delete', 'cli-snap', '--wait']))).toContain(`snapshot ${snap.id} deleted`);
    expect((await member(['snapshot', 'show', snap.id])).code).toBe(3);

    // A backup with --wait, restored with --wait into a new volume.
    const backup = json(await member(['--output', 'json', 'backup', 'create', '--volume', 'cli-vol', '--name', 'cli-bak', '--wait']));
    expect(backup).toMatchObject({ volumeId: vol.id, name: 'cli-bak', status: 'available', sizeGb: 2, checksum: expect.stringMatching(/^\S{16,}$/) });
    const restored = json(await member(['--output', 'json', 'backup', 'restore', 'cli-bak', '--name', 'cli-restored', '--wait']));
    expect(restored.backup).toMatchObject({ id: backup.id, status: 'available' });
    expect(restored.volume).toMatchObject({ name: 'cli-restored', status: 'available', sizeGb: 2 });
    expect(restored.volume.id).not.toBe(vol.id);

    // Attached to a server and detached, waiting for each.
    const server = json(await member(['--output', 'json', 'server', 'create', '--name', 'cli-vm', '--flavor', rig.flavorId, '--image', 'cirros', '--nic', 'none', '--wait']));
    expect(server.status).toBe('ACTIVE');
    expect(ok(await member(['server', 'add', 'volume', server.id, 'cli-vol', '--wait']))).toMatch(new RegExp(`volume ${vol.id} on server ${server.id}: attached \\(/dev/vd[b-z]\\)`));
    expect(ok(await member(['server', 'volume', 'list', server.id]))).toMatch(new RegExp(`${vol.id}\\s+/dev/vd[b-z]\\s+attached\\s+rw\\s+false`));
    expect(ok(await member(['volume', 'show', 'cli-vol']))).toMatch(/^status\s+in-use$/m);
    const inUse = await member(['volume', 'delete', 'cli-vol']);
    expect(inUse.code).toBe(8);
    expect(inUse.stderr).toContain('in-use');
    expect(ok(await member(['server', 'remove', 'volume', server.id, 'cli-vol', '--wait']))).toContain(`volume ${vol.id} off server ${server.id}: detached`);
    expect(ok(await member(['server', 'volume', 'list', server.id]))).toBe('(none)\n');
    expect(ok(await member(['volume', 'show', 'cli-vol']))).toMatch(/^status\s+available$/m);

    // The block quotas beside compute's and network's.
    const quota = ok(await member(['quota', 'show']));
    expect(quota).toMatch(/^block\s+volumes\s+-?\d+\s+2$/m);
    expect(quota).toMatch(/^block\s+gigabytes\s+-?\d+\s+4$/m);
    expect(quota).toMatch(/^compute\s+instances/m);
    const hosts = await admin(['storage-host', 'list']);
    expect(ok(hosts)).toMatch(/^host\s+backend\s+zone\s+total_gb\s+free_gb\s+allocated_gb\s+volumes$/m);
    expect(hosts.stdout).toMatch(new RegExp(`${rig.storage[0].hostId}\\s+local\\s+nova\\s+100`));
    expect((await member(['storage-host', 'list'])).code).toBe(4);

    // A bad flag against the cloud is still a usage error naming it.
    const bad = await member(['volume', 'delete', 'cli-vol', '--cascde']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Unknown option '--cascde'");

    // Deletes with --wait return once the volume, and the backup, are gone.
    expect(ok(await member(['backup', 'delete', 'cli-bak', '--wait']))).toContain(`backup ${backup.id} deleted`);
    expect(ok(await member(['volume', 'delete', 'cli-restored', '--wait']))).toContain(`volume ${restored.volume.id} deleted`);
    expect(ok(await member(['volume', 'delete', 'cli-vol', '--wait']))).toContain(`volume ${vol.id} deleted`);
    const gone = await member(['volume', 'show', vol.id]);
    expect(gone.code).toBe(3);
    expect(ok(await member(['volume', 'list']))).toBe('(none)\n');
  });
});
