// Every RPC of IdentityService has a handler and a policy rule (IssueToken, which needs no
// token, aside), and the personas get what the rules say.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import { identityPolicy, identityRuleNames } from './identity.policy.js';
import { caller } from './policy.js';
import type { TokenPayload } from '../auth/token.js';

const rpcs = protoRoot().lookupService('strata.identity.v1.IdentityService').methodsArray.map((m) => m.name);
const rule = (rpc: string) => `identity:${rpc.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).slice(1)}`;

const token = (roles: string[], scope: TokenPayload['scope']): TokenPayload => ({
  userId: 'u1', userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const adminProject = 'p-admin';
const as = (roles: string[], scope: TokenPayload['scope']) => caller(token(roles, scope), { adminProjectId: adminProject });

describe('identity policy', () => {
  it('has exactly one rule per RPC but IssueToken', () => {
    expect(rpcs.filter((r) => r !== 'IssueToken').map(rule).sort()).toEqual([...identityRuleNames].sort());
  });

  it('makes admins of the admin project and of the system cloud admins, and no one else', () => {
    expect(as(['admin', 'member', 'reader'], { kind: 'project', projectId: adminProject, domainId: 'default' }).isAdmin).toBe(true);
    expect(as(['admin'], { kind: 'system' }).isAdmin).toBe(true);
    expect(as(['admin'], { kind: 'project', projectId: 'other', domainId: 'default' }).isAdmin).toBe(false);
    expect(as(['member'], { kind: 'system' }).isAdmin).toBe(false);
  });

  it.each([
    ['identity:create_project', ['member', 'reader'], {}, false],
    ['identity:create_project', ['admin'], {}, true],
    ['identity:get_project', ['reader'], { projectId: 'p1' }, true],
    ['identity:get_project', ['reader'], { projectId: 'p2' }, false],
    ['identity:get_user', ['reader'], { userId: 'u1' }, true],
    ['identity:get_user', ['reader'], { userId: 'u2' }, false],
    ['identity:list_users', ['member', 'reader'], {}, false],
    ['identity:list_roles', [], {}, true],
  ] as const)('%s for %j on %j: %s', (name, roles, target, allowed) => {
    const c = as([...roles], roles.includes('admin' as never) ? { kind: 'system' } : { kind: 'project', projectId: 'p1', domainId: 'default' });
    const run = () => identityPolicy.enforce(name, c, target);
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(new RegExp(`policy ${name}`));
  });

  it('refuses an RPC without a rule', () => {
    expect(() => identityPolicy.enforce('identity:no_such_rpc', as(['admin'], { kind: 'system' }))).toThrow(/no policy rule/);
  });
});
