// The network domain as the runtime hosts it: each aggregate's decider with its protobuf codec
// (proto/strata/network/v1/events.proto) and its field rules. Some nested fields are null in the
// deciders where Neutron says null: a subnet's gateway_ip (no gateway), a rule's port range (any),
// a router's external_gateway_info (no gateway); on the wire they are absent (proto3 `optional`
// fields, an unset message), which decode as absent keys, so the decoded messages get them back
// as null here.
import type { AggregateDefinition, DeciderCodec, Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { networkAggregates } from '../../domains/network/network.deciders.js';
import { validateNetworkCommand } from '../../domains/network/network.validation.js';
import { protoCodec } from './proto-codec.js';

export const NETWORK_PROTO_PACKAGE = 'strata.network.v1';

type M = Message & Record<string, any>;

/** Nested nullable fields: the field carrying the message -> its fields held as null when absent. */
const NESTED_NULLABLE: Record<string, readonly string[]> = {
  subnet: ['gatewayIp'],
  rule: ['portRangeMin', 'portRangeMax'],
  router: ['externalGatewayInfo'],
};

function withNulls<T extends M>(message: T): T {
  for (const [field, nullable] of Object.entries(NESTED_NULLABLE)) {
    const nested = message[field] as Record<string, unknown> | undefined;
    if (nested && typeof nested === 'object') for (const f of nullable) nested[f] ??= null;
  }
  return message;
}

function networkCodec(commandTypes: readonly string[], eventTypes: readonly string[]): DeciderCodec<MachineState, Message, Message> {
  const inner = protoCodec({
    protoPackage: NETWORK_PROTO_PACKAGE,
    commandTypes,
    eventTypes,
    // The nulls come back before the rules run, as the deciders will see the command.
    validate: (command) => validateNetworkCommand(withNulls(command as M)),
  });
  return {
    ...inner,
    decodeCommand: (type, payload) => withNulls(inner.decodeCommand(type, payload) as M),
    decodeEvent: (type, payload) => withNulls(inner.decodeEvent(type, payload) as M),
  };
}

export const networkDefinitions: AggregateDefinition[] = networkAggregates.map((a) => ({
  decider: a.decider as AggregateDefinition['decider'],
  codec: networkCodec(a.commandTypes, a.eventTypes) as AggregateDefinition['codec'],
}));

/** Every network event type, for projections. */
export const networkEventTypes = networkAggregates.flatMap((a) => a.eventTypes);

export const networkCodecFor = (aggregateType: string) => {
  const i = networkAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no network aggregate ${aggregateType}`);
  return networkDefinitions[i].codec;
};
