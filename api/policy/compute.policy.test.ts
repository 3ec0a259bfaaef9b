// Every RPC of ComputeService has exactly one policy rule, the admin-only server actions are
// those the instance machine marks adminOnly, and the personas get what the rules say.
import { describe, expect, it } from 'vitest';
import { INSTANCE_ACTIONS } from '../../domains/compute/instance.actions.js';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { TokenPayload } from '../auth/token.js';
import { ADMIN_ONLY_RPCS, SERVER_ACTIONS } from '../compute/server.actions.js';
import { computePolicy, computeRule, computeRuleNames } from './compute.policy.js';
import { caller } from './policy.js';

const rpcs = protoRoot().lookupService('strata.compute.v1.ComputeService').methodsArray.map((m) => m.name);

const token = (roles: string[], scope: TokenPayload['scope'], userId = 'u1'): TokenPayload => ({
  userId, userDomainId: 'default', methods: ['password'], scope, roles, issuedAtMs: 0, expiresAtMs: 1, auditIds: ['a'],
});
const project = (id: string) => ({ kind: 'project' as const, projectId: id, domainId: 'default' });
const as = (roles: string[], scope: TokenPayload['scope'] = project('p1')) => caller(token(roles, scope), { adminProjectId: 'p-admin' });
const admin = as(['admin', 'member', 'reader'], project('p-admin'));
const member = as(['member', 'reader']);
const reader = as(['reader']);
const projectAdmin = as(['admin', 'member', 'reader']); // admin of an ordinary project: no cloud admin

describe('compute policy', () => {
  it('has exactly one rule per RPC', () => {
    expect(rpcs.map(computeRule).sort()).toEqual([...computeRuleNames].sort());
  });

  it("takes the admin-only server actions from the instance machine's table", () => {
    const adminOnlyCommands = INSTANCE_ACTIONS.filter((a) => a.adminOnly).map((a) => a.command).sort();
    expect(SERVER_ACTIONS.filter((a) => ADMIN_ONLY_RPCS.has(a.rpc)).map((a) => a.command).sort()).toEqual(adminOnlyCommands);
    expect([...ADMIN_ONLY_RPCS].sort()).toEqual(['EvacuateServer', 'LiveMigrateServer', 'MigrateServer', 'ResetServerState']);
  });

  it('maps every server action RPC to a command of the machine', () => {
    const commands = new Set(INSTANCE_ACTIONS.map((a) => a.command));
    for (const a of SERVER_ACTIONS) expect(commands.has(a.command), a.rpc).toBe(true);
    const notActions = ['CreateServer', 'GetServer', 'ListServers', 'WatchServers', 'GetServerConsoleOutput', 'ListServerActions', 'ListServerInterfaces'];
    const serverRpcs = rpcs.filter((r) => /Server(?!Group)/.test(r) && !notActions.includes(r));
    expect(serverRpcs.sort()).toEqual(SERVER_ACTIONS.map((a) => a.rpc).sort());
  });

  it.each([
    ['compute:stop_server', member, { projectId: 'p1' }, true],
    ['compute:stop_server', member, { projectId: 'p2' }, false],
    ['compute:stop_server', reader, { projectId: 'p1' }, false],
    ['compute:get_server', reader, { projectId: 'p1' }, true],
    ['compute:migrate_server', member, { projectId: 'p1' }, false],
    ['compute:migrate_server', projectAdmin, { projectId: 'p1' }, false],
    ['compute:migrate_server', admin, { projectId: 'p1' }, true],
    ['compute:create_flavor', member, {}, false],
    ['compute:create_flavor', admin, {}, true],
    ['compute:list_flavors', reader, {}, true],
    ['compute:set_quota', member, {}, false],
    ['compute:get_quota', reader, { projectId: 'p1' }, true],
    ['compute:get_quota', reader, { projectId: 'p2' }, false],
    ['compute:get_keypair', member, { userId: 'u1' }, true],
    ['compute:get_keypair', member, { userId: 'u2' }, false],
    ['compute:list_hosts', member, {}, false],
    ['compute:create_server_group', reader, { projectId: 'p1' }, false],
  ] as const)('%s: %#', (rule, c, target, allowed) => {
    const run = () => computePolicy.enforce(rule, c, target);
    if (allowed) expect(run).not.toThrow();
    else expect(run).toThrow(new RegExp(`policy ${rule}`));
  });
});
