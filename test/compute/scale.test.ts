// Acceptance b at full size on each log: 1,000 fake hosts, 10,000 boots from 8 concurrent
// clients across availability zones and anti-affinity groups, with a small zone that runs out of
// room. Every boot ends ACTIVE or ERROR with "No valid host" and the reason; the audit,
// recomputed from the log alone, finds no host over its allocation ratio, no anti-affinity breach
// at any moment, and claims and quota that match the servers.
import { afterAll, describe, expect, it } from 'vitest';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { BACKENDS } from '../support/backends.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const HOSTS = 1000;
const BOOTS = 10_000;
const CLIENTS = 8;
const IN_FLIGHT = 32;
const ZONES = ['az1', 'az2', 'az3'];
const EDGE_HOSTS = 5;
const FLAVORS = [flavor(1, 512, 1), flavor(2, 2048, 5), flavor(4, 4096, 10), flavor(8, 8192, 20)];

describe.each(BACKENDS)('10,000 boots on 1,000 fake hosts on the %s log', (backend) => {
  let rig: Rig;
  afterAll(async () => rig?.close());

  it('never overcommits a host or breaks anti-affinity; every boot ACTIVE or "no valid host" with the reason', async () => {
    // host-0000 .. host-0004 form the small "edge" zone; the rest are spread over az1..az3.
    rig = await startRig({ backend, hosts: HOSTS, partitions: 8, zones: [...ZONES], heartbeatMs: 20_000 });
    // The rig spreads zones round robin; re-register the edge hosts in their own zone.
    for (const h of rig.hostIds.slice(0, EDGE_HOSTS)) {
      const reply = await rig.send('host', h, {
        type: 'RegisterHost', availabilityZone: 'edge',
        inventory: { vcpus: { total: 16, reserved: 0, allocationRatio: 4 }, ramMb: { total: 32768, reserved: 512, allocationRatio: 1.5 }, diskGb: { total: 200, reserved: 0, allocationRatio: 1 } },
      });
      expect(reply.kind).toBe('accepted');
    }
    const projects = Array.from({ length: CLIENTS }, (_, i) => `project-${i}`);
    for (const p of projects) expect((await rig.send('quota', p, { type: 'SetQuotaLimits', limits: { instances: -1, cores: -1, ram: -1, server_group_members: -1 } })).kind).toBe('accepted');
    // 10-member anti-affinity groups, each bound to a zone; one in the edge zone, larger than it.
    const groups: { id: string; zone: string; project: string; left: number }[] = [];
    for (let i = 0; i < 60; i++) groups.push({ id: await rig.createGroup('anti-affinity', projects[i % CLIENTS]), zone: ZONES[i % 3], project: projects[i % CLIENTS], left: 10 });
    const edgeGroup = { id: await rig.createGroup('anti-affinity', projects[0]), zone: 'edge', project: projects[0], left: 8 };

    // The plan, decided up front so that each client knows its share.
    type Ask = { projectId: string; flavor: (typeof FLAVORS)[number]; availabilityZone?: string; serverGroupId?: string; edge: boolean };
    const asks: Ask[] = [];
    for (let i = 0; asks.length < BOOTS; i++) {
      const projectId = projects[i % CLIENTS];
      if (i % 100 === 7) asks.push({ projectId, flavor: flavor(16, 16384, 20), availabilityZone: 'edge', edge: true }); // the edge fills up
      else if (i % 100 === 9 && edgeGroup.left-- > 0) asks.push({ projectId: edgeGroup.project, flavor: FLAVORS[0], availabilityZone: 'edge', serverGroupId: edgeGroup.id, edge: true });
      else if (i % 10 === 3 && groups.some((g) => g.left > 0)) {
        const g = groups.find((x) => x.left > 0)!;
        g.left--;
        asks.push({ projectId: g.project, flavor: FLAVORS[i % FLAVORS.length], availabilityZone: g.zone, serverGroupId: g.id, edge: false });
      } else asks.push({ projectId, flavor: FLAVORS[i % FLAVORS.length], availabilityZone: i % 4 === 0 ? '' : ZONES[i % 3], edge: false });
    }

    const started = performance.now();
    const buses = await Promise.all(projects.map(() => CommandBus.connect({ log: rig.t.log, timeoutMs: 120_000 })));
    const ids: { id: string; ask: Ask }[] = [];
    await Promise.all(
      buses.map(async (bus, c) => {
        const mine = asks.filter((_, i) => i % CLIENTS === c);
        let next = 0;
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (next < mine.length) {
              const ask = mine[next++];
              const b = await rig.boot(ask, bus);
              expect(b.ok, b.ok ? '' : b.rejection.message).toBe(true);
              ids.push({ id: b.instanceId, ask });
            }
          }),
        );
      }),
    );
    const view = rig.feed.view;
    const done = () => ids.every(({ id }) => {
      const v = view.instances.get(id);
      return v !== undefined && v.action === null && (v.vm === 'active' || v.vm === 'error');
    });
    // Kafka's hops are slow here (transactions, acks=all on 3 brokers sharing 2 cores): 4 to 12 min.
    await until(done, 'every boot to end', 1_800_000);
    const seconds = (performance.now() - started) / 1000;
    for (const bus of buses) await bus.close();

    const outcomes = { active: 0, error: 0 };
    for (const { id, ask } of ids) {
      const v = view.instances.get(id)!;
      if (v.vm === 'active') {
        outcomes.active++;
        if (ask.availabilityZone) expect(view.hosts.get(v.host)!.availabilityZone).toBe(ask.availabilityZone);
      } else {
        outcomes.error++;
        expect(v.fault).toMatch(/^No valid host was found\. .+/);
        expect(ask.edge, `a boot outside the edge zone failed: ${v.fault}`).toBe(true);
      }
    }
    console.log(`${backend}: ${BOOTS} boots on ${HOSTS} hosts in ${seconds.toFixed(1)} s (${(BOOTS / seconds).toFixed(0)}/s): ${JSON.stringify(outcomes)}; conductor ${JSON.stringify(rig.conductor.stats)}`);
    expect(outcomes.active + outcomes.error).toBe(BOOTS);
    expect(outcomes.error).toBeGreaterThan(0); // the edge zone did run out

    const audit = await rig.audit();
    expect(audit.problems.slice(0, 10)).toEqual([]);
    expect(audit.servers).toEqual({ active: outcomes.active, error: outcomes.error });
  }, 2_400_000);
});
