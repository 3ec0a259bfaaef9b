// One rule per NetworkService RPC, after Neutron's default policies: project members create and
// change their project's networks, subnets, ports, security groups, routers (and their interfaces)
// and floating IPs; project readers read them.
// Tenancy is checked before these rules (another project's resource is NOT_FOUND; a shared network
// is seen by all), so the rules only see targets the caller may know of. Provider attributes,
// shared and router:external are the admins': the network decider refuses them to others, naming
// the field, so that rule lives once, in the domain.
import { projectMember } from './compute.policy.js';
import { admin, any, projectReader, Policy, type Rule } from './policy.js';

const member = any(admin, projectMember);
const reader = any(admin, projectReader);

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const networkRule = (rpc: string) => `network:${snake(rpc)}`;

/** The resources and their verbs (a rule is changed by deleting it and making another: no update). */
const RESOURCES: [string, string[]][] = [
  ['Network', ['Create', 'Get', 'List', 'Update', 'Delete']],
  ['Subnet', ['Create', 'Get', 'List', 'Update', 'Delete']],
  ['Port', ['Create', 'Get', 'List', 'Update', 'Delete']],
  ['SecurityGroup', ['Create', 'Get', 'List', 'Update', 'Delete']],
  ['SecurityGroupRule', ['Create', 'Get', 'List', 'Delete']],
  ['Router', ['Create', 'Get', 'List', 'Update', 'Delete']],
  ['FloatingIp', ['Create', 'Get', 'List', 'Update', 'Delete']],
];

/** Neutron's router interface actions (a member's, on its project's router) and quotas. */
const ACTIONS: [string, Rule][] = [
  ['AddRouterInterface', member],
  ['RemoveRouterInterface', member],
  // Neutron's quotas API: a project reads its own, an admin reads and sets any.
  ['GetNetworkQuota', reader],
  ['SetNetworkQuota', admin],
];

const rules: Record<string, Rule> = Object.fromEntries([
  ...RESOURCES.flatMap(([r, verbs]) => verbs.map((v) => [networkRule(v === 'List' ? `List${r}s` : `${v}${r}`), v === 'Get' || v === 'List' ? reader : member] as const)),
  ...ACTIONS.map(([rpc, rule]) => [networkRule(rpc), rule] as const),
]);

export const networkPolicy = new Policy(rules);
export const networkRuleNames = Object.keys(rules);
