// One rule per ComputeService RPC, after Nova's default policies: project members act on their
// project's servers and server groups, project readers read them; key pairs are their user's;
// flavors are read by anyone and managed by admins; quotas are read by the project and set by
// admins; hosts and host aggregates are the admins'. The admin-only server actions come from the
// instance machine's table (adminOnly), not from a second list here.
// Tenancy is checked before these rules: another project's server is NOT_FOUND, so the rules
// below only see targets the caller may know of.
import { ADMIN_ONLY_RPCS, SERVER_ACTIONS } from '../compute/server.actions.js';
import { admin, any, authenticated, Policy, projectReader, self, type Rule } from './policy.js';

/** A member (or more) of the target's project, scoped to it. */
export const projectMember: Rule = (c, t) => c.scope.kind === 'project' && c.scope.projectId === t.projectId && c.roles.includes('member');

const member = any(admin, projectMember);
const reader = any(admin, projectReader);
const owner = any(admin, self);

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const computeRule = (rpc: string) => `compute:${snake(rpc)}`;

const rules: Record<string, Rule> = {
  'compute:create_flavor': admin,
  'compute:get_flavor': authenticated, // private flavors: the handler shows them to projects with access only
  'compute:list_flavors': authenticated, // likewise
  'compute:update_flavor': admin,
  'compute:delete_flavor': admin,
  'compute:add_flavor_access': admin,
  'compute:remove_flavor_access': admin,
  'compute:list_flavor_access': admin,

  'compute:create_keypair': owner,
  'compute:get_keypair': owner,
  'compute:list_keypairs': owner,
  'compute:delete_keypair': owner,

  'compute:get_quota': reader,
  'compute:set_quota': admin,

  'compute:create_server_group': member,
  'compute:get_server_group': reader,
  'compute:list_server_groups': reader,
  'compute:delete_server_group': member,

  'compute:create_aggregate': admin,
  'compute:get_aggregate': admin,
  'compute:list_aggregates': admin,
  'compute:update_aggregate': admin,
  'compute:delete_aggregate': admin,
  'compute:add_aggregate_host': admin,
  'compute:remove_aggregate_host': admin,
  'compute:set_aggregate_metadata': admin,

  'compute:list_hosts': admin,
  'compute:get_host': admin,
  'compute:disable_host': admin,
  'compute:enable_host': admin,

  'compute:create_server': member,
  'compute:get_server': reader,
  'compute:list_servers': reader,
  'compute:get_server_console_output': member,
  'compute:attach_interface': member,
  'compute:detach_interface': member,
  'compute:list_server_interfaces': reader,
  'compute:list_server_actions': reader,
  'compute:get_operation': reader,
  'compute:wait_operation': reader,
  'compute:watch_servers': reader,
  ...Object.fromEntries(SERVER_ACTIONS.map((a) => [computeRule(a.rpc), ADMIN_ONLY_RPCS.has(a.rpc) ? admin : member])),
};

export const computePolicy = new Policy(rules);
export const computeRuleNames = Object.keys(rules);
