// Every RPC of UsageService has exactly one policy rule, and the personas get what it says: a
// project's readers and members read their own project's usage, nobody else's; cloud admins any
// project's; an "admin" of an ordinary project is no admin of the cloud.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { meteringPolicy, meteringRule, meteringRuleNames } from './metering.policy.js';
import { caller } from './policy.js';

const rpcs = protoRoot().lookupService('strata.metering.v1.UsageService').methodsArray.map((m) => m.name);

const token = (roles: string[], scope: TokenPayload['scope']): TokenPayload => ({
  userId: 'u1', userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member']);
const reader = as(['reader']);
const projectAdmin = as(['admin', 'member', 'reader']);

describe('metering policy', () => {
  it('has exactly one rule per RPC', () => {
    expect(rpcs.map(meteringRule).sort()).toEqual([...meteringRuleNames].sort());
  });

  it.each([
    [reader, 'p1', true],
    [member, 'p1', true],
    [reader, 'p2', false],
    [projectAdmin, 'p2', false],
    [admin, 'p2', true],
  ])('metering:get_usage %#', (who, projectId, allowed) => {
    const run = () => meteringPolicy.enforce('metering:get_usage', who, { projectId });
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(/metering:get_usage/);
  });
});
