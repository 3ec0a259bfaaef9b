// History is forever (architecture invariant 8): a recorded event log, as bytes, still decodes,
// folds to the same state, and re-encodes to the same bytes. A change to envelope.proto or the
// counter protos that breaks this needs an upcaster, not a new fixture.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { fold } from '../domains/kernel/decider.js';
import { decodeEvent, encodeEvent } from '../infra/envelope/envelope.codec.js';
import { counterCodec, counterDecider } from './conformance/counter.decider.js';
import type { CounterEvent } from './conformance/counter.machine.js';

const lines = readFileSync(new URL('./fixtures/counter-events.v1.jsonl', import.meta.url), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { offset: number; envelope: string });

describe('the golden counter event log (v1)', () => {
  const envelopes = lines.map((l) => decodeEvent(Buffer.from(l.envelope, 'base64')));

  it('decodes with every field as recorded', () => {
    expect(envelopes.map((e) => [e.type, e.version, e.eventId])).toEqual([
      ['CounterOpened', 1, 'cmd-0/0'],
      ['CounterIncremented', 2, 'cmd-1/0'],
      ['CounterIncremented', 3, 'cmd-2/0'],
      ['CounterClosed', 4, 'cmd-3/0'],
    ]);
    expect(envelopes[3].occurredAtMs).toBe(Date.UTC(2026, 10, 22, 12, 3));
    expect(envelopes[0].actor).toEqual({ userId: 'user-1', projectId: 'project-1', roles: ['member'] });
  });

  it('folds to the recorded final state', () => {
    const events = envelopes.map((e) => counterCodec.decodeEvent(e.type, e.payload) as CounterEvent);
    const state = fold(counterDecider, events);
    expect(state.value).toBe('closed');
    expect(state.context).toEqual({ name: 'golden', total: 42 });
  });

  it('re-encodes to the same bytes', () => {
    envelopes.forEach((e, i) => expect(Buffer.from(encodeEvent(e)).toString('base64')).toBe(lines[i].envelope));
  });
});
