// Two simulated hosts joined by a VXLAN tunnel through the OVS userspace datapath, with real
// packets. Each host is a network namespace running its own private ovs-vswitchd (ensureOvs with
// netns): userspace tunnelling routes and ARPs with the vswitchd's namespace's routing table, so two
// tunnel endpoints cannot share one namespace (tried first with four bridges in one vswitchd: the
// remote endpoint's address is a local address there, ovs/route prefers the kernel's local route to
// the other bridge, ovs/route/add of a /32 is refused, and nothing got through).
//
// Per host, as the OVS-DPDK userspace-tunnelling guide lays out:
//   bint  (netdev, secure) guest veth port + vxlan port (remote_ip = the other host, key=flow)
//   bphy  (netdev, secure, NORMAL flows) the underlay veth port; the bridge's own internal port
//         (a tap in the host namespace) carries the tunnel endpoint IP 172.31.<n>.1/2 /24
// The underlay is one veth pair between the two host namespaces; each guest is a namespace with
// a veth into its host. Guest MTU 1450: VXLAN adds 50 bytes and a 1500-byte inner frame would
// not fit the 1500-byte underlay (ovs-vswitchd logs "error sending Ethernet packet on <veth>:
// Message too long" and drops it), as Neutron lowers tenant MTU on VXLAN networks.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOvs, ovsAvailable, stopOvs } from '../../infra/ovs/launcher.js';
import { Ovs } from './ovs.js';

const run = promisify(execFile);
const sh = (cmd: string, ...args: string[]) => run(cmd, args, { timeout: 30_000 });
const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const available = await ovsAvailable();

describe.skipIf(!available)('VXLAN between two hosts through the OVS userspace datapath', () => {
  const id = `${process.pid % 1000}${Math.random().toString(36).slice(2, 5)}`;
  const net = 10 + (process.pid % 200);
  const VNI = 0x2a;
  const hosts = [1, 2].map((n) => ({
    n,
    ns: `strata-h${n}-${id}`,
    dir: `/tmp/sovs-${id}-${n}`,
    underlay: `su${n}${id}`,
    tep: `172.31.${net}.${n}`,
    guest: { ns: `strata-g${n}-${id}`, outer: `sv${n}${id}`, mac: `02:00:5e:00:01:0${n}`, ip: `10.251.0.${n}`, ofport: 1 },
    vxlanOfport: 100,
    ovs: undefined as Ovs | undefined,
  }));
  const [h1, h2] = hosts as [(typeof hosts)[number], (typeof hosts)[number]];
  const children: ChildProcess[] = [];

  const guestFlows = (h: (typeof hosts)[number], vni: number) => [
    `table=0,priority=100,in_port=${h.guest.ofport},dl_src=${h.guest.mac},actions=set_field:${vni}->tun_id,output:${h.vxlanOfport}`,
    `table=0,priority=100,in_port=${h.vxlanOfport},tun_id=${vni},actions=output:${h.guest.ofport}`,
    'table=0,priority=0,actions=drop',
  ];

  async function ping(from: (typeof hosts)[number], to: (typeof hosts)[number], count = 2): Promise<{ ok: boolean; avgMs?: number }> {
    try {
      const { stdout } = await inNs(from.guest.ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', to.guest.ip);
      const m = stdout.match(/= [\d.]+\/([\d.]+)\//);
      return { ok: true, ...(m ? { avgMs: Number(m[1]) } : {}) };
    } catch {
      return { ok: false };
    }
  }

  beforeAll(async () => {
    const t = performance.now();
    for (const h of [...hosts.map((h) => h.ns), ...hosts.map((h) => h.guest.ns)]) await sh('ip', 'netns', 'add', h);
    await sh('ip', 'link', 'add', h1.underlay, 'netns', h1.ns, 'type', 'veth', 'peer', 'name', h2.underlay, 'netns', h2.ns);
    for (const h of hosts) {
      await inNs(h.ns, 'ip', 'link', 'set', 'lo', 'up');
      const started = performance.now();
      const endpoint = await ensureOvs({ dir: h.dir, netns: h.ns });
      console.log(`ensureOvs (fresh, in namespace ${h.ns}): ${(performance.now() - started).toFixed(0)} ms`);
      const ovs = (h.ovs = new Ovs(endpoint));
      // Underlay: the veth on bphy, the tunnel endpoint address on bphy's own port.
      await inNs(h.ns, 'ip', 'link', 'set', h.underlay, 'up');
      await inNs(h.ns, 'ethtool', '-K', h.underlay, 'tx', 'off');
      await ovs.createBridge('bphy');
      await ovs.addPort('bphy', h.underlay, { ofport: 1 });
      await ovs.replaceFlows('bphy', ['priority=0,actions=NORMAL']);
      await inNs(h.ns, 'ip', 'addr', 'add', `${h.tep}/24`, 'dev', 'bphy');
      await inNs(h.ns, 'ip', 'link', 'set', 'bphy', 'up');
      // Integration bridge: the guest and the tunnel to the other host.
      await ovs.createBridge('bint');
      const other = h === h1 ? h2 : h1;
      await ovs.addPort('bint', 'vxlan0', { type: 'vxlan', ofport: h.vxlanOfport, options: { remote_ip: other.tep, key: 'flow' } });
      const g = h.guest;
      await sh('ip', 'link', 'add', g.outer, 'netns', h.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', g.ns);
      await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', g.mac, 'mtu', '1450');
      await inNs(g.ns, 'ip', 'addr', 'add', `${g.ip}/24`, 'dev', 'eth0');
      await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'up');
      await inNs(g.ns, 'ethtool', '-K', 'eth0', 'tx', 'off');
      await inNs(h.ns, 'ip', 'link', 'set', g.outer, 'up');
      await inNs(h.ns, 'ethtool', '-K', g.outer, 'tx', 'off');
      await ovs.addPort('bint', g.outer, { ofport: g.ofport, externalIds: { 'iface-id': `port-${h.n}` } });
    }
    console.log(`two hosts set up: ${(performance.now() - t).toFixed(0)} ms`);
  });

  afterAll(async () => {
    const t = performance.now();
    for (const c of children) c.kill('SIGKILL');
    for (const h of hosts) await stopOvs({ dir: h.dir }).catch((e) => console.error(e));
    for (const ns of [...hosts.map((h) => h.guest.ns), ...hosts.map((h) => h.ns)]) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* not created */ }
    }
    console.log(`teardown: ${(performance.now() - t).toFixed(0)} ms`);
  });

  it('carries nothing before the integration bridges have flows', async () => {
    expect((await ping(h1, h2)).ok).toBe(false);
  });

  it('pings both ways and carries TCP through the tunnel with the VNI set by flows', async () => {
    for (const h of hosts) await h.ovs!.replaceFlows('bint', guestFlows(h, VNI));
    // The first packets wait for the underlay ARP (OVS's own tnl/neigh cache) and the guests' ARP.
    await waitFor('a first ping through the tunnel', async () => (await ping(h1, h2, 1)).ok, 10_000);
    expect((await ping(h2, h1)).ok).toBe(true);
    const rtt = await ping(h1, h2, 20);
    expect(rtt.ok).toBe(true);
    console.log(`ping RTT guest-to-guest over VXLAN through two userspace vswitchds: avg ${rtt.avgMs} ms over 20`);
    // A full-MSS TCP stream (MTU 1450 inside, 1500 on the underlay).
    const server = spawn('ip', ['netns', 'exec', h2.guest.ns, process.execPath, '-e',
      `require('net').createServer((s) => s.pipe(s)).listen(7777, '${h2.guest.ip}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      server.on('exit', (code) => reject(new Error(`echo server exited ${code}`)));
    });
    const { stdout } = await inNs(h1.guest.ns, process.execPath, '-e', `
      const s = require('net').connect(7777, '${h2.guest.ip}');
      let got = 0; s.setTimeout(5000, () => { console.log('timeout ' + got); process.exit(1); });
      s.on('data', (d) => { got += d.length; if (got >= 200000) { console.log('echoed ' + got); s.destroy(); } });
      s.write('y'.repeat(200000));`);
    server.kill();
    expect(stdout.trim()).toBe('echoed 200000');
    // The tunnel's decapsulated side counted the stream.
    await waitFor('the tunnel flow counters', async () => {
      const flows = await h2.ovs!.dumpFlows('bint');
      return (flows.find((f) => f.match.includes(`in_port=${h2.vxlanOfport}`))?.bytes ?? 0) > 200_000;
    });
    const underlay = (await h1.ovs!.portStats('bphy', 1))[0]!;
    expect(underlay.txBytes).toBeGreaterThan(200_000);
  });

  it('carries nothing when the receiving host expects another VNI', async () => {
    await h2.ovs!.replaceFlows('bint', guestFlows(h2, VNI + 1));
    expect((await ping(h1, h2)).ok).toBe(false);
    await h2.ovs!.replaceFlows('bint', guestFlows(h2, VNI));
    await waitFor('ping again with matching VNIs', async () => (await ping(h1, h2, 1)).ok);
  });
});
