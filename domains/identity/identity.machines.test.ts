// The identity lifecycles read as specifications, and the table of legal commands per state.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given } from '../kernel/specification.js';
import { identityAggregate } from './identity.deciders.js';

type M = Message & Record<string, unknown>;

const domain = identityAggregate('domain').decider;
const user = identityAggregate('user').decider;
const group = identityAggregate('group').decider;
const assignment = identityAggregate('role_assignment').decider;
const token = identityAggregate('token').decider;
const name = identityAggregate('name').decider;

const d1 = { id: 'd1', name: 'Default', description: '', enabled: true };
const u1 = { id: 'u1', name: 'alice', domainId: 'd1', email: '', description: '', defaultProjectId: '', enabled: true, lockedUntilMs: 0 };
const t0 = Date.UTC(2026, 0, 1);

describe('domain', () => {
  it('is created enabled, and an update that clears enabled also says Disabled', () => {
    const created = given(domain, []).when({ type: 'CreateDomain', domain: d1 } as M);
    expect(created).toEqual({ events: [{ type: 'DomainCreated', domain: d1 }] });
    const d = given(domain, [{ type: 'DomainCreated', domain: d1 }] as M[]).when({
      type: 'UpdateDomain',
      domain: { ...d1, enabled: false, name: 'ignored' },
      updateMask: ['enabled'],
    } as M);
    expect(d).toEqual({ events: [{ type: 'DomainUpdated', domain: { ...d1, enabled: false } }, { type: 'DomainDisabled' }] });
  });

  it('refuses to delete an enabled domain, naming the state, and deletes a disabled one', () => {
    const enabled = given(domain, [{ type: 'DomainCreated', domain: d1 }] as M[]);
    expect(enabled.when({ type: 'DeleteDomain' })).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'enabled', message: expect.stringContaining('disable it before deleting') },
    });
    const disabled = given(domain, [{ type: 'DomainCreated', domain: d1 }, { type: 'DomainUpdated', domain: { ...d1, enabled: false } }, { type: 'DomainDisabled' }] as M[]);
    expect(disabled.when({ type: 'DeleteDomain' })).toEqual({ events: [{ type: 'DomainDeleted', domain: { ...d1, enabled: false } }] });
  });

  it('answers ALREADY_EXISTS to a second create and NOT_FOUND after a delete', () => {
    expect(given(domain, [{ type: 'DomainCreated', domain: d1 }] as M[]).when({ type: 'CreateDomain', domain: d1 } as M)).toMatchObject({
      rejection: { code: 'ALREADY_EXISTS' },
    });
    const gone = [{ type: 'DomainCreated', domain: { ...d1, enabled: false } }, { type: 'DomainDeleted', domain: d1 }] as M[];
    expect(given(domain, gone).when({ type: 'UpdateDomain', domain: d1, updateMask: ['name'] } as M)).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
    expect(given(domain, []).when({ type: 'DeleteDomain' })).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });
});

describe('user', () => {
  const created = { type: 'UserCreated', user: u1, passwordHash: 'scrypt$h1' } as Message;
  const failure = { type: 'RecordAuthenticationFailure', maxAttempts: 3, lockoutDurationMs: 60_000 } as Message;

  it('locks out at the Nth failure in a row, until the command time plus the duration', () => {
    const two = [created, { type: 'UserAuthenticationFailed', attempts: 1 }, { type: 'UserAuthenticationFailed', attempts: 2 }] as M[];
    expect(given(user, two).when(failure, { issuedAtMs: t0 })).toEqual({
      events: [{ type: 'UserAuthenticationFailed', attempts: 3 }, { type: 'UserLockedOut', lockedUntilMs: t0 + 60_000 }],
    });
  });

  it('counts afresh once a lock has run out, and a success clears the count', () => {
    const locked = [created, { type: 'UserAuthenticationFailed', attempts: 3 }, { type: 'UserLockedOut', lockedUntilMs: t0 }] as M[];
    expect(given(user, locked).when(failure, { issuedAtMs: t0 + 1 })).toEqual({ events: [{ type: 'UserAuthenticationFailed', attempts: 1 }] });
    expect(given(user, locked).when({ type: 'RecordAuthenticationSuccess' })).toEqual({ events: [{ type: 'UserAuthenticationReset' }] });
    expect(given(user, [created]).when({ type: 'RecordAuthenticationSuccess' })).toEqual({ events: [] });
  });

  it('changes the password, and a disabled user still may have it changed but not authenticate', () => {
    expect(given(user, [created]).when({ type: 'ChangeUserPassword', passwordHash: 'scrypt$h2' } as M)).toEqual({
      events: [{ type: 'UserPasswordChanged', passwordHash: 'scrypt$h2' }],
    });
    const disabled = given(user, [created, { type: 'UserUpdated', user: { ...u1, enabled: false } }, { type: 'UserDisabled' }] as M[]);
    expect(disabled.when({ type: 'ChangeUserPassword', passwordHash: 'x' } as M)).toMatchObject({ events: [{ type: 'UserPasswordChanged' }] });
    expect(disabled.when(failure)).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'disabled' } });
  });
});

describe('group membership', () => {
  const created = { type: 'GroupCreated', group: { id: 'g1', name: 'ops', domainId: 'd1', description: '' } } as Message;
  it('adds once, and removing a non-member is NOT_FOUND naming the user', () => {
    const withAlice = [created, { type: 'GroupMemberAdded', userId: 'u1' }] as M[];
    expect(given(group, withAlice).when({ type: 'AddGroupMember', userId: 'u1' } as M)).toEqual({ events: [] });
    expect(given(group, withAlice).when({ type: 'RemoveGroupMember', userId: 'u1' } as M)).toEqual({ events: [{ type: 'GroupMemberRemoved', userId: 'u1' }] });
    expect(given(group, [created]).when({ type: 'RemoveGroupMember', userId: 'u9' } as M)).toMatchObject({
      rejection: { code: 'NOT_FOUND', message: 'user u9 is not a member of group agg-1' },
    });
  });
});

describe('role assignment', () => {
  const a = { id: 'a1', userId: 'u1', projectId: 'p1', roleId: 'r1', inherited: false };
  it('grants idempotently, revokes, and may be granted again', () => {
    expect(given(assignment, []).when({ type: 'GrantRole', assignment: a } as M)).toEqual({ events: [{ type: 'RoleGranted', assignment: a }] });
    const granted = [{ type: 'RoleGranted', assignment: a }] as M[];
    expect(given(assignment, granted).when({ type: 'GrantRole', assignment: a } as M)).toEqual({ events: [] });
    expect(given(assignment, granted).when({ type: 'RevokeRole' })).toEqual({ events: [{ type: 'RoleRevoked', assignment: a }] });
    const revoked = [...granted, { type: 'RoleRevoked', assignment: a }] as M[];
    expect(given(assignment, revoked).when({ type: 'RevokeRole' })).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
    expect(given(assignment, revoked).when({ type: 'GrantRole', assignment: a } as M)).toMatchObject({ events: [{ type: 'RoleGranted' }] });
  });
});

describe('token', () => {
  const record = { auditId: 'a1', userId: 'u1', methods: ['password'], projectId: 'p1', domainId: '', system: false, roles: ['member'], issuedAtMs: t0, expiresAtMs: t0 + 3_600_000, auditIds: ['a1'] };
  const issued = [{ type: 'TokenIssued', token: record }] as M[];
  it('is revoked before its expiry, refused after it, and expires only once its time has come', () => {
    expect(given(token, issued).when({ type: 'RevokeToken' }, { issuedAtMs: t0 + 1 })).toEqual({ events: [{ type: 'TokenRevoked', token: record }] });
    expect(given(token, issued).when({ type: 'RevokeToken' }, { issuedAtMs: t0 + 3_600_000 })).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'expired' },
    });
    expect(given(token, issued).when({ type: 'ExpireToken' }, { issuedAtMs: t0 + 1 })).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION' } });
    expect(given(token, issued).when({ type: 'ExpireToken' }, { issuedAtMs: t0 + 3_600_000 })).toEqual({ events: [{ type: 'TokenExpired' }] });
    const revoked = [...issued, { type: 'TokenRevoked', token: record }] as M[];
    expect(given(token, revoked).when({ type: 'RevokeToken' }, { issuedAtMs: t0 + 1 })).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });
});

describe('name claim', () => {
  it('holds a name for one owner: retries pass, others get ALREADY_EXISTS, release frees it', () => {
    const claimed = [{ type: 'NameClaimed', ownerId: 'p1' }] as M[];
    const ctx = { aggregateId: 'project/d1/web' };
    expect(given(name, []).when({ type: 'ClaimName', ownerId: 'p1' } as Message, ctx)).toEqual({ events: [{ type: 'NameClaimed', ownerId: 'p1' }] });
    expect(given(name, claimed).when({ type: 'ClaimName', ownerId: 'p1' } as Message, ctx)).toEqual({ events: [] });
    expect(given(name, claimed).when({ type: 'ClaimName', ownerId: 'p2' } as Message, ctx)).toMatchObject({
      rejection: { code: 'ALREADY_EXISTS', message: 'a project named "web" already exists there' },
    });
    expect(given(name, claimed).when({ type: 'ReleaseName', ownerId: 'p2' } as Message, ctx)).toEqual({ events: [] });
    expect(given(name, claimed).when({ type: 'ReleaseName', ownerId: 'p1' } as Message, ctx)).toEqual({ events: [{ type: 'NameReleased', ownerId: 'p1' }] });
    expect(given(name, []).when({ type: 'ReleaseName', ownerId: 'p1' } as Message, ctx)).toEqual({ events: [] });
  });
});

describe('legal commands per state', () => {
  it.each([
    ['domain absent', domain, [], ['CreateDomain']],
    ['domain enabled', domain, [{ type: 'DomainCreated', domain: d1 }], ['UpdateDomain']],
    ['domain disabled', domain, [{ type: 'DomainCreated', domain: { ...d1, enabled: false } }], ['UpdateDomain', 'DeleteDomain']],
    ['user enabled', user, [{ type: 'UserCreated', user: u1, passwordHash: 'h' }], ['UpdateUser', 'DeleteUser', 'ChangeUserPassword', 'RecordAuthenticationFailure', 'RecordAuthenticationSuccess']],
    ['token issued', token, [{ type: 'TokenIssued', token: {} }], ['RevokeToken', 'ExpireToken']],
  ] as const)('%s', (_label, decider, events, commands) => {
    const state = fold(decider, events as unknown as M[]);
    expect(decider.allowedCommands(state).sort()).toEqual([...commands].sort());
  });
});
