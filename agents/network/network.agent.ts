// The network agent of one host: a level-triggered reconciler. It folds the network events
// (NetworkView through a DomainFeed), finds the ports bound to its host whose device is plugged
// into the integration bridge (an OVS interface whose external_ids:iface-id is the port's id, as
// Neutron's VIF plugging sets it), compiles the bridge's whole table from that desired state
// (flows.ts) and applies it atomically (replace-flows in one bundle) when it changed; then it
// reports each wired port ACTIVE, and DOWN when its device is gone. A restart recompiles the
// same table, so replace-flows leaves unchanged flows, and their counters, as they were.
import type { Message } from '../../domains/kernel/decider.js';
import { NetworkView, type NetworkEvent } from '../../domains/network/network.view.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import type { DomainFeed } from '../../infra/sagas/domain.feed.js';
import { followNetwork } from '../../infra/sagas/network.feed.js';
import { compileFlows, type HostDesiredState } from './flows.js';
import type { Ovs } from './ovs.js';
import { desiredRouters, floatingIpReports, RouterHost, routerPortsToBind, type L3Options } from './l3.js';
import { firewallFor, isTrustedPort, portAddresses } from './security-groups.js';
import { compileDhcpFlows, planDhcp } from './dhcp.js';
import { DhcpServers, type DhcpServiceOptions } from './dnsmasq.js';

export interface NetworkAgentOptions {
  log: Log;
  topology: TopologyOptions;
  hostId: string;
  ovs: Ovs;
  /** The integration bridge (netdev, fail_mode=secure). */
  bridge: string;
  /**
   * Where this host's VXLAN tunnels end. The agent registers it (RegisterNetworkAgent) and keeps a
   * tunnel port to every other registered agent on the integration bridge. Unset: no tunnels.
   */
  tunnelIp?: string;
  /** The network domain's name (tests isolate themselves by it); default 'network'. */
  domain?: string;
  /** Period of the full pass that notices devices plugged or unplugged (default 2 s). */
  resyncMs?: number;
  now?: () => number;
  onError?: (error: Error) => void;
  /** Run routers here (l3.ts): bind the ports of unscheduled routers to this host, run their namespaces. */
  l3?: true | L3Options;
  /** Serve DHCP to this host's ports (dhcp.ts: a dnsmasq per network in a qdhcp namespace). */
  dhcp?: DhcpServiceOptions;
}


/** The external id that marks a tunnel port the agent made, with the peer host as its value. */
const TUNNEL_PEER = 'strata-tunnel-peer';

/** `vx` + the peer's IPv4 address in hex (Neutron names them vxlan-<hex>; interface names stop at 15 characters), or a hash of an IPv6 one. */
export function tunnelPortName(ip: string): string {
  if (!ip.includes(':')) return `vx${ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}`;
  let h = 0x811c9dc5;
  for (const c of ip) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return `vx6${h.toString(16).padStart(8, '0')}`;
}

export class NetworkAgent {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private applied: string | undefined;
  private readonly warnedUngrouped = new Set<string>();
  private readonly actor: Actor;
  readonly stats = { tablesApplied: 0, reports: 0 };
  /** This host's router namespaces, when the agent runs routers. */
  readonly routers: RouterHost | undefined;
  /** This host's DHCP servers, when the agent serves DHCP. */
  readonly dhcp: DhcpServers | undefined;

  private constructor(
    private readonly o: NetworkAgentOptions,
    readonly feed: DomainFeed<NetworkView, NetworkEvent>,
    private readonly bus: CommandBus,
  ) {
    this.actor = { userId: `strata-network-agent/${o.hostId}`, projectId: '', roles: ['admin', 'service'] };
    const l3 = o.l3 === true ? {} : o.l3;
    this.routers = l3 ? new RouterHost({ ovs: o.ovs, bridge: o.bridge, ...l3 }) : undefined;
    this.dhcp = o.dhcp ? new DhcpServers(o.dhcp, o.hostId, o.ovs, o.bridge) : undefined;
  }

  static async start(o: NetworkAgentOptions): Promise<NetworkAgent> {
    const feed = await followNetwork(o);
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const agent = new NetworkAgent(o, feed, bus);
    if (o.tunnelIp) await agent.register(o.tunnelIp);
    feed.onChange(() => agent.reconcile());
    await agent.reconcileNow();
    agent.timer = setInterval(() => agent.reconcile(), o.resyncMs ?? 2000);
    agent.timer.unref();
    return agent;
  }

  /** Asks for a pass; passes never overlap, and changes during one bring one more. */
  reconcile(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.reconcileNow()
      .catch((e: Error) => {
        if (!this.closed) (this.o.onError ?? ((x) => console.error(`network agent ${this.o.hostId}: ${x.message}`)))(e);
      })
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.reconcile();
        }
      });
  }

  /** Records this host's agent (its tunnel address and roles); the decider ignores a registration that changes nothing. */
  private async register(tunnelIp: string): Promise<void> {
    const agent = { hostId: this.o.hostId, tunnelIp, l3: Boolean(this.o.l3), dhcp: Boolean(this.o.dhcp) };
    const reply = await this.bus.send({
      domain: this.feed.domain,
      aggregateType: 'network_agent',
      aggregateId: this.o.hostId,
      type: 'RegisterNetworkAgent',
      payload: networkCodecFor('network_agent').encodeCommand({ type: 'RegisterNetworkAgent', agent } as Message),
      actor: this.actor,
      issuedAtMs: (this.o.now ?? Date.now)(),
    });
    if (reply.kind !== 'accepted') throw new Error(`network agent ${this.o.hostId}: registration refused: ${reply.rejection.message}`);
    await this.feed.caughtUp(reply.position, reply.events.length);
  }

  /**
   * A VXLAN port to every other registered agent (named after the peer's address, marked with its
   * host), none to agents that are gone; returns the tunnels by host with their ofports.
   */
  private async ensureTunnels(): Promise<{ hostId: string; ofport: number }[]> {
    if (!this.o.tunnelIp) return [];
    const peers = [...this.feed.view.agents.values()].filter((a) => a.hostId !== this.o.hostId);
    const existing = (await this.o.ovs.listPorts(this.o.bridge)).filter((p) => p.externalIds[TUNNEL_PEER] !== undefined);
    const tunnels: { hostId: string; ofport: number }[] = [];
    const wanted = new Set<string>();
    for (const peer of peers) {
      const name = tunnelPortName(peer.tunnelIp);
      wanted.add(name);
      const have = existing.find((p) => p.name === name && p.externalIds[TUNNEL_PEER] === peer.hostId && p.ofport > 0);
      const ofport =
        have?.ofport ??
        (await this.o.ovs.addPort(this.o.bridge, name, { type: 'vxlan', options: { remote_ip: peer.tunnelIp, local_ip: this.o.tunnelIp, key: 'flow' }, externalIds: { [TUNNEL_PEER]: peer.hostId } }));
      tunnels.push({ hostId: peer.hostId, ofport });
    }
    for (const p of existing) if (!wanted.has(p.name)) await this.o.ovs.deletePort(this.o.bridge, p.name);
    return tunnels;
  }

  /** The desired state of this host from the view and the bridge's plugged devices. */
  private async desired(tunnels: { hostId: string; ofport: number }[]): Promise<{ state: HostDesiredState; wired: Set<string>; boundHere: string[] }> {
    const view = this.feed.view;
    const plugged = new Map<string, number>();
    for (const p of await this.o.ovs.listPorts(this.o.bridge)) {
      const iface = p.externalIds['iface-id'];
      if (iface && p.ofport > 0) plugged.set(iface, p.ofport);
    }
    const boundHere = [...view.ports.values()].filter((p) => p.hostId === this.o.hostId);
    const local = boundHere.filter((p) => p.port.adminStateUp && plugged.has(p.port.id) && view.networks.has(p.port.networkId));
    const networkIds = new Set(local.map((p) => p.port.networkId));
    const networks = [...networkIds].map((id) => {
      const n = view.networks.get(id)!;
      // The VNI doubles as the network's tag on this host: stable across restarts and changes.
      return { networkId: id, vni: n.segmentationId, tag: n.segmentationId };
    });
    const state: HostDesiredState = {
      networks,
      ports: local.map((p) => {
        const secured = p.port.portSecurityEnabled && !isTrustedPort(p.port);
        if (secured && p.port.securityGroups.length === 0 && !this.warnedUngrouped.has(p.port.id)) {
          this.warnedUngrouped.add(p.port.id);
          console.warn(`network agent ${this.o.hostId}: port ${p.port.id} has port security and no security group: all its IP traffic is dropped (as in Neutron)`);
        }
        return {
          portId: p.port.id,
          ofport: plugged.get(p.port.id)!,
          mac: p.port.macAddress,
          ips: portAddresses(p.port),
          networkId: p.port.networkId,
          portSecurity: secured,
          firewall: secured ? firewallFor(view, p.port) : null,
        };
      }),
      remotePorts: [...view.ports.values()]
        .filter((p) => p.hostId && p.hostId !== this.o.hostId && networkIds.has(p.port.networkId))
        .map((p) => ({ mac: p.port.macAddress, networkId: p.port.networkId, hostId: p.hostId })),
      tunnels,
    };
    return { state, wired: new Set(local.map((p) => p.port.id)), boundHere: boundHere.map((p) => p.port.id) };
  }

  private async reconcileNow(): Promise<void> {
    // Routers first, so that their ports are plugged when the table is compiled; a router that
    // fails must not hold back the other ports' table (its error is raised after it).
    const l3Error = this.routers ? await this.reconcileRouters().then(() => undefined, (e: Error) => e) : undefined;
    const { state, wired, boundHere } = await this.desired(await this.ensureTunnels());
    // DHCP servers before the table, which sends requests only to the servers that run; a network
    // whose server fails is reported and retried at the next pass, the others are served.
    const dhcp = this.dhcp ? await this.dhcp.reconcile(planDhcp(this.feed.view, state.ports), (e) => (this.o.onError ?? ((x) => console.error(`network agent ${this.o.hostId}: ${x.message}`)))(e)) : [];
    const flows = [...compileFlows(state), ...compileDhcpFlows(dhcp, state.ports)];
    const text = flows.join('\n');
    if (text !== this.applied) {
      await this.o.ovs.replaceFlows(this.o.bridge, flows);
      this.applied = text;
      this.stats.tablesApplied++;
    }
    // Report only once the table that carries the port is in place.
    for (const id of boundHere) {
      const p = this.feed.view.ports.get(id);
      if (!p) continue;
      if (wired.has(id) && p.status !== 'ACTIVE') await this.report(id, p.version, 'ReportPortUp');
      else if (!wired.has(id) && p.status === 'ACTIVE') await this.report(id, p.version, 'ReportPortDown');
    }
    if (l3Error) throw l3Error;
  }

  /** Binds unscheduled routers' ports here, converges the router namespaces, reports floating IPs. */
  private async reconcileRouters(): Promise<void> {
    const view = this.feed.view;
    const l3 = this.o.l3 === true ? {} : (this.o.l3 ?? {});
    for (const p of routerPortsToBind(view, this.o.hostId)) {
      await this.sendAs('port', p.portId, { type: 'BindPort', hostId: this.o.hostId }, `l3-agent/${this.o.hostId}/${p.portId}/${p.version}/BindPort`);
    }
    const routers = desiredRouters(view, this.o.hostId, l3.namespacePrefix);
    await this.routers!.reconcile(routers);
    for (const f of floatingIpReports(view, this.o.hostId, routers)) {
      await this.sendAs('floating_ip', f.floatingIpId, { type: 'ReportFloatingIpStatus', status: f.status, portId: f.portId }, `l3-agent/${this.o.hostId}/${f.floatingIpId}/${f.version}/${f.status}`);
    }
  }

  private async sendAs(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, commandId: string): Promise<void> {
    const reply: Reply = await this.bus.send({
      domain: this.feed.domain,
      aggregateType,
      aggregateId,
      type: command.type,
      payload: networkCodecFor(aggregateType).encodeCommand(command),
      actor: this.actor,
      // Keyed on the resource's version: a restarted agent repeating it meets the original reply.
      commandId,
      issuedAtMs: (this.o.now ?? Date.now)(),
    });
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
  }

  private async report(portId: string, version: number, type: 'ReportPortUp' | 'ReportPortDown'): Promise<void> {
    const command: Message & Record<string, unknown> = { type, hostId: this.o.hostId };
    const reply: Reply = await this.bus.send({
      domain: this.feed.domain,
      aggregateType: 'port',
      aggregateId: portId,
      type,
      payload: networkCodecFor('port').encodeCommand(command),
      actor: this.actor,
      // Keyed on the port's version: a restarted agent repeating a report meets the original reply.
      commandId: `network-agent/${this.o.hostId}/${portId}/${version}/${type}`,
      issuedAtMs: (this.o.now ?? Date.now)(),
    });
    this.stats.reports++;
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.bus.close();
    await this.feed.close();
  }
}
