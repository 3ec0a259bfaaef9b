// Every RPC of ImageService has exactly one policy rule, and the personas get what the rules say:
// members write their project's images, readers read and download, another project neither;
// deactivate, reactivate and making an image public are the admins'.
import { describe, expect, it } from 'vitest';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { imagePolicy, imageRule, imageRuleNames, PUBLICIZE_RULE } from './image.policy.js';
import { caller } from './policy.js';

const rpcs = protoRoot().lookupService('strata.image.v1.ImageService').methodsArray.map((m) => m.name);

const token = (roles: string[], scope: TokenPayload['scope'], userId = 'u1'): TokenPayload => ({
  userId, userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member', 'reader']);
const reader = as(['reader']);
// An "admin" of an ordinary project is no admin of the cloud.
const projectAdmin = as(['admin', 'member', 'reader']);

describe('image policy', () => {
  it('has exactly one rule per RPC', () => {
    expect(rpcs.length).toBe(13);
    expect(rpcs.map(imageRule).sort()).toEqual([...imageRuleNames].sort());
  });

  it.each([
    ['image:create_image', member, { projectId: 'p1' }, true],
    ['image:create_image', reader, { projectId: 'p1' }, false],
    ['image:create_image', member, { projectId: 'p2' }, false],
    ['image:get_image', reader, { projectId: 'p1' }, true],
    ['image:get_image', reader, { projectId: 'p2' }, false],
    ['image:upload_image', member, { projectId: 'p1' }, true],
    ['image:upload_image', reader, { projectId: 'p1' }, false],
    ['image:upload_image', member, { projectId: 'p2' }, false],
    ['image:download_image', reader, { projectId: 'p1' }, true],
    ['image:delete_image', member, { projectId: 'p2' }, false],
    ['image:delete_image', admin, { projectId: 'p2' }, true],
    ['image:deactivate_image', member, {}, false],
    ['image:deactivate_image', projectAdmin, {}, false],
    ['image:deactivate_image', admin, {}, true],
    ['image:reactivate_image', member, {}, false],
    ['image:reactivate_image', admin, {}, true],
    ['image:update_image_member', member, { projectId: 'p1' }, true],
    ['image:update_image_member', member, { projectId: 'p2' }, false],
    ['image:add_image_member', reader, { projectId: 'p1' }, false],
    [PUBLICIZE_RULE, member, {}, false],
    [PUBLICIZE_RULE, projectAdmin, {}, false],
    [PUBLICIZE_RULE, admin, {}, true],
  ] as const)('%s: %#', (rule, c, target, allowed) => {
    const run = () => imagePolicy.enforce(rule, c, target);
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(new RegExp(`policy ${rule}`));
  });
});
