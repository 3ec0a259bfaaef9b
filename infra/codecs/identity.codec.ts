// The identity domain as the runtime hosts it: each aggregate's machine decider with its
// protobuf codec (proto/strata/identity/v1/events.proto) and its field rules.
import type { AggregateDefinition, Message } from '../../domains/kernel/decider.js';
import { identityAggregates } from '../../domains/identity/identity.deciders.js';
import type { RoleAssignment } from '../../domains/identity/identity.types.js';
import {
  validateAssignment,
  validatePasswordHash,
  validateResource,
  validateUpdate,
} from '../../domains/identity/identity.validation.js';
import { protoCodec } from './proto-codec.js';

export const IDENTITY_PROTO_PACKAGE = 'strata.identity.v1';

function validate(aggregateType: string, command: Message & Record<string, unknown>): void {
  const field = aggregateType;
  if (command.type.startsWith('Create') && command[field] !== undefined) validateResource(aggregateType, command[field] as Record<string, unknown>);
  if (command.type.startsWith('Update') && command[field] !== undefined) {
    validateUpdate(aggregateType, command[field] as Record<string, unknown>, command.updateMask as string[]);
  }
  if (command.type === 'CreateUser' || command.type === 'ChangeUserPassword') validatePasswordHash(command.passwordHash);
  if (command.type === 'GrantRole') validateAssignment(command.assignment as RoleAssignment);
}

export const identityDefinitions: AggregateDefinition[] = identityAggregates.map((a) => ({
  decider: a.decider as AggregateDefinition['decider'],
  codec: protoCodec({
    protoPackage: IDENTITY_PROTO_PACKAGE,
    commandTypes: a.commandTypes,
    eventTypes: a.eventTypes,
    validate: (command) => validate(a.aggregateType, command),
  }) as AggregateDefinition['codec'],
}));

/** Every identity event type, for projections. */
export const identityEventTypes = identityAggregates.flatMap((a) => a.eventTypes);

export const identityCodecFor = (aggregateType: string) => {
  const i = identityAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no identity aggregate ${aggregateType}`);
  return identityDefinitions[i].codec;
};
