// One rule per IdentityService RPC. Writes are the cloud admin's; readers see their own project,
// domain and user; the catalog and roles are visible to any authenticated caller. List RPCs
// whose rule is `authenticated` narrow their rows to the caller's scope in the handler.
import { admin, any, authenticated, domainReader, Policy, projectReader, self, service, type Rule } from './policy.js';

const write = admin;
const rules: Record<string, Rule> = {
  'identity:validate_token': authenticated, // the handler lets non-admins validate only their own token
  'identity:revoke_token': authenticated, // likewise
  'identity:create_domain': write,
  'identity:get_domain': any(admin, domainReader),
  'identity:list_domains': admin,
  'identity:update_domain': write,
  'identity:delete_domain': write,
  'identity:create_project': write,
  'identity:get_project': any(admin, projectReader),
  'identity:list_projects': authenticated, // narrowed to the scoped project, or the user's projects when unscoped
  'identity:update_project': write,
  'identity:delete_project': write,
  'identity:create_user': write,
  'identity:get_user': any(admin, self),
  'identity:list_users': admin,
  'identity:update_user': write,
  'identity:delete_user': write,
  'identity:create_group': write,
  'identity:get_group': admin,
  'identity:list_groups': admin,
  'identity:update_group': write,
  'identity:delete_group': write,
  'identity:add_group_member': write,
  'identity:check_group_member': admin,
  'identity:list_group_members': admin,
  'identity:remove_group_member': write,
  'identity:create_role': write,
  'identity:get_role': authenticated,
  'identity:list_roles': authenticated,
  'identity:update_role': write,
  'identity:delete_role': write,
  'identity:create_role_assignment': write,
  'identity:get_role_assignment': any(admin, projectReader, self),
  'identity:list_role_assignments': any(admin, projectReader, self, service),
  'identity:delete_role_assignment': write,
  'identity:create_region': write,
  'identity:get_region': authenticated,
  'identity:list_regions': authenticated,
  'identity:update_region': write,
  'identity:delete_region': write,
  'identity:create_service': write,
  'identity:get_service': authenticated,
  'identity:list_services': authenticated,
  'identity:update_service': write,
  'identity:delete_service': write,
  'identity:create_endpoint': write,
  'identity:get_endpoint': authenticated,
  'identity:list_endpoints': authenticated,
  'identity:update_endpoint': write,
  'identity:delete_endpoint': write,
};

export const identityPolicy = new Policy(rules);
export const identityRuleNames = Object.keys(rules);
