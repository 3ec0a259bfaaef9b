// The compiled integration-bridge tables (flows.ts) as text: deterministic whatever the input
// order, and a network's frames only to its own ports and tunnels. The same tables carry real
// packets in test/network/network-agent.test.ts (two hosts, two tenants, a forged MAC, a restart).
import { describe, expect, it } from 'vitest';
import { compileFlows, type HostDesiredState } from './flows.js';

const NETS = [
  { networkId: 'net-a', vni: 1001, tag: 1001 },
  { networkId: 'net-b', vni: 1002, tag: 1002 },
];
// Both tenants use 10.0.0.0/24: a1 and b1 even share 10.0.0.1.
const GUESTS = [
  { key: 'a1', host: 'h1', networkId: 'net-a', ip: '10.0.0.1', mac: '02:00:00:00:0a:01', ofport: 1 },
  { key: 'b1', host: 'h1', networkId: 'net-b', ip: '10.0.0.1', mac: '02:00:00:00:0b:01', ofport: 2 },
  { key: 'a2', host: 'h2', networkId: 'net-a', ip: '10.0.0.2', mac: '02:00:00:00:0a:02', ofport: 1 },
  { key: 'b3', host: 'h2', networkId: 'net-b', ip: '10.0.0.3', mac: '02:00:00:00:0b:03', ofport: 2 },
];
const TUNNEL_OFPORT = 100;

function desired(hostId: string): HostDesiredState {
  return {
    networks: NETS,
    ports: GUESTS.filter((g) => g.host === hostId).map((g) => ({ portId: `port-${g.key}`, ofport: g.ofport, mac: g.mac, ips: [g.ip], networkId: g.networkId, portSecurity: true })),
    remotePorts: GUESTS.filter((g) => g.host !== hostId).map((g) => ({ mac: g.mac, networkId: g.networkId, hostId: g.host })),
    tunnels: [{ hostId: hostId === 'h1' ? 'h2' : 'h1', ofport: TUNNEL_OFPORT }],
  };
}

describe('compiled integration-bridge tables', () => {
  it('are the same text whatever order the desired state comes in', () => {
    const s = desired('h1');
    const shuffled: HostDesiredState = { networks: [...s.networks].reverse(), ports: [...s.ports].reverse(), remotePorts: [...s.remotePorts].reverse(), tunnels: s.tunnels };
    expect(compileFlows(shuffled)).toEqual(compileFlows(s));
  });

  it('send a network only to its own ports and tunnels, and drop what they do not know', () => {
    const flows = compileFlows(desired('h1'));
    expect(flows).toContain('table=10,priority=100,reg6=1001,dl_dst=02:00:00:00:0a:02,actions=set_field:1001->tun_id,output:100');
    expect(flows.filter((f) => f.startsWith('table=10') && f.includes('reg6=1001') && f.includes('0b:'))).toEqual([]);
    expect(flows).toContain('table=0,priority=0,actions=drop');
    expect(flows).toContain('table=10,priority=0,actions=drop');
  });
});
