// One rule per UsageService RPC: a project's readers (and members) read their own project's usage,
// cloud admins any project's or every project's (Nova's os-simple-tenant-usage:show for the
// project's reader, :list for admins). The service checks the project asked for before the rule:
// another project's usage is PERMISSION_DENIED naming project_id, every project's naming all_projects.
import { projectMember } from './compute.policy.js';
import { admin, any, projectReader, Policy, type Rule } from './policy.js';

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const meteringRule = (rpc: string) => `metering:${snake(rpc)}`;

const rules: Record<string, Rule> = {
  [meteringRule('GetUsage')]: any(admin, projectReader, projectMember),
};

export const meteringPolicy = new Policy(rules);
export const meteringRuleNames = Object.keys(rules);
