// Block volumes on real QEMU guests (issue 7, acceptance b and d): the test image (TCG) with its
// shell on ttyS1, volumes served as NBD exports by a qemu-storage-daemon per volume (the storage
// host's part, test/support/nbd-export.ts).
// (b) A volume attached to a running guest appears in it (STRATA-DISK on the console, its serial
//     the volume id's first 20 characters); the guest writes a pattern; detached, the disk leaves
//     the guest; attached to a second guest, the same bytes read back there. Attach is idempotent.
// (d) Grown by the storage host and extended by the driver while attached, the guest sees the new
//     size; a too-small export is refused and the disk keeps working; a read-only attachment is
//     read-only in the guest; a power cycle and a suspend/resume keep the volumes (on the
//     relaunched QEMU's command line) and their data; a new driver over the same directory (an
//     agent restart) lists and detaches them.
// Attach-to-visible time (attachVolume called -> the disk in the guest's /sys/block) is printed;
// guest-shell.ts's attachAndSee measures it (the benchmark reuses it).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNbdExport, type NbdExport } from '../../test/support/nbd-export.js';
import { nextVolumeDevice, type GuestSpec, type VolumeAttachmentSpec } from './driver.js';
import { FakeDriver } from './fake.driver.js';
import { attachAndSee, diskBySerial, guestDisks, guestShell, type GuestShell } from './guest-shell.js';
import { QemuDriver, testImageBoot } from './qemu.driver.js';

const root = new URL('../..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const available = (() => {
  try {
    for (const bin of ['qemu-system-x86_64', 'qemu-storage-daemon', 'qemu-img']) execFileSync(bin, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

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
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the console line `line` after character `from` of the console output. */
async function consoleLine(driver: QemuDriver, id: string, line: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
  return waitFor(`${line} on the console of ${id}`, async () => {
    const text = await driver.consoleOutput(id);
    const m = line.exec(text.slice(from));
    return m ? from + m.index + m[0].length : false;
  }, timeoutMs);
}

const md5 = async (shell: GuestShell, cmd: string) => (await shell.run(`${cmd} 2>/dev/null | md5sum`)).split(/\s+/)[0]!;

describe('volume device names and the fake driver (the driver contract without a hypervisor)', () => {
  it("names devices as Nova does: the first free of vdb, vdc, ...", () => {
    expect(nextVolumeDevice([])).toBe('/dev/vdb');
    expect(nextVolumeDevice(['/dev/vdb', '/dev/vdd'])).toBe('/dev/vdc');
    expect(nextVolumeDevice(Array.from({ length: 25 }, (_, n) => `/dev/vd${String.fromCharCode(98 + n)}`).slice(0, 25))).toBe('/dev/vdaa');
  });

  it('records attachments idempotently, in order, and forgets detached ones', async () => {
    const fake = new FakeDriver('h1');
    await fake.spawn(spec('i1'));
    const conn = { host: '127.0.0.1', port: 1, exportName: 'e' };
    expect(await fake.attachVolume('i1', { attachmentId: 'a1', volumeId: 'v1', connection: conn, readOnly: false })).toEqual({ device: '/dev/vdb' });
    expect(await fake.attachVolume('i1', { attachmentId: 'a1', volumeId: 'v1', connection: conn, readOnly: false })).toEqual({ device: '/dev/vdb' });
    expect(await fake.attachVolume('i1', { attachmentId: 'a2', volumeId: 'v2', connection: conn, readOnly: true })).toEqual({ device: '/dev/vdc' });
    expect(await fake.listVolumes('i1')).toEqual(['a1', 'a2']);
    await fake.extendVolume('i1', 'a1', 2 * MiB);
    await expect(fake.extendVolume('i1', 'nope', MiB)).rejects.toThrow(/no volume attachment/);
    await fake.detachVolume('i1', 'a1');
    await fake.detachVolume('i1', 'a1');
    expect(await fake.listVolumes('i1')).toEqual(['a2']);
    expect(await fake.attachVolume('i1', { attachmentId: 'a3', volumeId: 'v3', connection: conn, readOnly: false })).toEqual({ device: '/dev/vdb' });
  });
});

describe.skipIf(!available)('qemu driver: block volumes over NBD (acceptance b, d)', () => {
  let stateDir: string;
  let imageDir: string;
  let driver: QemuDriver;
  const exports: NbdExport[] = [];
  const shells = new Map<string, GuestShell>();
  const volA = '5d4c3b2a-1111-4222-8333-944455556666';
  const volB = '7e6d5c4b-aaaa-4bbb-8ccc-9dddeeeeffff';
  const volC = '0c0c0c0c-cccc-4ccc-8ccc-cccccccccccc';
  let exportA: NbdExport;
  let exportB: NbdExport;
  let exportC: NbdExport;
  const attachment = (attachmentId: string, volumeId: string, e: NbdExport, readOnly = false): VolumeAttachmentSpec => ({
    attachmentId, volumeId, connection: e.connection, readOnly,
  });
  const open = async (id: string) => {
    shells.get(id)?.close();
    const s = await guestShell(driver.shellSocket(id), 90_000);
    shells.set(id, s);
    return s;
  };

  beforeAll(async () => {
    imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    stateDir = mkdtempSync(join(tmpdir(), 'strata-vol-'));
    driver = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => testImageBoot(imageDir) });
    exportA = await startNbdExport(64 * MiB, 'volume-a');
    exportB = await startNbdExport(32 * MiB, 'volume-b');
    exportC = await startNbdExport(16 * MiB, 'volume-c');
    exports.push(exportA, exportB, exportC);
  }, 120_000);

  afterAll(async () => {
    for (const s of shells.values()) s.close();
    if (driver) {
      for (const id of await driver.list()) await driver.destroy(id).catch(() => undefined);
      driver.close();
    }
    for (const e of exports) await e.stop();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('(b) attaches a volume, the guest writes it, detaches it, and a second guest reads the same bytes', async () => {
    // Two guests boot together (at most two TCG guests at once).
    await Promise.all([driver.spawn(spec('vm-a')), driver.spawn(spec('vm-b'))]);
    const [shellA, shellB] = await Promise.all([open('vm-a'), open('vm-b')]);
    expect(await guestDisks(shellA)).toEqual([]);

    const from = (await driver.consoleOutput('vm-a')).length;
    const first = await attachAndSee(driver, shellA, 'vm-a', attachment('att-a1', volA, exportA));
    console.log(`attach-to-visible (running TCG guest, guest shell polling): ${first.ms.toFixed(0)} ms`);
    expect(first.device).toBe('/dev/vdb');
    expect(first.disk).toMatchObject({ sectors: (64 * MiB) / 512, serial: volA.slice(0, 20), readOnly: false });
    const disk = first.disk.name;
    await consoleLine(driver, 'vm-a', new RegExp(`STRATA-DISK ${disk} ${(64 * MiB) / 512}\\n`), from);
    expect(await driver.listVolumes('vm-a')).toEqual(['att-a1']);

    // Idempotent: the same attachment again is the same device, and no second disk.
    expect(await driver.attachVolume('vm-a', attachment('att-a1', volA, exportA))).toEqual({ device: '/dev/vdb' });
    expect((await guestDisks(shellA)).map((d) => d.name)).toEqual([disk]);

    // The guest writes 1 MiB of random bytes at 8 MiB into the disk, synced.
    await shellA.run('dd if=/dev/urandom of=/tmp/pattern bs=65536 count=16 2>/dev/null');
    const written = await md5(shellA, 'cat /tmp/pattern');
    expect(written).toMatch(/^[0-9a-f]{32}$/);
    await shellA.run(`dd if=/tmp/pattern of=/dev/${disk} bs=65536 seek=128 count=16 conv=fsync 2>/dev/null`);

    const beforeDetach = (await driver.consoleOutput('vm-a')).length;
    const t0 = performance.now();
    await driver.detachVolume('vm-a', 'att-a1');
    console.log(`detach (device_del until the guest let it go, blockdev-del): ${(performance.now() - t0).toFixed(0)} ms`);
    await consoleLine(driver, 'vm-a', new RegExp(`STRATA-DISK ${disk} gone\\n`), beforeDetach);
    expect(await guestDisks(shellA)).toEqual([]);
    expect(await driver.listVolumes('vm-a')).toEqual([]);
    await driver.detachVolume('vm-a', 'att-a1'); // idempotent
    // Its nodes are gone from QEMU too (blockdev-del of the raw and nbd nodes).
    const nodes = await driver.execute<{ 'node-name': string }[]>('vm-a', 'query-named-block-nodes', { flat: true });
    expect(nodes.map((n) => n['node-name'])).toEqual([]);

    // The same volume on the second guest: the same bytes.
    const second = await attachAndSee(driver, shellB, 'vm-b', attachment('att-b1', volA, exportA));
    console.log(`attach-to-visible (second guest): ${second.ms.toFixed(0)} ms`);
    expect(second.device).toBe('/dev/vdb');
    expect(await md5(shellB, `dd if=/dev/${second.disk.name} bs=65536 skip=128 count=16`)).toBe(written);
    // ... and not by chance: the region before it is still zeros.
    expect(await md5(shellB, `dd if=/dev/${second.disk.name} bs=65536 skip=112 count=16`)).toBe(await md5(shellB, 'dd if=/dev/zero bs=65536 count=16'));

    await driver.destroy('vm-a'); // one guest is enough from here on
  }, 300_000);

  it('(d) extends an attached volume, keeps volumes over a power cycle, a suspend and an agent restart', async () => {
    const id = 'vm-b';
    let shell = shells.get(id)!;
    const a = (await diskBySerial(shell, volA.slice(0, 20)))!;
    expect(a.sectors).toBe((64 * MiB) / 512);
    const pattern = await md5(shell, `dd if=/dev/${a.name} bs=65536 skip=128 count=16`);

    // A second volume gets the next device name.
    const b = await attachAndSee(driver, shell, id, attachment('att-b2', volB, exportB));
    console.log(`attach-to-visible (second volume): ${b.ms.toFixed(0)} ms`);
    expect(b.device).toBe('/dev/vdc');

    // Extending before the storage host grew the export is refused; the disk keeps working.
    await expect(driver.extendVolume(id, 'att-b1', 128 * MiB)).rejects.toThrow(/offers 67108864 bytes/);
    expect((await diskBySerial(shell, volA.slice(0, 20)))!.sectors).toBe((64 * MiB) / 512);
    expect(await md5(shell, `dd if=/dev/${a.name} bs=65536 skip=128 count=16`)).toBe(pattern);

    // The storage host grows it (its export made again), then the driver extends it in the guest.
    const from = (await driver.consoleOutput(id)).length;
    await exportA.resize(128 * MiB);
    // Between the two the guest's connection was dropped with the old export: its I/O waits for
    // the reconnect (reconnect-delay) and goes through to the export made again.
    await shell.run(`dd if=/dev/${a.name} of=/dev/${a.name} bs=65536 skip=128 seek=256 count=16 conv=fsync 2>/dev/null`);
    expect(await md5(shell, `dd if=/dev/${a.name} bs=65536 skip=256 count=16 iflag=direct`)).toBe(pattern);
    const t0 = performance.now();
    await driver.extendVolume(id, 'att-b1', 128 * MiB);
    await waitFor('the new size in the guest', async () => (await diskBySerial(shell, volA.slice(0, 20)))?.sectors === (128 * MiB) / 512);
    console.log(`extend-to-visible: ${(performance.now() - t0).toFixed(0)} ms`);
    await consoleLine(driver, id, new RegExp(`STRATA-DISK ${a.name} ${(128 * MiB) / 512}\\n`), from);
    await driver.extendVolume(id, 'att-b1', 128 * MiB); // idempotent
    // The data is still there, and the new end is writable.
    expect(await md5(shell, `dd if=/dev/${a.name} bs=65536 skip=128 count=16`)).toBe(pattern);
    await shell.run(`dd if=/dev/urandom of=/tmp/tail bs=65536 count=16 2>/dev/null`);
    const tail = await md5(shell, 'cat /tmp/tail');
    await shell.run(`dd if=/tmp/tail of=/dev/${a.name} bs=65536 seek=1800 count=16 conv=fsync 2>/dev/null`);
    // One nbd node per volume left (the old connection deleted).
    const nodes = (await driver.execute<{ 'node-name': string }[]>(id, 'query-named-block-nodes', { flat: true })).map((n) => n['node-name']);
    expect(nodes.filter((n) => n.startsWith('vn-'))).toHaveLength(2);

    // Read-only: the guest sees it read-only and cannot write it.
    const c = await attachAndSee(driver, shell, id, attachment('att-b3', volC, exportC, true));
    expect(c.device).toBe('/dev/vdd');
    expect(c.disk.readOnly).toBe(true);
    expect((await shell.exec(`dd if=/dev/zero of=/dev/${c.disk.name} bs=4096 count=1 conv=fsync`)).status).not.toBe(0);
    await driver.detachVolume(id, 'att-b3');
    await waitFor('the read-only disk gone', async () => (await diskBySerial(shell, volC.slice(0, 20))) === undefined);

    // Power off and on: the relaunched QEMU has both volumes, at their current size, with their data.
    await driver.powerOff(id);
    await driver.powerOn(id);
    shell = await open(id);
    const disks = await waitFor('both disks after power on', async () => {
      const d = await guestDisks(shell);
      return d.length === 2 ? d : undefined;
    });
    expect(new Map(disks.map((d) => [d.serial, d.sectors]))).toEqual(new Map([[volA.slice(0, 20), (128 * MiB) / 512], [volB.slice(0, 20), (32 * MiB) / 512]]));
    const again = (await diskBySerial(shell, volA.slice(0, 20)))!;
    expect(await md5(shell, `dd if=/dev/${again.name} bs=65536 skip=128 count=16`)).toBe(pattern);
    expect(await md5(shell, `dd if=/dev/${again.name} bs=65536 skip=1800 count=16`)).toBe(tail);
    expect(await driver.attachVolume(id, attachment('att-b1', volA, exportA))).toEqual({ device: '/dev/vdb' });
    expect(await guestDisks(shell)).toHaveLength(2);

    // Suspend and resume: the saved machine comes back with its disks (on the restored QEMU's command line).
    await driver.suspend(id);
    await driver.resume(id);
    shell = await open(id);
    expect(await md5(shell, `dd if=/dev/${again.name} bs=65536 skip=128 count=16`)).toBe(pattern);

    // An agent restart: a new driver over the same directory knows the volumes and detaches one.
    driver.close();
    const restarted = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => { throw new Error('unused'); } });
    try {
      expect(await restarted.listVolumes(id)).toEqual(['att-b1', 'att-b2']);
      await restarted.detachVolume(id, 'att-b2');
      await waitFor('the second disk gone', async () => (await diskBySerial(shell, volB.slice(0, 20))) === undefined);
      expect(await restarted.listVolumes(id)).toEqual(['att-b1']);
      // The freed name is Nova's next one again.
      expect(await restarted.attachVolume(id, attachment('att-b4', volB, exportB))).toEqual({ device: '/dev/vdc' });
      await waitFor('the second disk back', async () => (await diskBySerial(shell, volB.slice(0, 20))) !== undefined);
    } finally {
      restarted.close();
    }
  }, 300_000);
});
