// One rule per VolumeService RPC, after Cinder's default policies: project members create and
// change their project's volumes, snapshots, backups and attachments; project readers read them;
// volume types, quotas (setting them), status resets and the storage hosts are the admins'.
// Tenancy is checked before these rules (another project's volume is NOT_FOUND).
import { projectMember } from './compute.policy.js';
import { admin, any, authenticated, projectReader, Policy, type Rule } from './policy.js';

const member = any(admin, projectMember);
const reader = any(admin, projectReader);

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const blockRule = (rpc: string) => `volume:${snake(rpc)}`;

const rules: Record<string, Rule> = Object.fromEntries(
  (
    [
      ['CreateVolumeType', admin],
      // Public types are everyone's to see (the service hides private ones from non-admins).
      ['GetVolumeType', authenticated],
      ['ListVolumeTypes', authenticated],
      ['UpdateVolumeType', admin],
      ['DeleteVolumeType', admin],
      ['CreateVolume', member],
      ['GetVolume', reader],
      ['ListVolumes', reader],
      ['UpdateVolume', member],
      ['DeleteVolume', member],
      ['ExtendVolume', member],
      ['RetypeVolume', member],
      ['ResetVolumeStatus', admin],
      ['UploadVolumeToImage', member],
      ['AttachVolume', member],
      ['DetachVolume', member],
      ['ListServerVolumes', reader],
      ['CreateSnapshot', member],
      ['GetSnapshot', reader],
      ['ListSnapshots', reader],
      ['UpdateSnapshot', member],
      ['DeleteSnapshot', member],
      ['CreateBackup', member],
      ['GetBackup', reader],
      ['ListBackups', reader],
      ['DeleteBackup', member],
      ['RestoreBackup', member],
      ['GetBlockQuota', reader],
      ['SetBlockQuota', admin],
      ['ListStorageHosts', admin],
    ] as [string, Rule][]
  ).map(([rpc, rule]) => [blockRule(rpc), rule]),
);

export const blockPolicy = new Policy(rules);
export const blockRuleNames = Object.keys(rules);
