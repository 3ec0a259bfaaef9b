// Invariant 1 for decider state: the changelog is a cache of the events. Truncate it, restart
// the decider, and it folds the events again: versions continue, illegal transitions are still
// refused, and a retried command id still gets its original reply. A normal restart folds no
// event (it reads the changelog only).
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestLog, type TestLog } from './support/backends.js';
import { Harness, expectAccepted } from './support/harness.js';

describe.each(BACKENDS)('a decider whose changelog was lost, on the %s log', (backend) => {
  let t: TestLog;
  let h: Harness;
  afterAll(async () => {
    await h?.stop();
    await t?.close();
  });

  it('rebuilds its state from the events', { timeout: 120_000 }, async () => {
    t = await openTestLog(backend, 2);
    h = await new Harness(t).start();
    const ids = [...Array(6)].map(() => `c-${randomUUID()}`);
    for (const id of ids) expectAccepted(await h.send(id, { type: 'OpenCounter', name: id }));
    const retried = randomUUID();
    const original = expectAccepted(await h.send(ids[0], { type: 'IncrementCounter', amount: 10 }, { commandId: retried }));
    expectAccepted(await h.send(ids[1], { type: 'IncrementCounter', amount: 3 }));
    expectAccepted(await h.send(ids[2], { type: 'CloseCounter', reason: 'before the loss' }));

    for (const w of h.workers) await w.stop();
    h.workers = [];
    await t.log.truncate(h.topics.changelog);
    // (Kafka opens a partition at its first batch: the restore figures are read after commands.)
    const rebuilt = await h.startWorker();

    // The same command id: the original reply, rebuilt from the events, and no new event.
    const again = expectAccepted(await h.send(ids[0], { type: 'IncrementCounter', amount: 10 }, { commandId: retried }));
    expect(again).toEqual(original);
    // Versions and totals continue where the events left them.
    const next = expectAccepted(await h.send(ids[1], { type: 'IncrementCounter', amount: 4 }));
    expect(next.version).toBe(3);
    const { counterCodec } = await import('./conformance/counter.decider.js');
    expect(counterCodec.decodeEvent(next.events[0].type, next.events[0].payload)).toEqual({ type: 'CounterIncremented', amount: 4, total: 7 });
    // The closed counter is still closed; an existing counter cannot be opened again.
    const closed = await h.send(ids[2], { type: 'IncrementCounter', amount: 1 });
    expect(closed.kind === 'rejected' && closed.rejection).toMatchObject({ code: 'FAILED_PRECONDITION', state: 'closed' });
    const reopen = await h.send(ids[3], { type: 'OpenCounter', name: 'again' });
    expect(reopen.kind === 'rejected' && reopen.rejection.code).toBe('FAILED_PRECONDITION');
    expect(rebuilt.restored.changelogRecords).toBe(0);
    expect(rebuilt.restored.eventsFolded).toBeGreaterThanOrEqual(4); // at least ids[0..3]'s events

    // Restart again without a loss: the rebuilt changelog holds the state (and says it covers the events).
    for (const w of h.workers) await w.stop();
    h.workers = [];
    const restarted = await h.startWorker();
    const after = expectAccepted(await h.send(ids[1], { type: 'IncrementCounter', amount: 1 }));
    expect(after.version).toBe(4);
    expect(restarted.restored.eventsFolded).toBe(0);
    expect(restarted.restored.changelogRecords).toBeGreaterThan(0);
    const events = await h.events();
    expect(events.filter((e) => e.causationId === retried)).toHaveLength(1);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
  });
});
