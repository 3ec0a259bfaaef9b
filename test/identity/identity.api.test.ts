// Issue 3 acceptance a: every IdentityService RPC over a real TLS gRPC server on loopback, with
// the negative cases: credentials, lockout, expiry, revocation (explicit and by user disable,
// password change, role removal, project disable), policy and project scoping.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import { ADMIN_PASSWORD, codeOf, errorOf, startTestCloud, type TestCloud } from './cloud.js';

const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;

const name = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

describe('IdentityService', () => {
  let t: TestCloud;
  let admin: StrataClient;

  /** A user with a role on a new project; returns ids and a client scoped to that project. */
  async function member(role = 'member', project?: { id: string }) {
    const p = project ?? (await admin.call('CreateProject', { project: { name: name('proj'), domainId: 'default' } })).project;
    const password = `pw-${randomUUID()}`;
    const u = (await admin.call('CreateUser', { user: { name: name('user'), domainId: 'default' }, password })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, projectId: p.id, roleId: roleId(role) } });
    const token = await t.login(u.name, password, { projectId: p.id });
    return { project: p, user: u, password, token, client: t.client(token) };
  }

  beforeAll(async () => {
    t = await startTestCloud();
    admin = t.client(await t.adminToken());
  }, 120_000);
  afterAll(async () => t?.close());

  describe('tokens', () => {
    it('issues an admin token scoped to the admin project, with implied roles and the catalog', async () => {
      const res = await t.client().call('IssueToken', {
        password: { userName: 'admin', domainName: 'Default', password: ADMIN_PASSWORD },
        scope: { projectId: t.boot.adminProjectId },
      });
      expect(res.token).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(res.info.projectId).toBe(t.boot.adminProjectId);
      expect([...res.info.roles].sort()).toEqual(['admin', 'manager', 'member', 'reader']);
      expect(res.info.catalog.map((s: { type: string }) => s.type)).toContain('identity');
      const v = await t.client(res.token).call('ValidateToken', { token: res.token });
      expect(v.info.userId).toBe(t.boot.adminUserId);
      expect(v.info.auditIds).toEqual(res.info.auditIds);
    });

    it('without a scope uses the default project, as Keystone does', async () => {
      const res = await t.client().call('IssueToken', { password: { userId: t.boot.adminUserId, password: ADMIN_PASSWORD } });
      expect(res.info.projectId).toBe(t.boot.adminProjectId);
    });

    it('refuses a wrong password and an unknown user alike, without saying which', async () => {
      const wrong = await errorOf(t.client().call('IssueToken', { password: { userName: 'admin', domainName: 'Default', password: 'nope' } }));
      const unknown = await errorOf(t.client().call('IssueToken', { password: { userName: 'nobody', domainName: 'Default', password: 'nope' } }));
      expect(wrong.code).toBe(UNAUTHENTICATED);
      expect(unknown.code).toBe(UNAUTHENTICATED);
      expect(wrong.details).toBe(unknown.details);
      expect(wrong.details).not.toMatch(/exist|unknown|wrong password/i);
    });

    it('refuses calls without a token, or with garbage', async () => {
      expect(await errorOf(t.client().call('ListRoles', {}))).toMatchObject({ code: UNAUTHENTICATED, details: expect.stringContaining('x-auth-token') });
      expect(await codeOf(t.client('garbage').call('ListRoles', {}))).toBe(UNAUTHENTICATED);
    });

    it('rescopes with the token method, keeping the expiry and chaining the audit ids', async () => {
      const m = await member();
      const unscoped = await t.login(m.user.name, m.password);
      const first = await t.client(unscoped).call('ValidateToken', { token: unscoped });
      expect(first.info.roles).toEqual([]);
      const res = await t.client().call('IssueToken', { token: unscoped, scope: { projectId: m.project.id } });
      expect(res.info.roles).toEqual(['member', 'reader']);
      expect(res.info.expiresAt).toEqual(first.info.expiresAt);
      expect(res.info.auditIds[1]).toBe(first.info.auditIds[0]);
      expect(res.info.methods).toEqual(['password', 'token']);
    });

    it('refuses a scope where the user has no role', async () => {
      const m = await member();
      const other = (await admin.call('CreateProject', { project: { name: name('other'), domainId: 'default' } })).project;
      expect(await codeOf(t.login(m.user.name, m.password, { projectId: other.id }))).toBe(UNAUTHENTICATED);
    });

    it('revokes a token explicitly, with the tokens rescoped from it', async () => {
      const m = await member();
      const unscoped = await t.login(m.user.name, m.password);
      const rescoped = (await t.client().call('IssueToken', { token: unscoped, scope: { projectId: m.project.id } })).token;
      await t.client(unscoped).call('RevokeToken', { token: unscoped });
      expect(await errorOf(t.client(unscoped).call('ListRoles', {}))).toMatchObject({ code: UNAUTHENTICATED, details: expect.stringContaining('revoked') });
      expect(await codeOf(t.client(rescoped).call('ListRoles', {}))).toBe(UNAUTHENTICATED);
      expect(await codeOf(admin.call('ValidateToken', { token: unscoped }))).toBe(NOT_FOUND);
    });

    it("lets a user validate only their own token, an admin anyone's", async () => {
      const a = await member();
      const b = await member();
      expect(await codeOf(a.client.call('ValidateToken', { token: b.token }))).toBe(PERMISSION_DENIED);
      expect((await admin.call('ValidateToken', { token: b.token })).info.userId).toBe(b.user.id);
      expect(await codeOf(a.client.call('RevokeToken', { token: b.token }))).toBe(PERMISSION_DENIED);
      expect(await codeOf(b.client.call('ListRoles', {}))).toBe(0);
    });

    it('rejects old tokens after the user is disabled', async () => {
      const m = await member();
      await admin.call('UpdateUser', { user: { id: m.user.id, enabled: false }, updateMask: { paths: ['enabled'] } });
      expect(await codeOf(m.client.call('ListRoles', {}))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(m.user.name, m.password, { projectId: m.project.id }))).toBe(UNAUTHENTICATED);
      await admin.call('UpdateUser', { user: { id: m.user.id, enabled: true }, updateMask: { paths: ['enabled'] } });
      const fresh = await t.login(m.user.name, m.password, { projectId: m.project.id });
      expect(await codeOf(t.client(fresh).call('ListRoles', {}))).toBe(0);
      expect(await codeOf(m.client.call('ListRoles', {}))).toBe(UNAUTHENTICATED);
    });

    it('rejects old tokens after a password change, and the old password', async () => {
      const m = await member();
      await admin.call('UpdateUser', { user: { id: m.user.id }, password: 'a-new-password' });
      expect(await codeOf(m.client.call('ListRoles', {}))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(m.user.name, m.password))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(m.user.name, 'a-new-password'))).toBe(0);
    });

    it('rejects old tokens after the role assignment is removed', async () => {
      const m = await member();
      const list = await admin.call('ListRoleAssignments', { userId: m.user.id });
      expect(list.assignments).toHaveLength(1);
      await admin.call('DeleteRoleAssignment', { id: list.assignments[0].id });
      expect(await codeOf(m.client.call('GetProject', { id: m.project.id }))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(m.user.name, m.password, { projectId: m.project.id }))).toBe(UNAUTHENTICATED);
    });

    it('rejects old tokens after the project is disabled, and refuses the project as a scope', async () => {
      const m = await member();
      await admin.call('UpdateProject', { project: { id: m.project.id, enabled: false }, updateMask: { paths: ['enabled'] } });
      expect(await codeOf(m.client.call('GetProject', { id: m.project.id }))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(m.user.name, m.password, { projectId: m.project.id }))).toBe(UNAUTHENTICATED);
    });

    it('rejects old tokens of group members after they leave the group', async () => {
      const p = (await admin.call('CreateProject', { project: { name: name('gp'), domainId: 'default' } })).project;
      const g = (await admin.call('CreateGroup', { group: { name: name('grp'), domainId: 'default' } })).group;
      const password = 'group-member-pw';
      const u = (await admin.call('CreateUser', { user: { name: name('gu'), domainId: 'default' }, password })).user;
      await admin.call('AddGroupMember', { groupId: g.id, userId: u.id });
      await admin.call('CreateRoleAssignment', { assignment: { groupId: g.id, projectId: p.id, roleId: roleId('reader') } });
      const token = await t.login(u.name, password, { projectId: p.id });
      expect((await t.client(token).call('ValidateToken', { token })).info.roles).toEqual(['reader']);
      await admin.call('RemoveGroupMember', { groupId: g.id, userId: u.id });
      expect(await codeOf(t.client(token).call('ListRoles', {}))).toBe(UNAUTHENTICATED);
      expect(await codeOf(t.login(u.name, password, { projectId: p.id }))).toBe(UNAUTHENTICATED);
    });
  });

  describe('policy and scoping', () => {
    it('does not let a member create projects, nor a reader write anything', async () => {
      const m = await member('member');
      expect(await errorOf(m.client.call('CreateProject', { project: { name: name('x'), domainId: 'default' } }))).toMatchObject({
        code: PERMISSION_DENIED,
        details: expect.stringContaining('identity:create_project'),
      });
      const r = await member('reader');
      for (const [method, req] of [
        ['CreateUser', { user: { name: name('x'), domainId: 'default' }, password: 'p' }],
        ['UpdateProject', { project: { id: r.project.id, name: 'renamed' }, updateMask: { paths: ['name'] } }],
        ['DeleteProject', { id: r.project.id }],
        ['CreateRoleAssignment', { assignment: { userId: r.user.id, projectId: r.project.id, roleId: roleId('admin') } }],
        ['CreateRole', { role: { name: name('role') } }],
        ['AddGroupMember', { groupId: 'g', userId: r.user.id }],
      ] as const) {
        expect(await codeOf(r.client.call(method, req)), method).toBe(PERMISSION_DENIED);
      }
      // Nothing changed.
      expect((await admin.call('GetProject', { id: r.project.id })).project.name).toBe(r.project.name);
    });

    it('keeps a user scoped to project A away from project B', async () => {
      const a = await member('member');
      const b = await member('member');
      expect(await codeOf(a.client.call('GetProject', { id: b.project.id }))).toBe(PERMISSION_DENIED);
      expect((await a.client.call('GetProject', { id: a.project.id })).project.id).toBe(a.project.id);
      const listed = await a.client.call('ListProjects', {});
      expect(listed.projects.map((p: { id: string }) => p.id)).toEqual([a.project.id]);
      expect(await codeOf(a.client.call('ListRoleAssignments', { projectId: b.project.id }))).toBe(PERMISSION_DENIED);
      expect(await codeOf(a.client.call('GetUser', { id: b.user.id }))).toBe(PERMISSION_DENIED);
      expect(await codeOf(a.client.call('ListUsers', {}))).toBe(PERMISSION_DENIED);
      expect((await a.client.call('GetUser', { id: a.user.id })).user.name).toBe(a.user.name);
      expect((await a.client.call('ListRoleAssignments', { projectId: a.project.id })).assignments).toHaveLength(1);
    });

    it('lets an unscoped token list the projects where the user has a role', async () => {
      const a = await member('member');
      const second = (await admin.call('CreateProject', { project: { name: name('p2'), domainId: 'default' } })).project;
      await admin.call('CreateRoleAssignment', { assignment: { userId: a.user.id, projectId: second.id, roleId: roleId('reader') } });
      const unscoped = await t.login(a.user.name, a.password);
      const ids = (await t.client(unscoped).call('ListProjects', {})).projects.map((p: { id: string }) => p.id).sort();
      expect(ids).toEqual([a.project.id, second.id].sort());
    });

    it('does not make a project admin a cloud admin', async () => {
      const m = await member('admin');
      expect(await codeOf(m.client.call('CreateProject', { project: { name: name('x'), domainId: 'default' } }))).toBe(PERMISSION_DENIED);
      expect(await codeOf(m.client.call('ListUsers', {}))).toBe(PERMISSION_DENIED);
    });
  });

  describe('resources', () => {
    it('creates, gets, lists, updates and deletes a domain; an enabled domain cannot be deleted', async () => {
      const d = (await admin.call('CreateDomain', { domain: { name: name('dom'), description: 'd' } })).domain;
      expect(d.enabled).toBe(true);
      expect((await admin.call('GetDomain', { id: d.id })).domain.name).toBe(d.name);
      expect((await admin.call('ListDomains', { name: d.name })).domains.map((x: { id: string }) => x.id)).toEqual([d.id]);
      expect(await errorOf(admin.call('DeleteDomain', { id: d.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'enabled' });
      const u = await admin.call('UpdateDomain', { domain: { id: d.id, enabled: false }, updateMask: { paths: ['enabled'] } });
      expect(u.domain.enabled).toBe(false);
      await admin.call('DeleteDomain', { id: d.id });
      expect(await codeOf(admin.call('GetDomain', { id: d.id }))).toBe(NOT_FOUND);
      // The name is free again.
      expect(await codeOf(admin.call('CreateDomain', { domain: { name: d.name } }))).toBe(0);
    });

    it('creates projects with parents, pages through them, renames, and refuses duplicates and orphans', async () => {
      const d = (await admin.call('CreateDomain', { domain: { name: name('pd') } })).domain;
      const parent = (await admin.call('CreateProject', { project: { name: 'parent', domainId: d.id } })).project;
      const kids = [];
      for (let i = 0; i < 3; i++) {
        kids.push((await admin.call('CreateProject', { project: { name: `kid-${i}`, domainId: d.id, parentId: parent.id } })).project);
      }
      const seen: string[] = [];
      let token = '';
      do {
        const page = await admin.call('ListProjects', { parentId: parent.id, pageSize: 2, pageToken: token });
        expect(page.projects.length).toBeLessThanOrEqual(2);
        seen.push(...page.projects.map((p: { id: string }) => p.id));
        token = page.nextPageToken;
      } while (token);
      expect(seen.sort()).toEqual(kids.map((k) => k.id).sort());
      expect(await errorOf(admin.call('CreateProject', { project: { name: 'PARENT', domainId: d.id } }))).toMatchObject({ code: ALREADY_EXISTS });
      expect(await errorOf(admin.call('CreateProject', { project: { name: 'x', domainId: d.id, parentId: 'nope' } }))).toMatchObject({
        code: NOT_FOUND,
        field: 'parent_id',
      });
      expect(await errorOf(admin.call('DeleteProject', { id: parent.id }))).toMatchObject({ code: FAILED_PRECONDITION });
      const renamed = await admin.call('UpdateProject', { project: { id: kids[0].id, name: 'renamed' }, updateMask: { paths: ['name'] } });
      expect(renamed.project.name).toBe('renamed');
      // The old name is free, the new one taken.
      expect(await codeOf(admin.call('CreateProject', { project: { name: 'kid-0', domainId: d.id } }))).toBe(0);
      expect(await codeOf(admin.call('CreateProject', { project: { name: 'renamed', domainId: d.id } }))).toBe(ALREADY_EXISTS);
      expect(await errorOf(admin.call('UpdateProject', { project: { id: kids[1].id, domainId: 'x' }, updateMask: { paths: ['domain_id'] } }))).toMatchObject({
        code: INVALID_ARGUMENT,
        field: 'domain_id',
      });
      await admin.call('DeleteProject', { id: kids[2].id });
      expect(await codeOf(admin.call('GetProject', { id: kids[2].id }))).toBe(NOT_FOUND);
    });

    it('names the field of bad input and changes nothing', async () => {
      const before = (await admin.call('ListProjects', { pageSize: 1000 })).projects.length;
      expect(await errorOf(admin.call('CreateProject', { project: { name: '', domainId: 'default' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'name' });
      expect(await errorOf(admin.call('CreateProject', { project: { name: 'x', domainId: 'no-such-domain' } }))).toMatchObject({ code: NOT_FOUND, field: 'domain_id' });
      expect(await errorOf(admin.call('CreateEndpoint', { endpoint: { serviceId: 's', regionId: 'RegionOne', interface: 'sideways', url: 'https://x' } }))).toMatchObject({
        code: INVALID_ARGUMENT,
        field: 'interface',
      });
      expect(await errorOf(admin.call('ListProjects', { pageSize: 5000 }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'page_size' });
      expect(await errorOf(admin.call('UpdateProject', { project: { id: t.boot.adminProjectId }, updateMask: { paths: [] } }))).toMatchObject({
        code: INVALID_ARGUMENT,
        field: 'update_mask',
      });
      expect((await admin.call('ListProjects', { pageSize: 1000 })).projects.length).toBe(before);
    });

    it('creates once per request_id', async () => {
      const requestId = randomUUID();
      const req = { project: { name: name('idem'), domainId: 'default' }, requestId };
      const first = (await admin.call('CreateProject', req)).project;
      const second = (await admin.call('CreateProject', req)).project;
      expect(second.id).toBe(first.id);
      expect((await admin.call('ListProjects', { name: req.project.name })).projects).toHaveLength(1);
    });

    it('manages users, and never shows a password', async () => {
      const u = (await admin.call('CreateUser', { user: { name: name('u'), domainId: 'default', email: 'u@example.org' }, password: 'pw' })).user;
      expect(JSON.stringify(u)).not.toMatch(/scrypt|pw/);
      expect((await admin.call('ListUsers', { name: u.name })).users).toHaveLength(1);
      const up = await admin.call('UpdateUser', { user: { id: u.id, email: 'new@example.org' }, updateMask: { paths: ['email'] } });
      expect(up.user.email).toBe('new@example.org');
      expect(await errorOf(admin.call('UpdateUser', { user: { id: u.id, email: 'bad' }, updateMask: { paths: ['email'] } }))).toMatchObject({ field: 'email' });
      expect(await errorOf(admin.call('CreateUser', { user: { name: u.name, domainId: 'default' }, password: 'p' }))).toMatchObject({ code: ALREADY_EXISTS });
      expect(await errorOf(admin.call('CreateUser', { user: { name: name('nopw'), domainId: 'default' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'password' });
      await admin.call('DeleteUser', { id: u.id });
      expect(await codeOf(admin.call('GetUser', { id: u.id }))).toBe(NOT_FOUND);
    });

    it('manages groups and their members', async () => {
      const g = (await admin.call('CreateGroup', { group: { name: name('g'), domainId: 'default' } })).group;
      const u = (await admin.call('CreateUser', { user: { name: name('gm'), domainId: 'default' }, password: 'p' })).user;
      expect((await admin.call('GetGroup', { id: g.id })).group.name).toBe(g.name);
      expect((await admin.call('ListGroups', { name: g.name })).groups).toHaveLength(1);
      expect((await admin.call('UpdateGroup', { group: { id: g.id, description: 'ops' }, updateMask: { paths: ['description'] } })).group.description).toBe('ops');
      await admin.call('AddGroupMember', { groupId: g.id, userId: u.id });
      await admin.call('AddGroupMember', { groupId: g.id, userId: u.id });
      expect(await codeOf(admin.call('CheckGroupMember', { groupId: g.id, userId: u.id }))).toBe(0);
      expect((await admin.call('ListGroupMembers', { groupId: g.id })).users.map((x: { id: string }) => x.id)).toEqual([u.id]);
      await admin.call('RemoveGroupMember', { groupId: g.id, userId: u.id });
      expect(await codeOf(admin.call('CheckGroupMember', { groupId: g.id, userId: u.id }))).toBe(NOT_FOUND);
      expect(await errorOf(admin.call('RemoveGroupMember', { groupId: g.id, userId: u.id }))).toMatchObject({ code: NOT_FOUND });
      await admin.call('DeleteGroup', { id: g.id });
      expect(await codeOf(admin.call('GetGroup', { id: g.id }))).toBe(NOT_FOUND);
    });

    it('manages custom roles that imply others, and expands them in tokens and effective assignments', async () => {
      const auditor = (await admin.call('CreateRole', { role: { name: name('auditor'), implies: [roleId('reader')] } })).role;
      expect((await admin.call('GetRole', { id: auditor.id })).role.implies).toEqual([roleId('reader')]);
      expect((await admin.call('ListRoles', { name: auditor.name })).roles).toHaveLength(1);
      expect(await errorOf(admin.call('CreateRole', { role: { name: name('r'), implies: ['missing'] } }))).toMatchObject({ code: NOT_FOUND, field: 'implies[0]' });
      const m = await member('member');
      await admin.call('CreateRoleAssignment', { assignment: { userId: m.user.id, projectId: m.project.id, roleId: auditor.id } });
      const token = await t.login(m.user.name, m.password, { projectId: m.project.id });
      expect((await t.client(token).call('ValidateToken', { token })).info.roles).toEqual([auditor.name, 'member', 'reader'].sort());
      const eff = await admin.call('ListRoleAssignments', { userId: m.user.id, effective: true });
      expect(eff.assignments.map((a: { roleId: string }) => a.roleId).sort()).toEqual([auditor.id, roleId('member'), roleId('reader')].sort());
      const up = await admin.call('UpdateRole', { role: { id: auditor.id, description: 'reads' }, updateMask: { paths: ['description'] } });
      expect(up.role.description).toBe('reads');
      await admin.call('DeleteRole', { id: auditor.id });
      expect(await codeOf(admin.call('GetRole', { id: auditor.id }))).toBe(NOT_FOUND);
      // The token named the deleted role: it no longer validates; a new one lacks the role.
      expect(await codeOf(t.client(token).call('ListRoles', {}))).toBe(UNAUTHENTICATED);
      const fresh = await t.login(m.user.name, m.password, { projectId: m.project.id });
      expect((await t.client(fresh).call('ValidateToken', { token: fresh })).info.roles).toEqual(['member', 'reader']);
    });

    it('grants roles on domains inherited to their projects, and on the system', async () => {
      const d = (await admin.call('CreateDomain', { domain: { name: name('inh') } })).domain;
      const p = (await admin.call('CreateProject', { project: { name: 'inherits', domainId: d.id } })).project;
      const u = (await admin.call('CreateUser', { user: { name: name('iu'), domainId: 'default' }, password: 'pw' })).user;
      const a = (await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, domainId: d.id, roleId: roleId('member'), inherited: true } })).assignment;
      expect((await admin.call('GetRoleAssignment', { id: a.id })).assignment).toMatchObject({ userId: u.id, domainId: d.id, inherited: true });
      const token = await t.login(u.name, 'pw', { projectId: p.id });
      expect((await t.client(token).call('ValidateToken', { token })).info.roles).toEqual(['member', 'reader']);
      // Inherited only: not on the domain itself.
      expect(await codeOf(t.login(u.name, 'pw', { domainId: d.id }))).toBe(UNAUTHENTICATED);
      await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, system: true, roleId: roleId('reader') } });
      const sys = await t.login(u.name, 'pw', { system: true });
      expect((await t.client(sys).call('ValidateToken', { token: sys })).info).toMatchObject({ system: true, roles: ['reader'] });
      expect(await errorOf(admin.call('CreateRoleAssignment', { assignment: { userId: u.id, roleId: roleId('member') } }))).toMatchObject({
        code: INVALID_ARGUMENT,
        field: 'assignment.target',
      });
    });

    it('manages the catalog: regions, services, endpoints', async () => {
      const region = (await admin.call('CreateRegion', { region: { id: name('Region'), description: 'second' } })).region;
      const svc = (await admin.call('CreateService', { service: { type: 'compute', name: 'strata-compute' } })).service;
      const ep = (await admin.call('CreateEndpoint', { endpoint: { serviceId: svc.id, regionId: region.id, interface: 'public', url: 'grpcs://compute:5051' } })).endpoint;
      expect((await admin.call('GetRegion', { id: region.id })).region.description).toBe('second');
      expect((await admin.call('GetService', { id: svc.id })).service.type).toBe('compute');
      expect((await admin.call('GetEndpoint', { id: ep.id })).endpoint.url).toBe('grpcs://compute:5051');
      const m = await member('reader');
      expect((await m.client.call('ListEndpoints', { serviceId: svc.id })).endpoints.map((e: { id: string }) => e.id)).toEqual([ep.id]);
      expect((await m.client.call('ListServices', { type: 'compute' })).services).toHaveLength(1);
      expect((await m.client.call('ListRegions', {})).regions.map((r: { id: string }) => r.id)).toContain(region.id);
      expect(await codeOf(admin.call('DeleteService', { id: svc.id }))).toBe(FAILED_PRECONDITION);
      await admin.call('UpdateEndpoint', { endpoint: { id: ep.id, enabled: false }, updateMask: { paths: ['enabled'] } });
      await admin.call('UpdateRegion', { region: { id: region.id, description: 'renamed' }, updateMask: { paths: ['description'] } });
      await admin.call('UpdateService', { service: { id: svc.id, name: 'nova-like' }, updateMask: { paths: ['name'] } });
      const catalog = (await admin.call('ValidateToken', { token: admin.token })).info.catalog;
      expect(catalog.find((s: { id: string }) => s.id === svc.id)?.endpoints ?? []).toEqual([]);
      await admin.call('DeleteEndpoint', { id: ep.id });
      await admin.call('DeleteService', { id: svc.id });
      await admin.call('DeleteRegion', { id: region.id });
      expect(await codeOf(admin.call('GetRegion', { id: region.id }))).toBe(NOT_FOUND);
    });
  });
});

describe('IdentityService on a moving clock', () => {
  let t: TestCloud;
  beforeAll(async () => {
    t = await startTestCloud({ lockoutAttempts: 3, lockoutDurationMs: 60_000, tokenTtlMs: 600_000 });
  }, 120_000);
  afterAll(async () => t?.close());

  it('rejects an expired token', async () => {
    const token = await t.adminToken();
    expect(await codeOf(t.client(token).call('ListRoles', {}))).toBe(0);
    t.advance(600_001);
    expect(await errorOf(t.client(token).call('ListRoles', {}))).toMatchObject({ code: UNAUTHENTICATED, details: expect.stringContaining('expired') });
  });

  it('locks an account after 3 failures in a row, for the lockout duration', async () => {
    const admin = t.client(await t.adminToken());
    const u = (await admin.call('CreateUser', { user: { name: 'locky', domainId: 'default' }, password: 'right' })).user;
    for (let i = 0; i < 3; i++) expect(await codeOf(t.login('locky', 'wrong'))).toBe(UNAUTHENTICATED);
    expect(await errorOf(t.login('locky', 'right'))).toMatchObject({ code: UNAUTHENTICATED, details: expect.stringContaining('locked') });
    expect((await admin.call('GetUser', { id: u.id })).user.lockedUntilMs).toBeGreaterThan(0);
    t.advance(60_001);
    expect(await codeOf(t.login('locky', 'right'))).toBe(0);
    // A success clears the count: two failures do not lock.
    for (let i = 0; i < 2; i++) expect(await codeOf(t.login('locky', 'wrong'))).toBe(UNAUTHENTICATED);
    expect(await codeOf(t.login('locky', 'right'))).toBe(0);
  });
});
