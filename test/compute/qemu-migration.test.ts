// Moving guests between two compute hosts on this machine, each with its own qemu driver and state
// directory. Live migration is QEMU's own (the destination listens on loopback, the source sends),
// so the guest keeps running: its console counter goes on from where it was on the source, with no
// second boot, and the server's host changes. Cold migration powers the guest off and copies its
// disk to the destination: what was written to the disk on the source is read there.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageDirectory } from '../../agents/compute/image-dir.js';
import { QemuDriver, processAlive } from '../../agents/compute/qemu.driver.js';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const MARKER = 'STRATA-GUEST-READY';
const root = new URL('../..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The tick numbers the guest printed, in order. */
const ticks = (text: string) => [...text.matchAll(/^tick (\d+)/gm)].map((m) => Number(m[1]));

describe('moving real guests between two qemu hosts (embedded log, TCG)', () => {
  let rig: Rig;
  const drivers = new Map<string, QemuDriver>();
  const stateDirs = new Map<string, string>();
  let images: ImageDirectory;
  beforeAll(async () => {
    const built = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    // Two images: the test kernel alone, and the same with a 64 MiB disk.
    images = new ImageDirectory(mkdtempSync(join(tmpdir(), 'strata-images-')));
    symlinkSync(built, join(images.dir, 'test-image'));
    mkdirSync(join(images.dir, 'with-disk'));
    for (const f of ['vmlinuz', 'initramfs.cpio.gz']) symlinkSync(join(built, f), join(images.dir, 'with-disk', f));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(images.dir, 'with-disk', 'disk.qcow2'), '64M']);
    rig = await startRig({
      backend: 'embedded',
      hosts: 2,
      heartbeatMs: 1000,
      driverFor: (hostId) => {
        const stateDir = mkdtempSync(join(tmpdir(), 'sq-')); // short: QMP socket paths are limited
        const d = new QemuDriver({ stateDir, accelerator: 'tcg', images });
        drivers.set(hostId, d);
        stateDirs.set(hostId, stateDir);
        return d;
      },
    });
  }, 120_000);
  afterAll(async () => {
    await rig?.close();
    for (const d of drivers.values()) {
      for (const id of await d.list()) await d.destroy(id);
      d.close();
    }
    for (const dir of [...stateDirs.values(), images?.dir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const view = (id: string) => rig.feed.view.instances.get(id)!;
  const consoleOn = (host: string, id: string) => drivers.get(host)!.consoleOutput(id).catch(() => '');
  const pidOn = async (host: string, id: string) => Number((await readFile(join(stateDirs.get(host)!, id, 'qemu.pid'), 'utf8')).trim());

  it('live migration: the guest keeps counting across the move, and the server changes host', async () => {
    const b = await rig.boot({ flavor: flavor(1, 128, 1), imageId: 'test-image' });
    if (!b.ok) throw new Error(b.rejection.message);
    const id = b.instanceId;
    await until(() => view(id)?.vm === 'active' && view(id).action === null, 'ACTIVE', 90_000);
    const source = view(id).host;
    const destination = [...drivers.keys()].find((h) => h !== source)!;
    await until(async () => ticks(await consoleOn(source, id)).length >= 2, 'the guest counting on the source', 90_000);
    const sourcePid = await pidOn(source, id);
    const before = ticks(await consoleOn(source, id));

    const moved = await rig.act(id, { type: 'LiveMigrateInstance' }, 120_000);
    expect(moved.vm).toBe('active');
    expect(moved.host).toBe(destination);
    expect(moved.fault).toBe('');
    // The source gave the guest up: its process ended and its files are gone.
    expect(await processAlive(sourcePid)).toBe(false);
    expect(await drivers.get(source)!.list()).toEqual([]);
    expect(await drivers.get(destination)!.powerState(id)).toBe(POWER_STATES.RUNNING);

    // On the destination the counter goes on; the guest did not boot again (no marker there).
    await until(async () => ticks(await consoleOn(destination, id)).length >= 2, 'the guest counting on the destination', 60_000);
    const after = ticks(await consoleOn(destination, id));
    expect(await consoleOn(destination, id)).not.toContain(MARKER);
    // It goes on from where it was on the source (a new boot would start again at 1).
    expect(after[0]).toBeGreaterThan(before[before.length - 1]!);
    for (let i = 1; i < after.length; i++) expect(after[i]).toBe(after[i - 1]! + 1);
    const last = after[after.length - 1]!;
    await sleep(2500);
    expect(Math.max(...ticks(await consoleOn(destination, id)))).toBeGreaterThan(last); // still running

    await until(() => view(id).claimHosts.length === 1, 'the source claim released');
    expect(view(id).claimHosts).toEqual([destination]);
    expect((await rig.act(id, { type: 'DeleteInstance', soft: false })).vm).toBe('deleted');
    expect(await drivers.get(destination)!.list()).toEqual([]);
    // The conductor gives back the claim and the quota just after the delete.
    await until(async () => (await rig.audit()).problems.length === 0, 'a clean audit', 30_000).catch(() => undefined);
    expect((await rig.audit()).problems).toEqual([]);
  }, 300_000);

  it('cold migration copies the disk: data written on the source is read on the destination; revert goes back', async () => {
    const b = await rig.boot({ flavor: flavor(1, 128, 1), imageId: 'with-disk' });
    if (!b.ok) throw new Error(b.rejection.message);
    const id = b.instanceId;
    await until(() => view(id)?.vm === 'active' && view(id).action === null, 'ACTIVE', 90_000);
    const source = view(id).host;
    const destination = [...drivers.keys()].find((h) => h !== source)!;
    const diskOn = (host: string) => join(stateDirs.get(host)!, id, 'disk.qcow2');
    // Write a pattern into the instance's disk while it is stopped, then start it again.
    expect((await rig.act(id, { type: 'StopInstance' }, 60_000)).vm).toBe('stopped');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 1M 1M', diskOn(source)]);
    expect((await rig.act(id, { type: 'StartInstance' }, 60_000)).vm).toBe('active');

    const moved = await rig.act(id, { type: 'MigrateInstance' }, 120_000);
    expect(moved.fault).toBe('');
    expect(moved.vm).toBe('resized');
    expect(moved.host).toBe(destination);
    const read = execFileSync('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', 'read -P 0xab 1M 1M', diskOn(destination)], { encoding: 'utf8' });
    expect(read).toContain('read 1048576/1048576 bytes');
    expect(read).not.toContain('Pattern verification failed');
    // It runs on the destination (booted from the copied disk); the source keeps its copy, off.
    expect(await drivers.get(destination)!.powerState(id)).toBe(POWER_STATES.RUNNING);
    expect(await drivers.get(source)!.powerState(id)).toBe(POWER_STATES.SHUTDOWN);

    const reverted = await rig.act(id, { type: 'RevertResizeInstance' }, 120_000);
    expect(reverted.vm).toBe('active');
    expect(reverted.host).toBe(source);
    expect(await drivers.get(source)!.powerState(id)).toBe(POWER_STATES.RUNNING);
    expect(execFileSync('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', 'read -P 0xab 1M 1M', diskOn(source)], { encoding: 'utf8' })).not.toContain('Pattern verification failed');
    expect((await rig.act(id, { type: 'DeleteInstance', soft: false })).vm).toBe('deleted');
  }, 300_000);
});
