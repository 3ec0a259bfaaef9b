// Given/when/then for deciders: domain tests read as specifications.
import type { CommandContext, Decider, Decision, Message } from './decider.js';
import { fold } from './decider.js';

export const testContext = (overrides: Partial<CommandContext> = {}): CommandContext => ({
  commandId: 'cmd-1',
  aggregateId: 'agg-1',
  version: 0,
  actor: { userId: 'user-1', projectId: 'project-1', roles: ['member'] },
  issuedAtMs: Date.UTC(2026, 0, 1),
  ...overrides,
});

export function given<S, C extends Message, E extends Message>(decider: Decider<S, C, E>, events: E[]) {
  const state = fold(decider, events);
  return {
    when(command: C, context: Partial<CommandContext> = {}): Decision<E> {
      return decider.decide(state, command, testContext({ version: events.length, ...context }));
    },
    state,
  };
}
