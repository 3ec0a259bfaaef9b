// Issue 2 acceptance c: one of 3 brokers killed during load: no acknowledged event lost, and
// processing resumes without restarting Strata (same workers, same command bus).
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Reply } from '../infra/envelope/envelope.js';
import { ensureKafka, killNode, startNode } from '../infra/kafka/cluster.js';
import { openTestLog, type TestLog } from './support/backends.js';
import { Harness } from './support/harness.js';

const COMMANDS = 3000;
const AGGREGATES = 50;

describe('a Kafka broker killed during load', () => {
  let t: TestLog | undefined;
  let h: Harness | undefined;
  let killed: number | undefined;
  afterAll(async () => {
    await h?.stop();
    await t?.close();
    if (killed !== undefined) await startNode(killed);
  });

  it('loses no acknowledged event and keeps processing', { timeout: 300_000 }, async () => {
    const { brokers } = await ensureKafka({ nodes: 3 });
    t = await openTestLog('kafka');
    h = await new Harness(t).start();
    const ids = [...Array(AGGREGATES)].map(() => `c-${randomUUID()}`);
    await Promise.all(ids.map((id) => h!.send(id, { type: 'OpenCounter', name: id })));

    // Kill the broker that leads partition 0 of the events topic: the worst one to lose.
    const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const meta = await admin.fetchTopicMetadata({ topics: [h.topics.events] });
    await admin.disconnect();
    const leaderId = meta.topics[0].partitions.find((p) => p.partitionId === 0)!.leader;
    const victim = leaderId - 1; // node ids are 1..N, indexes 0..N-1

    const replies = new Map<string, Reply>();
    let next = 0;
    const sender = async () => {
      while (next < COMMANDS) {
        const i = next++;
        const commandId = `inc-${i}-${randomUUID()}`;
        replies.set(commandId, await h!.send(ids[i % AGGREGATES], { type: 'IncrementCounter', amount: 1 }, { commandId }));
        if (i === Math.floor(COMMANDS / 3) && killed === undefined) {
          killed = victim;
          await killNode(victim);
        }
      }
    };
    await Promise.all([...Array(32)].map(sender));
    expect(killed).toBe(victim);

    // Every command got a reply while a broker was down, and every acknowledged event is in the log once.
    expect(replies.size).toBe(COMMANDS);
    const accepted = [...replies.values()].filter((r) => r.kind === 'accepted');
    expect(accepted.length).toBe(COMMANDS);
    const events = await h.events();
    const count = new Map<string, number>();
    for (const e of events) count.set(e.eventId, (count.get(e.eventId) ?? 0) + 1);
    for (const r of accepted) {
      if (r.kind === 'accepted') expect(count.get(r.events[0].eventId)).toBe(1);
    }
    const versions = new Map<string, number[]>();
    for (const e of events) versions.set(e.aggregateId, [...(versions.get(e.aggregateId) ?? []), e.version]);
    for (const id of ids) {
      const v = versions.get(id)!;
      expect(v).toEqual([...Array(1 + COMMANDS / AGGREGATES).keys()].map((i) => i + 1));
    }
  });
});
