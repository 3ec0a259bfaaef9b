// What the network agents know of the network domain: a fold of its events into networks (their
// segment), subnets, security groups with their rules, ports (their network, addresses,
// binding and status), routers (their gateway; their interfaces and gateway are ports with the
// router's device owners), floating IPs (their association and status) and the hosts' network
// agents (where their tunnels end). Pure and deterministic, like
// the compute view: a restarted agent folds the log again and knows what it knew.
import type { Message } from '../kernel/decider.js';
import type { NetworkAgentRecord } from './network-agent.machine.js';
import type { FloatingIp, Network, Port, Router, SecurityGroup, SecurityGroupRule, Subnet } from './network.types.js';

/** A decoded network event with where it came from. */
export type NetworkEvent = Message & Record<string, any> & { aggregateType: string; aggregateId: string; version: number };

export interface PortView {
  port: Port;
  /** The host it is bound to ('' when unbound). */
  hostId: string;
  status: string;
  version: number;
}

export interface SecurityGroupView {
  securityGroup: SecurityGroup;
  rules: SecurityGroupRule[];
}

export interface RouterView {
  router: Router;
  version: number;
}

export interface FloatingIpView {
  floatingIp: FloatingIp;
  version: number;
}

/** The events NetworkView folds (the others it passes). */
export const NETWORK_VIEW_EVENTS = [
  'NetworkCreated', 'NetworkUpdated', 'NetworkDeleted',
  'SubnetCreated', 'SubnetUpdated', 'SubnetDeleted',
  'SecurityGroupCreated', 'SecurityGroupUpdated', 'SecurityGroupDeleted', 'SecurityGroupRuleAdded', 'SecurityGroupRuleRemoved',
  'PortCreated', 'PortUpdated', 'PortDeleted', 'PortBound', 'PortUnbound', 'PortStatusChanged',
  'RouterCreated', 'RouterUpdated', 'RouterGatewaySet', 'RouterGatewayCleared', 'RouterInterfaceAdded', 'RouterInterfaceRemoved', 'RouterDeleted',
  'FloatingIpCreated', 'FloatingIpUpdated', 'FloatingIpStatusChanged', 'FloatingIpDeleted',
  'NetworkAgentRegistered', 'NetworkAgentRemoved',
] as const;

export class NetworkView {
  readonly networks = new Map<string, Network>();
  readonly subnets = new Map<string, Subnet>();
  readonly securityGroups = new Map<string, SecurityGroupView>();
  readonly ports = new Map<string, PortView>();
  readonly routers = new Map<string, RouterView>();
  readonly floatingIps = new Map<string, FloatingIpView>();
  /** Registered network agents by host id. */
  readonly agents = new Map<string, NetworkAgentRecord>();

  /** Folds one event; returns the id of the resource it changed. */
  apply(e: NetworkEvent): string | undefined {
    if (e.aggregateType === 'subnet') {
      if (e.type === 'SubnetCreated' || e.type === 'SubnetUpdated') this.subnets.set(e.aggregateId, e.subnet as Subnet);
      else if (e.type === 'SubnetDeleted') this.subnets.delete(e.aggregateId);
      else return undefined;
      return e.aggregateId;
    }
    if (e.aggregateType === 'security_group') return this.applySecurityGroup(e);
    if (e.aggregateType === 'router') return this.applyRouter(e);
    if (e.aggregateType === 'floating_ip') return this.applyFloatingIp(e);
    if (e.aggregateType === 'network_agent') {
      if (e.type === 'NetworkAgentRegistered') this.agents.set(e.aggregateId, e.agent as NetworkAgentRecord);
      else if (e.type === 'NetworkAgentRemoved') this.agents.delete(e.aggregateId);
      else return undefined;
      return e.aggregateId;
    }
    if (e.aggregateType === 'network') {
      if (e.type === 'NetworkCreated' || e.type === 'NetworkUpdated') this.networks.set(e.aggregateId, e.network as Network);
      else if (e.type === 'NetworkDeleted') this.networks.delete(e.aggregateId);
      else return undefined;
      return e.aggregateId;
    }
    if (e.aggregateType !== 'port') return undefined;
    const p = this.ports.get(e.aggregateId);
    switch (e.type) {
      case 'PortCreated':
        this.ports.set(e.aggregateId, { port: e.port as Port, hostId: '', status: 'DOWN', version: e.version });
        return e.aggregateId;
      case 'PortDeleted':
        this.ports.delete(e.aggregateId);
        return e.aggregateId;
    }
    if (!p) return undefined;
    p.version = e.version;
    switch (e.type) {
      case 'PortUpdated':
        p.port = e.port as Port;
        break;
      case 'PortBound':
        p.hostId = e.hostId;
        break;
      case 'PortUnbound':
        p.hostId = '';
        break;
      case 'PortStatusChanged':
        p.status = e.status;
        break;
      default:
        return undefined;
    }
    return e.aggregateId;
  }

  private applySecurityGroup(e: NetworkEvent): string | undefined {
    const g = this.securityGroups.get(e.aggregateId);
    switch (e.type) {
      case 'SecurityGroupCreated':
        this.securityGroups.set(e.aggregateId, { securityGroup: e.securityGroup as SecurityGroup, rules: [] });
        return e.aggregateId;
      case 'SecurityGroupDeleted':
        this.securityGroups.delete(e.aggregateId);
        return e.aggregateId;
    }
    if (!g) return undefined;
    switch (e.type) {
      case 'SecurityGroupUpdated':
        g.securityGroup = e.securityGroup as SecurityGroup;
        break;
      case 'SecurityGroupRuleAdded':
        g.rules = [...g.rules, e.rule as SecurityGroupRule];
        break;
      case 'SecurityGroupRuleRemoved':
        g.rules = g.rules.filter((r) => r.id !== (e.rule as SecurityGroupRule).id);
        break;
      default:
        return undefined;
    }
    return e.aggregateId;
  }

  private applyRouter(e: NetworkEvent): string | undefined {
    switch (e.type) {
      case 'RouterCreated':
      case 'RouterUpdated':
      case 'RouterGatewaySet':
      case 'RouterGatewayCleared':
        this.routers.set(e.aggregateId, { router: e.router as Router, version: e.version });
        return e.aggregateId;
      case 'RouterDeleted':
        this.routers.delete(e.aggregateId);
        return e.aggregateId;
      case 'RouterInterfaceAdded':
      case 'RouterInterfaceRemoved': {
        // The interface itself is a port (view.ports); the router only moves on.
        const r = this.routers.get(e.aggregateId);
        if (!r) return undefined;
        r.version = e.version;
        return e.aggregateId;
      }
    }
    return undefined;
  }

  private applyFloatingIp(e: NetworkEvent): string | undefined {
    const f = this.floatingIps.get(e.aggregateId);
    switch (e.type) {
      case 'FloatingIpCreated':
        this.floatingIps.set(e.aggregateId, { floatingIp: e.floatingIp as FloatingIp, version: e.version });
        return e.aggregateId;
      case 'FloatingIpDeleted':
        this.floatingIps.delete(e.aggregateId);
        return e.aggregateId;
    }
    if (!f) return undefined;
    switch (e.type) {
      case 'FloatingIpUpdated':
        f.floatingIp = e.floatingIp as FloatingIp;
        break;
      case 'FloatingIpStatusChanged':
        f.floatingIp = { ...f.floatingIp, status: e.status };
        break;
      default:
        return undefined;
    }
    f.version = e.version;
    return e.aggregateId;
  }
}
