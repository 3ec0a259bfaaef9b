// Envelopes <-> protobuf bytes (proto/strata/core/v1/envelope.proto), by protobufjs reflection:
// the .proto files are the single source, loaded once at start-up.
import protobuf from 'protobufjs';
import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Actor, CommandEnvelope, EventEnvelope, Position, Rejection, RejectionCode, Reply } from './envelope.js';

const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? protoFiles(p) : name.endsWith('.proto') ? [p] : [];
  });
}

const root = new protobuf.Root();
// Imports name files relative to proto/ (as buf does); google/protobuf/* are protobufjs built-ins.
root.resolvePath = (_origin, target) =>
  target.startsWith('google/protobuf/') || isAbsolute(target) ? target : join(PROTO_ROOT, target);
root.loadSync(protoFiles(PROTO_ROOT));
root.resolveAll();

/** Every type and service of proto/, for the gRPC API and reflection. */
export const protoRoot = (): protobuf.Root => root;

/** A message type from proto/, for domains' payload codecs. */
export function loadProtoType(fullName: string): protobuf.Type {
  return root.lookupType(fullName);
}

const CommandEnvelopeType = loadProtoType('strata.core.v1.CommandEnvelope');
const EventEnvelopeType = loadProtoType('strata.core.v1.EventEnvelope');
const ReplyType = loadProtoType('strata.core.v1.Reply');

/** The envelope itself is malformed; `field` names the proto field (or "envelope"). */
export class InvalidEnvelopeError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidEnvelopeError';
  }
}

type Long = { toNumber(): number; high: number; low: number; unsigned: boolean };
type Timestamp = { seconds?: number | Long; nanos?: number };

function int64(value: unknown, what: string, field: string): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'number') return value;
  const l = value as Long;
  const n = l.toNumber();
  if (!Number.isSafeInteger(n)) throw new InvalidEnvelopeError(field, `${what}: ${field} is beyond 2^53`);
  return n;
}

const toTimestamp = (ms: number): Timestamp => ({
  seconds: Math.floor(ms / 1000),
  nanos: Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6),
});

const fromTimestamp = (t: Timestamp | undefined | null, what: string, field: string): number =>
  t ? int64(t.seconds, what, field) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;

const emptyActor: Actor = { userId: '', projectId: '', roles: [] };
const toActor = (a: Partial<Actor> | undefined | null): Actor =>
  a ? { userId: a.userId ?? '', projectId: a.projectId ?? '', roles: a.roles ?? [] } : emptyActor;

const bytes = (b: unknown): Uint8Array => (b instanceof Uint8Array ? b : new Uint8Array());

/** Reads a string field of a decoded message; proto3 leaves empty strings out. */
const text = (m: Record<string, unknown>, key: string): string => (m[key] as string | undefined) ?? '';

function decodeMessage(type: protobuf.Type, data: Uint8Array, what: string): Record<string, unknown> {
  try {
    return type.decode(data) as unknown as Record<string, unknown>;
  } catch (e) {
    throw new InvalidEnvelopeError('envelope', `${what}: not a valid ${type.name} message (${(e as Error).message})`);
  }
}

export function encodeCommand(e: CommandEnvelope): Uint8Array {
  return CommandEnvelopeType.encode({ ...e, issuedAt: toTimestamp(e.issuedAtMs) }).finish();
}

const REQUIRED_COMMAND_FIELDS: [keyof CommandEnvelope, string][] = [
  ['commandId', 'command_id'],
  ['aggregateType', 'aggregate_type'],
  ['aggregateId', 'aggregate_id'],
  ['type', 'type'],
  ['replyTo', 'reply_to'],
];

export function decodeCommand(data: Uint8Array): CommandEnvelope {
  const what = 'command envelope';
  const m = decodeMessage(CommandEnvelopeType, data, what);
  const s = (k: string) => text(m, k);
  const envelope: CommandEnvelope = {
    commandId: s('commandId'),
    aggregateType: s('aggregateType'),
    aggregateId: s('aggregateId'),
    expectedVersion: int64(m.expectedVersion, what, 'expected_version'),
    type: s('type'),
    payload: bytes(m.payload),
    actor: toActor(m.actor as Partial<Actor>),
    causationId: s('causationId'),
    correlationId: s('correlationId'),
    traceparent: s('traceparent'),
    tracestate: s('tracestate'),
    issuedAtMs: fromTimestamp(m.issuedAt as Timestamp, what, 'issued_at'),
    replyTo: s('replyTo'),
  };
  for (const [key, field] of REQUIRED_COMMAND_FIELDS) {
    if (!envelope[key]) throw new InvalidEnvelopeError(field, `${what}: ${field} is required`);
  }
  if (!m.issuedAt) throw new InvalidEnvelopeError('issued_at', `${what}: issued_at is required`);
  if (envelope.expectedVersion < 0) {
    throw new InvalidEnvelopeError('expected_version', `${what}: expected_version must be >= 0, got ${envelope.expectedVersion}`);
  }
  return envelope;
}

const eventMessage = (e: EventEnvelope) => ({ ...e, occurredAt: toTimestamp(e.occurredAtMs) });

export function encodeEvent(e: EventEnvelope): Uint8Array {
  return EventEnvelopeType.encode(eventMessage(e)).finish();
}

function eventFrom(m: Record<string, unknown>): EventEnvelope {
  const what = 'event envelope';
  const s = (k: string) => text(m, k);
  return {
    eventId: s('eventId'),
    aggregateType: s('aggregateType'),
    aggregateId: s('aggregateId'),
    version: int64(m.version, what, 'version'),
    type: s('type'),
    payload: bytes(m.payload),
    actor: toActor(m.actor as Partial<Actor>),
    causationId: s('causationId'),
    correlationId: s('correlationId'),
    traceparent: s('traceparent'),
    tracestate: s('tracestate'),
    occurredAtMs: fromTimestamp(m.occurredAt as Timestamp, what, 'occurred_at'),
  };
}

export function decodeEvent(data: Uint8Array): EventEnvelope {
  return eventFrom(decodeMessage(EventEnvelopeType, data, 'event envelope'));
}

const CODES: RejectionCode[] = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
  'ABORTED',
  'INTERNAL',
];

export function encodeReply(r: Reply): Uint8Array {
  const base = { commandId: r.commandId, correlationId: r.correlationId, aggregateId: r.aggregateId };
  if (r.kind === 'accepted') {
    return ReplyType.encode({
      ...base,
      accepted: { version: r.version, events: r.events.map(eventMessage), position: r.position },
    }).finish();
  }
  return ReplyType.encode({
    ...base,
    rejected: { ...r.rejection, code: CODES.indexOf(r.rejection.code) + 1 },
  }).finish();
}

export function decodeReply(data: Uint8Array): Reply {
  const what = 'reply';
  const m = decodeMessage(ReplyType, data, what);
  const base = {
    commandId: (m.commandId as string) ?? '',
    correlationId: (m.correlationId as string) ?? '',
    aggregateId: (m.aggregateId as string) ?? '',
  };
  if (m.accepted) {
    const a = m.accepted as { version?: unknown; events?: Record<string, unknown>[]; position?: Record<string, unknown> };
    const position: Position | undefined = a.position
      ? {
          topic: (a.position.topic as string) ?? '',
          partition: (a.position.partition as number) ?? 0,
          offset: int64(a.position.offset, what, 'position.offset'),
        }
      : undefined;
    return {
      kind: 'accepted',
      ...base,
      version: int64(a.version, what, 'version'),
      events: (a.events ?? []).map(eventFrom),
      position,
    };
  }
  if (m.rejected) {
    const r = m.rejected as { code?: number; message?: string; field?: string; state?: string };
    const rejection: Rejection = { code: CODES[(r.code ?? 0) - 1] ?? 'INTERNAL', message: r.message ?? '' };
    if (r.field) rejection.field = r.field;
    if (r.state) rejection.state = r.state;
    return { kind: 'rejected', ...base, rejection };
  }
  throw new InvalidEnvelopeError('outcome', `${what}: outcome is required`);
}
