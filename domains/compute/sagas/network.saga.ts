// The conductor's network step for one server (Nova's network allocation, done by the conductor
// here rather than on the compute host), from what the compute log says of the server and what the
// network log says of its ports. Level-triggered like the boot saga: a conductor that stopped
// anywhere asks again and gets the step still missing.
//
//   - a requested interface of a server with a host (a boot once it is assigned, an attach): make
//     the port on its network (device_owner compute:<zone>, device_id the server) or claim the port
//     given, bind it to the host (binding:host_id; the port goes BUILD, and ACTIVE once the host's
//     network agent wires the guest's tap), and record the allocation on the server;
//   - a port bound elsewhere than the server's host (a move, a reschedule, an unshelve): bind it
//     to the host; an offloaded server's ports are unbound (Nova unbinds on shelve offload). A live
//     migration keeps the binding on its source until the guest has arrived (Neutron activates the
//     destination's binding at the switch-over), so the running guest keeps its network meanwhile;
//   - a detached interface (detach, or a failed attach): let its port go, then forget it;
//   - a deleted server: let every port go. Letting go deletes a port the server made and frees
//     (device_id and device_owner cleared, unbound) a port the user gave.
import type { InstanceView } from '../compute.view.js';
import type { InstanceInterface } from '../instance.interfaces.js';

/** What the network log says of a port (absent: there is no such port). */
export interface PortFacts {
  /** binding:host_id ('' unbound). */
  hostId: string;
  deviceId: string;
}

export type NetworkStep =
  /** Make (or claim) the interface's port and bind it to `host`, then record the allocation. */
  | { kind: 'allocate'; iface: InstanceInterface; host: string }
  /** Bind the port to the server's host. */
  | { kind: 'bind'; portId: string; host: string }
  | { kind: 'unbind'; portId: string }
  /** Delete the port the server made, or free the one the user gave; `forget`: then remove the interface from the server. */
  | { kind: 'release'; iface: InstanceInterface; forget: boolean }
  | { kind: 'wait' };

export type ServerNetworkView = Pick<InstanceView, 'instanceId' | 'vm' | 'action' | 'host' | 'assigned' | 'interfaces'> & Partial<Pick<InstanceView, 'sourceHost'>>;

/** VM states in which a requested interface waits: no guest to give it to. */
const NO_ALLOCATION = new Set(['building', 'error', 'shelved_offloaded', 'soft-delete', 'deleted']);

/** Whether the server's requested interfaces may get their ports now, and on which host. */
function allocationHost(v: ServerNetworkView): string {
  if (!v.host) return '';
  if (v.action === 'create') return v.assigned ? v.host : '';
  return v.action === null && !NO_ALLOCATION.has(v.vm) ? v.host : '';
}

/** Whether a port still belongs to the server (a port the user gave may have been freed already). */
const held = (v: ServerNetworkView, i: InstanceInterface, p: PortFacts | undefined) => p !== undefined && (!i.preserveOnDelete || p.deviceId === v.instanceId);

export function nextNetworkStep(v: ServerNetworkView, port: (portId: string) => PortFacts | undefined): NetworkStep {
  if (v.vm === 'deleted') {
    for (const i of v.interfaces) if (held(v, i, port(i.portId))) return { kind: 'release', iface: i, forget: false };
    return { kind: 'wait' };
  }
  const host = allocationHost(v);
  // Where the ports of the plugged (or to be plugged) interfaces belong: the server's host; none once offloaded.
  const bindTo = v.vm === 'shelved_offloaded' ? '' : v.action === 'live-migration' && v.sourceHost ? v.sourceHost : v.host;
  for (const i of v.interfaces) {
    switch (i.state) {
      case 'requested':
        if (host) return { kind: 'allocate', iface: i, host };
        break;
      case 'detached':
        return { kind: 'release', iface: i, forget: true };
      default: {
        const p = port(i.portId);
        if (!p || p.hostId === bindTo) break;
        if (bindTo) return { kind: 'bind', portId: i.portId, host: bindTo };
        // No host but not offloaded: a boot between hosts (rescheduled); the next host binds it.
        if (v.vm === 'shelved_offloaded') return { kind: 'unbind', portId: i.portId };
      }
    }
  }
  return { kind: 'wait' };
}

/** Whether the server has network work the conductor should look at again on its ticks. */
export function networkUnsettled(v: ServerNetworkView, port: (portId: string) => PortFacts | undefined): boolean {
  return nextNetworkStep(v, port).kind !== 'wait';
}
