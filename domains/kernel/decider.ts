// The decider: (state, command) -> events | rejection, and (state, event) -> state.
// Pure: time, ids and the actor come in the CommandContext, never from the environment.
import type { Rejection } from './rejection.js';

export interface Message {
  type: string;
}

export interface ActorContext {
  userId: string;
  projectId: string;
  roles: readonly string[];
}

export interface CommandContext {
  commandId: string;
  aggregateId: string;
  /** Version of the aggregate before this command (0: it has no events yet). */
  version: number;
  actor: ActorContext;
  /** The command's time, set by the API: the only clock a decider has. */
  issuedAtMs: number;
}

export type Decision<E> = { events: E[] } | { rejection: Rejection };

export interface Decider<S, C extends Message, E extends Message> {
  aggregateType: string;
  initialState: S;
  decide(state: S, command: C, context: CommandContext): Decision<E>;
  evolve(state: S, event: E): S;
  /** A human name of the state for error messages ("active", "closed"). */
  describe(state: S): string;
}

/** Bytes <-> messages for one aggregate type. decodeCommand throws InvalidArgumentError naming the field. */
export interface DeciderCodec<S, C extends Message, E extends Message> {
  commandTypes: readonly string[];
  decodeCommand(type: string, payload: Uint8Array): C;
  encodeCommand(command: C): Uint8Array;
  encodeEvent(event: E): Uint8Array;
  decodeEvent(type: string, payload: Uint8Array): E;
  encodeState(state: S): Uint8Array;
  decodeState(bytes: Uint8Array): S;
}

/** What the runtime needs to host an aggregate type. */
export interface AggregateDefinition<S = unknown, C extends Message = Message, E extends Message = Message> {
  decider: Decider<S, C, E>;
  codec: DeciderCodec<S, C, E>;
}

export const fold = <S, E extends Message>(decider: Decider<S, Message, E>, events: readonly E[], from?: S): S =>
  events.reduce((s, e) => decider.evolve(s, e), from ?? decider.initialState);
