// IPAM as a property: many random sequences of AllocateIp (next free, or a specific address) and
// ReleaseIp against IPv4 and IPv6 subnets, through the subnet decider. Whatever the order, no
// address is ever held twice, the next-free address is always in a pool and the lowest free one,
// and the pool is reported exhausted only when every pool address is held.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { formatIp, parseIp } from './ip.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const subnet = networkAggregate('subnet').decider;

/** mulberry32: a seeded generator, so that a failing sequence can be replayed from its seed. */
const rng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

const shapes = [
  { ipVersion: 4, cidr: '10.0.0.0/27', allocationPools: [] },
  { ipVersion: 4, cidr: '192.168.4.0/26', allocationPools: [{ start: '192.168.4.40', end: '192.168.4.50' }, { start: '192.168.4.5', end: '192.168.4.9' }] },
  { ipVersion: 6, cidr: '2001:db8:1::/123', allocationPools: [] },
];

describe('IPAM', () => {
  it.each(shapes.map((s, i) => [s.cidr, i] as const))('never hands out an address twice on %s', (_cidr, i) => {
    for (let seed = 1; seed <= 20; seed++) {
      const random = rng(seed * 31 + i);
      const shape = shapes[i];
      let state = subnet.initialState;
      const decide = (command: M) => subnet.decide(state, command, testContext({ aggregateId: 's1' }));
      const created = decide({ type: 'CreateSubnet', subnet: { id: 's1', networkId: 'n1', projectId: 'p', name: '', gatewayIp: null, dnsNameservers: [], hostRoutes: [], enableDhcp: true, ...shape } });
      if (!('events' in created)) throw new Error(created.rejection.message);
      for (const e of created.events) state = subnet.evolve(state, e);
      const s = (state.context as any).subnet;
      const version = s.ipVersion as 4 | 6;
      const pools = s.allocationPools.map((p: { start: string; end: string }) => [parseIp(p.start)!.value, parseIp(p.end)!.value] as const);
      const inPool = (v: bigint) => pools.some(([a, b]: readonly [bigint, bigint]) => v >= a && v <= b);
      const poolSize = pools.reduce((n: number, [a, b]: readonly [bigint, bigint]) => n + Number(b - a + 1n), 0);
      const base = parseIp(s.cidr.split('/')[0])!.value;
      const held = new Map<string, string>();
      for (let step = 0; step < 200; step++) {
        const r = random();
        const portId = `port-${Math.floor(random() * 12)}`;
        let command: M;
        if (r < 0.55) command = { type: 'AllocateIp', portId, ipAddress: '' };
        else if (r < 0.7) command = { type: 'AllocateIp', portId, ipAddress: formatIp(version, base + BigInt(Math.floor(random() * 32))) };
        else command = { type: 'ReleaseIp', portId, ipAddress: random() < 0.5 ? '' : [...held.keys()][Math.floor(random() * held.size)] ?? '' };
        const d = decide(command);
        if ('rejection' in d) {
          if (d.rejection.code === 'RESOURCE_EXHAUSTED') {
            expect([...held.keys()].filter((a) => inPool(parseIp(a)!.value)).length, `seed ${seed} step ${step}`).toBe(poolSize);
          } else if (d.rejection.code === 'ALREADY_EXISTS') expect(held.has(formatIp(version, parseIp(command.ipAddress)!.value))).toBe(true);
          else expect(d.rejection.code).toBe('INVALID_ARGUMENT');
          continue;
        }
        for (const e of d.events as M[]) {
          if (e.type === 'IpAllocated') {
            expect(held.has(e.ipAddress), `seed ${seed} step ${step}: ${e.ipAddress} handed out twice`).toBe(false);
            if (command.ipAddress === '') {
              const v = parseIp(e.ipAddress)!.value;
              expect(inPool(v), `${e.ipAddress} outside the pools`).toBe(true);
              // The lowest free: every pool address below it is held.
              for (const [a] of pools) for (let x = a; x < v && inPool(x); x++) expect(held.has(formatIp(version, x))).toBe(true);
            }
            held.set(e.ipAddress, e.portId);
          } else {
            expect(held.get(e.ipAddress)).toBe(e.portId);
            held.delete(e.ipAddress);
          }
          state = subnet.evolve(state, e);
        }
        expect(Object.keys((state.context as any).allocations).sort()).toEqual([...held.keys()].sort());
      }
    }
  });
});
