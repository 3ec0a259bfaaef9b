// The deciders of the block domain (Cinder): volume types (a plain resource, like compute's
// flavors), volumes (with their attachments and snapshot list), snapshots, backups, project
// quotas and the storage hosts. Each lifecycle machine states its own refusals (volumeRefusal,
// snapshotRefusal, ...; see domains/kernel/aggregate.ts).
import { defineAggregate, whenLive, type DomainAggregate } from '../kernel/aggregate.js';
import { commandTypesOf, eventTypesOf, resourceMachine, type ResourceMachineSpec } from '../kernel/resource.machine.js';
import { BACKUP_COMMANDS, BACKUP_EVENTS, backupMachine, backupRefusal, type BackupContext } from './backup.machine.js';
import { BLOCK_HOST_COMMANDS, BLOCK_HOST_EVENTS, blockHostMachine, blockHostRefusal, type BlockHostContext } from './block-host.machine.js';
import { BLOCK_QUOTA_COMMANDS, BLOCK_QUOTA_EVENTS, blockQuotaMachine, blockQuotaRefusal, type BlockQuotaContext } from './block-quota.machine.js';
import { SNAPSHOT_COMMANDS, SNAPSHOT_EVENTS, snapshotMachine, snapshotRefusal, type SnapshotContext } from './snapshot.machine.js';
import { VOLUME_COMMANDS, VOLUME_EVENTS, volumeMachine, volumeRefusal, type VolumeContext } from './volume.machine.js';

export type BlockAggregate = DomainAggregate;

/** Volume types: Cinder's admin resource; its field rules are the codec's (as compute's flavors). */
const volumeTypeSpec: ResourceMachineSpec = { noun: 'VolumeType', field: 'volumeType', toggles: false };

export const blockAggregates: BlockAggregate[] = [
  defineAggregate('volume_type', resourceMachine(volumeTypeSpec), commandTypesOf(volumeTypeSpec), eventTypesOf(volumeTypeSpec), () => undefined, { creation: 'CreateVolumeType' }),
  defineAggregate('volume', volumeMachine, VOLUME_COMMANDS, VOLUME_EVENTS, whenLive('CreateVolume', (c: VolumeContext, e) => volumeRefusal(c, e)), { creation: 'CreateVolume' }),
  defineAggregate('snapshot', snapshotMachine, SNAPSHOT_COMMANDS, SNAPSHOT_EVENTS, whenLive('CreateSnapshot', (c: SnapshotContext, e) => snapshotRefusal(c, e)), { creation: 'CreateSnapshot' }),
  defineAggregate('backup', backupMachine, BACKUP_COMMANDS, BACKUP_EVENTS, whenLive('CreateBackup', (c: BackupContext, e) => backupRefusal(c, e)), { creation: 'CreateBackup' }),
  // A project's quota and a storage host's record exist from the start: no absent state.
  defineAggregate('block_quota', blockQuotaMachine, BLOCK_QUOTA_COMMANDS, BLOCK_QUOTA_EVENTS, (state, e) => blockQuotaRefusal(state.context as unknown as BlockQuotaContext, e), { absentState: 'tracking' }),
  defineAggregate('block_host', blockHostMachine, BLOCK_HOST_COMMANDS, BLOCK_HOST_EVENTS, (state, e) => blockHostRefusal(state.context as unknown as BlockHostContext, e), { absentState: 'tracking' }),
];

export const blockAggregate = (aggregateType: string): BlockAggregate => {
  const a = blockAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no block aggregate ${aggregateType}`);
  return a;
};
