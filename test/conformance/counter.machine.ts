// A tiny aggregate that exists to exercise the runtime (contract, crash, fencing and trace
// tests, the log benchmark); it is not a product domain. Commands emit, events move.
import { assign, emit, setup } from 'xstate';
import type { CommandContext } from '../../domains/kernel/decider.js';

export type CounterCommand =
  | { type: 'OpenCounter'; name: string }
  | { type: 'IncrementCounter'; amount: number }
  | { type: 'CloseCounter'; reason: string };

export type CounterEvent =
  | { type: 'CounterOpened'; name: string }
  | { type: 'CounterIncremented'; amount: number; total: number }
  | { type: 'CounterClosed'; reason: string };

export interface CounterContext {
  name: string;
  total: number;
}

type MachineEvent = (CounterCommand & { meta: CommandContext }) | CounterEvent;

export const counterCommandTypes = ['OpenCounter', 'IncrementCounter', 'CloseCounter'] as const;

export const counterMachine = setup({
  types: { context: {} as CounterContext, events: {} as MachineEvent, emitted: {} as CounterEvent },
}).createMachine({
  id: 'counter',
  initial: 'absent',
  context: { name: '', total: 0 },
  states: {
    absent: {
      on: {
        OpenCounter: {
          actions: emit(({ event }) => ({ type: 'CounterOpened' as const, name: (event as { name: string }).name })),
        },
        CounterOpened: { target: 'open', actions: assign({ name: ({ event }) => event.name }) },
      },
    },
    open: {
      on: {
        IncrementCounter: {
          actions: emit(({ context, event }) => {
            const amount = (event as { amount: number }).amount;
            return { type: 'CounterIncremented' as const, amount, total: context.total + amount };
          }),
        },
        CounterIncremented: { actions: assign({ total: ({ event }) => event.total }) },
        CloseCounter: {
          actions: emit(({ event }) => ({ type: 'CounterClosed' as const, reason: (event as { reason: string }).reason })),
        },
        CounterClosed: { target: 'closed' },
      },
    },
    closed: {},
  },
});
