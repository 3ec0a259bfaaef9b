// Acceptance e of the images issue, on real components: the test guest's kernel and initramfs are
// uploaded to the image service as a kernel (aki) and a ramdisk (ari) image, and a blank qcow2 as
// an AMI-style machine image naming them (kernel_id, ramdisk_id, os_command_line); their data
// lives in object storage (3 object servers, 3 replicas). A QEMU guest (TCG) boots from the machine
// image on a compute host that downloads the images from object storage; it writes a marker to its
// disk; CreateServerImage snapshots it into a new image (uploaded by the host, checksummed, active);
// a second guest booted from that image reads the marker.
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeAgents, type HostConfig } from '../../agents/compute/compute.agent.js';
import { guestShell, type GuestShell } from '../../agents/compute/guest-shell.js';
import { ImageServiceSource } from '../../agents/compute/image-service.js';
import { QemuDriver, testImageBoot } from '../../agents/compute/qemu.driver.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import { TOPOLOGY } from '../compute/compute-cloud.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';
import { until } from '../support/wait.js';

const root = new URL('../..', import.meta.url).pathname;
const hasQemu = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(!hasQemu)('booting QEMU guests from the image service (acceptance e)', () => {
  const id = randomUUID().slice(0, 6);
  const hostId = `img-${id}`;
  let t: TestCloud;
  let agents: ComputeAgents;
  let driver: QemuDriver;
  let member: StrataClient;
  let flavorId: string;
  let testImageDir: string;
  let cacheDir: string;
  const dirs: string[] = [];
  const shells: GuestShell[] = [];
  const errors: Error[] = [];

  beforeAll(async () => {
    testImageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    const objectDir = mkdtempSync('/tmp/sio-');
    dirs.push(objectDir);
    t = await startTestCloud(
      {},
      {
        conductor: { tickMs: 200 },
        objectDevices: [1, 2, 3].map((n) => ({ deviceId: n, root: join(objectDir, `d${n}`), port: 0, zone: n })),
        objectRing: { partPower: 6, replicas: 3 },
      },
    );
    const stateDir = mkdtempSync('/tmp/sqi-');
    cacheDir = mkdtempSync('/tmp/sqc-');
    dirs.push(stateDir, cacheDir);
    const system = { userId: 'compute-host', projectId: '', roles: ['service'] };
    driver = new QemuDriver({
      stateDir,
      accelerator: 'tcg',
      images: new ImageServiceSource({
        cacheDir,
        image: (imageId) => t.cloud.imageFeed.view.image(imageId),
        store: t.cloud.image.imageStore,
        commands: async (imageId, command) => void (await t.cloud.image.writer.send('image', imageId, command, system)),
      }),
    });
    const host: HostConfig = { hostId, availabilityZone: `z-${id}`, inventory: { vcpus: { total: 4, allocationRatio: 1 }, ramMb: { total: 4096, allocationRatio: 1 }, diskGb: { total: 20, allocationRatio: 1 } }, driver };
    agents = await ComputeAgents.start({ log: t.log, topology: TOPOLOGY, hosts: [host], heartbeatMs: 1000, onError: (e) => errors.push(e) });
    const admin = t.client(await t.adminToken());
    const project = (await admin.call('CreateProject', { project: { name: `img-${id}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `img-${id}`, domainId: 'default' }, password: 'image-boot-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    member = t.client(await t.login(user.name, 'image-boot-pw', { projectId: project.id }));
    flavorId = (await admin.call('CreateFlavor', { flavor: { name: `tiny-${id}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;
    await until(async () => (await admin.call('GetHost', { id: hostId })).host.up, `host ${hostId} up`, 30_000);
  }, 300_000);

  afterAll(async () => {
    for (const s of shells) s.close();
    await agents?.close();
    await t?.close();
    if (driver) {
      for (const g of await driver.list()) await driver.destroy(g).catch(() => undefined);
      driver.close();
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  const upload = async (path: string, image: Record<string, unknown>) => {
    const created = (await member.call('CreateImage', { image })).image;
    const size = (await stat(path)).size;
    const done = (await member.upload('UploadImage', { imageId: created.id, contentLength: size }, createReadStream(path, { highWaterMark: 1024 * 1024 }))).image;
    expect(done).toMatchObject({ status: 'active', size });
    return done;
  };

  const bootAndShell = async (name: string, imageId: string) => {
    const s = (await member.call('CreateServer', { name, flavorId, imageId, availabilityZone: `z-${id}` })).servers[0];
    await until(async () => (await member.call('GetServer', { id: s.id })).server.status === 'ACTIVE', `${name} ACTIVE (agent errors: ${errors.map((e) => e.message).join('; ')})`, 180_000);
    const shell = await guestShell(driver.shellSocket(s.id), 120_000);
    shells.push(shell);
    return { id: s.id, shell };
  };

  it('uploads an image, boots a guest from it, snapshots the guest into an image, and boots from that', async () => {
    const boot = testImageBoot(testImageDir);
    const kernel = await upload(boot.kernel, { name: `kernel-${id}`, diskFormat: 'aki', containerFormat: 'aki' });
    const ramdisk = await upload(boot.initrd!, { name: `ramdisk-${id}`, diskFormat: 'ari', containerFormat: 'ari' });
    const blank = join(dirs[0], 'blank.qcow2');
    execFileSync('qemu-img', ['create', '-f', 'qcow2', blank, '64M'], { stdio: 'ignore' });
    const machine = await upload(blank, {
      name: `machine-${id}`, diskFormat: 'qcow2', containerFormat: 'bare',
      properties: { kernel_id: kernel.id, ramdisk_id: ramdisk.id, os_command_line: boot.append },
    });
    expect(machine.virtualSize).toBe(64 * 1024 * 1024);

    const first = await bootAndShell('from-upload', machine.id);
    const marker = `strata-snapshot-${id}`;
    await first.shell.run(`printf '${marker}' | dd of=/dev/vda conv=fsync 2>/dev/null; sync`);
    expect(await first.shell.run('dd if=/dev/vda bs=64 count=1 2>/dev/null')).toContain(marker);

    const snap = await member.call('CreateServerImage', { id: first.id, name: `snap-${id}` });
    expect(snap.imageId).toMatch(/^[0-9a-f-]{36}$/);
    let image: Record<string, any> = {};
    await until(async () => (image = (await member.call('GetImage', { id: snap.imageId })).image).status === 'active', `snapshot image active (it is ${image.status}; agent errors: ${errors.map((e) => e.message).join('; ')})`, 120_000);
    expect(image).toMatchObject({ owner: machine.owner, diskFormat: 'qcow2', visibility: 'private' });
    expect(image.properties).toMatchObject({ kernel_id: kernel.id, ramdisk_id: ramdisk.id, image_type: 'snapshot', instance_uuid: first.id, base_image_ref: machine.id });
    expect(image.checksum).toMatch(/^[0-9a-f]{32}$/);
    expect(image.osHashValue).toMatch(/^[0-9a-f]{128}$/);

    // The host kept its snapshot in its cache: empty the cache, so that this boot downloads every image from object storage.
    rmSync(cacheDir, { recursive: true, force: true });
    const second = await bootAndShell('from-snapshot', snap.imageId);
    expect(existsSync(join(cacheDir, `${snap.imageId}.${image.checksum}`))).toBe(true);
    expect(await second.shell.run('dd if=/dev/vda bs=64 count=1 2>/dev/null')).toContain(marker);
  }, 600_000);

  it('refuses to boot an image that is not active, and one another project cannot use', async () => {
    const queued = (await member.call('CreateImage', { image: { name: `queued-${id}`, diskFormat: 'qcow2', containerFormat: 'bare' } })).image;
    await expect(member.call('CreateServer', { name: 'nope', flavorId, imageId: queued.id })).rejects.toMatchObject({ code: 9, state: 'queued' });
    const admin = t.client(await t.adminToken());
    const other = (await admin.call('CreateImage', { image: { name: `private-${id}`, visibility: 'private', diskFormat: 'qcow2', containerFormat: 'bare' } })).image;
    await expect(member.call('CreateServer', { name: 'nope', flavorId, imageId: other.id })).rejects.toMatchObject({ code: 5 });
  }, 60_000);
});
