// The envelopes that travel through the log. Wire form: proto/strata/core/v1/envelope.proto;
// infra/envelope/envelope.codec.ts converts between these types and protobuf bytes.

/** Who issued a command; copied onto every event it causes. */
export interface Actor {
  userId: string;
  projectId: string;
  roles: string[];
}

/** A place in the log. Offsets are safe integers (Kafka's int64 never nears 2^53 here). */
export interface Position {
  topic: string;
  partition: number;
  offset: number;
}

export interface CommandEnvelope {
  commandId: string;
  aggregateType: string;
  aggregateId: string;
  /** Optimistic concurrency: the aggregate version the caller saw; 0 means "any". */
  expectedVersion: number;
  /** Command name, e.g. "RebootInstance". */
  type: string;
  /** The command message, protobuf-encoded by the domain's codec. */
  payload: Uint8Array;
  actor: Actor;
  causationId: string;
  correlationId: string;
  /** W3C trace context of the sender. */
  traceparent: string;
  tracestate: string;
  /** Milliseconds since the epoch, set by the API when it accepted the request: the decider's clock. */
  issuedAtMs: number;
  /** Reply channel: the client instance that waits for the reply. */
  replyTo: string;
}

export interface EventEnvelope {
  /** `${commandId}/${index}`: deterministic, so a replayed decision yields the same ids. */
  eventId: string;
  aggregateType: string;
  aggregateId: string;
  /** Aggregate version after this event (1 for the first event of an aggregate). */
  version: number;
  /** Event name, e.g. "InstanceRebooted". */
  type: string;
  payload: Uint8Array;
  actor: Actor;
  /** The command that caused this event. */
  causationId: string;
  correlationId: string;
  traceparent: string;
  tracestate: string;
  /** Equals the causing command's issuedAtMs: event time is decided, not observed. */
  occurredAtMs: number;
}

export type { Rejection, RejectionCode } from '../../domains/kernel/rejection.js';
import type { Rejection } from '../../domains/kernel/rejection.js';

export type Reply =
  | {
      kind: 'accepted';
      commandId: string;
      correlationId: string;
      aggregateId: string;
      /** Aggregate version after the events (unchanged if no event was emitted). */
      version: number;
      events: EventEnvelope[];
      /** Where the first event landed in the events topic; absent when no event was emitted. */
      position?: Position;
    }
  | {
      kind: 'rejected';
      commandId: string;
      correlationId: string;
      aggregateId: string;
      rejection: Rejection;
    };
