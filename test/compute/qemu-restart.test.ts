// Issue 5 (c): guests belong to the host, not to the agent process. The compute agent runs as an
// OS process of its own (agents/compute/main.ts, qemu driver, real qemu under TCG) while the
// deciders and the conductor run here. SIGKILL the agent: a new agent process over the same state
// directory adopts the running guests (same qemu processes, none started twice), and controls them.
// A guest whose qemu dies under an ACTIVE server is noticed by the power sync and the server is
// stopped, as Nova's _sync_instance_power_state does. Deleting the servers leaves nothing behind.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processAlive } from '../../agents/compute/qemu.driver.js';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { Message } from '../../domains/kernel/decider.js';
import { BACKENDS, type Backend } from '../support/backends.js';
import { until } from '../support/wait.js';
import { flavor, startRig, type Rig } from './rig.js';

const MARKER = 'STRATA-GUEST-READY';
const HOST = 'qemu-host';
const SYNC_S = 1;
const root = fileURLToPath(new URL('../..', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every live process whose command line names `needle` in one of its arguments. */
function processesNaming(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let args: string[];
    try {
      args = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (args.some((a) => a.includes(needle))) out.push(Number(name));
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

const lastTick = (text: string) => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));

describe.each(BACKENDS)('qemu guests outlive a killed compute agent process (%s log)', (backend: Backend) => {
  let rig: Rig | undefined;
  let stateDir = '';
  let imageDir = '';
  let agent: ChildProcess | undefined;
  const agents: ChildProcess[] = [];
  let agentEnv: Record<string, string> = {};
  const ids: string[] = [];
  const pids = new Map<string, number>();

  /** Starts agents/compute/main.ts in a process of its own and waits for its "ready" line. */
  function startAgent(): Promise<ChildProcess> {
    const script = join(root, 'agents/compute/main.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...agentEnv }, stdio: ['ignore', 'pipe', 'inherit'] });
    agents.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve(child);
      });
      child.once('exit', (code, signal) => reject(new Error(`the compute agent exited (${code ?? signal}) before it was ready`)));
    });
  }

  function killAgent(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    return exited;
  }

  const view = (id: string) => rig!.feed.view.instances.get(id)!;
  const act = (id: string, command: Message & Record<string, unknown>) => rig!.act(id, command, 120_000);
  const consoleLog = (id: string) => readFile(join(stateDir, id, 'console.log'), 'utf8').catch(() => '');
  const pidFile = (id: string) => join(stateDir, id, 'qemu.pid');
  const readPid = async (id: string) => Number((await readFile(pidFile(id), 'utf8')).trim());
  /** The qemu processes of one guest, found by its pidfile argument or its process name. */
  const qemusOf = (id: string) => [...new Set([...processesNaming(pidFile(id)), ...processesNaming(`strata-${id}`)])].sort();

  beforeAll(async () => {
    const built = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    // The agent reads images from STRATA_AGENT_IMAGE_DIR/<image id>/; the rig boots image "cirros".
    imageDir = mkdtempSync(join(tmpdir(), 'sqi-'));
    mkdirSync(join(imageDir, 'cirros'));
    symlinkSync(join(built, 'vmlinuz'), join(imageDir, 'cirros', 'vmlinuz'));
    symlinkSync(join(built, 'initramfs.cpio.gz'), join(imageDir, 'cirros', 'initramfs.cpio.gz'));
    // Short: QMP socket paths are limited to about 107 bytes.
    stateDir = mkdtempSync('/tmp/sq-');
    // Deciders and conductor in this process; no in-process hosts: the only host is the agent process.
    rig = await startRig({ backend, hosts: 0, heartbeatMs: 1000 });
    agentEnv = {
      ...rig.t.env,
      STRATA_COMPUTE_DOMAIN: rig.domain,
      // The block domain of its own too: the shared cluster's may have another partition count.
      STRATA_BLOCK_DOMAIN: `${rig.domain}-block`,
      // Its image service too: the shared Kafka cluster's image and object topics have the tests' 4 partitions.
      STRATA_IMAGE_DOMAIN: `${rig.domain}-image`,
      STRATA_OBJECT_DOMAIN: `${rig.domain}-object`,
      STRATA_PARTITIONS: String(rig.t.topology.partitions),
      STRATA_REPLY_PARTITIONS: String(rig.t.topology.replyPartitions ?? rig.t.topology.partitions),
      STRATA_AGENT_DRIVER: 'qemu',
      STRATA_AGENT_HOST_ID: HOST,
      STRATA_AGENT_STATE_DIR: stateDir,
      STRATA_AGENT_IMAGE_DIR: imageDir,
      STRATA_QEMU_ACCEL: 'tcg',
      STRATA_AGENT_HEARTBEAT_S: '1',
      STRATA_AGENT_SYNC_S: String(SYNC_S),
    };
    agent = await startAgent();
    await until(() => (rig!.feed.view.hosts.get(HOST)?.lastHeartbeatMs ?? 0) > 0, 'the agent to register', 120_000);
  }, 240_000);

  afterAll(async () => {
    // Whatever happened: no agent process and no qemu process of this test survives it.
    for (const a of agents) await killAgent(a, 'SIGKILL');
    if (stateDir) {
      for (const pid of processesNaming(stateDir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    await rig?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    if (imageDir) rmSync(imageDir, { recursive: true, force: true });
  }, 120_000);

  it('a new agent process adopts the running guests: same qemu processes, none twice, still under control', async () => {
    for (let i = 0; i < 2; i++) {
      const b = await rig!.boot({ name: `adopt-${i}`, flavor: flavor(1, 256, 1) });
      if (!b.ok) throw new Error(b.rejection.message);
      ids.push(b.instanceId);
    }
    for (const id of ids) {
      await until(() => view(id)?.vm === 'active' && view(id).action === null, `${id} ACTIVE`, 180_000);
      expect(view(id).host).toBe(HOST);
      await waitFor(`the marker on ${id}'s console`, async () => (await consoleLog(id)).includes(MARKER), 120_000);
      const pid = await readPid(id);
      expect(await processAlive(pid)).toBe(true);
      expect(qemusOf(id)).toEqual([pid]);
      pids.set(id, pid);
    }

    await killAgent(agent!, 'SIGKILL');
    const killedAt = Date.now();
    // The guests belong to the host: they run on without their agent.
    for (const id of ids) expect(await processAlive(pids.get(id)!)).toBe(true);

    agent = await startAgent();
    await until(() => rig!.feed.view.hosts.get(HOST)!.lastHeartbeatMs > killedAt, 'the new agent to beat its heart', 60_000);
    // Several power syncs and orphan sweeps of the new agent.
    await sleep(4 * SYNC_S * 1000 + 1000);
    for (const id of ids) {
      expect(await processAlive(pids.get(id)!), `${id}'s qemu`).toBe(true);
      expect(await readPid(id)).toBe(pids.get(id));
      expect(qemusOf(id), `qemu processes of ${id}`).toEqual([pids.get(id)]);
      expect(view(id).vm).toBe('active');
      expect(view(id).powerState).toBe(POWER_STATES.RUNNING);
      expect(view(id).action).toBeNull();
    }
    // The guests kept running through the restart (their ticks go on).
    const ticks = await Promise.all(ids.map(async (id) => lastTick(await consoleLog(id))));
    await waitFor('the guests to tick on', async () => (await Promise.all(ids.map(async (id, i) => lastTick(await consoleLog(id)) > ticks[i]))).every(Boolean), 60_000);

    // The new agent controls the adopted guests: pause and unpause one (its ticks stop, then go on),
    const [a, b] = ids;
    expect((await act(b, { type: 'PauseInstance' })).vm).toBe('paused');
    const frozen = lastTick(await consoleLog(b));
    await sleep(3000);
    expect(lastTick(await consoleLog(b))).toBe(frozen);
    expect(view(b).powerState).toBe(POWER_STATES.PAUSED);
    expect((await act(b, { type: 'UnpauseInstance' })).vm).toBe('active');
    await waitFor(`${b} to tick again`, async () => lastTick(await consoleLog(b)) > frozen, 60_000);
    expect(qemusOf(b)).toEqual([pids.get(b)]);
    // and stops the other: its qemu process ends and the server is SHUTOFF.
    const stopped = await act(a, { type: 'StopInstance' });
    expect(stopped.vm).toBe('stopped');
    expect(stopped.powerState).toBe(POWER_STATES.SHUTDOWN);
    expect(await processAlive(pids.get(a)!)).toBe(false);
    expect(qemusOf(a)).toEqual([]);
  }, 420_000);

  it('a guest whose qemu dies under an ACTIVE server: the power sync reports it and the server is stopped (SHUTOFF)', async () => {
    const id = ids[1];
    expect(view(id).vm).toBe('active');
    const before = view(id).version;
    process.kill(pids.get(id)!, 'SIGKILL');
    await waitFor(`${id}'s qemu to die`, async () => !(await processAlive(pids.get(id)!)), 10_000);
    // Nova's _sync_instance_power_state: the hypervisor says shutdown, so the instance is stopped.
    await until(() => view(id).version > before && view(id).vm === 'stopped' && view(id).action === null, `${id} SHUTOFF`, 60_000);
    expect(view(id).powerState).toBe(POWER_STATES.SHUTDOWN);
    expect(view(id).task).toBeNull();
    // The agent does not boot it again on its own (Nova leaves it stopped), and it is still on its host.
    await sleep(3 * SYNC_S * 1000);
    expect(qemusOf(id)).toEqual([]);
    expect(view(id).vm).toBe('stopped');
    expect(view(id).host).toBe(HOST);
    expect(readdirSync(join(stateDir, id))).toContain('guest.json');
  }, 180_000);

  it('deleting the servers leaves no qemu process and no guest directory behind', async () => {
    for (const id of ids) expect((await act(id, { type: 'DeleteInstance', soft: false })).vm).toBe('deleted');
    for (const id of ids) {
      expect(qemusOf(id)).toEqual([]);
      expect(await processAlive(pids.get(id)!)).toBe(false);
    }
    expect(readdirSync(stateDir)).toEqual([]);
    // And none comes back: the agent's next sweeps find nothing to adopt or destroy.
    await sleep(2 * SYNC_S * 1000 + 500);
    expect(readdirSync(stateDir)).toEqual([]);
    expect(processesNaming(stateDir)).toEqual([]);
    expect((await rig!.audit()).problems).toEqual([]);
  }, 180_000);
});
