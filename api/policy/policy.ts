// The policy engine: one named rule per RPC ("identity:create_project"), each a predicate over
// the caller's credentials and the request's target. An RPC without a rule is refused: a new
// RPC cannot ship unguarded by accident.
import type { TokenPayload } from '../auth/token.js';
import { refuse } from '../errors.js';

export interface Caller extends TokenPayload {
  /** Cloud admin: admin role on the system, or on the admin project (Keystone's admin_project). */
  isAdmin: boolean;
}

export type Target = Record<string, unknown>;
export type Rule = (caller: Caller, target: Target) => boolean;

export interface PolicyOptions {
  adminProjectId: string;
}

export const caller = (token: TokenPayload, options: PolicyOptions): Caller => ({
  ...token,
  isAdmin:
    token.roles.includes('admin') &&
    (token.scope.kind === 'system' || (token.scope.kind === 'project' && token.scope.projectId === options.adminProjectId)),
});

// Building blocks, named as Keystone's personas.
export const admin: Rule = (c) => c.isAdmin;
export const authenticated: Rule = () => true;
export const projectReader: Rule = (c, t) => c.scope.kind === 'project' && c.scope.projectId === t.projectId && c.roles.includes('reader');
export const domainReader: Rule = (c, t) =>
  c.roles.includes('reader') &&
  ((c.scope.kind === 'domain' && c.scope.domainId === t.domainId) || (c.scope.kind === 'project' && c.scope.domainId === t.domainId));
export const self: Rule = (c, t) => t.userId !== undefined && c.userId === t.userId;
export const service: Rule = (c) => c.roles.includes('service');
export const any =
  (...rules: Rule[]): Rule =>
  (c, t) =>
    rules.some((r) => r(c, t));

export class Policy {
  constructor(private readonly rules: Record<string, Rule>) {}

  has(name: string): boolean {
    return name in this.rules;
  }

  /** Throws PERMISSION_DENIED naming the rule when the caller may not act on the target. */
  enforce(name: string, c: Caller, target: Target = {}): void {
    const rule = this.rules[name];
    if (!rule) throw refuse('PERMISSION_DENIED', `no policy rule ${name}: refused`);
    if (!rule(c, target)) throw refuse('PERMISSION_DENIED', `policy ${name} does not allow this caller`);
  }
}
