// Issue 2 acceptance b: a decider worker process killed with SIGKILL while 10,000 commands
// stream, then restarted: every accepted command has exactly one event batch, none missing,
// none duplicated. Both backends.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { Reply } from '../infra/envelope/envelope.js';
import { CommandBus } from '../infra/runtime/command-bus.js';
import { ensureDomainTopics } from '../infra/runtime/topology.js';
import { COUNTER, counterCodec } from './conformance/counter.decider.js';
import { BACKENDS, openTestLog, type TestLog } from './support/backends.js';
import { Harness, actor } from './support/harness.js';

const WORKER = fileURLToPath(new URL('./support/worker-process.ts', import.meta.url));

function startWorker(t: TestLog): Promise<ChildProcess> {
  // node itself (tsx as a loader), so that the pid we signal is the worker's, not a wrapper's.
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, ...t.env, STRATA_DOMAIN: t.domain, STRATA_PARTITIONS: String(t.topology.partitions) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited (${code}) before ready: ${stderr}`)));
  });
}

const COMMANDS = 10_000;
const AGGREGATES = 200;

describe.each(BACKENDS)('a decider worker killed with SIGKILL on the %s log', (backend) => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  });

  it(`loses and duplicates nothing across ${COMMANDS} streamed commands`, { timeout: 300_000 }, async () => {
    const t = await openTestLog(backend);
    cleanup.push(() => t.close());
    await ensureDomainTopics(t.log, t.domain, t.topology);
    let worker = await startWorker(t);
    cleanup.push(async () => worker.kill('SIGKILL'));
    const bus = await CommandBus.connect({ log: t.log, timeoutMs: 120_000 });
    cleanup.push(() => bus.close());

    const ids = [...Array(AGGREGATES)].map(() => `c-${randomUUID()}`);
    const send = (aggregateId: string, type: 'OpenCounter' | 'IncrementCounter', commandId: string) =>
      bus.send({
        domain: t.domain,
        aggregateType: COUNTER,
        aggregateId,
        type,
        payload: counterCodec.encodeCommand(
          type === 'OpenCounter' ? { type, name: aggregateId } : { type, amount: 1 },
        ),
        actor,
        commandId,
      });
    await Promise.all(ids.map((id) => send(id, 'OpenCounter', `open-${id}`)));

    // Stream increments with bounded concurrency; kill the worker a third of the way in.
    const commandIds = [...Array(COMMANDS)].map(() => randomUUID());
    const replies = new Map<string, Reply>();
    let next = 0;
    let killed = false;
    let restarted: Promise<void> | undefined;
    const sender = async () => {
      while (next < COMMANDS) {
        const i = next++;
        const reply = await send(ids[i % AGGREGATES], 'IncrementCounter', commandIds[i]);
        replies.set(commandIds[i], reply);
        if (!killed && replies.size >= COMMANDS / 3) {
          killed = true;
          worker.kill('SIGKILL');
          restarted = (async () => {
            await new Promise((r) => worker.once('exit', r));
            // The worker itself is gone (no wrapper left a live child behind).
            expect(() => process.kill(worker.pid!, 0)).toThrow();
            worker = await startWorker(t);
          })();
        }
      }
    };
    await Promise.all([...Array(64)].map(sender));
    await restarted;
    expect(killed).toBe(true);

    // Every command was answered and accepted.
    expect(replies.size).toBe(COMMANDS);
    const rejected = [...replies.values()].filter((r) => r.kind === 'rejected');
    expect(rejected).toEqual([]);

    // The events topic holds exactly one event per increment command, none extra.
    const h = new Harness(t);
    const events = (await h.events()).filter((e) => e.type === 'CounterIncremented');
    const byCommand = new Map<string, number>();
    for (const e of events) byCommand.set(e.causationId, (byCommand.get(e.causationId) ?? 0) + 1);
    expect(events.length).toBe(COMMANDS);
    expect(byCommand.size).toBe(COMMANDS);
    expect([...byCommand.values()].every((n) => n === 1)).toBe(true);
    for (const id of commandIds) expect(byCommand.get(id)).toBe(1);

    // Each aggregate's versions are gap-free and each reply names the event that was committed.
    const all = await h.events();
    const versions = new Map<string, number[]>();
    for (const e of all) versions.set(e.aggregateId, [...(versions.get(e.aggregateId) ?? []), e.version]);
    for (const id of ids) {
      const v = versions.get(id)!;
      expect(v).toEqual([...Array(v.length).keys()].map((i) => i + 1));
      expect(v.length).toBe(1 + COMMANDS / AGGREGATES);
    }
    const eventIds = new Set(events.map((e) => e.eventId));
    for (const r of replies.values()) {
      if (r.kind === 'accepted') expect(eventIds.has(r.events[0].eventId)).toBe(true);
    }
  });
});
