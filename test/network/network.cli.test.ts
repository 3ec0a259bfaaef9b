// The strata CLI's network commands end to end against a real cloud: a member makes a network, a
// /29 subnet and ports (by name), sees them in tables and JSON, fills the subnet (exit 10 naming
// it), cannot delete the network while ports are on it (exit 8, the state named), cannot set a
// provider attribute (exit 4, the field named), manages a security group and its rules, and
// deletes everything again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRunner } from '../support/cli-runner.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';



describe('the strata CLI for networks', () => {
  let t: ComputeTestCloud;
  let m: Member;
  const { strata, json } = cliRunner('network', () => t);

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 0 });
    m = await t.member();
  }, 120_000);
  afterAll(async () => t?.close());

  it('takes a member from a network to ports and back, with clear refusals', { timeout: 240_000 }, async () => {
    const member = (args: string[]) => strata(args, m.token);

    const net = json(await member(['--output', 'json', 'network', 'create', '--name', 'cli-net']));
    expect(net).toMatchObject({ name: 'cli-net', status: 'ACTIVE', mtu: 1450 });
    const denied = await member(['network', 'create', '--name', 'prov', '--provider-network-type', 'vlan', '--provider-physical-network', 'physnet1', '--provider-segment', '7']);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('provider:network_type');

    const sub = json(await member(['--output', 'json', 'subnet', 'create', '--network', 'cli-net', '--subnet-range', '10.99.0.0/29', '--name', 'cli-sub', '--dns-nameserver', '10.99.0.1']));
    expect(sub).toMatchObject({ cidr: '10.99.0.0/29', gatewayIp: '10.99.0.1', allocationPools: [{ start: '10.99.0.2', end: '10.99.0.6' }], dnsNameservers: ['10.99.0.1'] });

    const web = json(await member(['--output', 'json', 'security-group', 'create', 'web', '--description', 'http in']));
    expect(web).toMatchObject({ name: 'web', isDefault: false });
    const rule = json(await member(['--output', 'json', 'security-group-rule', 'create', 'web', '--protocol', 'tcp', '--dst-port', '80:81', '--remote-ip', '0.0.0.0/0']));
    expect(rule).toMatchObject({ direction: 'ingress', protocol: 'tcp', portRangeMin: 80, portRangeMax: 81 });
    const twice = await member(['security-group-rule', 'create', 'web', '--protocol', 'tcp', '--dst-port', '80:81', '--remote-ip', '0.0.0.0/0']);
    expect(twice.code).toBe(7);
    const rules = await member(['security-group-rule', 'list', 'web']);
    expect(rules.stdout).toMatch(/^id\s+securityGroupId\s+direction/m);
    expect(rules.stdout).toMatch(/ingress\s+IPv4\s+tcp\s+80:81\s+0\.0\.0\.0\/0/);
    const groups = await member(['security-group', 'list']);
    expect(groups.stdout).toMatch(/default/);

    const p1 = json(await member(['--output', 'json', 'port', 'create', '--network', 'cli-net', '--name', 'p1', '--security-group', 'web']));
    expect(p1).toMatchObject({ name: 'p1', fixedIps: [{ subnetId: sub.id, ipAddress: '10.99.0.2' }], status: 'DOWN' });
    expect(p1.macAddress).toMatch(/^fa:16:3e:/);
    const p2 = json(await member(['--output', 'json', 'port', 'create', '--network', 'cli-net', '--name', 'p2', '--fixed-ip', 'subnet=cli-sub,ip-address=10.99.0.6']));
    expect(p2.fixedIps[0].ipAddress).toBe('10.99.0.6');
    for (const n of [3, 4, 5]) expect((await member(['port', 'create', '--network', 'cli-net', '--name', `p${n}`])).code).toBe(0);
    const full = await member(['port', 'create', '--network', 'cli-net', '--name', 'one-too-many']);
    expect(full.code).toBe(10);
    expect(full.stderr).toContain(`No more IP addresses available on subnet ${sub.id}`);

    const ports = await member(['port', 'list', '--network', 'cli-net']);
    expect(ports.stdout).toMatch(/^id\s+name\s+macAddress\s+fixedIps\s+status/m);
    expect(ports.stdout).toMatch(/p1\s+fa:16:3e:\S+\s+10\.99\.0\.2\s+DOWN/);
    expect((await member(['port', 'show', 'p2'])).stdout).toMatch(/macAddress\s+fa:16:3e/);
    const renamed = json(await member(['--output', 'json', 'port', 'set', 'p2', '--name', 'p2b', '--disable']));
    expect(renamed).toMatchObject({ name: 'p2b', adminStateUp: false });
    // Addresses: --fixed-ip adds one (the subnet's next free, p5's once it is gone), --no-fixed-ip drops the others first.
    expect((await member(['port', 'delete', 'p5'])).code).toBe(0);
    const grown = json(await member(['--output', 'json', 'port', 'set', 'p2b', '--fixed-ip', 'subnet=cli-sub']));
    expect(grown.fixedIps.map((f: { ipAddress: string }) => f.ipAddress)).toEqual(['10.99.0.6', '10.99.0.5']);
    const back = json(await member(['--output', 'json', 'port', 'set', 'p2b', '--no-fixed-ip', '--fixed-ip', 'ip-address=10.99.0.5']));
    expect(back.fixedIps).toEqual([{ subnetId: sub.id, ipAddress: '10.99.0.5' }]);
    expect((await member(['network', 'list'])).stdout).toMatch(/cli-net\s+ACTIVE\s+\S+/);
    expect(json(await member(['--output', 'json', 'network', 'set', 'cli-net', '--name', 'cli-net2'])).name).toBe('cli-net2');

    const inUse = await member(['network', 'delete', 'cli-net2']);
    expect(inUse.code).toBe(8);
    expect(inUse.stderr).toContain('port(s) still in use');
    expect((await member(['security-group', 'delete', 'web'])).code).toBe(8);

    const all = json(await member(['--output', 'json', 'port', 'list'])).ports as { id: string }[];
    for (const p of all) expect((await member(['port', 'delete', p.id])).code).toBe(0);
    expect((await member(['security-group-rule', 'delete', rule.id])).code).toBe(0);
    expect((await member(['security-group', 'delete', 'web'])).code).toBe(0);
    const gone = await member(['network', 'delete', 'cli-net2']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toContain(`network ${net.id} deleted`);
    expect((await member(['network', 'show', net.id])).code).toBe(3);
  });

  it('explains itself: help lists the verbs, usage errors exit 2', async () => {
    const top = await strata(['--help'], '');
    for (const c of ['network create', 'subnet create', 'security-group-rule create']) expect(top.stdout).toContain(c);
    const help = await strata(['port', '--help'], '');
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--fixed-ip subnet=S,ip-address=A');
    expect((await strata(['subnet', 'frobnicate'], m.token)).code).toBe(2);
    const noNet = await strata(['port', 'create', '--name', 'x'], m.token);
    expect(noNet.code).toBe(2);
    expect(noNet.stderr).toContain('--network');
  });
});
