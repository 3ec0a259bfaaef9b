import { describe, expect, it } from 'vitest';
import type { CommandEnvelope, EventEnvelope, Reply } from './envelope.js';
import { decodeCommand, decodeEvent, decodeReply, encodeCommand, encodeEvent, encodeReply, InvalidEnvelopeError } from './envelope.codec.js';

const command: CommandEnvelope = {
  commandId: 'cmd-1',
  aggregateType: 'instance',
  aggregateId: 'i-1',
  expectedVersion: 3,
  type: 'RebootInstance',
  payload: Buffer.from([1, 2, 3]),
  actor: { userId: 'u', projectId: 'p', roles: ['member', 'reader'] },
  causationId: 'c',
  correlationId: 'corr',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  tracestate: 'k=v',
  issuedAtMs: 1_790_000_000_123,
  replyTo: 'client-1',
};
const event: EventEnvelope = {
  eventId: 'cmd-1/0',
  aggregateType: 'instance',
  aggregateId: 'i-1',
  version: 4,
  type: 'InstanceRebooted',
  payload: Buffer.from([9]),
  actor: command.actor,
  causationId: 'cmd-1',
  correlationId: 'corr',
  traceparent: command.traceparent,
  tracestate: '',
  occurredAtMs: command.issuedAtMs,
};

describe('envelope codec', () => {
  it('round-trips commands, events and both kinds of reply', () => {
    expect(decodeCommand(encodeCommand(command))).toEqual(command);
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
    const accepted: Reply = {
      kind: 'accepted',
      commandId: 'cmd-1',
      correlationId: 'corr',
      aggregateId: 'i-1',
      version: 4,
      events: [event],
      position: { topic: 'strata.events.compute', partition: 3, offset: 2 ** 40 },
    };
    expect(decodeReply(encodeReply(accepted))).toEqual(accepted);
    const none: Reply = { ...accepted, events: [], position: undefined };
    expect(decodeReply(encodeReply(none))).toEqual(none);
    const rejected: Reply = {
      kind: 'rejected',
      commandId: 'cmd-2',
      correlationId: 'corr',
      aggregateId: 'i-1',
      rejection: { code: 'FAILED_PRECONDITION', message: 'instance i-1 is SHUTOFF', state: 'SHUTOFF' },
    };
    expect(decodeReply(encodeReply(rejected))).toEqual(rejected);
  });

  it('rejects bytes that are not an envelope, naming "envelope"', () => {
    const e = (() => {
      try {
        decodeCommand(new Uint8Array([0xff, 0xff, 0xff]));
      } catch (err) {
        return err;
      }
    })();
    expect(e).toBeInstanceOf(InvalidEnvelopeError);
    expect((e as InvalidEnvelopeError).field).toBe('envelope');
  });

  it.each([
    ['commandId', 'command_id'],
    ['aggregateType', 'aggregate_type'],
    ['aggregateId', 'aggregate_id'],
    ['type', 'type'],
    ['replyTo', 'reply_to'],
  ] as const)('names the missing required field %s as %s', (key, field) => {
    const bytes = encodeCommand({ ...command, [key]: '' });
    expect(() => decodeCommand(bytes)).toThrow(expect.objectContaining({ field, message: `command envelope: ${field} is required` }));
  });

  it('requires issued_at and a non-negative expected_version', () => {
    expect(() => decodeCommand(encodeCommand({ ...command, expectedVersion: -1 }))).toThrow(
      expect.objectContaining({ field: 'expected_version' }),
    );
  });
});
