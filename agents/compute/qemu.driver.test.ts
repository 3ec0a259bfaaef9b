// The qemu driver against real QEMU processes: the test guest (scripts/build-test-image.sh, built
// once and cached) prints STRATA-GUEST-READY on its serial console, then "tick N" every second.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { GuestSpec } from './driver.js';
import { QemuDriver, probeKvm, processAlive, testImageBoot } from './qemu.driver.js';
import { QmpError } from './qmp.js';

const MARKER = 'STRATA-GUEST-READY';
const root = new URL('../..', import.meta.url).pathname;

function spec(instanceId: string): GuestSpec {
  return {
    instanceId,
    name: `guest-${instanceId}`,
    imageId: 'test-image',
    flavor: { id: 'f1', name: 'tiny', vcpus: 1, ramMb: 256, diskGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} },
  };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const count = (text: string, s: string) => text.split(s).length - 1;
const lastTick = (text: string) => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

describe('qemu driver', () => {
  let stateDir: string;
  let imageDir: string;
  let driver: QemuDriver;

  beforeAll(() => {
    imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    stateDir = mkdtempSync(join(tmpdir(), 'strata-qemu-'));
    // TCG: on these machines /dev/kvm opens but KVM guests fail; the `auto` probe is tested below.
    driver = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => testImageBoot(imageDir) });
  }, 120_000);

  afterAll(async () => {
    if (driver) {
      for (const id of await driver.list()) await driver.destroy(id);
      driver.close();
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('boots a guest, pauses and unpauses it, reboots it and destroys it', async () => {
    const id = 'vm-1';
    await driver.spawn(spec(id));
    const dir = join(stateDir, id);
    expect(existsSync(join(dir, 'qmp.sock'))).toBe(true);
    await waitFor('the marker', async () => (await driver.consoleOutput(id)).includes(MARKER));
    await waitFor('a tick', async () => lastTick(await driver.consoleOutput(id)) >= 2);
    expect(await driver.powerState(id)).toBe(POWER_STATES.RUNNING);
    expect(await driver.list()).toEqual([id]);

    // Spawning a running guest again changes nothing.
    const pid = await driver.pid(id);
    await driver.spawn(spec(id));
    expect(await driver.pid(id)).toBe(pid);

    await driver.pause(id);
    expect(await driver.powerState(id)).toBe(POWER_STATES.PAUSED);
    const frozen = lastTick(await driver.consoleOutput(id));
    await new Promise((r) => setTimeout(r, 2500));
    expect(lastTick(await driver.consoleOutput(id))).toBe(frozen);

    await driver.unpause(id);
    expect(await driver.powerState(id)).toBe(POWER_STATES.RUNNING);
    await waitFor('ticks again', async () => lastTick(await driver.consoleOutput(id)) > frozen);

    await driver.reboot(id, false);
    await waitFor('the marker a second time', async () => count(await driver.consoleOutput(id), MARKER) === 2);
    expect(await driver.powerState(id)).toBe(POWER_STATES.RUNNING);
    expect((await driver.consoleOutput(id, 3)).split('\n').length).toBeLessThanOrEqual(3);
    // Console output is the tail of the log, cut to whole lines within the size limit.
    const small = new QemuDriver({ stateDir, accelerator: 'tcg', consoleLogBytes: 64, resolveImage: () => testImageBoot('') });
    const tail = await small.consoleOutput(id);
    expect(tail.length).toBeLessThanOrEqual(64);
    expect(tail.split('\n').every((l) => l === MARKER || /^tick \d+$/.test(l) || /^STRATA-NET [a-z0-9 ]+$/.test(l)), tail).toBe(true);

    // QMP errors carry QEMU's class and description.
    const err = await driver.execute(id, 'no-such-command').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QmpError);
    expect((err as QmpError).qmpClass).toBe('CommandNotFound');

    expect(pid).toBeDefined();
    await driver.destroy(id);
    expect(await processAlive(pid!)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    expect(await driver.powerState(id)).toBe(POWER_STATES.NOSTATE);
    expect(await driver.list()).toEqual([]);
    await driver.destroy(id); // idempotent
  }, 180_000);

  it('powers a guest off and on, and suspends and resumes it', async () => {
    const id = 'vm-2';
    await driver.spawn(spec(id));
    await waitFor('the marker', async () => (await driver.consoleOutput(id)).includes(MARKER));
    const pid = (await driver.pid(id))!;

    await driver.powerOff(id);
    expect(await processAlive(pid)).toBe(false);
    expect(await driver.powerState(id)).toBe(POWER_STATES.SHUTDOWN);
    await driver.powerOff(id); // idempotent

    await driver.powerOn(id);
    expect(await driver.powerState(id)).toBe(POWER_STATES.RUNNING);
    await waitFor('the marker after power on', async () => count(await driver.consoleOutput(id), MARKER) === 2);
    await waitFor('a tick', async () => /tick \d+\n?$/.test(await driver.consoleOutput(id, 1)));

    // An agent restarting finds its guests: a new driver over the same directory talks to the same QEMU.
    driver.close();
    const again = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => { throw new Error('unused'); } });
    expect(await again.list()).toEqual([id]);
    expect(await again.powerState(id)).toBe(POWER_STATES.RUNNING);
    await again.pause(id);
    expect(await again.powerState(id)).toBe(POWER_STATES.PAUSED);
    await again.unpause(id);
    again.close();

    await driver.suspend(id);
    expect(await driver.pid(id)).toBeUndefined();
    expect(await driver.powerState(id)).toBe(POWER_STATES.SUSPENDED);
    const before = lastTick(await driver.consoleOutput(id, 1));
    await driver.resume(id);
    expect(await driver.powerState(id)).toBe(POWER_STATES.RUNNING);
    // The guest goes on from where it was: no new boot, the counter continues.
    await waitFor('the counter continuing', async () => lastTick(await driver.consoleOutput(id, 1)) > before);
    expect(count(await driver.consoleOutput(id), MARKER)).toBe(2);

    await driver.destroy(id);
    expect(existsSync(join(stateDir, id))).toBe(false);
  }, 180_000);

  it('boots a disk image through a qcow2 overlay sized to the flavor', async () => {
    const base = join(stateDir, 'base.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '64M']);
    const disk = new QemuDriver({ stateDir: join(stateDir, 'disk'), accelerator: 'tcg', resolveImage: () => ({ kind: 'disk', path: base, format: 'qcow2' }) });
    try {
      await disk.spawn(spec('vm-3'));
      expect(await disk.powerState('vm-3')).toBe(POWER_STATES.RUNNING); // firmware, no bootable disk
      const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', join(stateDir, 'disk', 'vm-3', 'disk.qcow2')], { encoding: 'utf8' }));
      expect(info['backing-filename']).toBe(base);
      expect(info['virtual-size']).toBe(1024 ** 3);
      await disk.destroy('vm-3');
      expect(await disk.list()).toEqual([]);
    } finally {
      disk.close();
    }
  }, 60_000);

  it('auto probes KVM once and falls back to TCG when KVM cannot run a guest', async () => {
    const auto = new QemuDriver({ stateDir, accelerator: 'auto', resolveImage: () => { throw new Error('unused'); } });
    const accel = await auto.accelerator();
    expect(['kvm', 'tcg']).toContain(accel);
    expect(await auto.accelerator()).toBe(accel);
    if (!existsSync('/dev/kvm')) expect(accel).toBe('tcg');
    // Booting the test image under KVM, as the agent would at start, agrees with the firmware probe.
    const booted = await probeKvm({ boot: testImageBoot(imageDir), marker: MARKER });
    expect(booted ? 'kvm' : 'tcg').toBe(accel);
    // Here /dev/kvm exists but KVM guests abort or stop with "KVM internal error" (see the design notes).
    console.log(`accelerator probe: ${accel}`);
  }, 60_000);
});
