// One rule per ObjectService RPC. Object storage follows Swift's keystoneauth rather than
// per-RPC roles: any authenticated caller may ask, and the service decides on the account and
// container (a project's members own its account, readers read it, container ACLs grant others,
// cloud admins reach every account). The ring is the admins'.
import { admin, authenticated, Policy, type Rule } from './policy.js';

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const objectRule = (rpc: string) => `object:${snake(rpc)}`;

const rules: Record<string, Rule> = Object.fromEntries(
  (
    [
      ['GetAccount', authenticated],
      ['ListContainers', authenticated],
      ['CreateContainer', authenticated],
      ['GetContainer', authenticated],
      ['UpdateContainer', authenticated],
      ['DeleteContainer', authenticated],
      ['ListObjects', authenticated],
      ['PutObject', authenticated],
      ['PutManifest', authenticated],
      ['GetObject', authenticated],
      ['HeadObject', authenticated],
      ['UpdateObjectMetadata', authenticated],
      ['DeleteObject', authenticated],
      ['GetRing', admin],
      ['AddRingDevice', admin],
      ['RemoveRingDevice', admin],
      ['SetRingDeviceWeight', admin],
      ['RebalanceRing', admin],
    ] as [string, Rule][]
  ).map(([rpc, rule]) => [objectRule(rpc), rule]),
);

export const objectPolicy = new Policy(rules);
export const objectRuleNames = Object.keys(rules);
