// AuditService and ReplayService rules: a project's readers read the audit trail of their
// project's resources (the service checks the resource's owner first: another project's is
// NOT_FOUND); cloud admins read everything and are the only ones to replay the log.
import { admin, any, projectReader, Policy, type Rule } from './policy.js';

const reader = any(admin, projectReader);

const snake = (rpc: string) => rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1);
export const auditRule = (rpc: string) => `events:${snake(rpc)}`;

const rules: Record<string, Rule> = Object.fromEntries(
  (
    [
      ['ListResourceEvents', reader],
      ['ListUserEvents', reader],
      ['GetResourceAt', reader],
      ['ReplayReadModels', admin],
    ] as [string, Rule][]
  ).map(([rpc, rule]) => [auditRule(rpc), rule]),
);

export const auditPolicy = new Policy(rules);
export const auditRuleNames = Object.keys(rules);
