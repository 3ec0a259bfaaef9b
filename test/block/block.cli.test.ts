// The strata CLI's block storage commands (cli/block.ts). Without a cloud: the help names every
// command with its flags and defaults, and bad flags exit 2 naming the flag, before any call (the
// CLI points at an address nothing listens on, so a call would exit 9 instead).
import { describe, expect, it } from 'vitest';
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
