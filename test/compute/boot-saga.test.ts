// The boot saga end to end on each log: deciders, conductor and fake-driver agents, with faults.
// Every scenario ends with the audit: claims, capacity, anti-affinity and quota recomputed from
// the log alone must agree with what the servers are.
import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../support/backends.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const settled = (rig: Rig, id: string) => () => {
  const v = rig.feed.view.instances.get(id);
  return v !== undefined && v.action === null && (v.vm === 'active' || v.vm === 'error' || v.vm === 'deleted');
};

describe.each(BACKENDS)('boot saga on the %s log', (backend) => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('boots a server: quota, claim, host, spawn, ACTIVE; delete gives everything back', async () => {
    rig = await startRig({ backend, hosts: 3 });
    const b = await rig.boot({ flavor: flavor(2, 2048, 10) });
    expect(b.ok).toBe(true);
    await until(settled(rig, b.instanceId), 'the boot');
    const v = rig.feed.view.instances.get(b.instanceId)!;
    expect(v.vm).toBe('active');
    expect(rig.hostIds).toContain(v.host);
    expect(await rig.drivers.get(v.host)!.powerState(b.instanceId)).toBe(1);
    expect(rig.feed.view.host(v.host).vcpus.used).toBe(2);

    const host = v.host;
    const del = await rig.send('instance', b.instanceId, { type: 'DeleteInstance', soft: false });
    expect(del.kind).toBe('accepted');
    await until(() => rig!.feed.view.instances.get(b.instanceId)!.vm === 'deleted' && !v.quotaHeld && v.claimHosts.length === 0, 'the delete to give back');
    expect(await rig.drivers.get(host)!.list()).toEqual([]);
    const audit = await rig.audit();
    expect(audit.problems).toEqual([]);
    expect(audit.servers).toEqual({ deleted: 1 });
  });

  it('a spawn that fails on host A is rescheduled and succeeds on host B', async () => {
    rig = await startRig({ backend, hosts: 2, driver: (h) => (h === 'host-0000' ? { failureRate: 1 } : {}) });
    // Equal hosts: the scheduler's tie-break picks host-0000 first, where the spawn fails.
    const b = await rig.boot({});
    await until(settled(rig, b.instanceId), 'the boot');
    const v = rig.feed.view.instances.get(b.instanceId)!;
    expect(v.vm).toBe('active');
    expect(v.host).toBe('host-0001');
    expect(v.failedHosts).toEqual(['host-0000']);
    expect(v.fault).toMatch(/spawn on host host-0000 failed/);
    expect(await rig.drivers.get('host-0000')!.list()).toEqual([]);
    expect((await rig.audit()).problems).toEqual([]);
  });

  it('spawn failing everywhere ends in ERROR naming the hosts; claims return, quota stays (as in Nova)', async () => {
    rig = await startRig({ backend, hosts: 3, driver: () => ({ failureRate: 1 }) });
    const b = await rig.boot({});
    await until(settled(rig, b.instanceId), 'the boot to fail');
    const v = rig.feed.view.instances.get(b.instanceId)!;
    expect(v.vm).toBe('error');
    expect(v.failedHosts).toHaveLength(3);
    expect(v.fault).toMatch(/^Exceeded maximum number of retries\..*failed on host-000\d, host-000\d, host-000\d/);
    await until(() => v.claimHosts.length === 0, 'claims released');
    expect(v.quotaHeld).toBe(true);
    const audit = await rig.audit();
    expect(audit.problems).toEqual([]);
    expect(audit.servers).toEqual({ error: 1 });
  });

  it('an agent that dies mid-boot: the boot times out and is rescheduled to a live host', async () => {
    rig = await startRig({ backend, hosts: 2, driver: (h) => (h === 'host-0000' ? { spawnMs: 600_000 } : {}), conductor: { bootTimeoutMs: 1500, serviceDownMs: 3000 }, heartbeatMs: 1000 });
    // Boot until one lands on host-0000, then kill that host's agent while it spawns.
    let victim: string | undefined;
    for (let i = 0; i < 6 && !victim; i++) {
      const b = await rig.boot({});
      await until(() => (rig!.feed.view.instances.get(b.instanceId)?.host ?? '') !== '' || settled(rig!, b.instanceId)(), 'a host');
      if (rig.feed.view.instances.get(b.instanceId)!.host === 'host-0000') victim = b.instanceId;
    }
    expect(victim).toBeDefined();
    rig.agents.kill('host-0000');
    await until(settled(rig, victim!), 'the boot to move on', 30_000);
    const v = rig.feed.view.instances.get(victim!)!;
    expect(v.vm, v.fault).toBe('active');
    expect(v.host).toBe('host-0001');
    expect(v.failedHosts).toEqual(['host-0000']);
    await until(() => v.claimHosts.length === 1, 'the dead host claim released');
    const audit = await rig.audit();
    expect(audit.problems).toEqual([]);
  });

  it('an agent that dies mid-boot with no other host: ERROR with the reason after the timeout', async () => {
    rig = await startRig({ backend, hosts: 1, driver: () => ({ spawnMs: 600_000 }), conductor: { bootTimeoutMs: 1000, serviceDownMs: 3000 }, heartbeatMs: 1000 });
    const b = await rig.boot({});
    await until(() => rig!.feed.view.instances.get(b.instanceId)?.host === 'host-0000', 'the assignment');
    rig.agents.kill('host-0000');
    await until(settled(rig, b.instanceId), 'the boot to fail', 30_000);
    const v = rig.feed.view.instances.get(b.instanceId)!;
    expect(v.vm).toBe('error');
    expect(v.failedHosts).toEqual(['host-0000']);
    expect(v.fault).toMatch(/^No valid host was found/);
    await until(() => v.claimHosts.length === 0, 'the claim released');
    expect((await rig.audit()).problems).toEqual([]);
  });

  it('anti-affinity: one member per host, the next boot fails with no valid host naming the filter', async () => {
    rig = await startRig({ backend, hosts: 2 });
    const group = await rig.createGroup('anti-affinity');
    const boots = await Promise.all([1, 2, 3].map(() => rig!.boot({ serverGroupId: group })));
    for (const b of boots) await until(settled(rig, b.instanceId), 'the boots');
    const views = boots.map((b) => rig!.feed.view.instances.get(b.instanceId)!);
    const active = views.filter((v) => v.vm === 'active');
    expect(active).toHaveLength(2);
    expect(new Set(active.map((v) => v.host)).size).toBe(2);
    expect(views.find((v) => v.vm === 'error')!.fault).toMatch(/^No valid host was found\..*ServerGroupAntiAffinityFilter left 0/);
    expect((await rig.audit()).problems).toEqual([]);
  });
});
