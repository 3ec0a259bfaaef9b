// The counter machine through the machine-decider adapter, read as specifications, and the
// table of which commands are legal in which state.
import { describe, expect, it } from 'vitest';
import { given } from '../../domains/kernel/specification.js';
import { counterDecider } from './counter.decider.js';

const opened = { type: 'CounterOpened', name: 'c' } as const;

describe('counter decider', () => {
  it('opens an absent counter', () => {
    expect(given(counterDecider, []).when({ type: 'OpenCounter', name: 'c' })).toEqual({ events: [opened] });
  });

  it('increments with the running total in the event', () => {
    const d = given(counterDecider, [opened, { type: 'CounterIncremented', amount: 2, total: 2 }]).when({
      type: 'IncrementCounter',
      amount: 3,
    });
    expect(d).toEqual({ events: [{ type: 'CounterIncremented', amount: 3, total: 5 }] });
  });

  it('refuses commands to a counter that does not exist with NOT_FOUND', () => {
    const d = given(counterDecider, []).when({ type: 'IncrementCounter', amount: 1 });
    expect(d).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });

  it('refuses to open twice and to increment a closed counter, naming the state', () => {
    expect(given(counterDecider, [opened]).when({ type: 'OpenCounter', name: 'x' })).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'open' },
    });
    const closed = given(counterDecider, [opened, { type: 'CounterClosed', reason: 'r' }]);
    const d = closed.when({ type: 'IncrementCounter', amount: 1 });
    expect(d).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'closed' } });
    expect('rejection' in d && d.rejection.message).toContain('IncrementCounter is not allowed while counter agg-1 is closed');
  });

  it.each([
    ['absent', [], ['OpenCounter']],
    ['open', [opened], ['IncrementCounter', 'CloseCounter']],
    ['closed', [opened, { type: 'CounterClosed', reason: 'r' }], []],
  ] as const)('allows exactly these commands while %s', (_, events, allowed) => {
    const { state } = given(counterDecider, [...events]);
    expect(counterDecider.allowedCommands(state).sort()).toEqual([...allowed].sort());
  });

  it('is deterministic: the same history and command decide the same events', () => {
    const history = [opened, { type: 'CounterIncremented', amount: 1, total: 1 } as const];
    const a = given(counterDecider, history).when({ type: 'IncrementCounter', amount: 4 });
    const b = given(counterDecider, history).when({ type: 'IncrementCounter', amount: 4 });
    expect(a).toEqual(b);
  });
});
