// Invariant 6 for compute: the conductor and the agents are level-triggered, so either may stop at
// any instant and a new one, folding the log afresh, finishes the work without doing any step
// twice: every boot ends ACTIVE, no host holds a claim twice, no guest runs on two hosts, and the
// audit recomputed from the log is clean.
import { afterEach, describe, expect, it } from 'vitest';
import { ComputeAgents } from '../../agents/compute/compute.agent.js';
import { Conductor } from '../../infra/sagas/compute.conductor.js';
import { BACKENDS } from '../support/backends.js';
import { until } from '../support/wait.js';
import { startRig, type Rig } from './rig.js';

const BOOTS = 60;

describe.each(BACKENDS)('compute restarts on the %s log', (backend) => {
  let rig: Rig | undefined;
  const extra: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const x of extra.splice(0)) await x.close();
    await rig?.close();
    rig = undefined;
  });

  const everyActive = (r: Rig, ids: string[]) => () => ids.every((id) => r.feed.view.instances.get(id)?.vm === 'active' && r.feed.view.instances.get(id)?.action === null);

  async function bootMany(r: Rig): Promise<string[]> {
    expect((await r.send('quota', 'p1', { type: 'SetQuotaLimits', limits: { instances: -1, cores: -1, ram: -1 } })).kind).toBe('accepted');
    const outcomes = await Promise.all(Array.from({ length: BOOTS }, () => r.boot({})));
    for (const o of outcomes) expect(o.ok, o.ok ? '' : o.rejection.message).toBe(true);
    return outcomes.map((o) => o.instanceId);
  }

  async function expectClean(r: Rig, ids: string[]) {
    const audit = await r.audit();
    expect(audit.problems).toEqual([]);
    expect(audit.servers).toEqual({ active: ids.length });
    // Each guest runs on exactly the host the log names, and nowhere else.
    for (const id of ids) {
      const where = [...r.drivers].filter(([, d]) => d.guests.has(id)).map(([h]) => h);
      expect(where).toEqual([r.feed.view.instances.get(id)!.host]);
    }
  }

  it('a conductor stopped mid-flight: a new one folds the log and finishes every boot once', async () => {
    rig = await startRig({ backend, hosts: 20, heartbeatMs: 1000, conductor: { tickMs: 100 } });
    await rig.conductor.close();
    const ids = await bootMany(rig);
    // A first conductor takes some steps, then stops at once, wherever it is.
    const first = await Conductor.start({ log: rig.t.log, topology: rig.t.topology, domain: rig.domain, tickMs: 100, onError: () => undefined });
    await until(() => first.stats.scheduled >= BOOTS / 3, 'some boots scheduled', 30_000);
    await first.close();
    const second = await Conductor.start({ log: rig.t.log, topology: rig.t.topology, domain: rig.domain, tickMs: 100 });
    extra.push(second);
    await until(everyActive(rig, ids), 'every boot ACTIVE', 60_000);
    expect(second.stats.scheduled).toBeLessThan(BOOTS); // it did not start over
    await expectClean(rig, ids);
  }, 180_000);

  it('agents stopped mid-spawn: new agents on the same hypervisors adopt the guests, none twice', async () => {
    rig = await startRig({ backend, hosts: 10, heartbeatMs: 1000, driver: () => ({ spawnMs: 150 }) });
    const ids = await bootMany(rig);
    await until(() => ids.some((id) => rig!.feed.view.instances.get(id)?.task === 'spawning'), 'spawns under way', 30_000);
    await rig.agents.close();
    const again = await ComputeAgents.start({ log: rig.t.log, topology: rig.t.topology, domain: rig.domain, hosts: rig.hosts, heartbeatMs: 1000, syncMs: 60_000 });
    extra.push(again);
    await until(everyActive(rig, ids), 'every boot ACTIVE', 60_000);
    await expectClean(rig, ids);
  }, 180_000);
});
