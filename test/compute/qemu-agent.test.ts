// The compute agent with the real qemu driver: a server asked for as the API asks is scheduled by
// the conductor, spawned as a qemu process by the agent, and its guest boots (the test image's
// marker on the serial console); stop, start, pause, unpause and delete reach the hypervisor.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QemuDriver, processAlive, testImageBoot } from '../../agents/compute/qemu.driver.js';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { Message } from '../../domains/kernel/decider.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const MARKER = 'STRATA-GUEST-READY';
const root = new URL('../..', import.meta.url).pathname;

describe('the compute agent with the qemu driver (embedded log, real qemu under TCG)', () => {
  let rig: Rig;
  let qemu: QemuDriver;
  let stateDir: string;
  beforeAll(async () => {
    const imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    // Short: QMP socket paths are limited to about 107 bytes.
    stateDir = mkdtempSync(join(tmpdir(), 'sq-'));
    qemu = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => testImageBoot(imageDir) });
    rig = await startRig({ backend: 'embedded', hosts: 1, driverFor: () => qemu, heartbeatMs: 1000 });
  }, 120_000);
  afterAll(async () => {
    await rig?.close();
    for (const id of (await qemu?.list()) ?? []) await qemu.destroy(id);
    qemu?.close();
  });

  const view = (id: string) => rig.feed.view.instances.get(id)!;
  const act = (id: string, command: Message & Record<string, unknown>) => rig.act(id, command, 60_000);
  const console = async (id: string) => qemu.consoleOutput(id).catch(() => '');
  const pidOf = async (id: string) => Number((await readFile(join(stateDir, id, 'qemu.pid'), 'utf8')).trim());

  it('boots a real guest to ACTIVE; stop, start, pause, unpause and delete reach the qemu process', async () => {
    const b = await rig.boot({ flavor: flavor(1, 256, 1) });
    if (!b.ok) throw new Error(b.rejection.message);
    const id = b.instanceId;
    await until(() => view(id)?.vm === 'active' && view(id).action === null, 'ACTIVE', 60_000);
    expect(view(id).host).toBe('host-0000');
    const firstPid = await pidOf(id);
    expect(await processAlive(firstPid)).toBe(true);
    for (let i = 0; i < 300 && !(await console(id)).includes(MARKER); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await console(id)).toContain(MARKER);

    expect((await act(id, { type: 'StopInstance' })).vm).toBe('stopped');
    expect(await qemu.powerState(id)).toBe(POWER_STATES.SHUTDOWN);
    expect(await processAlive(firstPid)).toBe(false);
    expect((await act(id, { type: 'StartInstance' })).vm).toBe('active');
    expect(await qemu.powerState(id)).toBe(POWER_STATES.RUNNING);
    for (let i = 0; i < 300 && (await console(id)).split(MARKER).length < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect((await console(id)).split(MARKER).length - 1).toBe(2); // booted again

    expect((await act(id, { type: 'PauseInstance' })).vm).toBe('paused');
    expect(await qemu.powerState(id)).toBe(POWER_STATES.PAUSED);
    expect((await act(id, { type: 'UnpauseInstance' })).vm).toBe('active');
    expect(await qemu.powerState(id)).toBe(POWER_STATES.RUNNING);

    const pid = await pidOf(id);
    expect((await act(id, { type: 'DeleteInstance', soft: false })).vm).toBe('deleted');
    expect(await processAlive(pid)).toBe(false);
    expect(await qemu.list()).toEqual([]);
    expect((await rig.audit()).problems).toEqual([]);
  }, 240_000);
});
