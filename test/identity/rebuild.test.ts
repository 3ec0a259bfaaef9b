// Issue 3 acceptance e: the identity read models rebuilt from offset 0 of the log equal the live
// ones, row for row, after a history with creates, updates, deletes, grants, revocations and logins.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { roleId } from '../../api/identity/bootstrap.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';
import { PostgresStore } from '../../infra/store/postgres-store.js';
import { IDENTITY_TABLES, identityProjection } from '../../projections/identity/identity.projection.js';
import type { Store } from '../../infra/store/store.js';
import { startTestCloud, type TestCloud } from './cloud.js';

async function dump(store: Store): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of IDENTITY_TABLES) {
    const rows = await store.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
    // PostgreSQL returns BIGINT as strings and SQLite as numbers: compare numbers as numbers.
    const norm = (v: unknown) => (typeof v === 'bigint' || typeof v === 'number' || (typeof v === 'string' && /^-?\d+$/.test(v)) ? Number(v) : v);
    out[table] = rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, norm(v)]).sort())).sort();
  }
  return out;
}

describe('identity read models', () => {
  let t: TestCloud;
  beforeAll(async () => {
    t = await startTestCloud();
    const admin = t.client(await t.adminToken());
    const d = (await admin.call('CreateDomain', { domain: { name: 'rebuild' } })).domain;
    const p = (await admin.call('CreateProject', { project: { name: 'web', domainId: d.id } })).project;
    const child = (await admin.call('CreateProject', { project: { name: 'child', domainId: d.id, parentId: p.id } })).project;
    const u = (await admin.call('CreateUser', { user: { name: 'carol', domainId: d.id }, password: 'pw1' })).user;
    const g = (await admin.call('CreateGroup', { group: { name: 'ops', domainId: d.id } })).group;
    await admin.call('AddGroupMember', { groupId: g.id, userId: u.id });
    await admin.call('CreateRoleAssignment', { assignment: { groupId: g.id, projectId: p.id, roleId: roleId('member') } });
    const a = (await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, projectId: child.id, roleId: roleId('reader') } })).assignment;
    await admin.call('UpdateUser', { user: { id: u.id }, password: 'pw2' });
    await admin.call('UpdateProject', { project: { id: child.id, description: 'x', enabled: false }, updateMask: { paths: ['description', 'enabled'] } });
    await admin.call('DeleteRoleAssignment', { id: a.id });
    await admin.call('RemoveGroupMember', { groupId: g.id, userId: u.id });
    const svc = (await admin.call('CreateService', { service: { type: 'image', name: 'glance-like' } })).service;
    await admin.call('CreateEndpoint', { endpoint: { serviceId: svc.id, regionId: 'RegionOne', interface: 'public', url: 'https://image' } });
    await admin.call('CreateRole', { role: { name: `r-${randomUUID().slice(0, 6)}`, implies: [roleId('reader')] } });
    const token = await t.login('admin', 'correct horse battery staple');
    await t.client(token).call('RevokeToken', { token });
    await t.login('admin', 'wrong').catch(() => undefined);
  }, 120_000);
  afterAll(async () => t?.close());

  it('rebuilt from offset 0 into a fresh SQLite store equal the live rows', async () => {
    const fresh = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'strata-rebuild-')), 'rm.db'));
    await ProjectionRunner.rebuild(t.log, fresh, identityProjection(domainTopics('identity').events));
    const live = await dump(t.store);
    expect(live.identity_projects.length).toBeGreaterThan(2);
    expect(live.identity_revocations.length).toBeGreaterThan(2);
    expect(await dump(fresh)).toEqual(live);
    await fresh.close();
  });

  it('rebuilt into PostgreSQL equal the live SQLite rows', async () => {
    const pg = new PostgresStore(process.env.STRATA_TEST_PG_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/test', `identity_${randomUUID().slice(0, 8)}`);
    await ProjectionRunner.rebuild(t.log, pg, identityProjection(domainTopics('identity').events));
    expect(await dump(pg)).toEqual(await dump(t.store));
    await pg.close();
  });
});
