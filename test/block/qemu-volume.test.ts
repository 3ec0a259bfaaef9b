// Issue 7 acceptance b and d through the whole system: the gRPC API, the block deciders and
// conductor, a real block agent (qcow2 files, qemu-storage-daemon NBD exports on loopback) and two
// compute hosts whose agents run real QEMU guests (TCG) with the qemu driver.
//   b. A volume attached to a running guest on host A: the guest writes a known pattern to the new
//      disk; detached (the disk leaves the guest, the volume is available); attached to a guest on
//      host B, which reads the same pattern.
//   d. The volume extended while attached to B: the guest sees the new size, and its data stays.
// The guest is the test image (scripts/build-test-image.sh) with its shell on a second serial port
// (agents/compute/guest-shell.ts).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeAgents, type HostConfig } from '../../agents/compute/compute.agent.js';
import { diskBySerial, guestShell, type GuestShell } from '../../agents/compute/guest-shell.js';
import { QemuDriver, testImageBoot } from '../../agents/compute/qemu.driver.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';
import { TOPOLOGY } from '../compute/compute-cloud.js';
import { until } from '../support/wait.js';

const root = new URL('../..', import.meta.url).pathname;
const hasQemu = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    execFileSync('qemu-storage-daemon', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const inventory = (): HostConfig['inventory'] => ({ vcpus: { total: 4, allocationRatio: 1 }, ramMb: { total: 4096, allocationRatio: 1 }, diskGb: { total: 20, allocationRatio: 1 } });

describe.skipIf(!hasQemu)('a volume moved between QEMU guests on two hosts, and extended while attached (acceptance b, d)', () => {
  const id = randomUUID().slice(0, 6);
  const hosts = [`qva-${id}`, `qvb-${id}`];
  const zones = [`za-${id}`, `zb-${id}`];
  let t: TestCloud;
  let agents: ComputeAgents;
  const drivers: QemuDriver[] = [];
  const dirs: string[] = [];
  let member: StrataClient;
  let flavorId: string;
  const servers: string[] = [];
  const shells: GuestShell[] = [];
  const errors: Error[] = [];

  beforeAll(async () => {
    const imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    const blockDir = mkdtempSync('/tmp/sbv-');
    dirs.push(blockDir);
    t = await startTestCloud({}, { conductor: { tickMs: 200 }, blockHosts: [{ hostId: `st-${id}`, backend: 'local', availabilityZone: 'nova', stateDir: blockDir, totalGb: 50, resyncMs: 500 }] });
    for (let i = 0; i < 2; i++) {
      // Short: QMP socket paths are limited to about 107 bytes.
      const stateDir = mkdtempSync('/tmp/sqv-');
      dirs.push(stateDir);
      drivers.push(new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => testImageBoot(imageDir) }));
    }
    // The hosts' agent as a process of its own would run it: its own feeds, following the block domain.
    agents = await ComputeAgents.start({
      log: t.log,
      topology: TOPOLOGY,
      hosts: hosts.map((hostId, i) => ({ hostId, availabilityZone: zones[i], inventory: inventory(), driver: drivers[i] })),
      heartbeatMs: 1000,
      block: {},
      onError: (e) => errors.push(e),
    });
    const admin = t.client(await t.adminToken());
    const project = (await admin.call('CreateProject', { project: { name: `qv-${id}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `qv-${id}`, domainId: 'default' }, password: 'qemu-volume-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    member = t.client(await t.login(user.name, 'qemu-volume-pw', { projectId: project.id }));
    flavorId = (await admin.call('CreateFlavor', { flavor: { name: `tiny-${id}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;
    for (const h of hosts) await until(async () => (await admin.call('GetHost', { id: h })).host.up, `host ${h} up`, 30_000);
    // One guest on each host (their zones pin them).
    for (let i = 0; i < 2; i++) {
      const created = await member.call('CreateServer', { name: `g${i}`, flavorId, imageId: 'strata-test', availabilityZone: zones[i] });
      servers.push(created.servers[0].id);
    }
    for (const [i, s] of servers.entries()) {
      await until(async () => (await member.call('GetServer', { id: s })).server.status === 'ACTIVE', `guest ${i} ACTIVE`, 120_000);
      shells.push(await guestShell(drivers[i].shellSocket(s), 120_000));
    }
  }, 300_000);

  afterAll(async () => {
    for (const s of shells) s.close();
    await agents?.close();
    await t?.close();
    for (const d of drivers) {
      for (const g of await d.list()) await d.destroy(g).catch(() => undefined);
      d.close();
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }, 120_000);

  const volume = async (volumeId: string) => (await member.call('GetVolume', { id: volumeId })).volume;
  const settled = async (volumeId: string, status: string, timeoutMs = 120_000) => {
    let last: Record<string, any> = {};
    await until(async () => (last = await volume(volumeId)).status === status, `volume ${status}`, timeoutMs).catch((e: Error) => {
      throw new Error(`${e.message}: it is ${last.status} ${last.statusReason ?? ''} (agent errors: ${errors.map((x) => x.message).join('; ')})`);
    });
    return last;
  };
  /** The guest's name for the volume's disk, once it lists it. */
  const diskIn = async (shell: GuestShell, volumeId: string) => {
    let name = '';
    await until(async () => Boolean((name = (await diskBySerial(shell, volumeId.slice(0, 20)))?.name ?? '')), `the disk of volume ${volumeId} in the guest`, 60_000);
    return name;
  };
  const PATTERN = 'strata-pattern-';

  it('b: a pattern written by the guest on host A is read by the guest on host B', async () => {
    const v = (await member.call('CreateVolume', { sizeGb: 1, name: 'moving' })).volume;
    await settled(v.id, 'available');

    const t0 = performance.now();
    await member.call('AttachVolume', { serverId: servers[0], volumeId: v.id });
    const onA = await settled(v.id, 'in-use');
    expect(onA.attachments[0]).toMatchObject({ serverId: servers[0], hostId: hosts[0], status: 'attached', device: '/dev/vdb' });
    const diskA = await diskIn(shells[0], v.id);
    console.log(`attach to visible in the guest through the API: ${Math.round(performance.now() - t0)} ms`);
    // 2 MiB of a known pattern (a marker, then random bytes) at 1 MiB, written through to the disk.
    await shells[0].run(`dd if=/dev/urandom of=/tmp/p bs=1M count=2 2>/dev/null; printf '${PATTERN}00000000' | dd of=/tmp/p conv=notrunc 2>/dev/null; dd if=/tmp/p of=/dev/${diskA} bs=1M seek=1 conv=fsync 2>&1 | tail -n 1`);
    const written = (await shells[0].run(`dd if=/dev/${diskA} bs=1M skip=1 count=2 2>/dev/null | md5sum`)).split(' ')[0];
    const expected = (await shells[0].run('md5sum /tmp/p')).split(' ')[0];
    expect(written).toBe(expected);

    await member.call('DetachVolume', { serverId: servers[0], volumeId: v.id });
    const free = await settled(v.id, 'available');
    expect(free.attachments).toEqual([]);
    await until(async () => !(await diskBySerial(shells[0], v.id.slice(0, 20))), 'the disk gone from guest A', 60_000);

    await member.call('AttachVolume', { serverId: servers[1], volumeId: v.id });
    const onB = await settled(v.id, 'in-use');
    expect(onB.attachments[0]).toMatchObject({ serverId: servers[1], hostId: hosts[1], status: 'attached' });
    const diskB = await diskIn(shells[1], v.id);
    const read = (await shells[1].run(`dd if=/dev/${diskB} bs=1M skip=1 count=2 2>/dev/null | md5sum`)).split(' ')[0];
    expect(read).toBe(expected);
    expect(await shells[1].run(`dd if=/dev/${diskB} bs=1M skip=1 count=1 2>/dev/null | head -c 23`)).toBe(`${PATTERN}00000000`);
  }, 300_000);

  it('d: extended while attached, the guest sees the new size and keeps its data', async () => {
    const [attached] = (await member.call('ListServerVolumes', { serverId: servers[1] })).attachments;
    const volumeId = attached.volumeId as string;
    const disk = await diskIn(shells[1], volumeId);
    const before = Number(await shells[1].run(`cat /sys/block/${disk}/size`));
    expect(before).toBe((1024 ** 3) / 512);
    const sum = (await shells[1].run(`dd if=/dev/${disk} bs=1M skip=1 count=2 2>/dev/null | md5sum`)).split(' ')[0];

    const t0 = performance.now();
    await member.call('ExtendVolume', { id: volumeId, newSizeGb: 2 });
    const grown = await settled(volumeId, 'in-use');
    expect(grown.sizeGb).toBe(2);
    await until(async () => Number(await shells[1].run(`cat /sys/block/${disk}/size`)) === (2 * 1024 ** 3) / 512, 'the guest seeing 2 GiB', 60_000);
    console.log(`extend to visible in the guest through the API: ${Math.round(performance.now() - t0)} ms`);
    expect((await shells[1].run(`dd if=/dev/${disk} bs=1M skip=1 count=2 2>/dev/null | md5sum`)).split(' ')[0]).toBe(sum);
    // The new end is usable.
    await shells[1].run(`echo tail-end | dd of=/dev/${disk} bs=1M seek=2047 conv=fsync 2>/dev/null`);
    expect(await shells[1].run(`dd if=/dev/${disk} bs=1M skip=2047 count=1 2>/dev/null | head -c 8`)).toBe('tail-end');
  }, 300_000);
});
