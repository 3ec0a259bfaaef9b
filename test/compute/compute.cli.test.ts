// The strata CLI's compute commands end to end against a real cloud (this process hosts the
// deciders, the conductor and two fake-driver hosts): an admin makes a flavor and sees the hosts,
// a member makes a key pair and boots a server with --wait until ACTIVE, stops it with --wait,
// is refused an illegal action (exit 8, the state named) and an admin-only one (exit 4), hits the
// quota (exit 10, the quota named), and deletes the server.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../support/cli-runner.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from './compute-cloud.js';



describe('the strata CLI for compute', () => {
  let t: ComputeTestCloud;
  let m: Member;
  const { strata, json, config } = cliRunner('compute', () => t);
  let adminToken: string;

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 2 });
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

    const quota = await admin(['quota', 'set', m.project.id, '--instances', '1', '--ports', '3']);
    expect(quota.code, quota.stderr).toBe(0);
    expect(quota.stdout).toMatch(/compute\s+instances\s+1\s+1/);
    expect(quota.stdout).toMatch(/network\s+port\s+3\s+0/);
    expect(json(await member(['--output', 'json', 'quota', 'show']))).toMatchObject({ limits: { instances: 1 }, network: { limits: { port: 3 } } });
    const over = await member(['server', 'create', '--name', 'one-too-many', '--flavor', 'cli.small', '--image', 'cirros']);
    expect(over.code).toBe(10);
    expect(over.stderr).toContain('Quota exceeded for instances');

    const deleted = await member(['server', 'delete', created.id, '--wait']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toContain('status DELETED');
    expect((await member(['server', 'show', created.id])).code).toBe(3);
  });

  it('boots on networks and adds and removes ports and networks (os-interface)', { timeout: 240_000 }, async () => {
    const member = (args: string[]) => strata(args, m.token);
    const admin = (args: string[]) => strata(args, adminToken);
    const n = await t.member();
    const alice = (args: string[]) => strata(args, n.token);
    expect((await admin(['flavor', 'create', '--name', 'cli.net', '--vcpus', '1', '--ram', '256', '--disk', '1'])).code).toBe(0);
    for (const args of [['network', 'create', '--name', 'front'], ['subnet', 'create', '--network', 'front', '--subnet-range', '10.61.0.0/24', '--name', 'front-v4'], ['network', 'create', '--name', 'back'], ['subnet', 'create', '--network', 'back', '--subnet-range', '10.62.0.0/24']]) {
      const r = await alice(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const mine = json(await alice(['--output', 'json', 'port', 'create', '--network', 'back', '--name', 'mine']));

    // Two networks: none is "the" network of the project, so --nic auto is refused (exit 8); --network names one.
    const ambiguous = await alice(['server', 'create', '--name', 'x', '--flavor', 'cli.net', '--image', 'cirros', '--nic', 'auto']);
    expect(ambiguous.code).toBe(8);
    expect(ambiguous.stderr).toContain('Multiple possible networks found');
    const vm = json(await alice(['--output', 'json', 'server', 'create', '--name', 'net-vm', '--flavor', 'cli.net', '--image', 'cirros', '--nic', 'net-id=front,v4-fixed-ip=10.61.0.20', '--wait']));
    expect(vm).toMatchObject({ status: 'ACTIVE', interfaces: [{ state: 'attached', fixedIps: [{ ipAddress: '10.61.0.20' }] }] });
    const shown = await alice(['server', 'show', vm.id]);
    expect(shown.stdout).toMatch(/interfaces\s+.*10\.61\.0\.20 \(attached\)/);

    const addNet = await alice(['server', 'add', 'network', vm.id, 'back', '--wait']);
    expect(addNet.code, addNet.stderr).toBe(0);
    expect(addNet.stdout).toMatch(/add network .*: done/);
    const addPort = await alice(['server', 'add', 'port', vm.id, 'mine', '--wait']);
    expect(addPort.code, addPort.stderr).toBe(0);
    const inUse = await alice(['server', 'add', 'port', vm.id, 'mine']);
    expect(inUse.code).toBe(8);
    expect(inUse.stderr).toContain(`Port ${mine.id} is still in use.`);
    let ifaces = json(await alice(['--output', 'json', 'server', 'interfaces', vm.id])).interfaces;
    expect(ifaces.map((i: { state: string; preserveOnDelete: boolean }) => [i.state, i.preserveOnDelete])).toEqual([['attached', false], ['attached', false], ['attached', true]]);

    const removePort = await alice(['server', 'remove', 'port', vm.id, 'mine', '--wait']);
    expect(removePort.code, removePort.stderr).toBe(0);
    expect(json(await alice(['--output', 'json', 'port', 'show', 'mine']))).toMatchObject({ deviceId: '', deviceOwner: '' });
    const removeNet = await alice(['server', 'remove', 'network', vm.id, 'back', '--wait']);
    expect(removeNet.code, removeNet.stderr).toBe(0);
    ifaces = json(await alice(['--output', 'json', 'server', 'interfaces', vm.id])).interfaces;
    expect(ifaces).toHaveLength(1);
    expect((await alice(['server', 'remove', 'network', vm.id, 'back'])).code).toBe(3);
    expect((await alice(['server', 'remove', 'port', vm.id, 'mine'])).code).toBe(3);
    // Another project's network is not there.
    expect((await member(['server', 'create', '--name', 'y', '--flavor', 'cli.net', '--image', 'cirros', '--network', ifaces[0].networkId])).code).toBe(3);
    expect((await alice(['server', 'delete', vm.id, '--wait'])).code).toBe(0);
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
