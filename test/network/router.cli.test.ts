// The strata CLI's router and floating-ip commands end to end against a real cloud: an admin makes
// an external network; a member makes a router with a gateway on it (by name), attaches a subnet
// and a port, sees them in `router show`, cannot delete the router while it has them (exit 8),
// takes a floating IP, associates it with a port (shown with its router), unsets it, and deletes
// everything again; a floating IP no router reaches exits 3, naming the subnet.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../support/cli-runner.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';



describe('the strata CLI for routers and floating IPs', () => {
  let t: ComputeTestCloud;
  let m: Member;
  let adminToken: string;
  const { strata, json } = cliRunner('router', () => t);

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 0 });
    m = await t.member();
    adminToken = await t.adminToken();
  }, 120_000);
  afterAll(async () => t?.close());

  it('takes a member from a router with a gateway to a floating IP and back', { timeout: 420_000 }, async () => {
    const member = (args: string[]) => strata(args, m.token);
    const admin = (args: string[]) => strata(args, adminToken);
    json(await admin(['--output', 'json', 'network', 'create', '--name', 'public', '--external']));
    json(await admin(['--output', 'json', 'subnet', 'create', '--network', 'public', '--subnet-range', '198.51.100.0/24', '--name', 'public-v4']));
    json(await member(['--output', 'json', 'network', 'create', '--name', 'inner']));
    const sub = json(await member(['--output', 'json', 'subnet', 'create', '--network', 'inner', '--subnet-range', '10.98.0.0/24', '--name', 'inner-sub']));
    json(await member(['--output', 'json', 'network', 'create', '--name', 'side']));
    json(await member(['--output', 'json', 'subnet', 'create', '--network', 'side', '--subnet-range', '10.97.0.0/24', '--name', 'side-sub']));

    const router = json(await member(['--output', 'json', 'router', 'create', 'edge', '--external-gateway', 'public']));
    expect(router.externalGatewayInfo).toMatchObject({ enableSnat: true, externalFixedIps: [{ ipAddress: expect.stringMatching(/^198\.51\.100\./) }] });
    const snat = await member(['router', 'create', 'snatless', '--external-gateway', 'public', '--disable-snat']);
    expect(snat.code).toBe(4);
    expect(snat.stderr).toContain('enable_snat');

    const added = json(await member(['--output', 'json', 'router', 'add', 'subnet', 'edge', 'inner-sub']));
    expect(added).toMatchObject({ routerId: router.id, subnetId: sub.id });
    const twice = await member(['router', 'add', 'subnet', 'edge', 'inner-sub']);
    expect(twice.code).toBe(6);
    expect(twice.stderr).toContain(`Router already has a port on subnet ${sub.id}`);
    json(await member(['--output', 'json', 'port', 'create', '--network', 'side', '--name', 'side-if', '--fixed-ip', 'subnet=side-sub,ip-address=10.97.0.9', '--disable-port-security']));
    expect((await member(['router', 'add', 'port', 'edge', 'side-if'])).stdout).toContain(`port side-if added to router ${router.id}`);
    const shown = await member(['router', 'show', 'edge']);
    expect(shown.stdout).toMatch(/^portId\s+subnetId\s+ipAddress/m);
    expect(shown.stdout).toMatch(/10\.98\.0\.1\b/);
    expect(shown.stdout).toMatch(/10\.97\.0\.9\b/);
    expect((await member(['router', 'list'])).stdout).toMatch(/edge\s+ACTIVE\s+true\s+\S+\s+2/);
    const inUse = await member(['router', 'delete', 'edge']);
    expect(inUse.code).toBe(8);
    expect(inUse.stderr).toContain(`Router ${router.id} still has ports`);

    json(await member(['--output', 'json', 'port', 'create', '--network', 'inner', '--name', 'vm']));
    json(await member(['--output', 'json', 'port', 'create', '--network', 'side', '--name', 'far']));
    const fip = json(await member(['--output', 'json', 'floating-ip', 'create', 'public']));
    expect(fip).toMatchObject({ status: 'DOWN', portId: '' });
    const set = json(await member(['--output', 'json', 'floating-ip', 'set', fip.floatingIpAddress, '--port', 'vm']));
    expect(set).toMatchObject({ routerId: router.id, fixedIpAddress: '10.98.0.2', status: 'DOWN' });
    expect((await member(['floating-ip', 'list', '--router', 'edge'])).stdout).toMatch(new RegExp(`${fip.floatingIpAddress.replaceAll('.', '\\.')}\\s+10\\.98\\.0\\.2`));
    expect((await member(['router', 'remove', 'subnet', 'edge', 'inner-sub'])).code).toBe(8);
    // The side subnet is attached through the port given to the router: its ports reach the floating network too,
    // and that interface cannot go while a floating IP needs it.
    const second = json(await member(['--output', 'json', 'floating-ip', 'create', 'public', '--port', 'far']));
    expect(second.routerId).toBe(router.id);
    expect((await member(['router', 'remove', 'port', 'edge', 'side-if'])).code).toBe(8);
    expect((await member(['floating-ip', 'delete', second.id])).code).toBe(0);
    expect((await member(['router', 'remove', 'port', 'edge', 'side-if'])).code).toBe(0);
    const unreachable = await member(['floating-ip', 'create', 'public', '--port', 'far']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain('is not reachable from subnet');

    expect(json(await member(['--output', 'json', 'floating-ip', 'unset', fip.id, '--port']))).toMatchObject({ portId: '', routerId: '', status: 'DOWN' });
    expect((await member(['floating-ip', 'delete', fip.floatingIpAddress])).code).toBe(0);
    expect((await member(['floating-ip', 'show', fip.id])).code).toBe(3);
    expect((await member(['router', 'remove', 'subnet', 'edge', 'inner-sub'])).code).toBe(0);
    expect(json(await member(['--output', 'json', 'router', 'unset', 'edge', '--external-gateway'])).externalGatewayInfo ?? null).toBeNull();
    const gone = await member(['router', 'delete', 'edge']);
    expect(gone.code, gone.stderr).toBe(0);
    expect((await member(['router', 'show', router.id])).code).toBe(3);
  });

  it('explains itself: help lists the verbs, usage errors exit 2', { timeout: 60_000 }, async () => {
    const top = await strata(['--help'], '');
    for (const c of ['router create', 'add subnet', 'floating-ip create']) expect(top.stdout).toContain(c);
    const help = await strata(['router', '--help'], '');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('strata router add port ROUTER PORT');
    expect((await strata(['router', 'add', 'network', 'edge', 'x'], m.token)).code).toBe(2);
    expect((await strata(['floating-ip', 'set', 'x'], m.token)).code).toBe(2);
    expect((await strata(['router', 'unset', 'x'], m.token)).code).toBe(2);
  });
});
