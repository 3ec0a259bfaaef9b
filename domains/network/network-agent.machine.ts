// A host's network agent as the network domain records it (Neutron's agents table): the address
// its VXLAN tunnels end at, and whether it runs routers and DHCP. Each agent registers itself at
// start; every agent builds a tunnel to every other registered agent's address, so hosts join
// and leave the overlay through the log, with no static peer list. A registration that changes
// nothing writes nothing, so an agent restarting again and again adds no events.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { parseIp } from './ip.js';

export interface NetworkAgentRecord {
  hostId: string;
  /** Where the host's VXLAN tunnels end (Neutron's local_ip / tunnel_ip). */
  tunnelIp: string;
  /** It runs routers (l3) and serves DHCP to its ports. */
  l3: boolean;
  dhcp: boolean;
}

export interface NetworkAgentContext {
  agent: NetworkAgentRecord | null;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

export function networkAgentRefusal(context: NetworkAgentContext, event: Ev): Rejection | undefined {
  if (event.type === 'RegisterNetworkAgent') {
    const a = event.agent as NetworkAgentRecord;
    if (a.hostId !== event.meta?.aggregateId) return { code: 'INVALID_ARGUMENT', field: 'agent.host_id', message: `agent.host_id "${a.hostId}" is not the agent's id "${event.meta?.aggregateId}"` };
    if (!parseIp(a.tunnelIp)) return { code: 'INVALID_ARGUMENT', field: 'agent.tunnel_ip', message: `agent.tunnel_ip "${a.tunnelIp}" is not an IP address` };
  }
  if (event.type === 'RemoveNetworkAgent' && !context.agent) return { code: 'NOT_FOUND', message: `no network agent ${event.meta?.aggregateId}` };
  return undefined;
}

const allowed = ({ context, event }: { context: NetworkAgentContext; event: Ev }) => networkAgentRefusal(context, event) === undefined;
const same = (a: NetworkAgentRecord | null, b: NetworkAgentRecord) => a !== null && a.tunnelIp === b.tunnelIp && a.l3 === b.l3 && a.dhcp === b.dhcp;

export const networkAgentMachine = setup({}).createMachine({
  id: 'network_agent',
  initial: 'tracking',
  context: { agent: null } as NetworkAgentContext,
  states: {
    tracking: {
      on: {
        RegisterNetworkAgent: {
          guard: allowed,
          actions: enqueueActions(({ context, event, enqueue }: { context: NetworkAgentContext; event: Ev; enqueue: any }) => {
            if (!same(context.agent, event.agent)) enqueue.emit({ type: 'NetworkAgentRegistered', agent: event.agent });
          }),
        },
        NetworkAgentRegistered: { actions: assign(({ event }: { event: Ev }) => ({ agent: event.agent })) },
        RemoveNetworkAgent: {
          guard: allowed,
          actions: enqueueActions(({ context, enqueue }: { context: NetworkAgentContext; enqueue: any }) => enqueue.emit({ type: 'NetworkAgentRemoved', agent: context.agent })),
        },
        NetworkAgentRemoved: { actions: assign(() => ({ agent: null })) },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const NETWORK_AGENT_COMMANDS = ['RegisterNetworkAgent', 'RemoveNetworkAgent'] as const;
export const NETWORK_AGENT_EVENTS = ['NetworkAgentRegistered', 'NetworkAgentRemoved'] as const;
