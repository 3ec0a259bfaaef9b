// The deciders of the block domain (Cinder): volume types (a plain resource, like compute's
// flavors), volumes (with their attachments and snapshot list), snapshots, backups, project
// quotas and the storage hosts. Each lifecycle machine states its own refusals (volumeRefusal,
// snapshotRefusal, ...): the guard refuses when the refusal is defined, and explain returns that
// refusal, so the rule and its message are one function.
import type { AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';
import { machineDecider, type MachineState } from '../kernel/machine-decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { commandTypesOf, eventTypesOf, resourceMachine, type ResourceMachineSpec } from '../kernel/resource.machine.js';
import { BACKUP_COMMANDS, BACKUP_EVENTS, backupMachine, backupRefusal, type BackupContext } from './backup.machine.js';
import { BLOCK_HOST_COMMANDS, BLOCK_HOST_EVENTS, blockHostMachine, blockHostRefusal, type BlockHostContext } from './block-host.machine.js';
import { BLOCK_QUOTA_COMMANDS, BLOCK_QUOTA_EVENTS, blockQuotaMachine, blockQuotaRefusal, type BlockQuotaContext } from './block-quota.machine.js';
import { SNAPSHOT_COMMANDS, SNAPSHOT_EVENTS, snapshotMachine, snapshotRefusal, type SnapshotContext } from './snapshot.machine.js';
import type { Ev } from './status-rules.js';
import { VOLUME_COMMANDS, VOLUME_EVENTS, volumeMachine, volumeRefusal, type VolumeContext } from './volume.machine.js';

export interface BlockAggregate {
  aggregateType: string;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  decider: ReturnType<typeof machineDecider<Message, Message>>;
}

type Refusal = (state: MachineState, event: Ev) => Rejection | undefined;

/** Refusals of a live aggregate only: in absent or deleted the generic NOT_FOUND / ALREADY_EXISTS stand, creation aside. */
const whenLive = (creation: string, refusal: (context: any, event: Ev) => Rejection | undefined): Refusal => (state, event) => {
  const name = String(state.value);
  if (name === 'deleted') return undefined;
  if (name === 'absent') return event.type === creation ? refusal(state.context, event) : undefined;
  return event.type === creation ? undefined : refusal(state.context, event);
};

function define(aggregateType: string, machine: AnyStateMachine, commandTypes: readonly string[], eventTypes: readonly string[], refusal: Refusal, options: { creation?: string; absentState?: string } = {}): BlockAggregate {
  const decider = machineDecider<Message, Message>({
    aggregateType,
    machine,
    commandTypes,
    absentState: options.absentState ?? 'absent',
    goneStates: options.creation ? ['deleted'] : [],
    creationCommands: options.creation ? [options.creation] : [],
    explain: (state, command, context) => refusal(state, { ...(command as Ev), meta: context }),
  });
  return { aggregateType, commandTypes, eventTypes, decider };
}

/** Volume types: Cinder's admin resource; its field rules are the codec's (as compute's flavors). */
const volumeTypeSpec: ResourceMachineSpec = { noun: 'VolumeType', field: 'volumeType', toggles: false };

export const blockAggregates: BlockAggregate[] = [
  define('volume_type', resourceMachine(volumeTypeSpec), commandTypesOf(volumeTypeSpec), eventTypesOf(volumeTypeSpec), () => undefined, { creation: 'CreateVolumeType' }),
  define('volume', volumeMachine, VOLUME_COMMANDS, VOLUME_EVENTS, whenLive('CreateVolume', (c: VolumeContext, e) => volumeRefusal(c, e)), { creation: 'CreateVolume' }),
  define('snapshot', snapshotMachine, SNAPSHOT_COMMANDS, SNAPSHOT_EVENTS, whenLive('CreateSnapshot', (c: SnapshotContext, e) => snapshotRefusal(c, e)), { creation: 'CreateSnapshot' }),
  define('backup', backupMachine, BACKUP_COMMANDS, BACKUP_EVENTS, whenLive('CreateBackup', (c: BackupContext, e) => backupRefusal(c, e)), { creation: 'CreateBackup' }),
  // A project's quota and a storage host's record exist from the start: no absent state.
  define('block_quota', blockQuotaMachine, BLOCK_QUOTA_COMMANDS, BLOCK_QUOTA_EVENTS, (state, e) => blockQuotaRefusal(state.context as unknown as BlockQuotaContext, e), { absentState: 'tracking' }),
  define('block_host', blockHostMachine, BLOCK_HOST_COMMANDS, BLOCK_HOST_EVENTS, (state, e) => blockHostRefusal(state.context as unknown as BlockHostContext, e), { absentState: 'tracking' }),
];

export const blockAggregate = (aggregateType: string): BlockAggregate => {
  const a = blockAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no block aggregate ${aggregateType}`);
  return a;
};
