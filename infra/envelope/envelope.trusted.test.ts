// decodeTrustedEvent reads every envelope the runtime writes exactly as decodeEvent does: the
// events of bench:replay's corpus (every domain's real deciders) and envelopes at the edges
// (no actor, no roles, empty strings and payload, large versions and times, sub-second times,
// multi-byte text, fields it does not know); truncated bytes are an InvalidEnvelopeError.
import { describe, expect, it } from 'vitest';
import { writeCells } from '../../bench/replay.corpus.js';
import { decodeEvent, encodeEvent, InvalidEnvelopeError } from './envelope.codec.js';
import type { EventEnvelope } from './envelope.js';
import { decodeTrustedEvent } from './envelope.trusted.js';

const base: EventEnvelope = {
  eventId: 'cmd-1/0',
  aggregateType: 'instance',
  aggregateId: 'i-1',
  version: 1,
  type: 'InstanceCreated',
  payload: new Uint8Array([1, 2, 3]),
  actor: { userId: 'u', projectId: 'p', roles: ['member', 'reader'] },
  causationId: 'cmd-1',
  correlationId: 'req-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'k=v',
  occurredAtMs: 1_764_000_000_123,
};

describe('decodeTrustedEvent', () => {
  it('reads the corpus as decodeEvent does', async () => {
    const values: Uint8Array[] = [];
    await writeCells(1, 4, (d) => `t.${d}`, async (records) => void values.push(...records.map((r) => r.value)));
    expect(values.length).toBeGreaterThan(1000);
    for (const v of values) expect(decodeTrustedEvent(v)).toEqual(decodeEvent(v));
  });

  it.each<[string, Partial<EventEnvelope>]>([
    ['everything set', {}],
    ['no actor fields', { actor: { userId: '', projectId: '', roles: [] } }],
    ['no roles', { actor: { userId: 'u', projectId: '', roles: [] } }],
    ['empty strings and payload', { eventId: '', aggregateType: '', tracestate: '', traceparent: '', payload: new Uint8Array() }],
    ['large version and time', { version: 2 ** 53 - 1, occurredAtMs: 253_402_300_799_999 }],
    ['time zero', { occurredAtMs: 0 }],
    ['multi-byte text', { aggregateId: 'ünïcødé/🙂', actor: { userId: 'ü', projectId: 'p', roles: ['rôle'] } }],
  ])('%s', (_name, change) => {
    const bytes = encodeEvent({ ...base, ...change });
    expect(decodeTrustedEvent(bytes)).toEqual(decodeEvent(bytes));
    expect(decodeTrustedEvent(Buffer.from(bytes))).toEqual(decodeEvent(Buffer.from(bytes)));
  });

  it('skips fields it does not know', () => {
    const known = encodeEvent(base);
    // field 99, varint 7; field 100, length-delimited "xy"; field 101, fixed32.
    const unknown = Buffer.from([0x98, 0x06, 0x07, 0xa2, 0x06, 0x02, 0x78, 0x79, 0xad, 0x06, 1, 2, 3, 4]);
    const bytes = Buffer.concat([unknown, known]);
    expect(decodeTrustedEvent(bytes)).toEqual(decodeEvent(bytes));
  });

  it('throws InvalidEnvelopeError on truncated bytes', () => {
    const bytes = encodeEvent(base);
    expect(() => decodeTrustedEvent(bytes.subarray(0, bytes.length - 5))).toThrow(InvalidEnvelopeError);
  });
});
