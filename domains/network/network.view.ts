// What the network agents know of the network domain: a fold of its events into networks (their
// segment) and ports (their network, addresses, binding and status). Pure and deterministic, like
// the compute view: a restarted agent folds the log again and knows what it knew.
import type { Message } from '../kernel/decider.js';
import type { Network, Port } from './network.types.js';

/** A decoded network event with where it came from. */
export type NetworkEvent = Message & Record<string, any> & { aggregateType: string; aggregateId: string; version: number };

export interface PortView {
  port: Port;
  /** The host it is bound to ('' when unbound). */
  hostId: string;
  status: string;
  version: number;
}

export class NetworkView {
  readonly networks = new Map<string, Network>();
  readonly ports = new Map<string, PortView>();

  /** Folds one event; returns the id of the port or network it changed. */
  apply(e: NetworkEvent): string | undefined {
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
}
