// The L3 part of the network agent: Neutron's legacy L3 agent on our stack. Each router a host
// runs is a network namespace (`qrouter-<router id>`) holding one OVS internal port per router
// interface (`qr-<port id prefix>`: the interface port's MAC and address, with the subnet's prefix)
// and one for its gateway (`qg-…`: the external network's port, plus every floating IP as a /32 so
// that the router answers ARP for it), IPv4 forwarding on, a default route through the external
// subnet's gateway, and a nat table: per floating IP a DNAT (floating -> fixed) and an SNAT
// (fixed -> floating), then, when enable_snat, an SNAT of the inner subnets to the gateway address.
// The router's ports are ordinary ports (device_owner network:router_*): the network agent's
// flows wire them like any other once they are bound to the host and plugged (iface-id).
//
// Scheduling (kept simple, documented): a router runs on the host of its gateway port, or, with no
// bound gateway, of its lowest-id bound interface. A network agent started with `l3` binds the
// ports of the routers that run on no host, or on its own, to itself; a router split between two
// agents that raced converges to the one host this rule names, since only that host's agent binds
// the stragglers.
//
// desiredRouters() and natRules() are pure; RouterHost makes a host's namespaces match them,
// comparing what is there with what should be (links, addresses, routes, the nat table) and
// changing only the difference, so an agent restart leaves unchanged routers, their conntrack
// entries and rule counters alone.
import { execFile, spawn } from 'node:child_process';
import { canonicalIp, cidrText, inCidr, parseCidr, parseIp } from '../../domains/network/ip.js';
import { defaultMtu, ROUTER_GATEWAY_OWNER, ROUTER_INTERFACE_OWNER, type Router } from '../../domains/network/network.types.js';
import type { NetworkView } from '../../domains/network/network.view.js';
import type { Ovs } from './ovs.js';

/** What the L3 code reads of the agent's fold. */
export type L3View = Pick<NetworkView, 'networks' | 'subnets' | 'ports' | 'routers' | 'floatingIps'>;

export interface RouterPortState {
  portId: string;
  /** qr-… or qg-… (IFNAMSIZ: at most 15 characters). */
  device: string;
  mac: string;
  /** Its IPv4 addresses with their subnets' prefixes, e.g. "10.1.0.1/24", sorted. */
  addresses: string[];
  mtu: number;
}

export interface FloatingIpPair {
  floatingIpId: string;
  floatingIp: string;
  fixedIp: string;
}

export interface RouterState {
  routerId: string;
  namespace: string;
  /** The qr- ports, by port id. */
  interfaces: RouterPortState[];
  /** The qg- port (its addresses include the floating IPs as /32). */
  gateway: (RouterPortState & { defaultRoute: string | null }) | null;
  /** The inner subnets' CIDRs SNATed to `snatAddress` when enable_snat (sorted). */
  snatSources: string[];
  /** The gateway address the inner subnets leave with; null: no SNAT. */
  snatAddress: string | null;
  floatingIps: FloatingIpPair[];
}

const byKey = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
const isRouterPort = (owner: string) => owner === ROUTER_INTERFACE_OWNER || owner === ROUTER_GATEWAY_OWNER;

/** The ports (interfaces and gateway) of a router, by port id. */
function routerPorts(view: L3View, routerId: string) {
  return [...view.ports.values()].filter((p) => p.port.deviceId === routerId && isRouterPort(p.port.deviceOwner)).sort(byKey((p) => p.port.id));
}

/** The host a router runs on: its gateway port's, else its lowest-id bound interface's ('' none). */
export function routerHostOf(view: L3View, routerId: string): string {
  const bound = routerPorts(view, routerId).filter((p) => p.hostId);
  return (bound.find((p) => p.port.deviceOwner === ROUTER_GATEWAY_OWNER) ?? bound[0])?.hostId ?? '';
}

/**
 * The router ports an L3-capable agent on `hostId` should bind to itself: those of the routers that
 * run nowhere yet or on this host, not bound here.
 */
export function routerPortsToBind(view: L3View, hostId: string): { portId: string; version: number }[] {
  const result: { portId: string; version: number }[] = [];
  for (const { router } of [...view.routers.values()].sort(byKey((r) => r.router.id))) {
    const host = routerHostOf(view, router.id);
    if (host !== '' && host !== hostId) continue;
    for (const p of routerPorts(view, router.id)) if (p.hostId !== hostId) result.push({ portId: p.port.id, version: p.version });
  }
  return result;
}

/** A router port's device in the namespace: Neutron's prefix and the port id's first 11 characters. */
export const routerDevice = (prefix: 'qr-' | 'qg-', portId: string): string => `${prefix}${portId.slice(0, 11)}`;

/** The routers `hostId` runs and what each one's namespace should hold. */
export function desiredRouters(view: L3View, hostId: string, namespacePrefix = 'qrouter-'): RouterState[] {
  const result: RouterState[] = [];
  for (const { router } of [...view.routers.values()].sort(byKey((r) => r.router.id))) {
    if (!router.adminStateUp || routerHostOf(view, router.id) !== hostId) continue;
    result.push(routerState(view, router, hostId, namespacePrefix));
  }
  return result;
}

function routerState(view: L3View, router: Router, hostId: string, namespacePrefix: string): RouterState {
  const ports = routerPorts(view, router.id).filter((p) => p.hostId === hostId && p.port.adminStateUp && view.networks.has(p.port.networkId));
  const portState = (p: (typeof ports)[number], prefix: 'qr-' | 'qg-'): RouterPortState => {
    const network = view.networks.get(p.port.networkId)!;
    const addresses: string[] = [];
    // Canonical text throughout, as `ip` and iptables-save print it back (else every pass would differ).
    for (const f of p.port.fixedIps) {
      const cidr = parseCidr(view.subnets.get(f.subnetId)?.cidr ?? '');
      const ip = canonicalIp(f.ipAddress);
      if (cidr?.version === 4 && ip && !ip.includes(':')) addresses.push(`${ip}/${cidr.prefix}`);
    }
    return { portId: p.port.id, device: routerDevice(prefix, p.port.id), mac: p.port.macAddress, addresses: addresses.sort(), mtu: network.mtu || defaultMtu(network.networkType) };
  };
  const interfaces = ports.filter((p) => p.port.deviceOwner === ROUTER_INTERFACE_OWNER).map((p) => portState(p, 'qr-'));
  // The gateway port is the one on the router's external network (a stale one elsewhere is ignored).
  const gatewayInfo = router.externalGatewayInfo;
  const gatewayPort = gatewayInfo ? ports.find((p) => p.port.deviceOwner === ROUTER_GATEWAY_OWNER && p.port.networkId === gatewayInfo.networkId) : undefined;
  const snatSources = [
    ...new Set(
      ports
        .filter((p) => p.port.deviceOwner === ROUTER_INTERFACE_OWNER)
        .flatMap((p) => p.port.fixedIps.map((f) => parseCidr(view.subnets.get(f.subnetId)?.cidr ?? '')))
        .filter((c) => c?.version === 4)
        .map((c) => cidrText(c!)),
    ),
  ].sort();
  if (!gatewayPort) return { routerId: router.id, namespace: `${namespacePrefix}${router.id}`, interfaces, gateway: null, snatSources: [], snatAddress: null, floatingIps: [] };

  const gateway = portState(gatewayPort, 'qg-');
  const gatewayIp = gateway.addresses[0]?.split('/')[0] ?? null;
  const firstV4 = gatewayPort.port.fixedIps.find((f) => parseCidr(view.subnets.get(f.subnetId)?.cidr ?? '')?.version === 4);
  const defaultRoute = firstV4 ? (view.subnets.get(firstV4.subnetId)?.gatewayIp ?? null) : null;
  // A floating IP is served once it is associated with a fixed address this router reaches.
  const inner = snatSources.map((c) => parseCidr(c)!);
  const reached = (ip: string) => {
    const a = parseIp(ip);
    return a?.version === 4 && inner.some((c) => inCidr(c, a));
  };
  const floatingIps = [...view.floatingIps.values()]
    .map((f) => f.floatingIp)
    .filter((f) => f.routerId === router.id && f.portId && f.floatingNetworkId === gatewayPort.port.networkId)
    .filter((f) => parseIp(f.floatingIpAddress)?.version === 4 && reached(f.fixedIpAddress))
    .map((f) => ({ floatingIpId: f.id, floatingIp: canonicalIp(f.floatingIpAddress)!, fixedIp: canonicalIp(f.fixedIpAddress)! }))
    .sort(byKey((f) => f.floatingIpId));
  gateway.addresses = [...gateway.addresses, ...floatingIps.map((f) => `${f.floatingIp}/32`)].sort();
  return {
    routerId: router.id,
    namespace: `${namespacePrefix}${router.id}`,
    interfaces,
    gateway: { ...gateway, defaultRoute },
    snatSources: gatewayInfo!.enableSnat && gatewayIp ? snatSources : [],
    snatAddress: gatewayInfo!.enableSnat ? gatewayIp : null,
    floatingIps,
  };
}

/** The routers' nat table chains. */
export const NAT_CHAINS = { dnat: 'strata-dnat', snat: 'strata-snat' } as const;

/**
 * The router namespace's whole nat table in iptables-save's own form (so that what
 * `iptables-save -t nat` prints back compares equal): DNAT per floating IP in PREROUTING (and
 * OUTPUT, for the router's own packets), then in POSTROUTING the floating IPs' SNAT before the
 * gateway SNAT, both only for packets leaving through the gateway (east-west stays untranslated).
 */
export function natRules(r: RouterState): string[] {
  const lines = [
    '*nat',
    ':PREROUTING ACCEPT',
    ':INPUT ACCEPT',
    ':OUTPUT ACCEPT',
    ':POSTROUTING ACCEPT',
    `:${NAT_CHAINS.dnat} -`,
    `:${NAT_CHAINS.snat} -`,
    `-A PREROUTING -j ${NAT_CHAINS.dnat}`,
    `-A OUTPUT -j ${NAT_CHAINS.dnat}`,
    `-A POSTROUTING -j ${NAT_CHAINS.snat}`,
  ];
  const qg = r.gateway?.device;
  if (qg) {
    for (const f of r.floatingIps) lines.push(`-A ${NAT_CHAINS.dnat} -d ${f.floatingIp}/32 -j DNAT --to-destination ${f.fixedIp}`);
    for (const f of r.floatingIps) lines.push(`-A ${NAT_CHAINS.snat} -s ${f.fixedIp}/32 -o ${qg} -j SNAT --to-source ${f.floatingIp}`);
    if (r.snatAddress) for (const c of r.snatSources) lines.push(`-A ${NAT_CHAINS.snat} -s ${c} -o ${qg} -j SNAT --to-source ${r.snatAddress}`);
  }
  lines.push('COMMIT');
  return lines;
}

/** The floating -> fixed translations of a nat table in natRules()' form. */
export function dnatMappings(lines: readonly string[]): Map<string, string> {
  const result = new Map<string, string>();
  for (const l of lines) {
    const m = l.match(new RegExp(`^-A ${NAT_CHAINS.dnat} -d ([0-9.]+)/32 -j DNAT --to-destination ([0-9.]+)$`));
    if (m) result.set(m[1]!, m[2]!);
  }
  return result;
}

/** `iptables-save -t nat` output as natRules() writes it: no comments, no counters. */
export function normalizeNatSave(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (l.startsWith(':') ? l.replace(/\s*\[\d+:\d+\]$/, '') : l));
}

// ----------------------------------------------------------------------------------------------
// The executor.

export interface RouterHostOptions {
  ovs: Ovs;
  /** The integration bridge. */
  bridge: string;
  /**
   * The namespace ovs-vswitchd runs in (internal ports appear there before they move into their
   * router's namespace); undefined: this process's own.
   */
  vswitchdNetns?: string;
  /** Every namespace with this prefix is this host's to manage (default 'qrouter-'). */
  namespacePrefix?: string;
}

/** The OVS external id marking the ports RouterHost plugged (the router they belong to). */
const ROUTER_ID_KEY = 'strata-router';

interface RunResult {
  stdout: string;
}

function run(cmd: string, args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (input === undefined) {
      execFile(cmd, args, { timeout: 30_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${(stderr || error.message).trim()}`));
        else resolve({ stdout });
      });
      return;
    }
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ stdout }) : reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}): ${stderr.trim()}`))));
    child.stdin.end(input);
  });
}

interface LinkInfo {
  ifname: string;
  address?: string;
  mtu: number;
  flags: string[];
  addr_info: { family: string; local: string; prefixlen: number; scope: string }[];
}

/** Makes the router namespaces of a host match the routers it should run. */
export class RouterHost {
  private readonly prefix: string;
  readonly stats = { namespacesCreated: 0, namespacesRemoved: 0, portsPlugged: 0, portsUnplugged: 0, addressesChanged: 0, routesChanged: 0, natApplied: 0 };

  constructor(private readonly o: RouterHostOptions) {
    this.prefix = o.namespacePrefix ?? 'qrouter-';
  }

  private ns(namespace: string, ...args: string[]) {
    return run('ip', ['netns', 'exec', namespace, ...args]);
  }

  private async namespaces(): Promise<string[]> {
    const { stdout } = await run('ip', ['netns', 'list']);
    return stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n.startsWith(this.prefix));
  }

  /** Converges the host to `routers` (as desiredRouters gives them); removes what is not in it. */
  async reconcile(routers: RouterState[]): Promise<void> {
    for (const r of routers) if (!r.namespace.startsWith(this.prefix)) throw new Error(`router namespace ${r.namespace} lacks this host's prefix ${this.prefix}`);
    const existing = new Set(await this.namespaces());
    const ovsPorts = (await this.o.ovs.listPorts(this.o.bridge)).filter((p) => p.externalIds[ROUTER_ID_KEY]);
    const wanted = new Set(routers.flatMap((r) => [...r.interfaces, ...(r.gateway ? [r.gateway] : [])].map((p) => p.device)));
    // Ports of removed interfaces, gateways and routers first: deleting the OVS port removes its device.
    for (const p of ovsPorts) {
      if (wanted.has(p.name)) continue;
      await this.o.ovs.deletePort(this.o.bridge, p.name);
      this.stats.portsUnplugged++;
    }
    const errors: Error[] = [];
    for (const r of routers) {
      // One router's failure must not keep the others from converging; the next pass retries it.
      await this.converge(r, existing.has(r.namespace), ovsPorts).catch((e: Error) => errors.push(new Error(`router ${r.routerId}: ${e.message}`)));
    }
    const desired = new Set(routers.map((r) => r.namespace));
    for (const ns of existing) {
      if (desired.has(ns)) continue;
      await run('ip', ['netns', 'del', ns]).catch((e: Error) => errors.push(e));
      this.stats.namespacesRemoved++;
    }
    if (errors.length > 0) throw new Error(errors.map((e) => e.message).join('; '));
  }

  private async converge(r: RouterState, exists: boolean, ovsPorts: { name: string; ofport: number; externalIds: Record<string, string> }[]): Promise<void> {
    if (!exists) {
      await run('ip', ['netns', 'add', r.namespace]);
      this.stats.namespacesCreated++;
    }
    let links = await this.links(r.namespace);
    if (!links.get('lo')?.flags.includes('UP')) await this.ns(r.namespace, 'ip', 'link', 'set', 'lo', 'up');
    if ((await this.ns(r.namespace, 'cat', '/proc/sys/net/ipv4/ip_forward')).stdout.trim() !== '1') {
      await this.ns(r.namespace, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    }
    const ports = [...r.interfaces, ...(r.gateway ? [r.gateway] : [])];
    let plugged = false;
    for (const p of ports) plugged = (await this.plug(r, p, links, ovsPorts)) || plugged;
    if (plugged) links = await this.links(r.namespace);
    // A floating IP leaving qg- goes last: once the nat table no longer has it, its connections'
    // conntrack entries (which would keep translating them) are deleted, then the address.
    const stale: string[] = [];
    for (const p of ports) stale.push(...(await this.configure(r.namespace, p, links.get(p.device), p === r.gateway)));
    await this.route(r);
    await this.nat(r);
    for (const a of stale) {
      const ip = a.split('/')[0]!;
      await this.forgetConnections(r.namespace, ip);
      await run('ip', ['-n', r.namespace, 'addr', 'del', a, 'dev', r.gateway!.device]);
      this.stats.addressesChanged++;
    }
  }

  /** Deletes the conntrack entries to or from (translated) `ip` (conntrack exits 1 when there were none). */
  private async forgetConnections(namespace: string, ip: string): Promise<void> {
    for (const filter of ['--orig-dst', '--reply-dst']) {
      await this.ns(namespace, 'conntrack', '-D', filter, ip).catch((e: Error) => {
        if (!/0 flow entries have been deleted/.test(e.message)) throw e;
      });
    }
  }

  private async links(namespace: string): Promise<Map<string, LinkInfo>> {
    const { stdout } = await run('ip', ['-n', namespace, '-j', 'addr', 'show']);
    return new Map((JSON.parse(stdout || '[]') as LinkInfo[]).map((l) => [l.ifname, l]));
  }

  /** Puts the port's OVS internal device into the router's namespace; true when it moved one. */
  private async plug(r: RouterState, p: RouterPortState, links: Map<string, LinkInfo>, ovsPorts: { name: string; externalIds: Record<string, string> }[]): Promise<boolean> {
    const row = ovsPorts.find((x) => x.name === p.device);
    const rowOk = row && row.externalIds['iface-id'] === p.portId && row.externalIds[ROUTER_ID_KEY] === r.routerId;
    if (rowOk && links.has(p.device)) return false;
    const inHost = async () => run('ip', [...(this.o.vswitchdNetns ? ['-n', this.o.vswitchdNetns] : []), 'link', 'show', 'dev', p.device]).then(() => true, () => false);
    // A row for another port or router, or whose device went with a deleted namespace: plug afresh.
    if (row && (!rowOk || !(await inHost()))) await this.o.ovs.deletePort(this.o.bridge, p.device);
    if (!rowOk || !(await inHost())) {
      await this.o.ovs.addPort(this.o.bridge, p.device, {
        type: 'internal',
        externalIds: { 'iface-id': p.portId, 'attached-mac': p.mac, 'iface-status': 'active', [ROUTER_ID_KEY]: r.routerId },
      });
    }
    await run('ip', [...(this.o.vswitchdNetns ? ['-n', this.o.vswitchdNetns] : []), 'link', 'set', 'dev', p.device, 'netns', r.namespace]);
    // The userspace datapath does not complete partial checksums (as for the guests' veths).
    await this.ns(r.namespace, 'ethtool', '-K', p.device, 'tx', 'off').catch(() => undefined);
    this.stats.portsPlugged++;
    return true;
  }

  /** Sets the device's MAC, MTU, state and addresses; returns the floating /32s to remove from qg- last. */
  private async configure(namespace: string, p: RouterPortState, link: LinkInfo | undefined, gateway: boolean): Promise<string[]> {
    if (!link) throw new Error(`${p.device} is not in ${namespace}`);
    if (link.address !== p.mac || link.mtu !== p.mtu || !link.flags.includes('UP')) {
      await run('ip', ['-n', namespace, 'link', 'set', 'dev', p.device, 'address', p.mac, 'mtu', String(p.mtu), 'up']);
    }
    const actual = new Set(link.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
    const desired = new Set(p.addresses);
    const later: string[] = [];
    for (const a of actual) {
      if (desired.has(a)) continue;
      if (gateway && a.endsWith('/32')) {
        later.push(a);
        continue;
      }
      await run('ip', ['-n', namespace, 'addr', 'del', a, 'dev', p.device]);
      this.stats.addressesChanged++;
    }
    for (const a of desired) {
      if (actual.has(a)) continue;
      await run('ip', ['-n', namespace, 'addr', 'add', a, 'dev', p.device]);
      this.stats.addressesChanged++;
    }
    return later;
  }

  private async route(r: RouterState): Promise<void> {
    const { stdout } = await run('ip', ['-n', r.namespace, '-j', 'route', 'show', 'default']);
    const actual = (JSON.parse(stdout || '[]') as { gateway?: string; dev?: string }[])[0];
    const via = r.gateway?.defaultRoute ?? null;
    if (via && r.gateway) {
      if (actual?.gateway === via && actual.dev === r.gateway.device) return;
      await run('ip', ['-n', r.namespace, 'route', 'replace', 'default', 'via', via, 'dev', r.gateway.device]);
      this.stats.routesChanged++;
    } else if (actual) {
      await run('ip', ['-n', r.namespace, 'route', 'del', 'default']);
      this.stats.routesChanged++;
    }
  }

  /** Replaces the namespace's nat table in one iptables-restore (atomic) when it differs. */
  private async nat(r: RouterState): Promise<void> {
    const desired = natRules(r);
    const actual = normalizeNatSave((await this.ns(r.namespace, 'iptables-save', '-t', 'nat')).stdout);
    if (actual.join('\n') === desired.join('\n')) return;
    await run('ip', ['netns', 'exec', r.namespace, 'iptables-restore', '-w', '5'], `${desired.join('\n')}\n`);
    this.stats.natApplied++;
    // A floating IP now translated to another fixed address (or not at all): its connections'
    // conntrack entries would keep the old translation.
    const now = dnatMappings(desired);
    for (const [floating, fixed] of dnatMappings(actual)) if (now.get(floating) !== fixed) await this.forgetConnections(r.namespace, floating);
  }
}

/** The network agent's `l3` option: run routers on this host. */
export interface L3Options {
  /** Default 'qrouter-'; every namespace with it is this agent's (tests give each host its own). */
  namespacePrefix?: string;
  /** The namespace ovs-vswitchd runs in, when not the agent's own (simulated hosts). */
  vswitchdNetns?: string;
}

/**
 * The floating IP status reports due: ACTIVE for those this host's routers serve, DOWN for those
 * shown ACTIVE that are served by no router anymore (disassociated, router gone or elsewhere).
 */
export function floatingIpReports(view: L3View, hostId: string, served: RouterState[]): { floatingIpId: string; version: number; status: 'ACTIVE' | 'DOWN'; portId: string }[] {
  const here = new Set(served.flatMap((r) => r.floatingIps.map((f) => f.floatingIpId)));
  const result: { floatingIpId: string; version: number; status: 'ACTIVE' | 'DOWN'; portId: string }[] = [];
  for (const { floatingIp: f, version } of [...view.floatingIps.values()].sort(byKey((x) => x.floatingIp.id))) {
    if (here.has(f.id)) {
      if (f.status !== 'ACTIVE') result.push({ floatingIpId: f.id, version, status: 'ACTIVE', portId: f.portId });
    } else if (f.status === 'ACTIVE' && (!f.routerId || routerHostOf(view, f.routerId) === hostId || !view.routers.has(f.routerId))) {
      result.push({ floatingIpId: f.id, version, status: 'DOWN', portId: f.portId });
    }
  }
  return result;
}
