// Every RPC of VolumeService has exactly one policy rule, and the personas get what the rules say:
// members write their project's volumes, readers read them, another project neither; volume types,
// quota limits, status resets and storage hosts are the admins'.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { blockPolicy, blockRule, blockRuleNames } from './block.policy.js';
import { caller } from './policy.js';

const rpcs = protoRoot().lookupService('strata.block.v1.VolumeService').methodsArray.map((m) => m.name);

const token = (roles: string[], scope: TokenPayload['scope'], userId = 'u1'): TokenPayload => ({
  userId, userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member', 'reader']);
const reader = as(['reader']);

describe('block policy', () => {
  it('has exactly one rule per RPC', () => {
    expect(rpcs.map(blockRule).sort()).toEqual([...blockRuleNames].sort());
  });

  it.each([
    ['volume:create_volume', member, { projectId: 'p1' }, true],
    ['volume:create_volume', reader, { projectId: 'p1' }, false],
    ['volume:create_volume', member, { projectId: 'p2' }, false],
    ['volume:get_volume', reader, { projectId: 'p1' }, true],
    ['volume:delete_volume', admin, { projectId: 'p2' }, true],
    ['volume:attach_volume', member, { projectId: 'p1' }, true],
    ['volume:attach_volume', reader, { projectId: 'p1' }, false],
    ['volume:create_volume_type', member, {}, false],
    ['volume:create_volume_type', admin, {}, true],
    ['volume:list_volume_types', reader, {}, true],
    ['volume:reset_volume_status', member, { projectId: 'p1' }, false],
    ['volume:set_block_quota', member, { projectId: 'p1' }, false],
    ['volume:list_storage_hosts', member, {}, false],
  ] as const)('%s: %#', (rule, c, target, allowed) => {
    const run = () => blockPolicy.enforce(rule, c, target);
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(new RegExp(`policy ${rule}`));
  });
});
