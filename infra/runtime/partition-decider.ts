// One partition's single writer. It owns the aggregates whose commands land on partition p of
// a domain's commands topic: it restores their state from the changelog, decides each command,
// and commits events, replies, changelog entries and the consumed offset in one transaction of
// a fenced writer. A writer that lost the partition can no longer commit (FencedError).
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { AggregateDefinition, Message } from '../../domains/kernel/decider.js';
import { InvalidArgumentError, type Rejection } from '../../domains/kernel/rejection.js';
import type { CommandEnvelope, EventEnvelope, Position, Reply } from '../envelope/envelope.js';
import { decodeCommand, decodeEvent, encodeEvent, encodeReply, InvalidEnvelopeError } from '../envelope/envelope.codec.js';
import type { Log, LogRecord, OutRecord, TransactionalWriter } from '../log/log.js';
import { partitionForKey } from '../log/partitioner.js';
import { contextFrom, spanHeaders, tracer } from '../telemetry/telemetry.js';
import { REPLIES_TOPIC, type DomainTopics } from './topology.js';

/** Log record headers set by the command bus, readable even when the envelope is not. */
export const HEADER_COMMAND_ID = 'strata-command-id';
export const HEADER_REPLY_TO = 'strata-reply-to';
export const HEADER_EVENT_TYPE = 'strata-event-type';

interface AggregateEntry {
  version: number;
  state: unknown;
}

const aggregateKey = (type: string, id: string) => `a/${type}/${id}`;
const commandKey = (commandId: string) => `c/${commandId}`;
/** Changelog key: the events offset up to which the changelog reflects the events partition. */
const EVENTS_COVERED_KEY = 'p/events-covered';

const encodeOffset = (offset: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setFloat64(0, offset);
  return out;
};
const decodeOffset = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getFloat64(0);

// Changelog value of an aggregate: 8 bytes big-endian version, then the codec's state bytes.
function encodeSnapshot(version: number, state: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + state.length);
  new DataView(out.buffer).setFloat64(0, version);
  out.set(state, 8);
  return out;
}
function decodeSnapshot(bytes: Uint8Array): { version: number; state: Uint8Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { version: view.getFloat64(0), state: bytes.subarray(8) };
}

export interface PartitionDeciderOptions {
  log: Log;
  topics: DomainTopics;
  groupId: string;
  partition: number;
  aggregates: ReadonlyMap<string, AggregateDefinition>;
  replyPartitions: number;
  /** Called with the number of commands of each committed batch (metrics). */
  onCommitted?: (commands: number) => void;
}

export class PartitionDecider {
  private writer: TransactionalWriter | undefined;
  private readonly aggregates = new Map<string, AggregateEntry>();
  /** Encoded replies of processed commands: a retried command id gets the original reply. */
  private readonly replies = new Map<string, Uint8Array>();

  /** What the last open() read: changelog records, and events folded past the changelog. */
  readonly restored = { changelogRecords: 0, eventsFolded: 0 };

  constructor(private readonly options: PartitionDeciderOptions) {}

  get transactionalId(): string {
    return `${this.options.groupId}.${this.options.partition}`;
  }

  /**
   * Fences any earlier owner of this partition, then restores state from the changelog, then
   * folds the events the changelog does not cover yet (none after a clean commit; all of them
   * if the changelog was lost: the events are the truth, the changelog only a cache).
   */
  async open(): Promise<void> {
    const { log, topics, partition } = this.options;
    this.writer = await log.transactionalWriter(this.transactionalId);
    // Read after fencing: the previous owner's open transaction is aborted and cannot appear later.
    const end = (await log.endOffsets(topics.changelog))[partition];
    let covered = 0;
    for await (const batch of log.read(topics.changelog, partition, 0, end)) {
      this.restored.changelogRecords += batch.length;
      for (const r of batch) {
        if (r.key === EVENTS_COVERED_KEY) {
          covered = decodeOffset(r.value);
        } else if (r.key.startsWith('c/')) {
          this.replies.set(r.key.slice(2), r.value);
        } else if (r.key.startsWith('a/')) {
          const type = r.key.slice(2, r.key.indexOf('/', 2));
          const def = this.options.aggregates.get(type);
          if (!def) continue; // an aggregate type this worker does not host
          const snap = decodeSnapshot(r.value);
          this.aggregates.set(r.key, { version: snap.version, state: def.codec.decodeState(snap.state) });
        }
      }
    }
    const eventsEnd = (await log.endOffsets(topics.events))[partition];
    if (covered < eventsEnd) await this.catchUp(covered, eventsEnd);
  }

  /**
   * Folds events [from, to) into the aggregates, rebuilds the replies of the commands that
   * caused them, and commits the result to the changelog. Replies of rejected commands are not
   * in the events: such a command, if retried, is decided again (it changed nothing).
   */
  private async catchUp(from: number, to: number): Promise<void> {
    const { log, topics, partition } = this.options;
    const touched = new Map<string, AggregateDefinition>();
    const byCommand = new Map<string, { events: EventEnvelope[]; position: Position }>();
    for await (const batch of log.read(topics.events, partition, from, to)) {
      for (const r of batch) {
        const e = decodeEvent(r.value);
        const def = this.options.aggregates.get(e.aggregateType);
        if (!def) continue;
        const key = aggregateKey(e.aggregateType, e.aggregateId);
        const current = this.aggregates.get(key) ?? { version: 0, state: def.decider.initialState };
        if (e.version <= current.version) continue; // the snapshot has it already
        const state = def.decider.evolve(current.state, def.codec.decodeEvent(e.type, e.payload));
        this.restored.eventsFolded++;
        this.aggregates.set(key, { version: e.version, state });
        touched.set(key, def);
        const caused = byCommand.get(e.causationId) ?? { events: [], position: { topic: r.topic, partition, offset: r.offset } };
        caused.events.push(e);
        byCommand.set(e.causationId, caused);
      }
    }
    const records: OutRecord[] = [];
    for (const [commandId, { events, position }] of byCommand) {
      if (this.replies.has(commandId)) continue;
      const last = events[events.length - 1];
      const reply = encodeReply({
        kind: 'accepted',
        commandId,
        correlationId: events[0].correlationId,
        aggregateId: events[0].aggregateId,
        version: last.version,
        events,
        position,
      });
      this.replies.set(commandId, reply);
      records.push({ topic: topics.changelog, partition, key: commandKey(commandId), value: reply });
    }
    for (const [key, def] of touched) {
      const { version, state } = this.aggregates.get(key)!;
      records.push({ topic: topics.changelog, partition, key, value: encodeSnapshot(version, def.codec.encodeState(state)) });
    }
    records.push({ topic: topics.changelog, partition, key: EVENTS_COVERED_KEY, value: encodeOffset(to) });
    await this.writer!.commit({ records, offsets: [] });
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.writer = undefined;
  }

  /** Decides a batch of command records and commits the outcome atomically. */
  async process(records: LogRecord[]): Promise<void> {
    if (!this.writer) throw new Error(`partition ${this.options.partition} is not open`);
    const { topics, partition, groupId } = this.options;
    const pendingAggregates = new Map<string, AggregateEntry>();
    const pendingReplies = new Map<string, Uint8Array>();
    const eventRecords: OutRecord[] = [];
    // Per command: its reply once event positions are known, and where its events sit in eventRecords.
    const outcomes: { replyTo: string; commandId: string; build: (positions: Position[]) => Uint8Array; duplicate: boolean }[] = [];
    // One snapshot per aggregate per batch: the changelog is compacted, only the last one counts,
    // and a batch of many commands to one aggregate (a project's quota) must stay one record.
    const changelog = new Map<string, OutRecord>();

    for (const record of records) {
      const outcome = this.decideOne(record, pendingAggregates, pendingReplies, eventRecords, changelog);
      if (outcome) outcomes.push(outcome);
    }

    const last = records[records.length - 1];
    await this.writer.commit({
      records: eventRecords,
      then: (positions) => {
        const out: OutRecord[] = [];
        for (const o of outcomes) {
          const reply = o.build(positions);
          out.push({
            topic: REPLIES_TOPIC,
            partition: partitionForKey(o.replyTo, this.options.replyPartitions),
            key: o.replyTo,
            value: reply,
            headers: { [HEADER_COMMAND_ID]: o.commandId },
          });
          if (!o.duplicate) {
            pendingReplies.set(o.commandId, reply);
            out.push({ topic: topics.changelog, partition, key: commandKey(o.commandId), value: reply });
          }
        }
        out.push(...changelog.values());
        if (positions.length > 0) {
          const lastEvent = positions[positions.length - 1];
          out.push({ topic: topics.changelog, partition, key: EVENTS_COVERED_KEY, value: encodeOffset(lastEvent.offset + 1) });
        }
        return out;
      },
      offsets: [{ groupId, topic: topics.commands, partition, nextOffset: last.offset + 1 }],
    });
    // Only a committed batch changes the in-memory state.
    for (const [k, v] of pendingAggregates) this.aggregates.set(k, v);
    for (const [k, v] of pendingReplies) this.replies.set(k, v);
    this.options.onCommitted?.(records.length);
  }

  private decideOne(
    record: LogRecord,
    pendingAggregates: Map<string, AggregateEntry>,
    pendingReplies: Map<string, Uint8Array>,
    eventRecords: OutRecord[],
    changelog: Map<string, OutRecord>,
  ) {
    const { topics, partition } = this.options;
    let envelope: CommandEnvelope;
    try {
      envelope = decodeCommand(record.value);
    } catch (e) {
      // The transport headers still say whom to answer, if the sender set them.
      const replyTo = record.headers[HEADER_REPLY_TO];
      const commandId = record.headers[HEADER_COMMAND_ID];
      if (!replyTo || !commandId) return undefined;
      const field = e instanceof InvalidEnvelopeError ? e.field : 'envelope';
      const rejection: Rejection = { code: 'INVALID_ARGUMENT', field, message: (e as Error).message };
      return this.rejectionOutcome(commandId, '', '', replyTo, rejection);
    }

    const { commandId } = envelope;
    const original = pendingReplies.get(commandId) ?? this.replies.get(commandId);
    if (original) {
      return { replyTo: envelope.replyTo, commandId, build: () => original, duplicate: true };
    }

    const parent = contextFrom({ traceparent: envelope.traceparent, tracestate: envelope.tracestate });
    const span = tracer().startSpan(
      `decide ${envelope.aggregateType}.${envelope.type}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'strata.command_id': commandId,
          'strata.aggregate_type': envelope.aggregateType,
          'strata.aggregate_id': envelope.aggregateId,
          'messaging.destination.name': topics.commands,
          'messaging.destination.partition.id': String(partition),
        },
      },
      parent,
    );
    try {
      const rejection = (r: Rejection) => {
        span.setAttribute('strata.rejection', r.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: r.message });
        return this.rejectionOutcome(commandId, envelope.correlationId, envelope.aggregateId, envelope.replyTo, r);
      };
      const def = this.options.aggregates.get(envelope.aggregateType);
      if (!def) {
        return rejection({
          code: 'INVALID_ARGUMENT',
          field: 'aggregate_type',
          message: `aggregate_type: unknown aggregate type "${envelope.aggregateType}"`,
        });
      }
      if (!def.codec.commandTypes.includes(envelope.type)) {
        return rejection({
          code: 'INVALID_ARGUMENT',
          field: 'type',
          message: `type: unknown command type "${envelope.type}" for ${envelope.aggregateType}`,
        });
      }
      let command: Message;
      try {
        command = def.codec.decodeCommand(envelope.type, envelope.payload);
      } catch (e: unknown) {
        const field = e instanceof InvalidArgumentError ? `payload.${e.field}` : 'payload';
        return rejection({ code: 'INVALID_ARGUMENT', field, message: `${field}: ${(e as Error).message}` });
      }

      const key = aggregateKey(envelope.aggregateType, envelope.aggregateId);
      const current = pendingAggregates.get(key) ??
        this.aggregates.get(key) ?? { version: 0, state: def.decider.initialState };
      if (envelope.expectedVersion > 0 && envelope.expectedVersion !== current.version) {
        return rejection({
          code: 'ABORTED',
          message: `${envelope.aggregateType} ${envelope.aggregateId} is at version ${current.version}, expected ${envelope.expectedVersion}`,
        });
      }
      const decision = def.decider.decide(current.state, command, {
        commandId,
        aggregateId: envelope.aggregateId,
        version: current.version,
        actor: envelope.actor,
        issuedAtMs: envelope.issuedAtMs,
      });
      if ('rejection' in decision) return rejection(decision.rejection);

      const headers = spanHeaders(span);
      const firstIndex = eventRecords.length;
      let state = current.state;
      const events: EventEnvelope[] = decision.events.map((event, i) => {
        state = def.decider.evolve(state, event);
        return {
          eventId: `${commandId}/${i}`,
          aggregateType: envelope.aggregateType,
          aggregateId: envelope.aggregateId,
          version: current.version + i + 1,
          type: event.type,
          payload: def.codec.encodeEvent(event),
          actor: envelope.actor,
          causationId: commandId,
          correlationId: envelope.correlationId,
          traceparent: headers.traceparent,
          tracestate: headers.tracestate,
          occurredAtMs: envelope.issuedAtMs,
        };
      });
      for (const e of events) {
        eventRecords.push({
          topic: topics.events,
          partition,
          key: envelope.aggregateId,
          value: encodeEvent(e),
          headers: { traceparent: e.traceparent, [HEADER_EVENT_TYPE]: e.type },
        });
      }
      const version = current.version + events.length;
      if (events.length > 0) {
        pendingAggregates.set(key, { version, state });
        changelog.delete(key); // re-inserted last, so the covered-offset record still follows every snapshot
        changelog.set(key, {
          topic: topics.changelog,
          partition,
          key,
          value: encodeSnapshot(version, def.codec.encodeState(state)),
        });
      }
      span.setAttribute('strata.events', events.length);
      return {
        replyTo: envelope.replyTo,
        commandId,
        duplicate: false,
        build: (positions: Position[]) => {
          const reply: Reply = {
            kind: 'accepted',
            commandId,
            correlationId: envelope.correlationId,
            aggregateId: envelope.aggregateId,
            version,
            events,
            position: events.length > 0 ? positions[firstIndex] : undefined,
          };
          return encodeReply(reply);
        },
      };
    } finally {
      span.end();
    }
  }

  private rejectionOutcome(commandId: string, correlationId: string, aggregateId: string, replyTo: string, rejection: Rejection) {
    const bytes = encodeReply({ kind: 'rejected', commandId, correlationId, aggregateId, rejection });
    return { replyTo, commandId, build: () => bytes, duplicate: false };
  }
}
