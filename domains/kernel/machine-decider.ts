// Turns an xstate v5 machine into a decider. The machine is the single statement of which
// command is legal in which state: commands are guarded transitions that only emit events;
// events carry the state change. decide() runs the pure transition() and keeps the emitted
// events; evolve() applies an event, so the state remains the fold of the events.
import { getNextTransitions, transition, type AnyStateMachine, type SnapshotFrom } from 'xstate';
import type { CommandContext, Decider, Decision, Message } from './decider.js';
import { failedPrecondition, type Rejection } from './rejection.js';

export interface MachineState {
  /** The machine's state value, e.g. "open" or {"active": "rebooting"}. */
  value: unknown;
  context: Record<string, unknown>;
}

export interface MachineDeciderOptions {
  aggregateType: string;
  machine: AnyStateMachine;
  /** Names of the command events; every other event of the machine is a domain event. */
  commandTypes: readonly string[];
  /** The state of an aggregate that does not exist yet: commands refused there are NOT_FOUND. */
  absentState: string;
  /** Further states in which the aggregate counts as absent (deleted, revoked): refusals there are NOT_FOUND too. */
  goneStates?: readonly string[];
  /** Commands that create the aggregate: refused because it exists, they are ALREADY_EXISTS. */
  creationCommands?: readonly string[];
  /** A precise rejection for a refused command (which rule, and why); undefined keeps the generic one. */
  explain?: (state: MachineState, command: Message, context: CommandContext) => Rejection | undefined;
}

const stateName = (value: unknown): string =>
  typeof value === 'string'
    ? value
    : Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `${k}.${stateName(v)}`)
        .join(',');

export function machineDecider<C extends Message, E extends Message>(
  options: MachineDeciderOptions,
): Decider<MachineState, C, E> & {
  allowedCommands(state: MachineState): string[];
} {
  const { machine, aggregateType } = options;
  const commandTypes = new Set(options.commandTypes);
  const creationCommands = new Set(options.creationCommands ?? []);
  const absent = new Set([options.absentState, ...(options.goneStates ?? [])]);
  // Rehydrating a snapshot costs more than folding an event: cache the last few by identity.
  const snapshots = new WeakMap<MachineState, SnapshotFrom<AnyStateMachine>>();
  const snapshotOf = (state: MachineState) => {
    let s = snapshots.get(state);
    if (!s) {
      s = machine.resolveState({ value: state.value as never, context: state.context });
      snapshots.set(state, s);
    }
    return s;
  };
  const stateOf = (snapshot: SnapshotFrom<AnyStateMachine>): MachineState => {
    const s = { value: snapshot.value, context: snapshot.context as Record<string, unknown> };
    snapshots.set(s, snapshot);
    return s;
  };
  const initialState: MachineState = {
    value: options.absentState,
    context: (machine.config.context ?? {}) as Record<string, unknown>,
  };

  return {
    aggregateType,
    initialState,
    describe: (state) => stateName(state.value),
    allowedCommands: (state) =>
      [...new Set(getNextTransitions(snapshotOf(state)).map((t) => t.eventType))].filter((t) => commandTypes.has(t)),

    decide(state, command, context: CommandContext): Decision<E> {
      const snapshot = snapshotOf(state);
      const input = { ...command, meta: context };
      const name = stateName(state.value);
      if (!snapshot.can(input)) {
        const known = getNextTransitions(snapshot).some((t) => t.eventType === command.type);
        const explained = options.explain?.(state, command, context);
        if (explained) return { rejection: explained };
        if (!known && creationCommands.has(command.type) && name !== options.absentState) {
          return { rejection: { code: 'ALREADY_EXISTS', message: `${aggregateType} ${context.aggregateId} already exists` } };
        }
        if (absent.has(name) && !known) {
          return {
            rejection: { code: 'NOT_FOUND', message: `${aggregateType} ${context.aggregateId} does not exist` },
          };
        }
        return {
          rejection: failedPrecondition(
            name,
            known
              ? `${command.type} is not allowed: ${aggregateType} ${context.aggregateId} is ${name} and a rule refused it`
              : `${command.type} is not allowed while ${aggregateType} ${context.aggregateId} is ${name}`,
          ),
        };
      }
      const [, actions] = transition(machine, snapshot, input);
      const events = (actions as { type: string; params?: unknown }[])
        .filter((a) => a.type === 'xstate.emit')
        .map((a) => (a.params as { event: E }).event);
      return { events };
    },

    evolve(state, event) {
      const [next] = transition(machine, snapshotOf(state), event);
      return stateOf(next);
    },
  };
}
