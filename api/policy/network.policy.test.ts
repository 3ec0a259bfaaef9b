// Every RPC of NetworkService has exactly one policy rule, and the personas get what the rules say:
// members write their project's network resources, readers read them, another project neither.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { networkPolicy, networkRule, networkRuleNames } from './network.policy.js';
import { caller } from './policy.js';

const rpcs = protoRoot().lookupService('strata.network.v1.NetworkService').methodsArray.map((m) => m.name);

const token = (roles: string[], scope: TokenPayload['scope'], userId = 'u1'): TokenPayload => ({
  userId, userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member', 'reader']);
const reader = as(['reader']);

describe('network policy', () => {
  it('has exactly one rule per RPC', () => {
    expect(rpcs.map(networkRule).sort()).toEqual([...networkRuleNames].sort());
  });

  it.each([
    ['network:create_network', member, { projectId: 'p1' }, true],
    ['network:create_network', reader, { projectId: 'p1' }, false],
    ['network:create_network', member, { projectId: 'p2' }, false],
    ['network:get_network', reader, { projectId: 'p1' }, true],
    ['network:delete_port', member, { projectId: 'p2' }, false],
    ['network:delete_port', admin, { projectId: 'p2' }, true],
    ['network:create_security_group_rule', member, { projectId: 'p1' }, true],
    ['network:list_subnets', reader, { projectId: 'p1' }, true],
    ['network:update_subnet', reader, { projectId: 'p1' }, false],
  ] as const)('%s: %#', (rule, c, target, allowed) => {
    const run = () => networkPolicy.enforce(rule, c, target);
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(new RegExp(`policy ${rule}`));
  });
});
