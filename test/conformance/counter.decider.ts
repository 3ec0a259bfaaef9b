// The counter as the runtime hosts it: machine decider plus protobuf codec.
import { machineDecider, type MachineState } from '../../domains/kernel/machine-decider.js';
import type { AggregateDefinition, DeciderCodec } from '../../domains/kernel/decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { loadProtoType } from '../../infra/envelope/envelope.codec.js';
import { counterCommandTypes, counterMachine, type CounterCommand, type CounterEvent } from './counter.machine.js';

export const COUNTER = 'counter';
export const CONFORMANCE_DOMAIN = 'conformance';

export const counterDecider = machineDecider<CounterCommand, CounterEvent>({
  aggregateType: COUNTER,
  machine: counterMachine,
  commandTypes: counterCommandTypes,
  absentState: 'absent',
});

const types = Object.fromEntries(
  [...counterCommandTypes, 'CounterOpened', 'CounterIncremented', 'CounterClosed', 'CounterState'].map((t) => [
    t,
    loadProtoType(`strata.conformance.v1.${t}`),
  ]),
);

const num = (v: unknown) => (typeof v === 'number' ? v : Number(v ?? 0));

function decodeCommand(type: string, payload: Uint8Array): CounterCommand {
  let m: Record<string, unknown>;
  try {
    m = types[type].decode(payload) as unknown as Record<string, unknown>;
  } catch (e) {
    throw new InvalidArgumentError(type, `not a valid ${type} message: ${(e as Error).message}`);
  }
  switch (type) {
    case 'OpenCounter': {
      const name = String(m.name ?? '');
      if (!name) throw new InvalidArgumentError('name', 'is required');
      if (name.length > 255) throw new InvalidArgumentError('name', 'must be at most 255 characters');
      return { type, name };
    }
    case 'IncrementCounter': {
      const amount = num(m.amount);
      if (!Number.isSafeInteger(amount) || amount <= 0) {
        throw new InvalidArgumentError('amount', `must be a positive integer, got ${amount}`);
      }
      return { type, amount };
    }
    case 'CloseCounter':
      return { type, reason: String(m.reason ?? '') };
  }
  throw new InvalidArgumentError('type', `unknown command type ${type}`);
}

const encode = (type: string, message: Record<string, unknown>) => types[type].encode(types[type].create(message)).finish();

export const counterCodec: DeciderCodec<MachineState, CounterCommand, CounterEvent> = {
  commandTypes: counterCommandTypes,
  decodeCommand,
  encodeCommand: ({ type, ...rest }) => encode(type, rest),
  encodeEvent: ({ type, ...rest }) => encode(type, rest),
  decodeEvent: (type, payload) => {
    const m = types[type].decode(payload) as unknown as Record<string, unknown>;
    switch (type) {
      case 'CounterOpened':
        return { type, name: String(m.name ?? '') };
      case 'CounterIncremented':
        return { type, amount: num(m.amount), total: num(m.total) };
      case 'CounterClosed':
        return { type, reason: String(m.reason ?? '') };
    }
    throw new Error(`unknown counter event ${type}`);
  },
  encodeState: (s) => encode('CounterState', { status: String(s.value), name: s.context.name, total: s.context.total }),
  decodeState: (bytes) => {
    const m = types.CounterState.decode(bytes) as unknown as Record<string, unknown>;
    return { value: String(m.status), context: { name: String(m.name ?? ''), total: num(m.total) } };
  },
};

export const counterAggregate: AggregateDefinition<MachineState, CounterCommand, CounterEvent> = {
  decider: counterDecider,
  codec: counterCodec,
};
