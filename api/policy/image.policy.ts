// One rule per ImageService RPC, after Glance's default policies: project members create, upload,
// change, delete and share their project's images; readers read and download what they may see;
// deactivating and reactivating are the admins' (Glance's deactivate/reactivate), and so is making
// an image public (publicize_image, checked by the service on the visibility asked for). A member
// project answers its own membership (UpdateImageMember's target is the member project). Tenancy
// and visibility are checked before these rules (an image the caller may not see is NOT_FOUND).
import { projectMember } from './compute.policy.js';
import { admin, any, projectReader, Policy, type Rule } from './policy.js';

const member = any(admin, projectMember);
const reader = any(admin, projectReader);

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const imageRule = (rpc: string) => `image:${snake(rpc)}`;
/** Glance's publicize_image: visibility=public on create or update. */
export const PUBLICIZE_RULE = 'image:publicize_image';

const rules: Record<string, Rule> = Object.fromEntries(
  (
    [
      ['CreateImage', member],
      ['GetImage', reader],
      ['ListImages', reader],
      ['UpdateImage', member],
      ['DeleteImage', member],
      ['UploadImage', member],
      ['DownloadImage', reader],
      ['DeactivateImage', admin],
      ['ReactivateImage', admin],
      ['AddImageMember', member],
      ['UpdateImageMember', member],
      ['RemoveImageMember', member],
      ['ListImageMembers', reader],
    ] as [string, Rule][]
  ).map(([rpc, rule]) => [imageRule(rpc), rule]),
);

export const imagePolicy = new Policy({ ...rules, [PUBLICIZE_RULE]: admin });
export const imageRuleNames = Object.keys(rules);
