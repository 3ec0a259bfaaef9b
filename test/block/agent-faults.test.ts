// Issue 7 acceptance e: the block agent as its own process (`npm run agent:block`,
// agents/block/main.ts) on the test cloud's embedded log, SIGKILLed in the middle of its work.
//   - killed inside the qemu-img convert of a volume from an image (512 MiB of 0x5a): the volume
//     stays creating while no agent runs, with only a temp file on disk; started again, it ends
//     available with the image's data, the temp file gone, the reconcile report clean,
//   - killed with a volume deleting: started again, the volume is gone and so is its file,
//   - a creation that cannot succeed (no such image) ends in error naming the image, not creating
//     forever, and deletes cleanly,
//   - an orphan file (no volume in the log names it) is reported, so the report can fail.
// The agent is killed with its process group (as systemd kills a unit's cgroup), so its qemu-img
// child dies with it. The reconcile report is hostReconcileReport: it only reads, so it is asked
// here, in the test's process, of a host whose agent may be down.
// Embedded log only: the block rig's cloud runs on the embedded log, which a second process opens
// through its SQLite file.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostReconcileReport } from '../../agents/block/block.agent.js';
import { findVolumeFile, VolumeStore } from '../../agents/block/volume-store.js';
import { followBlock, type BlockFeed } from '../../infra/sagas/block.feed.js';
import { codeOf } from '../identity/cloud.js';
import { startBlockRig, type BlockRig } from '../support/block-rig.js';
import { until } from '../support/wait.js';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const NOT_FOUND = 5;
const MiB = 1024 ** 2;
const IMAGE_MIB = 512;

/** The pids whose parent is `pid`, with their command name (from /proc/<n>/stat). */
function childrenOf(pid: number): { pid: number; comm: string }[] {
  const out: { pid: number; comm: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === pid && state !== 'Z') out.push({ pid: Number(name), comm });
  }
  return out;
}

/** Whether `pid` runs (a zombie waiting for its reaper does not). */
function alive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('the block agent process killed during create and delete (embedded log, real files)', () => {
  let rig: BlockRig;
  let feed: BlockFeed;
  const suffix = randomUUID().slice(0, 6);
  const hostId = `storage-faults-${suffix}`;
  const imageId = `img-faults-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'strata-block-faults-'));
  const stateDir = join(dir, 'state');
  const imageDir = join(dir, 'images');
  const store = new VolumeStore(stateDir);
  const volumesDir = join(stateDir, 'volumes');
  const children: ChildProcess[] = [];
  let agent: ChildProcess | undefined;
  let startupLine = '';

  const temps = () => (existsSync(volumesDir) ? readdirSync(volumesDir).filter((n) => n.startsWith('.tmp-')) : []);
  const report = () => hostReconcileReport(feed, hostId, store);
  const getVolume = async (id: string) => (await rig.admin.call('GetVolume', { id })).volume as Record<string, any>;
  /** Waits until the test's own feed has seen the volume reach `status` (so the report judges the latest state). */
  const seen = (id: string, status: string) => until(() => (feed.view.volume(id)?.status ?? 'deleted') === status, `the feed sees ${id} ${status}`, 30_000);
  /** Reads `len` bytes at `offset` of a volume's file, checking every byte is `pattern`. */
  const holds = async (path: string, pattern: string, offset: number, len: number) => {
    const { stdout } = await exec('qemu-io', ['-f', 'qcow2', '-r', '-U', '-c', `read -P ${pattern} ${offset} ${len}`, path]).catch((e) => ({ stdout: String(e.stdout) }));
    return !/Pattern verification failed/.test(stdout) && stdout.includes(`read ${len}/${len} bytes`);
  };

  /** Starts agents/block/main.ts in a process group of its own and waits for its "ready" line. */
  function startAgent(): Promise<ChildProcess> {
    const env = {
      ...process.env,
      STRATA_LOG: 'embedded',
      STRATA_LOG_PATH: rig.logPath,
      STRATA_PARTITIONS: '4',
      STRATA_REPLY_PARTITIONS: '4',
      STRATA_AGENT_HOST_ID: hostId,
      STRATA_BLOCK_STATE_DIR: stateDir,
      STRATA_BLOCK_BACKEND: 'local',
      STRATA_AVAILABILITY_ZONE: 'nova',
      STRATA_BLOCK_TOTAL_GB: '100',
      STRATA_IMAGE_DIR: imageDir,
      STRATA_BLOCK_RESYNC_S: '0.5',
    };
    // detached: the agent leads its own process group, and its qemu-img children are in it.
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'agents/block/main.ts')], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    children.push(child);
    agent = child;
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^ready$/m.test(out)) {
          startupLine = /^reconcile: .*$/m.exec(out)?.[0] ?? '';
          resolve(child);
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`the block agent exited (${code ?? signal}) before it was ready: ${out}`)));
    });
  }

  /** SIGKILLs the agent's whole process group (it and any qemu-img it runs) and waits for its exit. */
  async function killAgent(): Promise<void> {
    const child = agent!;
    agent = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  }

  beforeAll(async () => {
    mkdirSync(imageDir, { recursive: true });
    // The image: 512 MiB of 0x5a, raw, so its convert takes a few seconds and a kill lands inside it.
    const chunk = Buffer.alloc(16 * MiB, 0x5a);
    const fd = openSync(join(imageDir, `${imageId}.raw`), 'w');
    for (let i = 0; i < IMAGE_MIB / 16; i++) writeSync(fd, chunk);
    closeSync(fd);
    // No in-process storage host: the agent process's host is the only one, so the scheduler picks it.
    rig = await startBlockRig({ storageHosts: [] });
    feed = await followBlock({ log: rig.log, topology: { partitions: 4, replicationFactor: 1, replyPartitions: 4 } });
    await startAgent();
    await until(async () => (await rig.admin.call('ListStorageHosts', {})).hosts.some((h: { hostId: string }) => h.hostId === hostId), 'the agent process registered its host', 30_000);
  }, 180_000);

  afterAll(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(-c.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    await feed?.close();
    await rig?.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('killed inside the convert of a volume from an image: creating while down, then available with the image data, no temp left', async () => {
    const v = (await rig.member.call('CreateVolume', { sizeGb: 1, imageId, name: 'from-image' })).volume;
    expect(v.status).toBe('creating');

    // Inside qemu-img convert: its temp file exists and the agent's qemu-img child runs.
    const pid = agent!.pid!;
    let qemuImg: number[] = [];
    await until(
      () => {
        qemuImg = childrenOf(pid).filter((c) => c.comm === 'qemu-img').map((c) => c.pid);
        return temps().length > 0 && qemuImg.length > 0;
      },
      'the agent inside qemu-img convert',
      60_000,
    );
    await killAgent();
    await until(() => qemuImg.every((p) => !alive(p)), 'its qemu-img killed with it', 10_000);

    // The kill landed inside the creation: a temp file, no volume file, and the report says so.
    expect(await findVolumeFile(stateDir, v.id)).toBeUndefined();
    const leftover = temps();
    expect(leftover).toHaveLength(1);
    expect(leftover[0]).toContain(`volume-${v.id}.qcow2`);
    const down = await report();
    expect(down.temps).toEqual([join('volumes', leftover[0]!)]);
    expect(down.orphanVolumes).toEqual([]);
    // No agent: the volume stays creating (nothing else makes it up or fails it).
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getVolume(v.id)).status).toBe('creating');

    await startAgent();
    const done = await rigVolumeStatus(v.id, 'available');
    expect(done.hostId).toBe(hostId);
    const file = (await findVolumeFile(stateDir, v.id))!;
    expect(file.format).toBe('qcow2');
    expect((await store.info(v.id))!.virtualSizeBytes).toBe(1024 ** 3);
    expect(await holds(file.path, '0x5a', 0, IMAGE_MIB * MiB)).toBe(true);
    expect(await holds(file.path, '0', IMAGE_MIB * MiB, 1024 ** 3 - IMAGE_MIB * MiB)).toBe(true);
    expect(temps()).toEqual([]);
    await seen(v.id, 'available');
    expect(await report()).toEqual({ orphanVolumes: [], orphanSnapshots: [], missingVolumes: [], missingSnapshots: [], temps: [] });
  }, 240_000);

  it('killed with a volume deleting: deleting while down, then gone with its file', async () => {
    const v = (await rig.member.call('CreateVolume', { sizeGb: 1, name: 'doomed' })).volume;
    await rigVolumeStatus(v.id, 'available');
    const file = (await findVolumeFile(stateDir, v.id))!;
    expect(existsSync(file.path)).toBe(true);

    await killAgent();
    await rig.member.call('DeleteVolume', { id: v.id });
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getVolume(v.id)).status).toBe('deleting');
    expect(existsSync(file.path)).toBe(true);
    await seen(v.id, 'deleting');
    // A deleting volume's file is neither an orphan nor missing.
    expect(await report()).toEqual({ orphanVolumes: [], orphanSnapshots: [], missingVolumes: [], missingSnapshots: [], temps: [] });

    await startAgent();
    await until(async () => (await codeOf(rig.member.call('GetVolume', { id: v.id }))) === NOT_FOUND, 'the volume gone after the restart', 60_000);
    expect(existsSync(file.path)).toBe(false);
    await seen(v.id, 'deleted');
    expect(await report()).toEqual({ orphanVolumes: [], orphanSnapshots: [], missingVolumes: [], missingSnapshots: [], temps: [] });
  }, 120_000);

  it('a creation that cannot succeed (no such image) ends in error naming the image, and deletes cleanly', async () => {
    const missing = `img-missing-${suffix}`;
    const v = (await rig.member.call('CreateVolume', { sizeGb: 1, imageId: missing, name: 'hopeless' })).volume;
    const failed = await rigVolumeStatus(v.id, 'error');
    expect(failed.statusReason).toContain(`image ${missing}`);
    expect(await findVolumeFile(stateDir, v.id)).toBeUndefined();
    expect(temps()).toEqual([]);

    await rig.member.call('DeleteVolume', { id: v.id });
    await until(async () => (await codeOf(rig.member.call('GetVolume', { id: v.id }))) === NOT_FOUND, 'the failed volume deleted', 60_000);
    expect(await findVolumeFile(stateDir, v.id)).toBeUndefined();
    await seen(v.id, 'deleted');
    expect(await report()).toEqual({ orphanVolumes: [], orphanSnapshots: [], missingVolumes: [], missingSnapshots: [], temps: [] });
  }, 120_000);

  it('an orphan file (no volume in the log names it) is reported, by the report and by the agent at start-up', async () => {
    const orphan = randomUUID();
    await exec('qemu-img', ['create', '-q', '-f', 'qcow2', join(volumesDir, `volume-${orphan}.qcow2`), '1M']);
    expect((await report()).orphanVolumes).toEqual([orphan]);

    // The agent reports it when it starts, and leaves it be (a report, not a collector).
    await killAgent();
    await startAgent();
    expect(startupLine).toMatch(/^reconcile: 1 orphan volume file\(s\), 0 orphan snapshot file\(s\), 0 missing volume file\(s\)/);
    await new Promise((r) => setTimeout(r, 1_500));
    expect(existsSync(join(volumesDir, `volume-${orphan}.qcow2`))).toBe(true);
    expect((await report()).orphanVolumes).toEqual([orphan]);
  }, 120_000);

  /** The rig's volumeStatus, with more time: a convert under load takes a while. */
  function rigVolumeStatus(id: string, status: string) {
    return rig.volumeStatus(id, status, 120_000);
  }
});
