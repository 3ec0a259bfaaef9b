// Partitions are the unit of parallelism: two decider workers in one group share them, and a
// stopped worker's partitions move to the other without losing or repeating a command.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestLog, type TestLog } from './support/backends.js';
import { Harness, expectAccepted } from './support/harness.js';
import { until } from './support/wait.js';

describe.each(BACKENDS)('decider workers sharing a group on the %s log', (backend) => {
  let t: TestLog;
  let h: Harness;
  afterAll(async () => {
    await h?.stop();
    await t?.close();
  });

  it('split the partitions, and one takes over all of them when the other stops', { timeout: 120_000 }, async () => {
    t = await openTestLog(backend, 4);
    h = await new Harness(t).start({ workers: 2 });
    const [a, b] = h.workers;
    const ids = [...Array(40)].map(() => `c-${randomUUID()}`);
    await Promise.all(ids.map((id) => h.send(id, { type: 'OpenCounter', name: id }).then(expectAccepted)));
    await until(() => a.partitions.length + b.partitions.length === 4 && a.partitions.length > 0 && b.partitions.length > 0, 'a split');
    expect([...a.partitions, ...b.partitions].sort()).toEqual([0, 1, 2, 3]);

    // Stop one worker while commands flow; every command is still answered exactly once.
    const flowing = Promise.all(ids.map((id) => h.send(id, { type: 'IncrementCounter', amount: 1 }).then(expectAccepted)));
    await a.stop();
    h.workers = [b];
    await flowing;
    await until(() => b.partitions.length === 4, 'b to own every partition');
    const replies = await Promise.all(ids.map((id) => h.send(id, { type: 'IncrementCounter', amount: 1 }).then(expectAccepted)));
    expect(replies.every((r) => r.version === 3)).toBe(true);

    const events = await h.events();
    expect(events).toHaveLength(ids.length * 3);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(events.length);
  });
});
