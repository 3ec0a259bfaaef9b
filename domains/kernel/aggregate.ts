// An aggregate type as a domain defines it: its machine turned into a decider, its command and
// event types, and where its refusals come from. Each lifecycle machine states its own refusals
// (a function of its context and the command): the guard refuses when the refusal is defined, and
// explain returns that refusal, so a rule and its message are one function.
import type { AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from './decider.js';
import { machineDecider, type MachineState } from './machine-decider.js';
import type { Rejection } from './rejection.js';

/** A command as the refusals see it: its fields, and the envelope's context as meta. */
export type RefusalInput = Message & Record<string, any> & { meta?: CommandContext };
export type Refusal = (state: MachineState, event: RefusalInput) => Rejection | undefined;

export interface DomainAggregate {
  aggregateType: string;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  decider: ReturnType<typeof machineDecider<Message, Message>>;
}

/** Refusals of a live aggregate only: in absent or deleted the generic NOT_FOUND / ALREADY_EXISTS stand, creation aside. */
export const whenLive = (creation: string, refusal: (context: any, event: RefusalInput) => Rejection | undefined): Refusal => (state, event) => {
  const name = String(state.value);
  if (name === 'deleted') return undefined;
  if (name === 'absent') return event.type === creation ? refusal(state.context, event) : undefined;
  return event.type === creation ? undefined : refusal(state.context, event);
};

/**
 * An aggregate type. With `creation`, it starts absent and ends deleted (commands there are
 * NOT_FOUND, a second creation ALREADY_EXISTS); without, it exists from the start in `absentState`
 * (a project's quota, a host's record).
 */
export function defineAggregate(
  aggregateType: string,
  machine: AnyStateMachine,
  commandTypes: readonly string[],
  eventTypes: readonly string[],
  refusal: Refusal,
  options: { creation?: string; absentState?: string } = {},
): DomainAggregate {
  const decider = machineDecider<Message, Message>({
    aggregateType,
    machine,
    commandTypes,
    absentState: options.absentState ?? 'absent',
    goneStates: options.creation ? ['deleted'] : [],
    creationCommands: options.creation ? [options.creation] : [],
    explain: (state, command, context) => refusal(state, { ...(command as RefusalInput), meta: context }),
  });
  return { aggregateType, commandTypes, eventTypes, decider };
}
