// Block volumes on real QEMU guests (issue 7, acceptance b and d): the test image (TCG) with its
// shell on ttyS1, volumes served as NBD exports by a qemu-storage-daemon per volume (the storage
// host's part, test/support/nbd-export.ts).
// (b) A volume attached to a running guest appears in it (STRATA-DISK on the console, its serial
//     the volume id's first 20 characters); the guest writes a pattern; detached, the disk leaves
//     the guest; attached to a second guest, the same bytes read back there. Attach is idempotent.
// (d) Grown by the storage host and extended by the driver while attached, the guest sees the new
//     size; a too-small export is refused and the disk keeps working; a power cycle keeps the
//     volumes (on the relaunched QEMU's command line) and their data; a new driver over the same
//     directory (an agent restart) lists and detaches them.
// Attach-to-visible time (attachVolume called -> the disk in the guest's /sys/block) is printed.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNbdExport, type NbdExport } from '../../test/support/nbd-export.js';
import type { GuestSpec, VolumeAttachmentSpec } from './driver.js';
import { guestShell, type GuestShell } from './guest-shell.js';
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

/** The guest's virtio disks: name -> { serial, sectors }. */
async function guestDisks(shell: GuestShell): Promise<Map<string, { serial: string; sectors: number }>> {
  const out = await shell.run('for d in /sys/block/vd*; do [ -e "$d/size" ] && echo "${d##*/} $(cat $d/size) $(cat $d/serial)"; done; true');
  const disks = new Map<string, { serial: string; sectors: number }>();
  for (const line of out.split('\n')) {
    const [name, sectors, serial] = line.trim().split(/\s+/);
    if (name && sectors) disks.set(name, { serial: serial ?? '', sectors: Number(sectors) });
  }
  return disks;
}

/** The guest's disk with this serial (its name in the guest, which orders disks its own way). */
async function diskBySerial(shell: GuestShell, serial: string): Promise<{ name: string; sectors: number } | undefined> {
  for (const [name, d] of await guestDisks(shell)) if (d.serial === serial) return { name, sectors: d.sectors };
  return undefined;
}

/**
 * Attaches and measures attach-to-visible: from the call until the guest lists the disk (by its
 * serial) in /sys/block. Returns the device the driver reported, the guest's name and the time.
 */
export async function attachAndSee(driver: QemuDriver, shell: GuestShell, instanceId: string, a: VolumeAttachmentSpec): Promise<{ device: string; name: string; ms: number }> {
  const t0 = performance.now();
  const { device } = await driver.attachVolume(instanceId, a);
  const serial = (a.serial ?? a.volumeId).slice(0, 20);
  const disk = await waitFor(`disk ${serial} in ${instanceId}`, () => diskBySerial(shell, serial), 60_000);
  return { device, name: disk.name, ms: performance.now() - t0 };
}

/** Waits for the console line `line` after character `from` of the console output. */
async function consoleLine(driver: QemuDriver, id: string, line: RegExp, from = 0, timeoutMs = 60_000): Promise<number> {
  return waitFor(`${line} on the console of ${id}`, async () => {
    const text = await driver.consoleOutput(id);
    const m = line.exec(text.slice(from));
    return m ? from + m.index + m[0].length : false;
  }, timeoutMs);
}

describe.skipIf(!available)('qemu driver: block volumes over NBD (acceptance b, d)', () => {
  let stateDir: string;
  let imageDir: string;
  let driver: QemuDriver;
  const exports: NbdExport[] = [];
  const shells = new Map<string, GuestShell>();
  const volA = '5d4c3b2a-1111-4222-8333-944455556666';
  const volB = '7e6d5c4b-aaaa-4bbb-8ccc-9dddeeeeffff';
  let exportA: NbdExport;
  let exportB: NbdExport;
  const attachment = (attachmentId: string, volumeId: string, e: NbdExport): VolumeAttachmentSpec => ({
    attachmentId, volumeId, connection: e.connection, readOnly: false,
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
    exports.push(exportA, exportB);
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
    expect(await guestDisks(shellA)).toEqual(new Map());

    const from = (await driver.consoleOutput('vm-a')).length;
    const first = await attachAndSee(driver, shellA, 'vm-a', attachment('att-a1', volA, exportA));
    console.log(`attach-to-visible (running TCG guest, guest shell polling): ${first.ms.toFixed(0)} ms`);
    expect(first.device).toBe('/dev/vdb');
    const disk = first.name;
    await consoleLine(driver, 'vm-a', new RegExp(`STRATA-DISK ${disk} ${(64 * MiB) / 512}\\n`), from);
    expect(await driver.listVolumes('vm-a')).toEqual(['att-a1']);

    // Idempotent: the same attachment again is the same device, and no second disk.
    expect(await driver.attachVolume('vm-a', attachment('att-a1', volA, exportA))).toEqual({ device: '/dev/vdb' });
    expect([...(await guestDisks(shellA)).keys()]).toEqual([disk]);

    // The guest writes 1 MiB of random bytes at 8 MiB into the disk, synced.
    await shellA.run('dd if=/dev/urandom of=/tmp/pattern bs=65536 count=16 2>/dev/null');
    const written = (await shellA.run('md5sum /tmp/pattern')).split(/\s+/)[0]!;
    await shellA.run(`dd if=/tmp/pattern of=/dev/${disk} bs=65536 seek=128 count=16 conv=fsync 2>/dev/null`);
    expect(written).toMatch(/^[0-9a-f]{32}$/);

    const beforeDetach = (await driver.consoleOutput('vm-a')).length;
    await driver.detachVolume('vm-a', 'att-a1');
    await consoleLine(driver, 'vm-a', new RegExp(`STRATA-DISK ${disk} gone\\n`), beforeDetach);
    expect(await guestDisks(shellA)).toEqual(new Map());
    expect(await driver.listVolumes('vm-a')).toEqual([]);
    await driver.detachVolume('vm-a', 'att-a1'); // idempotent
    // Its nodes are gone from QEMU too (blockdev-del of the raw and nbd nodes).
    const nodes = await driver.execute<{ 'node-name': string }[]>('vm-a', 'query-named-block-nodes', { flat: true });
    expect(nodes.map((n) => n['node-name'])).toEqual([]);

    // The same volume on the second guest: the same bytes.
    const second = await attachAndSee(driver, shellB, 'vm-b', attachment('att-b1', volA, exportA));
    console.log(`attach-to-visible (second guest): ${second.ms.toFixed(0)} ms`);
    expect(second.device).toBe('/dev/vdb');
    const read = (await shellB.run(`dd if=/dev/${second.name} bs=65536 skip=128 count=16 2>/dev/null | md5sum`)).split(/\s+/)[0];
    expect(read).toBe(written);
    // ... and not by chance: the region before it is still zeros.
    const zeros = (await shellB.run(`dd if=/dev/${second.name} bs=65536 skip=112 count=16 2>/dev/null | md5sum`)).split(/\s+/)[0];
    expect(zeros).toBe((await shellB.run('dd if=/dev/zero bs=65536 count=16 2>/dev/null | md5sum')).split(/\s+/)[0]);

    await driver.destroy('vm-a'); // one guest is enough from here on
  }, 300_000);

  it('(d) extends an attached volume, keeps volumes over a power cycle and an agent restart', async () => {
    const id = 'vm-b';
    let shell = shells.get(id)!;
    const a = (await diskBySerial(shell, volA.slice(0, 20)))!;
    expect(a.sectors).toBe((64 * MiB) / 512);
    const pattern = (await shell.run(`dd if=/dev/${a.name} bs=65536 skip=128 count=16 2>/dev/null | md5sum`)).split(/\s+/)[0];

    // A second volume gets the next device name.
    const b = await attachAndSee(driver, shell, id, attachment('att-b2', volB, exportB));
    console.log(`attach-to-visible (second volume): ${b.ms.toFixed(0)} ms`);
    expect(b.device).toBe('/dev/vdc');

    // Extending before the storage host grew the export is refused; the disk keeps working.
    await expect(driver.extendVolume(id, 'att-b1', 128 * MiB)).rejects.toThrow(/offers 67108864 bytes/);
    expect((await diskBySerial(shell, volA.slice(0, 20)))!.sectors).toBe((64 * MiB) / 512);

    // The storage host grows it (its export made again), then the driver extends it in the guest.
    const from = (await driver.consoleOutput(id)).length;
    await exportA.resize(128 * MiB);
    const t0 = performance.now();
    await driver.extendVolume(id, 'att-b1', 128 * MiB);
    await waitFor('the new size in the guest', async () => (await diskBySerial(shell, volA.slice(0, 20)))?.sectors === (128 * MiB) / 512);
    console.log(`extend-to-visible: ${(performance.now() - t0).toFixed(0)} ms`);
    await consoleLine(driver, id, new RegExp(`STRATA-DISK ${a.name} ${(128 * MiB) / 512}\\n`), from);
    await driver.extendVolume(id, 'att-b1', 128 * MiB); // idempotent
    // The data is still there, and the new end is writable.
    expect((await shell.run(`dd if=/dev/${a.name} bs=65536 skip=128 count=16 2>/dev/null | md5sum`)).split(/\s+/)[0]).toBe(pattern);
    await shell.run(`dd if=/dev/urandom of=/dev/${a.name} bs=65536 seek=1800 count=16 conv=fsync 2>/dev/null`);
    // One nbd node left under the raw node (the old connection deleted).
    const nodes = (await driver.execute<{ 'node-name': string }[]>(id, 'query-named-block-nodes', { flat: true })).map((n) => n['node-name']);
    expect(nodes.filter((n) => n.startsWith('vn-'))).toHaveLength(2); // one per volume

    // Power off and on: the relaunched QEMU has both volumes, at their current size, with their data.
    await driver.powerOff(id);
    await driver.powerOn(id);
    shell = await open(id);
    const disks = await waitFor('both disks after power on', async () => {
      const d = await guestDisks(shell);
      return d.size === 2 ? d : undefined;
    });
    const serials = new Map([...disks.values()].map((d) => [d.serial, d.sectors]));
    expect(serials).toEqual(new Map([[volA.slice(0, 20), (128 * MiB) / 512], [volB.slice(0, 20), (32 * MiB) / 512]]));
    const again = (await diskBySerial(shell, volA.slice(0, 20)))!;
    expect((await shell.run(`dd if=/dev/${again.name} bs=65536 skip=128 count=16 2>/dev/null | md5sum`)).split(/\s+/)[0]).toBe(pattern);
    expect(await driver.attachVolume(id, attachment('att-b1', volA, exportA))).toEqual({ device: '/dev/vdb' });
    expect((await guestDisks(shell)).size).toBe(2);

    // An agent restart: a new driver over the same directory knows the volumes and detaches one.
    driver.close();
    const restarted = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => { throw new Error('unused'); } });
    try {
      expect(await restarted.listVolumes(id)).toEqual(['att-b1', 'att-b2']);
      await restarted.detachVolume(id, 'att-b2');
      await waitFor('the second disk gone', async () => (await diskBySerial(shell, volB.slice(0, 20))) === undefined);
      expect(await restarted.listVolumes(id)).toEqual(['att-b1']);
      // The freed name is Nova's next one again.
      expect(await restarted.attachVolume(id, attachment('att-b3', volB, exportB))).toEqual({ device: '/dev/vdc' });
      await waitFor('the second disk back', async () => (await diskBySerial(shell, volB.slice(0, 20))) !== undefined);
    } finally {
      restarted.close();
    }
  }, 300_000);
});
