// Which command is legal in which status, stated once per lifecycle (volume, snapshot, backup) as
// a table: the machine's live states are built from it (a command is a transition of exactly the
// states the table allows it in, a forced one's too), its refusal names the status and the
// allowed ones, and the API's "allowed actions" read it. Cinder checks the same with
// conditional_update(expected statuses) and says InvalidVolume naming the status.
import type { CommandContext, Message } from '../kernel/decider.js';
import { failedPrecondition, type Rejection } from '../kernel/rejection.js';

export type Ev = Message & Record<string, any> & { meta?: CommandContext };

export interface StatusRules<S extends string> {
  /** The live statuses, in Cinder's order. */
  statuses: readonly S[];
  /** command -> the statuses it runs in. */
  allowed: Readonly<Record<string, readonly S[]>>;
  /** command -> further statuses it runs in when the command says force (an admin's). */
  forced?: Readonly<Record<string, readonly S[]>>;
}

const list = <S extends string>(rules: StatusRules<S>, statuses: readonly S[]) =>
  statuses.length === rules.statuses.length ? 'any status' : statuses.join(', ');

/** The refusal of a command in a status the table does not allow it in (undefined: it is allowed there). */
export function statusRefusal<S extends string>(rules: StatusRules<S>, noun: string, status: S, event: Ev): Rejection | undefined {
  const allowed = rules.allowed[event.type];
  if (!allowed || allowed.includes(status)) return undefined;
  const forced = rules.forced?.[event.type];
  if (forced && event.force === true && forced.includes(status)) return undefined;
  const id = event.meta?.aggregateId ?? '';
  const withForce = forced ? `; with force: ${list(rules, forced)}` : '';
  return failedPrecondition(status, `${event.type} is not allowed: ${noun} ${id} is ${status} (allowed: ${list(rules, allowed)}${withForce})`);
}

/** The commands the table allows in a status (with force: the forced ones too), in the table's order. */
export function commandsAllowed<S extends string>(rules: StatusRules<S>, status: S, options: { force?: boolean } = {}): string[] {
  return Object.keys(rules.allowed).filter(
    (c) => rules.allowed[c].includes(status) || (options.force === true && (rules.forced?.[c] ?? []).includes(status)),
  );
}

/**
 * The machine's live states: each status takes the event transitions (`events`, in every live
 * state) and the command transitions the table allows there (with force or not).
 */
export function liveStates<S extends string>(rules: StatusRules<S>, commands: Record<string, unknown>, events: Record<string, unknown>): Record<S, unknown> {
  for (const c of Object.keys(rules.allowed)) if (!(c in commands)) throw new Error(`no transition for ${c}`);
  return Object.fromEntries(
    rules.statuses.map((s) => [
      s,
      {
        on: {
          ...events,
          ...Object.fromEntries(Object.keys(commands).filter((c) => rules.allowed[c]?.includes(s) || rules.forced?.[c]?.includes(s)).map((c) => [c, commands[c]])),
        },
      },
    ]),
  ) as Record<S, unknown>;
}

/** A status-changed event's transitions: to the state named by the event's status, recording it. */
export function statusTransitions<S extends string>(statuses: readonly S[], assign: (status: S) => unknown) {
  return statuses.map((status) => ({ guard: ({ event }: { event: Ev }) => event.status === status, target: status, actions: assign(status) }));
}
