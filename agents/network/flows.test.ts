// The compiled integration-bridge tables (flows.ts) as text: deterministic whatever the input
// order, and a network's frames only to its own ports and tunnels. The same tables carry real
// packets in test/network/network-agent.test.ts (two hosts, two tenants, a forged MAC, a restart).
import { describe, expect, it } from 'vitest';
import { compileFlows, portMasks, type HostDesiredState } from './flows.js';
import type { FirewallRule, PortFirewall } from './security-groups.js';

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
    ports: GUESTS.filter((g) => g.host === hostId).map((g) => ({ portId: `port-${g.key}`, ofport: g.ofport, mac: g.mac, ips: [g.ip], networkId: g.networkId, portSecurity: true, firewall: null })),
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

describe('security-group tables', () => {
  const rule = (over: Partial<FirewallRule>): FirewallRule => ({ direction: 'ingress', ethertype: 'IPv4', protocol: null, portRangeMin: null, portRangeMax: null, remotePrefix: null, remoteGroup: null, ...over });
  const withFirewall = (ports: number, fw: PortFirewall): HostDesiredState => ({
    networks: [NETS[0]!],
    ports: Array.from({ length: ports }, (_, i) => ({ portId: `p${i}`, ofport: i + 1, mac: `02:00:00:00:01:${(i + 16).toString(16)}`, ips: [`10.0.0.${i + 10}`], networkId: 'net-a', portSecurity: true, firewall: fw })),
    remotePorts: [],
    tunnels: [],
  });

  it('cover a port range exactly with value/mask matches', () => {
    const covered = (masks: string[]) => {
      const set = new Set<number>();
      for (const m of masks) {
        const [v, k] = m.includes('/') ? m.split('/').map((x) => Number(x)) : [Number(m), 0xffff];
        for (let p = 0; p < 0x10000; p++) if ((p & k!) === v) set.add(p);
      }
      return set;
    };
    for (const [min, max] of [[22, 22], [1, 65535], [1000, 1999], [0, 65535], [8080, 8088]] as const) {
      const set = covered(portMasks(min, max));
      expect(set.size).toBe(max - min + 1);
      expect(Math.min(...set)).toBe(min);
      expect(Math.max(...set)).toBe(max);
    }
    expect(portMasks(1000, 1999).length).toBeLessThan(16);
  });

  it('match a remote group through one conjunction: members + ports flows, not members x ports', () => {
    const members = Array.from({ length: 50 }, (_, i) => `10.0.1.${i + 1}`);
    const fw: PortFirewall = { stateful: true, rules: [rule({ protocol: 6, portRangeMin: 22, remoteGroup: { id: 'g', members } })] };
    const conj = (ports: number) => compileFlows(withFirewall(ports, fw)).filter((f) => f.includes('conjunction('));
    // 3 conntrack states: per member one clause-2 flow each, per port one clause-1 flow each.
    expect(conj(1).length).toBe(3 * (50 + 1));
    expect(conj(20).length).toBe(3 * (50 + 20));
    const accepts = compileFlows(withFirewall(1, fw)).filter((f) => f.includes('conj_id='));
    expect(accepts.length).toBe(3);
    expect(accepts.filter((f) => f.endsWith('actions=ct(commit,zone=NXM_NX_REG7[0..15]),output:NXM_NX_REG7[0..15]')).length).toBe(1);
  });

  it('let only the port own source addresses out, and track every port in its own zone', () => {
    const flows = compileFlows(withFirewall(2, { stateful: true, rules: [rule({ direction: 'egress' })] }));
    expect(flows).toContain('table=30,priority=110,ip,reg5=1,nw_src=10.0.0.10,actions=ct(table=31,zone=NXM_NX_REG5[0..15])');
    expect(flows).toContain('table=30,priority=100,reg5=1,actions=drop');
    expect(flows.filter((f) => f.startsWith('table=30') && f.includes('nw_src=10.0.0.11') && f.includes('reg5=1'))).toEqual([]);
    expect(flows).toContain('table=10,priority=100,reg6=1001,dl_dst=02:00:00:00:01:11,actions=set_field:2->reg7,goto_table:40');
  });

  it('check stateless groups rule by rule, without conntrack', () => {
    const flows = compileFlows(withFirewall(1, { stateful: false, rules: [rule({ protocol: 17, portRangeMin: 53, remotePrefix: '10.9.0.0/16' })] }));
    expect(flows.filter((f) => /reg[57]=1,/.test(f) && f.includes('ct('))).toEqual([]);
    expect(flows).toContain('table=41,priority=70,udp,nw_src=10.9.0.0/16,tp_dst=53,reg7=1,actions=output:NXM_NX_REG7[0..15]');
  });
});
