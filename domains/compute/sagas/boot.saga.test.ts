// The boot saga's steps as a table: each situation a crash could leave behind has one next step.
import { describe, expect, it } from 'vitest';
import { nextBootStep, type BootView } from './boot.saga.js';

const o = { maxAttempts: 3, bootTimeoutMs: 60_000 };
const view = (over: Partial<BootView> = {}): BootView => ({
  instanceId: 'i1', vm: 'building', task: 'scheduling', action: 'create', host: '', failedHosts: [], claimHosts: [], quotaHeld: true, lastProgressMs: 0, ...over,
});

describe('the boot saga', () => {
  it.each([
    ['a new boot is scheduled', view(), { kind: 'schedule', ignoreHosts: [] }],
    ['a rescheduled boot skips the hosts it failed on', view({ failedHosts: ['h1'] }), { kind: 'schedule', ignoreHosts: ['h1'] }],
    ['a claim without assignment is assigned', view({ claimHosts: ['h2'] }), { kind: 'assign', host: 'h2' }],
    ['an assigned boot waits for its host', view({ claimHosts: ['h2'], host: 'h2', lastProgressMs: 10_000 }), { kind: 'wait' }],
    ['an assigned boot whose host never answered is rescheduled', view({ claimHosts: ['h2'], host: 'h2', lastProgressMs: 0 }), {
      kind: 'reschedule',
      reason: 'host h2 did not finish the boot within 60 s',
    }],
    ['the claim of a failed attempt is released first', view({ claimHosts: ['h1'], failedHosts: ['h1'] }), { kind: 'release', claimHosts: ['h1'], quota: false }],
    ['max_attempts failures end in ERROR with the hosts named', view({ failedHosts: ['h1', 'h2', 'h3'] }), {
      kind: 'fail',
      message: 'Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance i1 (failed on h1, h2, h3)',
    }],
    ['a spawning boot within its time waits', view({ task: 'spawning', host: 'h1', claimHosts: ['h1'], lastProgressMs: 10_000 }), { kind: 'wait' }],
    ['a boot whose host went quiet is rescheduled', view({ task: 'spawning', host: 'h1', claimHosts: ['h1'], lastProgressMs: 0 }), {
      kind: 'reschedule',
      reason: 'host h1 did not finish the boot within 60 s',
    }],
    ['an ERROR server gives back its claim but keeps its quota', view({ vm: 'error', task: null, action: null, claimHosts: ['h1'] }), { kind: 'release', claimHosts: ['h1'], quota: false }],
    ['an ERROR server on its host keeps its claim', view({ vm: 'error', task: null, action: null, host: 'h1', claimHosts: ['h1'] }), { kind: 'wait' }],
    ['a deleted server gives back claim and quota', view({ vm: 'deleted', task: null, action: null, claimHosts: ['h1'] }), { kind: 'release', claimHosts: ['h1'], quota: true }],
    ['a deleted server holding nothing needs nothing', view({ vm: 'deleted', task: null, action: null, quotaHeld: false }), { kind: 'wait' }],
    ['an offloaded server gives back its claim', view({ vm: 'shelved_offloaded', task: null, action: null, host: '', claimHosts: ['h1'] }), { kind: 'release', claimHosts: ['h1'], quota: false }],
    ['an ACTIVE server gives back a stray claim from a lost race', view({ vm: 'active', task: null, action: null, host: 'h1', claimHosts: ['h1', 'h2'] }), { kind: 'release', claimHosts: ['h2'], quota: false }],
    ['a deleted server that never got a host gives back its quota', view({ vm: 'deleted', task: null, action: null }), { kind: 'release', claimHosts: [], quota: true }],
    ['an ACTIVE server needs nothing', view({ vm: 'active', task: null, action: null, host: 'h1', claimHosts: ['h1'] }), { kind: 'wait' }],
  ] as const)('%s', (_name, v, step) => {
    expect(nextBootStep(v as BootView, 65_000, o)).toEqual(step);
  });
});
