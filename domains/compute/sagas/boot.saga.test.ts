// The boot saga's steps as a table: each situation a crash could leave behind has one next step.
import { describe, expect, it } from 'vitest';
import { nextBootStep, type BootView } from './boot.saga.js';

const o = { maxAttempts: 3, bootTimeoutMs: 60_000 };
const view = (over: Partial<BootView> = {}): BootView => ({
  instanceId: 'i1', vm: 'building', task: 'scheduling', action: 'create', host: '', failedHosts: [], claimHost: '', quotaHeld: true, lastProgressMs: 0, ...over,
});

describe('the boot saga', () => {
  it.each([
    ['a new boot is scheduled', view(), { kind: 'schedule', ignoreHosts: [] }],
    ['a rescheduled boot skips the hosts it failed on', view({ failedHosts: ['h1'] }), { kind: 'schedule', ignoreHosts: ['h1'] }],
    ['a claim without assignment is assigned', view({ claimHost: 'h2' }), { kind: 'assign', host: 'h2' }],
    ['the claim of a failed attempt is released first', view({ claimHost: 'h1', failedHosts: ['h1'] }), { kind: 'release', claimHost: 'h1', quota: false }],
    ['max_attempts failures end in ERROR with the hosts named', view({ failedHosts: ['h1', 'h2', 'h3'] }), {
      kind: 'fail',
      message: 'Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance i1 (failed on h1, h2, h3)',
    }],
    ['a spawning boot within its time waits', view({ task: 'spawning', host: 'h1', claimHost: 'h1', lastProgressMs: 10_000 }), { kind: 'wait' }],
    ['a boot whose host went quiet is rescheduled', view({ task: 'spawning', host: 'h1', claimHost: 'h1', lastProgressMs: 0 }), {
      kind: 'reschedule',
      reason: 'host h1 did not finish the boot within 60 s',
    }],
    ['an ERROR server gives back its claim but keeps its quota', view({ vm: 'error', task: null, action: null, claimHost: 'h1' }), { kind: 'release', claimHost: 'h1', quota: false }],
    ['a deleted server gives back claim and quota', view({ vm: 'deleted', task: null, action: null, claimHost: 'h1' }), { kind: 'release', claimHost: 'h1', quota: true }],
    ['a deleted server holding nothing needs nothing', view({ vm: 'deleted', task: null, action: null, quotaHeld: false }), { kind: 'wait' }],
    ['an ACTIVE server needs nothing', view({ vm: 'active', task: null, action: null, host: 'h1', claimHost: 'h1' }), { kind: 'wait' }],
  ] as const)('%s', (_name, v, step) => {
    expect(nextBootStep(v as BootView, 65_000, o)).toEqual(step);
  });
});
