// The DHCP servers of one host, realised (the design is at the top of dhcp.ts): per planned network
// a qdhcp namespace, a veth into the integration bridge, the server's addresses, permanent
// neighbour entries for its clients, and a daemonised dnsmasq whose files live in the agent's state
// directory. reconcile(plans) is level-triggered and idempotent: a first pass (after a start or a
// failure) checks and repairs everything; later passes only compare files and the process. A
// dnsmasq is adopted when its pid file names a live process with the command line this agent would
// use, so an agent restart never leaves two servers for one network. Networks no longer planned,
// here or left in the state directory by an earlier run, are torn down.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  dhcpDeviceNames, dhcpServerMac, dnsmasqArgs, hostsChangeNeedsRestart, hostsFileText, keptLeases, optionsFileText,
  type DhcpNetworkPlan, type DhcpServerPort, type DnsmasqPaths,
} from './dhcp.js';
import type { Ovs } from './ovs.js';

const run = promisify(execFile);

export interface DhcpServiceOptions {
  /**
   * The agent's state directory: DHCP keeps its pid, hosts, options, lease and log files under
   * `<stateDir>/dhcp/<network id>/` (and owns that `dhcp` directory: what else is in it goes). It
   * must survive agent restarts and be readable by dnsmasq's unprivileged user (it rereads the
   * files on SIGHUP).
   */
  stateDir: string;
  /** The namespace of the vswitchd that owns the bridge (a simulated host); default this process's. */
  hostNetns?: string;
  /** Put before `qdhcp-<network id>`: unique per host when hosts share one kernel (simulated hosts). */
  namespacePrefix?: string;
  /** Default 86400 (Neutron's dhcp_lease_duration). */
  leaseSeconds?: number;
  /** Default 'dnsmasq' (from PATH). */
  dnsmasq?: string;
}

interface Served {
  /** The server's addresses the devices were set up with (a changed subnet sets them up again). */
  addresses: string;
  ofport: number;
  mac: string;
  args: string[];
  hosts: string;
  options: string;
  neighbours: string;
}

export class DhcpServers {
  /** Networks whose namespace, devices and process were checked since this agent started. */
  private readonly served = new Map<string, Served>();
  /** One directory per network's server. */
  private readonly dir: string;
  readonly stats = { started: 0, reloaded: 0, restarted: 0, adopted: 0, removed: 0 };

  constructor(
    private readonly o: DhcpServiceOptions,
    private readonly hostId: string,
    private readonly ovs: Ovs,
    private readonly bridge: string,
  ) {
    this.dir = join(o.stateDir, 'dhcp');
  }

  namespaceOf(networkId: string): string {
    return `${this.o.namespacePrefix ?? ''}qdhcp-${networkId}`;
  }

  /** The files of a network's server (also read by tests and operators). */
  pathsOf(networkId: string): DnsmasqPaths & { dir: string } {
    const dir = join(this.dir, networkId);
    return { dir, pidFile: join(dir, 'pid'), hostsFile: join(dir, 'host'), optionsFile: join(dir, 'opts'), leaseFile: join(dir, 'leases'), logFile: join(dir, 'log') };
  }

  /**
   * Brings the host to `plans` and returns the servers that run (the flows send requests to those
   * only). A network that fails is reported through onError and left out; the next pass retries it.
   */
  async reconcile(plans: readonly DhcpNetworkPlan[], onError: (e: Error) => void): Promise<DhcpServerPort[]> {
    await mkdir(this.dir, { recursive: true });
    const ready: DhcpServerPort[] = [];
    for (const plan of plans) {
      try {
        const s = await this.serve(plan);
        ready.push({ networkId: plan.networkId, ofport: s.ofport, mac: s.mac, clients: plan.clients });
      } catch (e) {
        this.served.delete(plan.networkId);
        onError(new Error(`DHCP for network ${plan.networkId}: ${(e as Error).message}`));
      }
    }
    const wanted = new Set(plans.map((p) => p.networkId));
    const present = new Set([...this.served.keys(), ...(await readdir(this.dir))]);
    for (const networkId of present) {
      if (wanted.has(networkId)) continue;
      try {
        await this.remove(networkId);
      } catch (e) {
        onError(new Error(`removing DHCP for network ${networkId}: ${(e as Error).message}`));
      }
    }
    return ready;
  }

  private async serve(plan: DhcpNetworkPlan): Promise<Served> {
    const paths = this.pathsOf(plan.networkId);
    const { namespaceSide } = dhcpDeviceNames(plan.networkId);
    const args = dnsmasqArgs(plan, namespaceSide, paths, this.o.leaseSeconds ?? 86_400);
    const hosts = hostsFileText(plan);
    const options = optionsFileText(plan);
    const neighbours = plan.hosts.map((h) => `${h.ip}=${h.mac}`).join(',');
    const addresses = `${plan.subnets.map((s) => `${s.serverIp}/${s.prefix}`).join(",")} mtu ${plan.mtu}`;
    let s = this.served.get(plan.networkId);
    if (!s || s.addresses !== addresses) {
      s = { addresses, ...(await this.wire(plan)), args: [], hosts: '', options: '', neighbours: '' };
      this.served.set(plan.networkId, s);
    }
    if (s.neighbours !== neighbours) {
      await this.setNeighbours(plan);
      s.neighbours = neighbours;
    }
    await mkdir(paths.dir, { recursive: true });
    const onDisk = await readFile(paths.hostsFile, 'utf8').catch(() => undefined);
    const pid = await this.runningPid(paths.pidFile, args);
    if (pid === undefined) {
      await this.stopByPidFile(paths.pidFile);
      await writeFile(paths.hostsFile, hosts);
      await writeFile(paths.optionsFile, options);
      await this.start(plan.networkId, args, paths.pidFile);
      this.stats.started++;
    } else if (onDisk !== hosts || (await readFile(paths.optionsFile, 'utf8').catch(() => '')) !== options) {
      const restart = hostsChangeNeedsRestart(onDisk ?? '', hosts);
      await writeFile(paths.hostsFile, hosts);
      await writeFile(paths.optionsFile, options);
      if (restart) {
        await this.stopByPidFile(paths.pidFile);
        const leases = await readFile(paths.leaseFile, 'utf8').catch(() => '');
        await writeFile(paths.leaseFile, keptLeases(leases, plan));
        await this.start(plan.networkId, args, paths.pidFile);
        this.stats.restarted++;
      } else {
        // dnsmasq rereads --dhcp-hostsfile and --dhcp-optsfile on SIGHUP.
        process.kill(pid, 'SIGHUP');
        this.stats.reloaded++;
      }
    } else if (s.args.length === 0) this.stats.adopted++;
    s.args = args;
    s.hosts = hosts;
    s.options = options;
    return s;
  }

  /** The namespace, the veth into the bridge, the server's MAC, MTU and addresses (idempotent). */
  private async wire(plan: DhcpNetworkPlan): Promise<{ ofport: number; mac: string }> {
    const ns = this.namespaceOf(plan.networkId);
    const { bridgeSide, namespaceSide } = dhcpDeviceNames(plan.networkId);
    const mac = dhcpServerMac(this.hostId, plan.networkId);
    if (!existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'add', ns]);
    const exists = await this.hostIp('link', 'show', bridgeSide).then(() => true, () => false);
    if (!exists) await this.hostIp('link', 'add', bridgeSide, 'type', 'veth', 'peer', 'name', namespaceSide, 'netns', ns);
    await this.hostIp('link', 'set', bridgeSide, 'mtu', String(plan.mtu), 'up');
    // The userspace datapath leaves partial checksums: no tx offload on either end.
    await this.inHost('ethtool', '-K', bridgeSide, 'tx', 'off');
    await run('ip', ['-n', ns, 'link', 'set', namespaceSide, 'address', mac, 'mtu', String(plan.mtu), 'up']);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', ns, 'ethtool', '-K', namespaceSide, 'tx', 'off']);
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv6.conf.${namespaceSide}.disable_ipv6=1`]);
    const wanted = new Set(plan.subnets.map((s) => `${s.serverIp}/${s.prefix}`));
    const { stdout } = await run('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', namespaceSide]);
    const have = (JSON.parse(stdout) as { addr_info?: { family: string; local: string; prefixlen: number }[] }[])
      .flatMap((l) => l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
    for (const a of have) if (!wanted.has(a)) await run('ip', ['-n', ns, 'addr', 'del', a, 'dev', namespaceSide]);
    for (const a of wanted) if (!have.includes(a)) await run('ip', ['-n', ns, 'addr', 'add', a, 'dev', namespaceSide]);
    const ofport = await this.ovs.addPort(this.bridge, bridgeSide, { externalIds: { 'strata-dhcp-network': plan.networkId } });
    return { ofport, mac };
  }

  /** The clients' addresses as permanent neighbours: the server never ARPs (its flows drop ARP). */
  private async setNeighbours(plan: DhcpNetworkPlan): Promise<void> {
    const ns = this.namespaceOf(plan.networkId);
    const { namespaceSide } = dhcpDeviceNames(plan.networkId);
    const wanted = new Map(plan.hosts.map((h) => [h.ip, h.mac]));
    const { stdout } = await run('ip', ['-n', ns, '-j', 'neigh', 'show', 'dev', namespaceSide]);
    for (const n of JSON.parse(stdout || '[]') as { dst: string; lladdr?: string }[]) {
      if (!wanted.has(n.dst)) await run('ip', ['-n', ns, 'neigh', 'del', n.dst, 'dev', namespaceSide]).catch(() => undefined);
    }
    for (const [ip, mac] of wanted) await run('ip', ['-n', ns, 'neigh', 'replace', ip, 'lladdr', mac, 'nud', 'permanent', 'dev', namespaceSide]);
  }

  private async start(networkId: string, args: string[], pidFile: string): Promise<void> {
    await rm(pidFile, { force: true });
    // dnsmasq forks into the background (so that it outlives the agent) once it is set up; the
    // parent's exit status says whether that went well.
    await run('ip', ['netns', 'exec', this.namespaceOf(networkId), this.o.dnsmasq ?? 'dnsmasq', ...args], { timeout: 15_000 });
    for (let i = 0; i < 100; i++) {
      if ((await this.runningPid(pidFile, args)) !== undefined) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`dnsmasq for network ${networkId} wrote no pid file (${pidFile})`);
  }

  /** The pid in `pidFile` when it is a live dnsmasq with exactly `args` (else undefined). */
  private async runningPid(pidFile: string, args?: string[]): Promise<number | undefined> {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    const argv = cmdline.split('\0').filter(Boolean);
    // A zombie or a reused pid has another (or no) command line.
    if (argv.length === 0 || !argv.includes(`--pid-file=${pidFile}`)) return undefined;
    if (args && argv.slice(1).join('\0') !== args.join('\0')) return undefined;
    return pid;
  }

  /** Stops the dnsmasq of `pidFile` (whatever its arguments), waiting for it to be gone. */
  private async stopByPidFile(pidFile: string): Promise<void> {
    const pid = await this.runningPid(pidFile);
    if (pid === undefined) return;
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      if ((await this.runningPid(pidFile)) === undefined) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    process.kill(pid, 'SIGKILL');
  }

  /** Stops a network's server and removes its process, devices, namespace and files. */
  async remove(networkId: string): Promise<void> {
    const paths = this.pathsOf(networkId);
    const { bridgeSide } = dhcpDeviceNames(networkId);
    await this.stopByPidFile(paths.pidFile);
    await this.ovs.deletePort(this.bridge, bridgeSide);
    await this.hostIp('link', 'del', bridgeSide).catch(() => undefined); // takes the namespace side with it
    const ns = this.namespaceOf(networkId);
    if (existsSync(`/run/netns/${ns}`)) await run('ip', ['netns', 'del', ns]);
    await rm(paths.dir, { recursive: true, force: true });
    this.served.delete(networkId);
    this.stats.removed++;
  }

  /** Removes every server this agent's state directory knows (tests; decommissioning a host). */
  async removeAll(): Promise<void> {
    const ids = new Set([...this.served.keys(), ...(await readdir(this.dir).catch(() => [] as string[]))]);
    for (const id of ids) await this.remove(id);
  }

  /** The pid of a network's running dnsmasq (undefined when none). */
  pidOf(networkId: string): Promise<number | undefined> {
    return this.runningPid(this.pathsOf(networkId).pidFile);
  }

  private hostIp(...args: string[]) {
    return run('ip', [...(this.o.hostNetns ? ['-n', this.o.hostNetns] : []), ...args]);
  }

  private inHost(...command: string[]) {
    return this.o.hostNetns ? run('ip', ['netns', 'exec', this.o.hostNetns, ...command]) : run(command[0]!, command.slice(1));
  }
}
