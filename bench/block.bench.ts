// Block storage (issue 7 f), on the embedded log with a real block agent (qcow2 files,
// qemu-storage-daemon NBD exports on loopback) and a compute agent running a real QEMU guest (TCG,
// the test image of scripts/build-test-image.sh, its shell on ttyS1: agents/compute/guest-shell.ts).
//  1. Create -> available: blank 1 GiB volumes created through the API (CreateVolume), one after
//     the other, each timed from the call until GetVolume says available; then 25 more in batches
//     of 5 concurrent creates. The bench follows the block domain's feed and asks GetVolume (every
//     5 ms) only once the log says available: polling GetVolume alone every 5 ms slows down what it
//     measures about tenfold, since the API, deciders and agents share this process with the bench.
//     The time grows with the volumes on the host (the block agent's every pass runs qemu-img info
//     on each of them for its capacity report): the last fifth's mean against the first's is
//     printed. The volumes are deleted before the attach rounds.
//  2. Attach -> visible in the guest: AttachVolume through the API, timed until the guest lists the
//     disk (its serial, the volume id's first 20 characters, in /sys/block/vd*/serial); then
//     DetachVolume, until the volume is available and the disk has left the guest. Baseline in the
//     same process: QemuDriver.attachVolume called directly on a second guest (its own driver, which
//     no agent reconciles) with an NBD export of a qcow2 on the same filesystem, timed the same way;
//     the ratio is what the API, the log, the sagas, the block agent's export and the compute agent
//     add to the driver's plug.
//     "Visible" is detected inside the guest, not by polling it from the host (each poll through the
//     serial shell costs 50-300 ms on a TCG guest): a shell loop watches /sys/block (builtins and
//     usleep 5 ms) and its answer ends the measurement; it announces itself on the guest's console
//     first and the attach is only made once that line is there, so the watcher is always running
//     before the disk can appear. Resolution: about 5 ms plus the serial line's answer.
//  3. Sequential write inside the guest: dd if=/dev/zero bs=1M count=256 oflag=direct conv=fsync to
//     the volume attached through the API (virtio-blk -> NBD -> qemu-storage-daemon -> qcow2), timed
//     in the guest (/proc/uptime around dd, 10 ms resolution; cross-checked from the host, minus the
//     same command's trip through the serial shell with count=0); baseline: the same dd in the same
//     guest to a blank qcow2 file in the block agent's state directory (the same filesystem as the
//     volume files), hot-plugged directly over QMP (blockdev-add file + qcow2, device_add
//     virtio-blk-pci, through QemuDriver.execute). Three runs each, alternating which goes first;
//     medians. Both images are opened with QEMU's default cache mode (host page cache, flushes honoured).
//
//   npm run bench:block
//   STRATA_BENCH_VOLUMES=50 STRATA_BENCH_CONCURRENT_VOLUMES=25 STRATA_BENCH_ATTACHES=10 STRATA_BENCH_DD_MB=256 STRATA_BENCH_DD_RUNS=3 npm run bench:block
//
// Needs qemu-system-x86_64, qemu-storage-daemon, qemu-img and the test image's ingredients
// (scripts/test-env.sh). The guests run under TCG (STRATA_QEMU_ACCEL overrides).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ComputeAgents } from '../agents/compute/compute.agent.js';
import type { GuestSpec } from '../agents/compute/driver.js';
import { diskBySerial, guestShell, type GuestShell } from '../agents/compute/guest-shell.js';
import { QemuDriver, testImageBoot, type Accelerator } from '../agents/compute/qemu.driver.js';
import { NbdExports } from '../agents/block/nbd-exports.js';
import { followBlock } from '../infra/sagas/block.feed.js';
import { startTestCloud } from '../test/identity/cloud.js';
import { TOPOLOGY } from '../test/compute/compute-cloud.js';
import { startNbdExport, type NbdExport } from '../test/support/nbd-export.js';

const VOLUMES = Number(process.env.STRATA_BENCH_VOLUMES ?? 50);
const ATTACHES = Number(process.env.STRATA_BENCH_ATTACHES ?? 10);
const DD_MB = Number(process.env.STRATA_BENCH_DD_MB ?? 256);
const DD_RUNS = Number(process.env.STRATA_BENCH_DD_RUNS ?? 3);
const CONCURRENT = 5;
const CONCURRENT_VOLUMES = Number(process.env.STRATA_BENCH_CONCURRENT_VOLUMES ?? 25);
const ACCEL = (process.env.STRATA_QEMU_ACCEL ?? 'tcg') as Accelerator;

const figures: string[] = [];
const figure = (name: string, value: number, unit: string) => figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => pct(sorted(xs), 50);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const ms = (x: number) => x.toFixed(0);

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 20): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

const root = new URL('..', import.meta.url).pathname;
for (const bin of ['qemu-system-x86_64', 'qemu-storage-daemon', 'qemu-img']) {
  try {
    execFileSync(bin, ['--version'], { stdio: 'ignore' });
  } catch {
    console.error(`bench:block needs ${bin} (bash scripts/test-env.sh installs it)`);
    process.exit(1);
  }
}
const imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();

// Short paths: QMP and shell socket paths are limited to about 107 bytes.
const blockDir = mkdtempSync('/tmp/sbb-');
const agentDir = mkdtempSync('/tmp/sqb-');
const baselineDir = mkdtempSync('/tmp/sqc-');
const id = randomUUID().slice(0, 6);
const hostId = `bench-qemu-${id}`;
const driver = new QemuDriver({ stateDir: agentDir, accelerator: ACCEL, resolveImage: () => testImageBoot(imageDir) });
// The baseline guest's driver: no agent reconciles it (an agent would unplug volumes the log does
// not name, and destroy guests it does not know).
const bareDriver = new QemuDriver({ stateDir: baselineDir, accelerator: ACCEL, resolveImage: () => testImageBoot(imageDir) });
const errors: Error[] = [];
const shells: GuestShell[] = [];
let nbd: NbdExport | undefined;

console.log(`bench:block on the embedded log, guests under ${ACCEL}; load average at start ${load()} (${(await import('node:os')).cpus().length} cores)`);
const t = await startTestCloud({}, { conductor: { tickMs: 200 }, blockHosts: [{ hostId: `st-${id}`, backend: 'local', availabilityZone: 'nova', stateDir: blockDir, totalGb: 10_000, resyncMs: 500 }] });
const agents = await ComputeAgents.start({
  log: t.log,
  topology: TOPOLOGY,
  hosts: [{ hostId, availabilityZone: 'nova', inventory: { vcpus: { total: 4, allocationRatio: 1 }, ramMb: { total: 4096, allocationRatio: 1 }, diskGb: { total: 20, allocationRatio: 1 } }, driver }],
  heartbeatMs: 1000,
  block: {},
  onError: (e) => errors.push(e),
});
const feed = await followBlock({ log: t.log, topology: TOPOLOGY });

try {
  const admin = t.client(await t.adminToken());
  await admin.call('SetBlockQuota', { projectId: t.boot.adminProjectId, limits: { volumes: -1, gigabytes: -1 } });
  // When a volume reaches a status is learnt from the block domain's feed (as the agents learn it),
  // then confirmed by GetVolume every 5 ms until the API's read model says the same. Polling
  // GetVolume alone every 5 ms makes the latency it measures ten times longer here: the API, the
  // deciders, the conductor and the agents share this process (and its event loop) with the bench.
  const waiters = new Set<{ volumeId: string; status: string; resolve: () => void; reject: (e: Error) => void }>();
  const check = (w: typeof waiters extends Set<infer W> ? W : never) => {
    const v = feed.view.volume(w.volumeId);
    if (v?.status === w.status) {
      waiters.delete(w);
      w.resolve();
    } else if (v && v.status.startsWith('error') && !w.status.startsWith('error')) {
      waiters.delete(w);
      w.reject(new Error(`volume ${w.volumeId} is ${v.status} (agent errors: ${errors.map((e) => e.message).join('; ')})`));
    }
  };
  feed.onChange(() => {
    for (const w of [...waiters]) check(w);
  });
  const inLog = (volumeId: string, status: string, timeoutMs = 120_000) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`volume ${volumeId} not ${status} in the log within ${timeoutMs} ms: it is ${feed.view.volume(volumeId)?.status}`));
      }, timeoutMs);
      const w = { volumeId, status, resolve: () => (clearTimeout(timer), resolve()), reject: (e: Error) => (clearTimeout(timer), reject(e)) };
      waiters.add(w);
      check(w);
    });
  /** Resolves once GetVolume says `status` (the feed first, then GetVolume every 5 ms). */
  const settled = async (volumeId: string, status: string, timeoutMs = 120_000) => {
    await inLog(volumeId, status, timeoutMs);
    const deadline = performance.now() + 30_000;
    for (;;) {
      const v = (await admin.call('GetVolume', { id: volumeId })).volume;
      if (v.status === status) return v as Record<string, any>;
      if (performance.now() > deadline) throw new Error(`GetVolume ${volumeId}: ${v.status}, the log says ${status}`);
      await sleep(5);
    }
  };
  const created: string[] = [];
  const createTimed = async (name: string) => {
    const t0 = performance.now();
    const v = (await admin.call('CreateVolume', { sizeGb: 1, name })).volume;
    created.push(v.id);
    await settled(v.id, 'available');
    return performance.now() - t0;
  };

  // 1. Create -> available (before any guest runs: TCG guests would take the CPU).
  await createTimed('warm-up');
  const serial: number[] = [];
  for (let i = 0; i < VOLUMES; i++) serial.push(await createTimed(`seq-${i}`));
  const s = sorted(serial);
  console.log(`create -> available, ${VOLUMES} blank 1 GiB volumes one after the other: p50 ${ms(pct(s, 50))} ms, p99 ${ms(pct(s, 99))} ms, mean ${ms(mean(s))} ms, max ${ms(s[s.length - 1]!)} ms (load ${load()})`);
  figure('block_create_to_available_p50', pct(s, 50), 'ms');
  figure('block_create_to_available_p99', pct(s, 99), 'ms');
  figure('block_create_to_available_mean', mean(s), 'ms');
  // The block agent's passes look at every volume on the host (its capacity report runs qemu-img
  // info on each, every pass): the time grows with the volumes already there.
  const tenth = Math.max(1, Math.floor(VOLUMES / 5));
  const first = mean(serial.slice(0, tenth));
  const last = mean(serial.slice(-tenth));
  console.log(`  the first ${tenth} (on a host with 1-${tenth} volumes): mean ${ms(first)} ms; the last ${tenth} (${VOLUMES - tenth + 1}-${VOLUMES} volumes): mean ${ms(last)} ms; one after the other: ${serial.map(ms).join(' ')}`);
  figure('block_create_to_available_last_over_first', last / first, 'x');
  const concurrent: number[] = [];
  const c0 = performance.now();
  for (let b = 0; b < Math.ceil(CONCURRENT_VOLUMES / CONCURRENT); b++) {
    concurrent.push(...(await Promise.all(Array.from({ length: CONCURRENT }, (_, k) => createTimed(`con-${b}-${k}`)))));
  }
  const cWall = performance.now() - c0;
  const c = sorted(concurrent);
  console.log(
    `create -> available, ${concurrent.length} volumes ${CONCURRENT} at a time: p50 ${ms(pct(c, 50))} ms, p99 ${ms(pct(c, 99))} ms, mean ${ms(mean(c))} ms; ` +
      `${((concurrent.length / cWall) * 1000).toFixed(1)} volumes/s against ${((1000 / mean(s))).toFixed(1)} one at a time (load ${load()})`,
  );
  figure('block_create_to_available_concurrent5_p50', pct(c, 50), 'ms');
  figure('block_create_to_available_concurrent5_p99', pct(c, 99), 'ms');
  figure('block_create_concurrent5_throughput_ratio', concurrent.length / cWall / (1 / mean(s)), 'x');

  // The attach rounds run on a host with one volume: the create rounds' volumes go first (see above).
  const del0 = performance.now();
  for (const v of created) await admin.call('DeleteVolume', { id: v });
  await Promise.all(created.map((v) => inLog(v, 'deleted', 300_000)));
  console.log(`the ${created.length} volumes deleted in ${ms(performance.now() - del0)} ms`);

  // The guests: one through the API on the agent's host, one on the bare driver.
  await until('the compute host up', async () => (await admin.call('GetHost', { id: hostId })).host.up, 30_000, 100);
  const flavorId = (await admin.call('CreateFlavor', { flavor: { name: `bench-tiny-${id}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;
  const g0 = performance.now();
  const serverId: string = (await admin.call('CreateServer', { name: 'bench-block', flavorId, imageId: 'strata-test' })).servers[0].id;
  const bareId = randomUUID();
  const bareSpec: GuestSpec = { instanceId: bareId, name: 'bench-block-baseline', imageId: 'strata-test', flavor: { id: 'f1', name: 'tiny', vcpus: 1, ramMb: 256, diskGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {} } };
  const [shell, bareShell] = await Promise.all([
    (async () => {
      await until('the guest ACTIVE', async () => (await admin.call('GetServer', { id: serverId })).server.status === 'ACTIVE', 120_000, 100);
      return guestShell(driver.shellSocket(serverId), 120_000);
    })(),
    (async () => {
      await bareDriver.spawn(bareSpec);
      return guestShell(bareDriver.shellSocket(bareId), 120_000);
    })(),
  ]);
  shells.push(shell, bareShell);
  console.log(`two guests booted and their shells answering in ${ms(performance.now() - g0)} ms`);

  /**
   * Runs `act` once a watcher in the guest is looking for a disk with `serial`; resolves with the
   * time from `act`'s start until the watcher saw the disk.
   */
  let watches = 0;
  const visibleAfter = async (d: QemuDriver, guest: string, sh: GuestShell, diskSerial: string, act: () => Promise<unknown>) => {
    const marker = `STRATA-BENCH-WATCH-${id}-${++watches}`;
    const watcher = sh.exec(
      `echo ${marker} >/dev/ttyS0; i=0; while :; do for f in /sys/block/vd*/serial; do [ -e "$f" ] || continue; v=; read v <"$f"; [ "$v" = "${diskSerial}" ] && { echo "SEEN $i"; exit 0; }; done; i=$((i+1)); [ $i -gt 12000 ] && exit 1; usleep 5000; done`,
      90_000,
    );
    await until(`the watcher of ${diskSerial} running`, async () => (await d.consoleOutput(guest, 20)).includes(marker), 30_000, 10);
    const t0 = performance.now();
    await act();
    const r = await watcher;
    const seen = performance.now() - t0;
    if (r.status !== 0 || !/SEEN \d+/.test(r.output)) throw new Error(`the guest did not see disk ${diskSerial}: ${r.output}`);
    return seen;
  };
  const gone = (sh: GuestShell, diskSerial: string) => until(`disk ${diskSerial} gone from the guest`, async () => !(await diskBySerial(sh, diskSerial)), 60_000, 50);

  // 2. Attach -> visible through the API.
  const attachVolume = (await admin.call('CreateVolume', { sizeGb: 1, name: 'attach' })).volume;
  await settled(attachVolume.id, 'available');
  const attachSerial = (attachVolume.id as string).slice(0, 20);
  const apiAttach: number[] = [];
  const apiInUse: number[] = [];
  const apiDetach: number[] = [];
  for (let i = 0; i < ATTACHES; i++) {
    let inUseAt = NaN;
    let t0 = 0;
    const seen = await visibleAfter(driver, serverId, shell, attachSerial, async () => {
      t0 = performance.now();
      await admin.call('AttachVolume', { serverId, volumeId: attachVolume.id });
      // When the log says in-use (the compute agent reported the plug), watched beside the guest.
      void inLog(attachVolume.id, 'in-use').then(() => (inUseAt = performance.now() - t0), () => undefined);
    });
    apiAttach.push(seen);
    await settled(attachVolume.id, 'in-use');
    apiInUse.push(Number.isNaN(inUseAt) ? performance.now() - t0 : inUseAt);
    const d0 = performance.now();
    await admin.call('DetachVolume', { serverId, volumeId: attachVolume.id });
    await settled(attachVolume.id, 'available');
    apiDetach.push(performance.now() - d0);
    await gone(shell, attachSerial);
  }
  const a = sorted(apiAttach);
  const u = sorted(apiInUse);
  const dt = sorted(apiDetach);
  console.log(
    `attach -> visible in the guest through the API, ${ATTACHES} rounds (p99 of so few is their maximum): p50 ${ms(pct(a, 50))} ms, p99 ${ms(pct(a, 99))} ms (all: ${apiAttach.map(ms).join(' ')}); ` +
      `attach -> in-use in the log p50 ${ms(pct(u, 50))} ms; detach -> available p50 ${ms(pct(dt, 50))} ms, p99 ${ms(pct(dt, 99))} ms (load ${load()})`,
  );

  // The baseline: the driver's own attach, on an NBD export of a qcow2 on the same filesystem.
  nbd = await startNbdExport(1024 ** 3, 'bench-baseline');
  const bareVolumeId = randomUUID();
  const bareSerial = bareVolumeId.slice(0, 20);
  const driverAttach: number[] = [];
  for (let i = 0; i < ATTACHES; i++) {
    const attachmentId = `bench-${i}`;
    driverAttach.push(await visibleAfter(bareDriver, bareId, bareShell, bareSerial, () => bareDriver.attachVolume(bareId, { attachmentId, volumeId: bareVolumeId, connection: nbd!.connection, readOnly: false })));
    await bareDriver.detachVolume(bareId, attachmentId);
    await gone(bareShell, bareSerial);
  }
  const b = sorted(driverAttach);
  console.log(`baseline: QemuDriver.attachVolume -> visible in the guest, ${ATTACHES} rounds: p50 ${ms(pct(b, 50))} ms, p99 ${ms(pct(b, 99))} ms (all: ${driverAttach.map(ms).join(' ')}); through the API ${(pct(a, 50) / pct(b, 50)).toFixed(2)}x (load ${load()})`);
  figure('block_attach_to_visible_p50', pct(a, 50), 'ms');
  figure('block_attach_to_visible_p99', pct(a, 99), 'ms');
  figure('block_attach_to_in_use_p50', pct(u, 50), 'ms');
  figure('block_detach_to_available_p50', pct(dt, 50), 'ms');
  figure('block_attach_driver_baseline_p50', pct(b, 50), 'ms');
  figure('block_attach_driver_baseline_p99', pct(b, 99), 'ms');
  figure('block_attach_overhead_ratio', pct(a, 50) / pct(b, 50), 'x');
  for (const sh of [bareShell]) sh.close();
  await bareDriver.destroy(bareId);
  await nbd.stop();
  nbd = undefined;

  // 3. Sequential write inside the guest: the volume over NBD against a local qcow2 on the same filesystem.
  await admin.call('AttachVolume', { serverId, volumeId: attachVolume.id });
  await settled(attachVolume.id, 'in-use');
  const nbdDisk = (await until('the volume in the guest', () => diskBySerial(shell, attachSerial), 60_000, 50)).name;
  const localFile = join(blockDir, 'bench-local.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', localFile, String(1024 ** 3)]);
  await driver.execute(serverId, 'blockdev-add', { driver: 'file', 'node-name': 'bench-local-file', filename: localFile });
  await driver.execute(serverId, 'blockdev-add', { driver: 'qcow2', 'node-name': 'bench-local', file: 'bench-local-file' });
  await driver.execute(serverId, 'device_add', { driver: 'virtio-blk-pci', id: 'bench-local', drive: 'bench-local', serial: 'bench-local' });
  const localDisk = (await until('the local disk in the guest', () => diskBySerial(shell, 'bench-local'), 60_000, 50)).name;
  const ddCommand = (disk: string, count: number) =>
    `a=$(cat /proc/uptime); dd if=/dev/zero of=/dev/${disk} bs=1M count=${count} oflag=direct conv=fsync 2>&1; b=$(cat /proc/uptime); echo "T \${a%% *} \${b%% *}"`;
  // Seen from the host, the same command line costs its trip through the serial shell: measured
  // with count=0 (the median of 3), and taken off the host's timing, which only checks the guest's.
  const trips: number[] = [];
  for (let i = 0; i < 3; i++) {
    const h0 = performance.now();
    await shell.run(ddCommand(nbdDisk, 0));
    trips.push(performance.now() - h0);
  }
  const roundTrip = median(trips);
  const dd = async (disk: string) => {
    const h0 = performance.now();
    const out = await shell.run(ddCommand(disk, DD_MB), 300_000);
    const host = performance.now() - h0;
    const m = /T (\d+\.\d+) (\d+\.\d+)/.exec(out);
    if (!m || !out.includes(`${DD_MB}+0 records out`)) throw new Error(`dd to /dev/${disk}: ${out}`);
    const seconds = Number(m[2]) - Number(m[1]);
    const bytes = DD_MB * 1024 * 1024;
    return { mbs: bytes / 1e6 / seconds, seconds, hostMbs: bytes / 1e6 / ((host - roundTrip) / 1000) };
  };
  const runs: { nbd: number; local: number }[] = [];
  for (let r = 0; r < DD_RUNS; r++) {
    // Alternating which goes first, so neither always follows the other's writeback.
    const first = r % 2 === 0 ? nbdDisk : localDisk;
    const a1 = await dd(first);
    const a2 = await dd(first === nbdDisk ? localDisk : nbdDisk);
    const [n, l] = first === nbdDisk ? [a1, a2] : [a2, a1];
    runs.push({ nbd: n.mbs, local: l.mbs });
    console.log(
      `dd run ${r + 1}: ${DD_MB} MiB to the volume over NBD (/dev/${nbdDisk}) ${n.mbs.toFixed(1)} MB/s (${n.seconds.toFixed(2)} s in the guest; ${n.hostMbs.toFixed(1)} MB/s timed from the host); ` +
        `to the local qcow2 (/dev/${localDisk}) ${l.mbs.toFixed(1)} MB/s (${l.seconds.toFixed(2)} s; ${l.hostMbs.toFixed(1)} MB/s from the host); load ${load()}`,
    );
  }
  const nbdMbs = median(runs.map((r) => r.nbd));
  const localMbs = median(runs.map((r) => r.local));
  console.log(`sequential write in the guest (dd bs=1M oflag=direct conv=fsync, median of ${DD_RUNS}; MB = 10^6 bytes; the command's shell round trip ${ms(roundTrip)} ms): NBD ${nbdMbs.toFixed(1)} MB/s, local qcow2 ${localMbs.toFixed(1)} MB/s, ratio ${(nbdMbs / localMbs).toFixed(2)}`);
  figure('block_guest_seq_write_nbd', nbdMbs, 'MB/s');
  figure('block_guest_seq_write_local', localMbs, 'MB/s');
  figure('block_guest_seq_write_ratio', nbdMbs / localMbs, 'x');

  // Leave as found: the volume detached (its export stopped by the block agent), the server deleted.
  await admin.call('DetachVolume', { serverId, volumeId: attachVolume.id });
  await settled(attachVolume.id, 'available');
  const del = await admin.call('DeleteServer', { id: serverId });
  if (!del.operation.done) await admin.call('WaitOperation', { name: del.operation.name, serverId, timeout: { seconds: 60 } });
  if (errors.length > 0) console.log(`agent errors during the run (${errors.length}): ${errors.slice(0, 3).map((e) => e.message).join('; ')}`);
} finally {
  for (const sh of shells) sh.close();
  await feed.close();
  await agents.close();
  await t.close();
  for (const d of [driver, bareDriver]) {
    for (const g of await d.list()) await d.destroy(g).catch((e: Error) => console.error(`destroying guest ${g}: ${e.message}`));
    d.close();
  }
  await nbd?.stop();
  // Storage daemons outlive their agent (as on a real host): stop any left, by their recorded pid.
  for (const daemon of await new NbdExports(blockDir).daemons().catch(() => [])) {
    try {
      process.kill(daemon.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  for (const dir of [blockDir, agentDir, baselineDir, t.dir]) rmSync(dir, { recursive: true, force: true });
}
console.log(`load average at the end ${load()}`);
for (const f of figures) console.log(f);
process.exit(0);
