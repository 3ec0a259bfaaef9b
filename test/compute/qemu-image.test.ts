// Real guests and their images: create image from a running server writes a new image to the
// host's image directory and a server booted from it boots; rescue boots the image afresh and
// unrescue goes back; rebuild boots the new image; resize starts the guest with the new flavor's
// memory and vCPUs (read over QMP).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageDirectory } from '../../agents/compute/image-dir.js';
import { QemuDriver } from '../../agents/compute/qemu.driver.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const MARKER = 'STRATA-GUEST-READY';
const root = new URL('../..', import.meta.url).pathname;

describe('images, rescue, rebuild and resize of real guests (embedded log, TCG)', () => {
  let rig: Rig;
  let images: ImageDirectory;
  const drivers = new Map<string, QemuDriver>();
  const stateDirs = new Map<string, string>();
  beforeAll(async () => {
    const built = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    const imageDir = mkdtempSync(join(tmpdir(), 'strata-images-'));
    symlinkSync(built, join(imageDir, 'test-image'));
    mkdirSync(join(imageDir, 'with-disk'));
    for (const f of ['vmlinuz', 'initramfs.cpio.gz']) symlinkSync(join(built, f), join(imageDir, 'with-disk', f));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(imageDir, 'with-disk', 'disk.qcow2'), '64M']);
    images = new ImageDirectory(imageDir);
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
  const driverOf = (id: string) => drivers.get(view(id).host)!;
  const consoleOf = (id: string) => driverOf(id).consoleOutput(id).catch(() => '');
  const markers = async (id: string) => (await consoleOf(id)).split(MARKER).length - 1;
  const waitMarkers = (id: string, n: number) => until(async () => (await markers(id)) >= n, `${n} boots of ${id}`, 90_000);

  async function boot(imageId: string, f = flavor(1, 128, 1)): Promise<string> {
    const b = await rig.boot({ flavor: f, imageId });
    if (!b.ok) throw new Error(b.rejection.message);
    await until(() => view(b.instanceId)?.vm === 'active' && view(b.instanceId).action === null, 'ACTIVE', 90_000);
    return b.instanceId;
  }

  it('create image from a running server, then a new server boots from that image', async () => {
    const id = await boot('test-image');
    await waitMarkers(id, 1);
    const done = await rig.act(id, { type: 'CreateInstanceImage', imageId: 'snap-1', name: 'snap of vm' }, 60_000);
    expect(done.fault).toBe('');
    expect(done.vm).toBe('active');
    expect(existsSync(join(images.dir, 'snap-1', 'vmlinuz'))).toBe(true);
    expect(images.resolve('snap-1').kind).toBe('kernel');

    const second = await boot('snap-1');
    expect(view(second).imageId).toBe('snap-1');
    await waitMarkers(second, 1);
    // The first server kept running through the snapshot.
    expect(await driverOf(id).powerState(id)).toBe(1);
  }, 300_000);

  it('rescue boots the image afresh, unrescue goes back; rebuild boots again', async () => {
    const id = await boot('test-image');
    await waitMarkers(id, 1);
    expect((await rig.act(id, { type: 'RescueInstance' }, 60_000)).vm).toBe('rescued');
    await waitMarkers(id, 2);
    expect((await rig.act(id, { type: 'UnrescueInstance' }, 60_000)).vm).toBe('active');
    await waitMarkers(id, 3);

    mkdirSync(join(images.dir, 'other'), { recursive: true });
    for (const f of ['vmlinuz', 'initramfs.cpio.gz']) symlinkSync(join(images.dir, 'test-image', f), join(images.dir, 'other', f));
    const rebuilt = await rig.act(id, { type: 'RebuildInstance', imageId: 'other' }, 60_000);
    expect(rebuilt.vm).toBe('active');
    expect(rebuilt.fault).toBe('');
    // A rebuild starts from a new disk: the console is the new guest's.
    await waitMarkers(id, 1);
    const guest = JSON.parse(readFileSync(join(stateDirs.get(view(id).host)!, id, 'guest.json'), 'utf8'));
    expect(guest.spec.imageId).toBe('other');
  }, 300_000);

  it("resize starts the guest on another host with the new flavor's memory and vCPUs", async () => {
    const id = await boot('test-image', flavor(1, 128, 1));
    const resized = await rig.act(id, { type: 'ResizeInstance', flavor: flavor(2, 192, 1) }, 90_000);
    expect(resized.vm).toBe('resized');
    const d = driverOf(id);
    const mem = await d.execute<{ 'base-memory': number }>(id, 'query-memory-size-summary');
    expect(mem['base-memory']).toBe(192 * 1024 * 1024);
    const cpus = await d.execute<unknown[]>(id, 'query-cpus-fast');
    expect(cpus).toHaveLength(2);
    await waitMarkers(id, 1);
    expect((await rig.act(id, { type: 'ConfirmResizeInstance' }, 60_000)).vm).toBe('active');
    expect(view(id).flavor?.ramMb).toBe(192);
  }, 300_000);

  it('shelve-offload keeps the disk as an image and frees the host; unshelve boots from it with the data', async () => {
    const id = await boot('with-disk');
    const host = view(id).host;
    const disk = () => join(stateDirs.get(view(id).host)!, id, 'disk.qcow2');
    expect((await rig.act(id, { type: 'StopInstance' }, 60_000)).vm).toBe('stopped');
    execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 2M 1M', disk()]);

    const shelved = await rig.act(id, { type: 'ShelveInstance', offload: true }, 90_000);
    expect(shelved.vm).toBe('shelved_offloaded');
    expect(shelved.host).toBe('');
    expect(await drivers.get(host)!.list()).not.toContain(id); // process and files gone from the host
    await until(() => view(id).claimHosts.length === 0, 'the placement released');
    expect(images.resolve(`${id}-shelved`)).toMatchObject({ kind: 'kernel', disk: expect.stringContaining(`${id}-shelved`) });

    const unshelved = await rig.act(id, { type: 'UnshelveInstance' }, 120_000);
    expect(unshelved.vm).toBe('active');
    expect(unshelved.fault).toBe('');
    await waitMarkers(id, 1);
    const read = execFileSync('qemu-io', ['-r', '-U', '-f', 'qcow2', '-c', 'read -P 0x5a 2M 1M', disk()], { encoding: 'utf8' });
    expect(read).toContain('read 1048576/1048576 bytes');
    expect(read).not.toContain('Pattern verification failed');
  }, 300_000);
});
