// SubscriptionService's one RPC has its rule, and the personas get what it says: a project's
// readers and members subscribe to their own project's events, nobody else's; cloud admins to
// any project's or all; an "admin" of an ordinary project is no admin of the cloud.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { EVENTS_SUBSCRIBE_RULE, eventsPolicy } from './events.policy.js';
import { caller } from './policy.js';

const token = (roles: string[], scope: TokenPayload['scope']): TokenPayload => ({
  userId: 'u1', userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member']);
const reader = as(['reader']);
const projectAdmin = as(['admin', 'member', 'reader']);

describe('events policy', () => {
  it('has a rule for every RPC of SubscriptionService', () => {
    const rpcs = protoRoot().lookupService('strata.events.v1.SubscriptionService').methodsArray.map((m) => m.name);
    expect(rpcs).toEqual(['Subscribe']);
    expect(eventsPolicy.has(EVENTS_SUBSCRIBE_RULE)).toBe(true);
  });

  it.each([
    [reader, 'p1', true],
    [member, 'p1', true],
    [reader, 'p2', false],
    [projectAdmin, 'p2', false],
    [projectAdmin, undefined, false],
    [admin, 'p2', true],
    [admin, undefined, true],
  ])('events:subscribe %#', (who, projectId, allowed) => {
    const run = () => eventsPolicy.enforce(EVENTS_SUBSCRIBE_RULE, who, { projectId });
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(/events:subscribe/);
  });
});
