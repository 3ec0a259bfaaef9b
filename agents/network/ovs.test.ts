// The OVS wrapper against a real, private Open vSwitch (infra/ovs/ovs.sh: userspace datapath, no
// kernel module) with real packets: two network namespaces ("guests"), each with a veth pair whose
// outer end is a port on one netdev bridge. fail_mode=secure and no flows: nothing passes; an L2
// flow table (anti-spoofing on in_port+MAC, then forwarding on destination MAC) applied with
// `--bundle replace-flows`: ping and TCP pass both ways and the counters move; a drop-all table
// applied the same way: nothing passes again.
//
// Pitfall: the userspace datapath reads and writes veths through AF_PACKET sockets and does not
// complete checksums a sender left to offload (CHECKSUM_PARTIAL), so TCP/UDP through it can arrive
// with bad checksums; tx checksum offload is turned off on both ends of every veth
// (`ethtool -K <dev> tx off`). ICMP (ping) is not affected, which is why the test also runs TCP.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOvs, ovsAvailable } from '../../infra/ovs/launcher.js';
import { Ovs, OvsCommandError, parseFlow, parsePortStats } from './ovs.js';

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

describe('ovs-ofctl output parsing', () => {
  it('parses dump-flows lines', () => {
    const f = parseFlow(' cookie=0x2a, duration=1.070s, table=1, n_packets=10, n_bytes=732, idle_age=3, priority=100,in_port=11,dl_src=02:00:00:00:00:01 actions=goto_table:1');
    expect(f).toEqual({ cookie: 42n, table: 1, priority: 100, match: 'in_port=11,dl_src=02:00:00:00:00:01', actions: 'goto_table:1', packets: 10, bytes: 732, durationSec: 1.07 });
    const all = parseFlow(' cookie=0x0, duration=0.024s, table=0, n_packets=0, n_bytes=0, actions=NORMAL');
    expect(all).toMatchObject({ priority: 32768, match: '', actions: 'NORMAL', table: 0 });
  });

  it('parses dump-ports output', () => {
    const out = [
      'OFPST_PORT reply (OF1.3) (xid=0x2): 2 ports',
      '  port 11: rx pkts=13, bytes=1034, drop=0, errs=0, frame=0, over=0, crc=0',
      '           tx pkts=14, bytes=1200, drop=1, errs=0, coll=0',
      '           duration=2.212s',
      '  port LOCAL: rx pkts=0, bytes=0, drop=0, errs=0, frame=0, over=0, crc=0',
      '           tx pkts=0, bytes=0, drop=7, errs=0, coll=0',
    ].join('\n');
    expect(parsePortStats(out)).toEqual([
      { port: 11, rxPackets: 13, rxBytes: 1034, rxDropped: 0, rxErrors: 0, txPackets: 14, txBytes: 1200, txDropped: 1, txErrors: 0 },
      { port: 'LOCAL', rxPackets: 0, rxBytes: 0, rxDropped: 0, rxErrors: 0, txPackets: 0, txBytes: 0, txDropped: 7, txErrors: 0 },
    ]);
  });
});

const available = await ovsAvailable();

describe.skipIf(!available)('OVS userspace datapath with real packets', () => {
  // Unique, short names (interface names are at most 15 bytes).
  const id = `${process.pid % 1000}${Math.random().toString(36).slice(2, 5)}`;
  const bridge = `sbr${id}`;
  const guests = [
    { ns: `strata-ovs-${id}-a`, outer: `sva${id}`, inner: `sia${id}`, mac: '02:00:5e:00:00:0a', ip: '10.250.0.10', ofport: 11 },
    { ns: `strata-ovs-${id}-b`, outer: `svb${id}`, inner: `sib${id}`, mac: '02:00:5e:00:00:0b', ip: '10.250.0.11', ofport: 12 },
  ] as const;
  const [a, b] = guests;
  let ovs: Ovs;
  const children: ChildProcess[] = [];

  /** True when `count` pings from `from` to `to` all get answers (each waits at most 1 s). */
  async function ping(from: (typeof guests)[number], to: (typeof guests)[number], count = 2): Promise<{ ok: boolean; avgMs?: number }> {
    try {
      const { stdout } = await inNs(from.ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.05', '-W', '1', to.ip);
      const m = stdout.match(/= [\d.]+\/([\d.]+)\//);
      return { ok: true, ...(m ? { avgMs: Number(m[1]) } : {}) };
    } catch {
      return { ok: false };
    }
  }

  /** A TCP echo through the bridge: the server in b's namespace, the client in a's. */
  async function tcpEcho(): Promise<string> {
    const server = spawn('ip', ['netns', 'exec', b.ns, process.execPath, '-e',
      `require('net').createServer((s) => s.pipe(s)).listen(7777, '${b.ip}', () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      server.on('exit', (code) => reject(new Error(`echo server exited ${code}`)));
    });
    try {
      const payload = 'x'.repeat(100_000);
      const { stdout } = await inNs(a.ns, process.execPath, '-e', `
        const s = require('net').connect(7777, '${b.ip}');
        let got = 0; s.setTimeout(5000, () => { console.log('timeout ' + got); process.exit(1); });
        s.on('data', (d) => { got += d.length; if (got >= ${payload.length}) { console.log('echoed ' + got); s.destroy(); } });
        s.write('${payload}');`);
      return stdout.trim();
    } finally {
      server.kill();
    }
  }

  beforeAll(async () => {
    const started = performance.now();
    const endpoint = await ensureOvs();
    console.log(`ensureOvs: ${(performance.now() - started).toFixed(0)} ms (${endpoint.db})`);
    ovs = new Ovs(endpoint);
    await ovs.createBridge(bridge, { externalIds: { 'strata-test': id } });
    for (const g of guests) {
      await sh('ip', 'netns', 'add', g.ns);
      await sh('ip', 'link', 'add', g.outer, 'type', 'veth', 'peer', 'name', g.inner, 'netns', g.ns);
      await inNs(g.ns, 'ip', 'link', 'set', g.inner, 'address', g.mac);
      await inNs(g.ns, 'ip', 'addr', 'add', `${g.ip}/24`, 'dev', g.inner);
      await inNs(g.ns, 'ip', 'link', 'set', g.inner, 'up');
      await inNs(g.ns, 'ip', 'link', 'set', 'lo', 'up');
      await sh('ip', 'link', 'set', g.outer, 'up');
      // See the header: the userspace datapath does not finish offloaded checksums.
      await sh('ethtool', '-K', g.outer, 'tx', 'off');
      await inNs(g.ns, 'ethtool', '-K', g.inner, 'tx', 'off');
    }
  });

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    if (ovs) await ovs.deleteBridge(bridge).catch((e) => console.error(e));
    for (const g of guests) {
      // Deleting the namespace deletes the inner end and with it the pair; the outer end may be
      // left if the move into the namespace failed.
      try { execFileSync('ip', ['netns', 'del', g.ns], { stdio: 'ignore' }); } catch { /* not created */ }
      try { execFileSync('ip', ['link', 'del', g.outer], { stdio: 'ignore' }); } catch { /* gone */ }
    }
  });

  it('creates the bridge as a secure netdev bridge and adds the ports with their ofports and external ids', async () => {
    expect(await ovs.listBridges()).toContain(bridge);
    expect((await ovs.vsctl('get', 'Bridge', bridge, 'datapath_type', 'fail_mode')).split('\n').slice(0, 2)).toEqual(['netdev', 'secure']);
    for (const g of guests) {
      expect(await ovs.addPort(bridge, g.outer, { ofport: g.ofport, externalIds: { 'iface-id': `port-${g.ns}`, 'attached-mac': g.mac } })).toBe(g.ofport);
    }
    // Idempotent.
    expect(await ovs.addPort(bridge, a.outer, { ofport: a.ofport })).toBe(a.ofport);
    const ports = await ovs.listPorts(bridge);
    expect(ports.map((p) => [p.name, p.ofport, p.externalIds['iface-id']]).sort()).toEqual(
      guests.map((g) => [g.outer, g.ofport, `port-${g.ns}`]).sort(),
    );
    expect(ports.find((p) => p.name === a.outer)?.externalIds['attached-mac']).toBe(a.mac);
  });

  it('names the command and its stderr when one fails, and leaves no half-added port', async () => {
    const err = await ovs.addPort(bridge, `nodev${id}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OvsCommandError);
    expect((err as Error).message).toMatch(/ovs-vsctl .*add-port .*nodev.*No such device/);
    expect((await ovs.listPorts(bridge)).map((p) => p.name)).not.toContain(`nodev${id}`);
    const ofErr = await ovs.replaceFlows(bridge, ['table=0,actions=no_such_action']).catch((e: unknown) => e);
    expect((ofErr as Error).message).toMatch(/^ovs-ofctl .*replace-flows.*no_such_action/s);
  });

  it('forwards nothing without flows (fail_mode=secure)', async () => {
    expect(await ovs.dumpFlows(bridge)).toEqual([]);
    expect((await ping(a, b)).ok).toBe(false);
  });

  it('forwards both ways, ICMP and TCP, after an L2 table is applied in one bundle, and counts', async () => {
    const before = await ovs.portStats(bridge);
    const l2 = [
      // Table 0: a port may only send from its own MAC.
      ...guests.map((g) => `table=0,priority=100,cookie=0x1,in_port=${g.ofport},dl_src=${g.mac},actions=goto_table:1`),
      'table=0,priority=0,cookie=0x1,actions=drop',
      // Table 1: unicast by destination MAC, broadcast (ARP) to every other port.
      ...guests.map((g) => `table=1,priority=100,cookie=0x1,dl_dst=${g.mac},actions=output:${g.ofport}`),
      `table=1,priority=90,cookie=0x1,dl_dst=ff:ff:ff:ff:ff:ff,actions=${guests.map((g) => `output:${g.ofport}`).join(',')}`,
      'table=1,priority=0,cookie=0x1,actions=drop',
    ];
    await ovs.replaceFlows(bridge, l2);
    const flows = await ovs.dumpFlows(bridge);
    expect(flows).toHaveLength(l2.length);
    expect(flows.every((f) => f.cookie === 1n)).toBe(true);

    expect((await ping(a, b)).ok).toBe(true);
    expect((await ping(b, a)).ok).toBe(true);
    const rtt = await ping(a, b, 20);
    expect(rtt.ok).toBe(true);
    console.log(`ping RTT through the userspace datapath: avg ${rtt.avgMs} ms over 20`);
    expect(await tcpEcho()).toBe('echoed 100000');

    // Flow counters lag: ovs-vswitchd's revalidators pull the datapath flows' stats about every 500 ms.
    const counted = await waitFor('the TCP bytes in the flow counters', async () => {
      const after = await ovs.dumpFlows(bridge);
      const toB = after.find((f) => f.table === 1 && f.match === `dl_dst=${b.mac}`)!;
      const toA = after.find((f) => f.table === 1 && f.match === `dl_dst=${a.mac}`)!;
      return toB.bytes > 100_000 && toA.bytes > 100_000 && { toA, toB };
    });
    expect(counted.toB.packets).toBeGreaterThanOrEqual(22);
    expect(counted.toA.packets).toBeGreaterThanOrEqual(22);
    const stats = await ovs.portStats(bridge);
    for (const g of guests) {
      const was = before.find((s) => s.port === g.ofport)?.rxPackets ?? 0;
      expect(stats.find((s) => s.port === g.ofport)!.rxPackets).toBeGreaterThan(was + 20);
    }
    expect((await ovs.portStats(bridge, a.ofport)).map((s) => s.port)).toEqual([a.ofport]);
  });

  it('forwards nothing after the table is replaced by one that drops, and counts the drops', async () => {
    await ovs.replaceFlows(bridge, ['table=0,priority=0,cookie=0x2,actions=drop']);
    const flows = await ovs.dumpFlows(bridge);
    expect(flows.map((f) => [f.table, f.actions, f.cookie])).toEqual([[0, 'drop', 2n]]);
    expect((await ping(a, b)).ok).toBe(false);
    expect((await ping(b, a)).ok).toBe(false);
    await waitFor('the drops in the flow counter', async () => ((await ovs.dumpFlows(bridge))[0]?.packets ?? 0) >= 4);
  });

  it('lists a bridge while its ports come and go, from one snapshot (never a port that is gone, never an error)', async () => {
    const churn = `sch${id}`;
    await ovs.createBridge(churn);
    try {
      let stop = false;
      const flapping = (async () => {
        for (let i = 0; !stop; i++) {
          const name = `chp${id}${i % 4}`;
          await ovs.addPort(churn, name, { type: 'internal' });
          await ovs.deletePort(churn, name);
        }
      })();
      const listed: number[] = [];
      for (let i = 0; i < 40; i++) listed.push((await ovs.listPorts(churn)).length);
      stop = true;
      await flapping;
      expect(listed.every((n) => n <= 1)).toBe(true);
    } finally {
      await ovs.deleteBridge(churn);
    }
  });
});
