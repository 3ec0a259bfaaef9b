// One contract suite, run against both log backends (issue 2 acceptance a, d, g).
// Kafka runs as 3 brokers with replication factor 3 and min.insync.replicas 2.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand } from '../infra/envelope/envelope.codec.js';
import { FencedError } from '../infra/log/log.js';
import { partitionForKey } from '../infra/log/partitioner.js';
import { PartitionDecider, HEADER_COMMAND_ID, HEADER_REPLY_TO } from '../infra/runtime/partition-decider.js';
import { COUNTER, counterAggregate, counterCodec } from './conformance/counter.decider.js';
import { BACKENDS, openTestLog, type TestLog } from './support/backends.js';
import { Harness, actor, expectAccepted } from './support/harness.js';
import { settledEndOffsets } from './support/wait.js';

describe.each(BACKENDS)('runtime contract on the %s log', (backend) => {
  let t: TestLog;
  let h: Harness;

  beforeAll(async () => {
    t = await openTestLog(backend);
    h = await new Harness(t).start();
  });
  afterAll(async () => {
    await h?.stop();
    await t?.close();
  });

  it('keeps per-key order: events of one aggregate carry versions 1..n in log order', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'order' }));
    for (let i = 1; i <= 20; i++) expectAccepted(await h.send(id, { type: 'IncrementCounter', amount: i }));
    const events = (await h.events()).filter((e) => e.aggregateId === id);
    expect(events.map((e) => e.version)).toEqual([...Array(21).keys()].map((i) => i + 1));
    const totals = events.slice(1).map((e) => counterCodec.decodeEvent(e.type, e.payload));
    expect(totals.map((e) => (e as { total: number }).total)).toEqual(
      [...Array(20).keys()].map((i) => ((i + 1) * (i + 2)) / 2),
    );
  });

  it('answers a retried command id with the original reply and writes no second event', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'retry' }));
    const commandId = randomUUID();
    const first = expectAccepted(await h.send(id, { type: 'IncrementCounter', amount: 5 }, { commandId }));
    // The retry carries another amount: only the command id decides that it is the same command.
    const again = expectAccepted(await h.send(id, { type: 'IncrementCounter', amount: 7 }, { commandId }));
    expect(again).toEqual(first);
    expect(first.position).toBeDefined();
    const events = (await h.events()).filter((e) => e.aggregateId === id);
    expect(events.filter((e) => e.causationId === commandId)).toHaveLength(1);
    expect(events).toHaveLength(2);
    // A rejected command is remembered too.
    const rejectedId = randomUUID();
    const r1 = await h.send(id, { type: 'OpenCounter', name: 'twice' }, { commandId: rejectedId });
    const r2 = await h.send(id, { type: 'OpenCounter', name: 'twice' }, { commandId: rejectedId });
    expect(r1.kind).toBe('rejected');
    expect(r2).toEqual(r1);
  });

  it('gives 10 concurrent clients on one aggregate a gap-free version sequence', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'contended' }));
    const { CommandBus } = await import('../infra/runtime/command-bus.js');
    const clients = await Promise.all([...Array(10)].map(() => CommandBus.connect({ log: t.log })));
    try {
      const replies = await Promise.all(
        clients.flatMap((bus) =>
          [...Array(10)].map(() =>
            bus.send({
              domain: t.domain,
              aggregateType: COUNTER,
              aggregateId: id,
              type: 'IncrementCounter',
              payload: counterCodec.encodeCommand({ type: 'IncrementCounter', amount: 1 }),
              actor,
            }),
          ),
        ),
      );
      const versions = replies.map((r) => expectAccepted(r).version).sort((a, b) => a - b);
      expect(versions).toEqual([...Array(100).keys()].map((i) => i + 2));
      const events = (await h.events()).filter((e) => e.aggregateId === id);
      expect(events.map((e) => e.version)).toEqual([...Array(101).keys()].map((i) => i + 1));
      const last = counterCodec.decodeEvent(events[100].type, events[100].payload) as { total: number };
      expect(last.total).toBe(100);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  it('rejects an illegal transition with FAILED_PRECONDITION naming the state, changing nothing', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'closing' }));
    expectAccepted(await h.send(id, { type: 'CloseCounter', reason: 'done' }));
    const before = await settledEndOffsets(t.log, h.topics.events);
    const reply = await h.send(id, { type: 'IncrementCounter', amount: 1 });
    expect(reply.kind).toBe('rejected');
    if (reply.kind !== 'rejected') return;
    expect(reply.rejection.code).toBe('FAILED_PRECONDITION');
    expect(reply.rejection.state).toBe('closed');
    expect(reply.rejection.message).toContain('closed');
    expect(await settledEndOffsets(t.log, h.topics.events)).toEqual(before);
    const missing = await h.send(`c-${randomUUID()}`, { type: 'IncrementCounter', amount: 1 });
    expect(missing.kind === 'rejected' && missing.rejection.code).toBe('NOT_FOUND');
  });

  it('answers a malformed envelope, an unknown command type and a bad payload with INVALID_ARGUMENT, changing nothing', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'strict' }));
    const before = await settledEndOffsets(t.log, h.topics.events);

    const garbageId = randomUUID();
    const garbage = await h.bus.sendEnvelope(t.domain, { commandId: garbageId, aggregateId: id }, new Uint8Array([0xff, 0xff, 0xff, 0x01]));
    expect(garbage.kind).toBe('rejected');
    if (garbage.kind === 'rejected') {
      expect(garbage.rejection.code).toBe('INVALID_ARGUMENT');
      expect(garbage.rejection.field).toBe('envelope');
    }

    const unknownId = randomUUID();
    const unknown = await h.bus.sendEnvelope(
      t.domain,
      { commandId: unknownId, aggregateId: id },
      encodeCommand({
        commandId: unknownId,
        aggregateType: COUNTER,
        aggregateId: id,
        expectedVersion: 0,
        type: 'ExplodeCounter',
        payload: new Uint8Array(),
        actor,
        causationId: '',
        correlationId: unknownId,
        traceparent: '',
        tracestate: '',
        issuedAtMs: Date.now(),
        replyTo: h.bus.clientId,
      }),
    );
    expect(unknown.kind === 'rejected' && unknown.rejection).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'type' });
    expect(unknown.kind === 'rejected' && unknown.rejection.message).toContain('ExplodeCounter');

    const bad = await h.send(id, { type: 'IncrementCounter', amount: -3 });
    expect(bad.kind === 'rejected' && bad.rejection).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'payload.amount' });

    const stale = await h.send(id, { type: 'IncrementCounter', amount: 1 }, { expectedVersion: 7 });
    expect(stale.kind === 'rejected' && stale.rejection.code).toBe('ABORTED');

    expect(await settledEndOffsets(t.log, h.topics.events)).toEqual(before);
    const state = expectAccepted(await h.send(id, { type: 'IncrementCounter', amount: 1 }));
    expect(state.version).toBe(2);
  });

  it('fences: of two writers that both believe they own a partition, only the newer one commits', async () => {
    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'fenced' }));
    const partition = partitionForKey(id, t.topology.partitions);
    const options = {
      log: t.log,
      topics: h.topics,
      // A group of their own, so the contenders fence each other and not the suite's worker.
      groupId: `fencing-test-${randomUUID()}`,
      partition,
      aggregates: new Map([[COUNTER, counterAggregate]]),
      replyPartitions: 4,
    };
    const zombie = new PartitionDecider(options as never);
    await zombie.open();
    const usurper = new PartitionDecider(options as never);
    await usurper.open(); // same transactional id: fences the zombie

    const record = (commandId: string, amount: number, offset: number) => ({
      topic: h.topics.commands,
      partition,
      offset,
      key: id,
      timestampMs: Date.now(),
      headers: { [HEADER_COMMAND_ID]: commandId, [HEADER_REPLY_TO]: 'fencing-test' },
      value: encodeCommand({
        commandId,
        aggregateType: COUNTER,
        aggregateId: id,
        expectedVersion: 0,
        type: 'IncrementCounter',
        payload: counterCodec.encodeCommand({ type: 'IncrementCounter', amount }),
        actor,
        causationId: '',
        correlationId: commandId,
        traceparent: '',
        tracestate: '',
        issuedAtMs: Date.now(),
        replyTo: 'fencing-test',
      }),
    });
    const zombieCommand = randomUUID();
    const usurperCommand = randomUUID();
    const [zombieResult, usurperResult] = await Promise.allSettled([
      zombie.process([record(zombieCommand, 100, 1_000_000)]),
      usurper.process([record(usurperCommand, 1, 1_000_000)]),
    ]);
    expect(zombieResult.status).toBe('rejected');
    expect((zombieResult as PromiseRejectedResult).reason).toBeInstanceOf(FencedError);
    expect(usurperResult.status).toBe('fulfilled');
    const events = (await h.events()).filter((e) => e.aggregateId === id);
    expect(events.map((e) => e.causationId)).toContain(usurperCommand);
    expect(events.map((e) => e.causationId)).not.toContain(zombieCommand);
    // The zombie stays fenced: a second try fails too.
    await expect(zombie.process([record(randomUUID(), 5, 1_000_001)])).rejects.toBeInstanceOf(FencedError);
    await zombie.close();
    await usurper.close();
  });
});
