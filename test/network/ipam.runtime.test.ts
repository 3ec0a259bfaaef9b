// Issue 6 acceptance (e): IPAM under concurrent port creation, through the real runtime on each
// log. 50 AllocateIp race for one /28 (13 addresses in its default pool: .2 to .14): the subnet
// aggregate is their single writer, so exactly 13 are accepted with 13 distinct addresses, all in
// the pool, and every one past the pool's size is refused RESOURCE_EXHAUSTED naming the subnet.
import { afterEach, describe, expect, it } from 'vitest';
import type { Message } from '../../domains/kernel/decider.js';
import { networkCodecFor, networkDefinitions } from '../../infra/codecs/network.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { BACKENDS, openTestLog, type TestLog } from '../support/backends.js';

const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };
type M = Message & Record<string, unknown>;

describe.each(BACKENDS)('IPAM on the %s log', (backend) => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('gives 50 concurrent AllocateIp on a /28 no duplicate; the ones past the pool get RESOURCE_EXHAUSTED naming the subnet', async () => {
    const t: TestLog = await openTestLog(backend, 4);
    const domain = `network-${t.domain}`;
    const worker = new DeciderWorker({ log: t.log, domain, aggregates: networkDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
    await worker.start();
    const bus = await CommandBus.connect({ log: t.log, timeoutMs: 60_000 });
    close = async () => {
      await bus.close();
      await worker.stop();
      await t.close();
    };
    const send = (aggregateId: string, command: M): Promise<Reply> =>
      bus.send({ domain, aggregateType: 'subnet', aggregateId, type: command.type, payload: networkCodecFor('subnet').encodeCommand(command), actor: ADMIN });

    const subnet = { id: 's1', networkId: 'n1', projectId: 'p1', name: 'tiny', ipVersion: 4, cidr: '10.9.0.0/28', gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true };
    const created = await send('s1', { type: 'CreateSubnet', subnet, noGateway: false });
    expect(created.kind).toBe('accepted');

    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => send('s1', { type: 'AllocateIp', portId: `port-${i}`, ipAddress: '', deviceOwner: '' })));
    const accepted = replies.filter((r): r is Extract<Reply, { kind: 'accepted' }> => r.kind === 'accepted');
    const addresses = accepted.map((r) => {
      expect(r.events).toHaveLength(1);
      return (networkCodecFor('subnet').decodeEvent(r.events[0].type, r.events[0].payload) as M).ipAddress as string;
    });
    expect(accepted).toHaveLength(13);
    expect(new Set(addresses).size).toBe(13);
    expect(addresses.map((a) => Number(a.split('.')[3])).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const refused = replies.filter((r) => r.kind === 'rejected');
    expect(refused).toHaveLength(37);
    for (const r of refused) {
      expect(r.kind === 'rejected' && r.rejection).toMatchObject({ code: 'RESOURCE_EXHAUSTED', message: 'No more IP addresses available on subnet s1 (network n1)' });
    }
    // A released address is the next one handed out.
    const holder = accepted[addresses.indexOf('10.9.0.7')];
    const released = await send('s1', { type: 'ReleaseIp', portId: `port-${replies.indexOf(holder)}`, ipAddress: '' });
    expect(released.kind).toBe('accepted');
    const again = await send('s1', { type: 'AllocateIp', portId: 'port-late', ipAddress: '', deviceOwner: '' });
    expect(again.kind === 'accepted' && (networkCodecFor('subnet').decodeEvent(again.events[0].type, again.events[0].payload) as M).ipAddress).toBe('10.9.0.7');
  });
});
