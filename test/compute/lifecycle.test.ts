// Every server action carried out end to end on the embedded log: the instance machine, the
// conductor (destinations for moves) and the fake-driver agents (the driver calls), checked on
// the server's state, its host, the hypervisor's view and the audit of claims and quota.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { Message } from '../../domains/kernel/decider.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

describe('server actions end to end (embedded log, fake driver)', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig({ backend: 'embedded', hosts: 3, conductor: { serviceDownMs: 2500 }, heartbeatMs: 1000 });
  });
  afterAll(async () => rig?.close());

  const view = (id: string) => rig.feed.view.instances.get(id)!;
  const act = (id: string, command: Message & Record<string, unknown>) => rig.act(id, command);
  const power = (id: string) => rig.drivers.get(view(id).host)!.powerState(id);
  async function boot() {
    const b = await rig.boot({ flavor: flavor(1, 512, 1) });
    if (!b.ok) throw new Error(b.rejection.message);
    await until(() => view(b.instanceId)?.vm === 'active' && view(b.instanceId).action === null, 'the boot');
    return b.instanceId;
  }

  it('power and state actions reach the states Nova shows, and the hypervisor agrees', async () => {
    const id = await boot();
    expect((await act(id, { type: 'StopInstance' })).vm).toBe('stopped');
    expect(await power(id)).toBe(POWER_STATES.SHUTDOWN);
    expect((await act(id, { type: 'StartInstance' })).vm).toBe('active');
    expect(await power(id)).toBe(POWER_STATES.RUNNING);
    expect((await act(id, { type: 'RebootInstance' })).vm).toBe('active');
    expect((await act(id, { type: 'HardRebootInstance' })).vm).toBe('active');
    expect((await act(id, { type: 'PauseInstance' })).vm).toBe('paused');
    expect(await power(id)).toBe(POWER_STATES.PAUSED);
    expect((await act(id, { type: 'UnpauseInstance' })).vm).toBe('active');
    expect((await act(id, { type: 'SuspendInstance' })).vm).toBe('suspended');
    expect(await power(id)).toBe(POWER_STATES.SUSPENDED);
    expect((await act(id, { type: 'ResumeInstance' })).vm).toBe('active');
    expect((await act(id, { type: 'RescueInstance' })).vm).toBe('rescued');
    expect(rig.drivers.get(view(id).host)!.guests.get(id)!.rescued).toBe(true);
    expect((await act(id, { type: 'UnrescueInstance' })).vm).toBe('active');
    expect((await act(id, { type: 'RebuildInstance', imageId: 'debian-12' })).vm).toBe('active');
    expect(rig.drivers.get(view(id).host)!.guests.get(id)!.spec.imageId).toBe('debian-12');
    await act(id, { type: 'CreateInstanceImage', imageId: 'snap-1', name: 'snap' });
    expect(rig.drivers.get(view(id).host)!.snapshots.get('snap-1')).toBe(id);
    expect((await rig.audit()).problems).toEqual([]);
  });

  it('resize moves to another host with the new flavor; confirm frees the source, revert goes back', async () => {
    const id = await boot();
    const source = view(id).host;
    const big = flavor(2, 1024, 2);
    const resized = await act(id, { type: 'ResizeInstance', flavor: big });
    expect(resized.vm).toBe('resized');
    expect(resized.host).not.toBe(source);
    expect(resized.flavor?.vcpus).toBe(2);
    expect([...resized.claimHosts].sort()).toEqual([resized.host, source].sort());
    expect((await rig.audit()).problems).toEqual([]);
    expect((await act(id, { type: 'ConfirmResizeInstance' })).vm).toBe('active');
    await until(() => view(id).claimHosts.length === 1, 'the source claim released');
    expect(view(id).claimHosts).toEqual([resized.host]);

    const before = view(id).host;
    await act(id, { type: 'ResizeInstance', flavor: flavor(4, 2048, 4) });
    const reverted = await act(id, { type: 'RevertResizeInstance' });
    expect(reverted.vm).toBe('active');
    expect(reverted.host).toBe(before);
    expect(reverted.flavor?.vcpus).toBe(2);
    await until(() => view(id).claimHosts.length === 1, 'the destination claim released');
    expect(view(id).claimHosts).toEqual([before]);
    expect(await power(id)).toBe(POWER_STATES.RUNNING);

    // A stopped server resizes stopped, and a revert leaves it stopped (Nova powers on only what ran).
    await act(id, { type: 'StopInstance' });
    const stoppedResize = await act(id, { type: 'ResizeInstance', flavor: flavor(4, 2048, 4) });
    expect(stoppedResize.vm).toBe('resized');
    expect(await power(id)).toBe(POWER_STATES.SHUTDOWN);
    const stoppedRevert = await act(id, { type: 'RevertResizeInstance' });
    expect(stoppedRevert.vm).toBe('stopped');
    expect(stoppedRevert.host).toBe(before);
    expect(await power(id)).toBe(POWER_STATES.SHUTDOWN);
    expect((await rig.audit()).problems).toEqual([]);
  });

  it('cold and live migration change the host; shelve-offload frees it and unshelve places it again', async () => {
    const id = await boot();
    const first = view(id).host;
    const migrated = await act(id, { type: 'MigrateInstance' });
    expect(migrated.vm).toBe('resized');
    expect(migrated.host).not.toBe(first);
    await act(id, { type: 'ConfirmResizeInstance' });
    const second = view(id).host;
    const live = await act(id, { type: 'LiveMigrateInstance' });
    expect(live.vm).toBe('active');
    expect(live.host).not.toBe(second);
    expect(await power(id)).toBe(POWER_STATES.RUNNING);
    await until(() => view(id).claimHosts.length === 1, 'the source claim released');

    const shelved = await act(id, { type: 'ShelveInstance', offload: true });
    expect(shelved.vm).toBe('shelved_offloaded');
    expect(shelved.host).toBe('');
    await until(() => view(id).claimHosts.length === 0, 'the claim released');
    const unshelved = await act(id, { type: 'UnshelveInstance' });
    expect(unshelved.vm).toBe('active');
    expect(rig.hostIds).toContain(unshelved.host);
    expect(await power(id)).toBe(POWER_STATES.RUNNING);
    expect((await rig.audit()).problems).toEqual([]);
  });

  it('evacuate rebuilds a server of a dead host elsewhere, stopped; delete gives everything back', async () => {
    const id = await boot();
    const dead = view(id).host;
    rig.agents.kill(dead);
    await until(() => Date.now() - rig.feed.view.host(dead).lastHeartbeatMs > 2500, 'the host to be down', 10_000);
    const evacuated = await act(id, { type: 'EvacuateInstance' });
    expect(evacuated.vm).toBe('stopped');
    expect(evacuated.host).not.toBe(dead);
    expect(await power(id)).toBe(POWER_STATES.SHUTDOWN);
    await until(() => view(id).claimHosts.length === 1, 'the dead host claim released');
    const deleted = await act(id, { type: 'DeleteInstance', soft: false });
    expect(deleted.vm).toBe('deleted');
    await until(() => view(id).claimHosts.length === 0 && !view(id).quotaHeld, 'claims and quota given back');
    const audit = await rig.audit();
    expect(audit.problems).toEqual([]);
  });
});
