// A host's network agent registration read as a specification: recorded once, again only when its
// tunnel address or roles change, refused with the field it names, and removed by an operator.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { given } from '../kernel/specification.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const AT_H1 = { aggregateId: 'h1' };
const agents = networkAggregate('network_agent').decider;
const agent = (over: Record<string, any> = {}) => ({ hostId: 'h1', tunnelIp: '192.0.2.1', l3: false, dhcp: true, ...over });
const registered = (a = agent()) => ({ type: 'NetworkAgentRegistered', agent: a }) as M;

describe('network agents', () => {
  it('records a registration, and writes nothing for one that changes nothing', () => {
    expect(given(agents, []).when({ type: 'RegisterNetworkAgent', agent: agent() } as M, AT_H1)).toEqual({ events: [registered()] });
    expect(given(agents, [registered()]).when({ type: 'RegisterNetworkAgent', agent: agent() } as M, AT_H1)).toEqual({ events: [] });
    expect(given(agents, [registered()]).when({ type: 'RegisterNetworkAgent', agent: agent({ tunnelIp: '192.0.2.9' }) } as M, AT_H1)).toEqual({ events: [registered(agent({ tunnelIp: '192.0.2.9' }))] });
    expect(given(agents, [registered()]).when({ type: 'RegisterNetworkAgent', agent: agent({ l3: true }) } as M, AT_H1)).toEqual({ events: [registered(agent({ l3: true }))] });
  });

  it('refuses a bad tunnel address or another host id, naming the field', () => {
    const bad = given(agents, []).when({ type: 'RegisterNetworkAgent', agent: agent({ tunnelIp: '192.0.2' }) } as M, AT_H1);
    expect(bad).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'agent.tunnel_ip' } });
    const other = given(agents, []).when({ type: 'RegisterNetworkAgent', agent: agent({ hostId: 'h2' }) } as M, AT_H1);
    expect(other).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'agent.host_id' } });
  });

  it('removes a registered agent; an unknown one is NOT_FOUND', () => {
    expect(given(agents, [registered()]).when({ type: 'RemoveNetworkAgent' } as M, AT_H1)).toEqual({ events: [{ type: 'NetworkAgentRemoved', agent: agent() }] });
    expect(given(agents, []).when({ type: 'RemoveNetworkAgent' } as M, AT_H1)).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });
});
