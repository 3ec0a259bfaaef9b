// The Log contract, held against both adapters: appends, reads, tails, transactions, fencing
// and consumer groups behave the same on the embedded log and on Kafka.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, openTestLog, type TestLog } from '../../test/support/backends.js';
import { settledEndOffsets, until } from '../../test/support/wait.js';
import { FencedError, type Log, type LogRecord } from './log.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function readAll(log: Log, topic: string, partition: number): Promise<LogRecord[]> {
  const end = (await settledEndOffsets(log, topic))[partition];
  const out: LogRecord[] = [];
  for await (const batch of log.read(topic, partition, 0, end)) out.push(...batch);
  return out;
}

describe.each(BACKENDS)('Log contract on the %s log', (backend) => {
  let t: TestLog;
  let log: Log;
  const topic = () => `contract-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    t = await openTestLog(backend);
    log = t.log;
  });
  afterAll(async () => t?.close());

  it('appends in order and reads back what it appended, with headers', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 2, replicationFactor: t.topology.replicationFactor }]);
    const positions = await log.append(
      [...Array(10)].map((_, i) => ({ topic: name, partition: i % 2, key: `k${i}`, value: enc(`v${i}`), headers: { n: String(i) } })),
    );
    expect(positions.filter((p) => p.partition === 0).map((p) => p.offset)).toEqual([0, 1, 2, 3, 4]);
    const records = await readAll(log, name, 1);
    expect(records.map((r) => [r.key, dec(r.value), r.headers.n, r.offset])).toEqual(
      [1, 3, 5, 7, 9].map((i, j) => [`k${i}`, `v${i}`, String(i), j]),
    );
    expect((await log.endOffsets(name))[1]).toBeGreaterThanOrEqual(5);
    await expect(log.ensureTopics([{ name, partitions: 3 }])).rejects.toThrow(/2 partitions/);
  });

  it('tails from the earliest or the latest offset', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 1, replicationFactor: t.topology.replicationFactor }]);
    await log.append([{ topic: name, partition: 0, key: 'a', value: enc('old') }]);
    const early: string[] = [];
    const late: string[] = [];
    const s1 = await log.tail({ topics: [name], from: 'earliest', onBatch: async (rs) => void early.push(...rs.map((r) => dec(r.value))) });
    const s2 = await log.tail({ topics: [name], from: 'latest', onBatch: async (rs) => void late.push(...rs.map((r) => dec(r.value))) });
    await log.append([{ topic: name, partition: 0, key: 'a', value: enc('new') }]);
    await until(() => early.length === 2 && late.length === 1, 'both tails');
    expect(early).toEqual(['old', 'new']);
    expect(late).toEqual(['new']);
    await s1.close();
    await s2.close();
  });

  it('commits a transaction whole: records, dependent records and group offsets together', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 1, replicationFactor: t.topology.replicationFactor }]);
    const writer = await log.transactionalWriter(`tx-${name}`);
    const positions = await writer.commit({
      records: [{ topic: name, partition: 0, key: 'e', value: enc('event') }],
      then: (p) => [{ topic: name, partition: 0, key: 'r', value: enc(`reply@${p[0].offset}`) }],
      offsets: [{ groupId: `g-${name}`, topic: name, partition: 0, nextOffset: 1 }],
    });
    expect(positions).toHaveLength(1);
    const records = await readAll(log, name, 0);
    expect(records.map((r) => dec(r.value))).toEqual(['event', `reply@${positions[0].offset}`]);

    // A commit whose dependent part fails writes nothing.
    await expect(
      writer.commit({
        records: [{ topic: name, partition: 0, key: 'e', value: enc('half') }],
        then: () => {
          throw new Error('boom');
        },
        offsets: [],
      }),
    ).rejects.toThrow('boom');
    expect((await readAll(log, name, 0)).map((r) => dec(r.value))).not.toContain('half');
    await writer.close();
  });

  it('a tail reports progress up to the end offset, past the commit marker of a transaction that ends the partition', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 1, replicationFactor: t.topology.replicationFactor }]);
    const writer = await log.transactionalWriter(`tx-${name}`);
    await writer.commit({ records: [{ topic: name, partition: 0, key: 'k', value: enc('one') }], offsets: [] });
    await writer.close();
    // On Kafka the end offset counts the commit marker, which no tail delivers as a record.
    const [end] = await settledEndOffsets(log, name);
    const seen: string[] = [];
    let passed = -1;
    const sub = await log.tail({
      topics: [name],
      from: 'earliest',
      onBatch: async (rs) => void seen.push(...rs.map((r) => dec(r.value))),
      onProgress: (tp, p, last) => {
        if (tp === name && p === 0) passed = Math.max(passed, last);
      },
    });
    await until(() => passed >= end - 1, 'the tail to pass the end offset');
    expect(seen).toEqual(['one']);
    await sub.close();
  });

  it('fences the older of two writers with one transactional id', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 1, replicationFactor: t.topology.replicationFactor }]);
    const old = await log.transactionalWriter(`tx-${name}`);
    const current = await log.transactionalWriter(`tx-${name}`);
    await expect(old.commit({ records: [{ topic: name, partition: 0, key: 'k', value: enc('zombie') }], offsets: [] })).rejects.toBeInstanceOf(
      FencedError,
    );
    await current.commit({ records: [{ topic: name, partition: 0, key: 'k', value: enc('owner') }], offsets: [] });
    expect((await readAll(log, name, 0)).map((r) => dec(r.value))).toEqual(['owner']);
    await old.close();
    await current.close();
  });

  it('hands a group member every partition, starting at the offsets committed in transactions', async () => {
    const name = topic();
    const groupId = `g-${name}`;
    await log.ensureTopics([{ name, partitions: 2, replicationFactor: t.topology.replicationFactor }]);
    await log.append([0, 1, 2].map((i) => ({ topic: name, partition: 0, key: 'k', value: enc(`m${i}`) })));
    await log.append([{ topic: name, partition: 1, key: 'k', value: enc('p1') }]);
    const writer = await log.transactionalWriter(`tx-${name}`);
    await writer.commit({ records: [], offsets: [{ groupId, topic: name, partition: 0, nextOffset: 2 }] });
    await writer.close();

    const seen: string[] = [];
    const assigned = new Set<number>();
    const member = await log.joinGroup({
      groupId,
      topic: name,
      onAssigned: async (p) => void assigned.add(p),
      onRevoked: async (p) => void assigned.delete(p),
      onBatch: async (_p, rs) => void seen.push(...rs.map((r) => dec(r.value))),
    });
    await until(() => seen.length === 2, 'the uncommitted records');
    expect(seen.sort()).toEqual(['m2', 'p1']);
    expect([...assigned].sort()).toEqual([0, 1]);
    await member.close();
  });

  it('truncates a compacted topic: nothing left to read, offsets never reused', async () => {
    const name = topic();
    await log.ensureTopics([{ name, partitions: 1, compacted: true, replicationFactor: t.topology.replicationFactor }]);
    await log.append([0, 1, 2].map((i) => ({ topic: name, partition: 0, key: `k${i}`, value: enc(`v${i}`) })));
    await log.truncate(name);
    expect(await readAll(log, name, 0)).toEqual([]);
    const [p] = await log.append([{ topic: name, partition: 0, key: 'k9', value: enc('after') }]);
    expect(p.offset).toBeGreaterThanOrEqual(3);
    expect((await readAll(log, name, 0)).map((r) => dec(r.value))).toEqual(['after']);
  });
});
