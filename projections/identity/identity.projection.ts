// The identity read models: one table per resource kind, group members, role assignments, the
// token audit trail, and the revocation list that token validation checks. Pure: an event in,
// statements out (SQL that SQLite and PostgreSQL share; booleans are 0/1 integers).
import { identityCodecFor, identityEventTypes } from '../../infra/codecs/identity.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import type { Statement } from '../../infra/store/store.js';
import type { RoleAssignment, TokenRecord } from '../../domains/identity/identity.types.js';

type Row = Record<string, unknown>;
const b = (v: unknown) => (v ? 1 : 0);

interface TableSpec {
  table: string;
  /** resource field -> column */
  columns: Record<string, string>;
}

/** Resource kinds stored as rows: field of the resource message -> column. */
export const RESOURCE_TABLES: Record<string, TableSpec> = {
  domain: { table: 'identity_domains', columns: { id: 'id', name: 'name', description: 'description', enabled: 'enabled' } },
  project: {
    table: 'identity_projects',
    columns: { id: 'id', name: 'name', description: 'description', domainId: 'domain_id', parentId: 'parent_id', enabled: 'enabled' },
  },
  user: {
    table: 'identity_users',
    columns: {
      id: 'id', name: 'name', domainId: 'domain_id', email: 'email', description: 'description',
      defaultProjectId: 'default_project_id', enabled: 'enabled', lockedUntilMs: 'locked_until_ms',
    },
  },
  group: { table: 'identity_groups', columns: { id: 'id', name: 'name', domainId: 'domain_id', description: 'description' } },
  role: { table: 'identity_roles', columns: { id: 'id', name: 'name', description: 'description', implies: 'implies' } },
  region: { table: 'identity_regions', columns: { id: 'id', description: 'description', parentRegionId: 'parent_region_id' } },
  service: { table: 'identity_services', columns: { id: 'id', type: 'type', name: 'name', description: 'description', enabled: 'enabled' } },
  endpoint: {
    table: 'identity_endpoints',
    columns: { id: 'id', serviceId: 'service_id', regionId: 'region_id', interface: 'interface', url: 'url', enabled: 'enabled' },
  },
};

const BOOLEAN_FIELDS = new Set(['enabled']);
const columnType = (field: string) =>
  field === 'id' ? 'TEXT PRIMARY KEY' : BOOLEAN_FIELDS.has(field) ? 'INTEGER NOT NULL' : field === 'lockedUntilMs' ? 'BIGINT NOT NULL' : 'TEXT NOT NULL';

const toColumn = (field: string, value: unknown) =>
  BOOLEAN_FIELDS.has(field) ? b(value) : field === 'implies' ? JSON.stringify(value ?? []) : field === 'lockedUntilMs' ? Number(value ?? 0) : (value ?? '');

const upsert = (kind: string, resource: Row): Statement => {
  const { table, columns } = RESOURCE_TABLES[kind];
  const fields = Object.keys(columns);
  const cols = fields.map((f) => columns[f]);
  return {
    sql:
      `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ` +
      `ON CONFLICT (id) DO UPDATE SET ${cols.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ')}`,
    params: fields.map((f) => toColumn(f, resource[f])),
  };
};

const remove = (kind: string, id: string): Statement => ({ sql: `DELETE FROM ${RESOURCE_TABLES[kind].table} WHERE id = $1`, params: [id] });

const revoke = (event: EventEnvelope, kind: 'user' | 'project' | 'domain' | 'audit', subjectId: string, suffix = ''): Statement => ({
  sql: `INSERT INTO identity_revocations (id, kind, subject_id, issued_before_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
  params: [`${event.eventId}${suffix}`, kind, subjectId, event.occurredAtMs],
});

/** Every member of a group loses the tokens issued so far. */
const revokeMembers = (event: EventEnvelope, groupId: string): Statement => ({
  sql: `INSERT INTO identity_revocations (id, kind, subject_id, issued_before_ms)
        SELECT $1 || '/' || user_id, 'user', user_id, $2 FROM identity_group_members WHERE group_id = $3
        ON CONFLICT (id) DO NOTHING`,
  params: [event.eventId, event.occurredAtMs, groupId],
});

const assignmentRow = (a: RoleAssignment): Statement => ({
  sql: `INSERT INTO identity_role_assignments (id, actor_type, actor_id, target_type, target_id, role_id, inherited)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
  params: [
    a.id,
    a.userId ? 'user' : 'group',
    a.userId || a.groupId,
    a.projectId ? 'project' : a.domainId ? 'domain' : 'system',
    a.projectId || a.domainId || 'all',
    a.roleId,
    b(a.inherited),
  ],
});

export const IDENTITY_SCHEMA = [
  ...Object.values(RESOURCE_TABLES).map(
    ({ table, columns }) => `CREATE TABLE IF NOT EXISTS ${table} (${Object.entries(columns).map(([f, c]) => `${c} ${columnType(f)}`).join(', ')})`,
  ),
  `CREATE TABLE IF NOT EXISTS identity_user_secrets (user_id TEXT PRIMARY KEY, password_hash TEXT NOT NULL, failed_attempts INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS identity_group_members (group_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (group_id, user_id))`,
  `CREATE TABLE IF NOT EXISTS identity_role_assignments (id TEXT PRIMARY KEY, actor_type TEXT NOT NULL, actor_id TEXT NOT NULL,
     target_type TEXT NOT NULL, target_id TEXT NOT NULL, role_id TEXT NOT NULL, inherited INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS identity_revocations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, subject_id TEXT NOT NULL, issued_before_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS identity_tokens (audit_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, project_id TEXT NOT NULL,
     domain_id TEXT NOT NULL, system INTEGER NOT NULL, methods TEXT NOT NULL, roles TEXT NOT NULL, issued_at_ms BIGINT NOT NULL,
     expires_at_ms BIGINT NOT NULL, state TEXT NOT NULL)`,
  `CREATE INDEX IF NOT EXISTS identity_users_name ON identity_users (domain_id, name)`,
  `CREATE INDEX IF NOT EXISTS identity_projects_name ON identity_projects (domain_id, name)`,
  `CREATE INDEX IF NOT EXISTS identity_ra_actor ON identity_role_assignments (actor_id)`,
  `CREATE INDEX IF NOT EXISTS identity_members_user ON identity_group_members (user_id)`,
];

export const IDENTITY_TABLES = [
  ...Object.values(RESOURCE_TABLES).map((t) => t.table),
  'identity_user_secrets',
  'identity_group_members',
  'identity_role_assignments',
  'identity_revocations',
  'identity_tokens',
];

/** Events after which the in-memory revocation index must reload. */
export const REVOKING_EVENTS = new Set([
  'UserDisabled', 'UserDeleted', 'UserPasswordChanged', 'GroupMemberRemoved', 'GroupDeleted', 'RoleRevoked',
  'ProjectDisabled', 'ProjectDeleted', 'DomainDisabled', 'DomainDeleted', 'TokenRevoked', 'RoleDeleted',
]);

export function identityStatements(event: EventEnvelope): Statement[] {
  const e = identityCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Row & { type: string };
  const id = event.aggregateId;
  const kind = event.aggregateType;
  switch (e.type) {
    case 'DomainCreated': case 'ProjectCreated': case 'GroupCreated': case 'RoleCreated': case 'RegionCreated':
    case 'ServiceCreated': case 'EndpointCreated': case 'DomainUpdated': case 'ProjectUpdated': case 'GroupUpdated':
    case 'RoleUpdated': case 'RegionUpdated': case 'ServiceUpdated': case 'EndpointUpdated': case 'UserUpdated':
      return [upsert(kind, e[kind] as Row)];
    case 'UserCreated':
      return [
        upsert('user', e.user as Row),
        {
          sql: `INSERT INTO identity_user_secrets (user_id, password_hash, failed_attempts) VALUES ($1, $2, 0)
                ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash, failed_attempts = 0`,
          params: [id, e.passwordHash],
        },
      ];
    case 'UserPasswordChanged':
      return [
        { sql: 'UPDATE identity_user_secrets SET password_hash = $2, failed_attempts = 0 WHERE user_id = $1', params: [id, e.passwordHash] },
        { sql: 'UPDATE identity_users SET locked_until_ms = 0 WHERE id = $1', params: [id] },
        revoke(event, 'user', id),
      ];
    case 'UserAuthenticationFailed':
      return [{ sql: 'UPDATE identity_user_secrets SET failed_attempts = $2 WHERE user_id = $1', params: [id, e.attempts] }];
    case 'UserLockedOut':
      return [{ sql: 'UPDATE identity_users SET locked_until_ms = $2 WHERE id = $1', params: [id, e.lockedUntilMs] }];
    case 'UserAuthenticationReset':
      return [
        { sql: 'UPDATE identity_user_secrets SET failed_attempts = 0 WHERE user_id = $1', params: [id] },
        { sql: 'UPDATE identity_users SET locked_until_ms = 0 WHERE id = $1', params: [id] },
      ];
    case 'UserDisabled':
      return [revoke(event, 'user', id)];
    case 'UserDeleted':
      return [
        remove('user', id),
        { sql: 'DELETE FROM identity_user_secrets WHERE user_id = $1', params: [id] },
        { sql: 'DELETE FROM identity_group_members WHERE user_id = $1', params: [id] },
        { sql: `DELETE FROM identity_role_assignments WHERE actor_type = 'user' AND actor_id = $1`, params: [id] },
        revoke(event, 'user', id),
      ];
    case 'ProjectDisabled':
    case 'DomainDisabled':
      return [revoke(event, kind as 'project' | 'domain', id)];
    case 'ProjectDeleted':
    case 'DomainDeleted':
      return [
        remove(kind, id),
        { sql: `DELETE FROM identity_role_assignments WHERE target_type = $1 AND target_id = $2`, params: [kind, id] },
        revoke(event, kind as 'project' | 'domain', id),
      ];
    case 'GroupDeleted':
      return [
        revokeMembers(event, id),
        remove('group', id),
        { sql: 'DELETE FROM identity_group_members WHERE group_id = $1', params: [id] },
        { sql: `DELETE FROM identity_role_assignments WHERE actor_type = 'group' AND actor_id = $1`, params: [id] },
      ];
    case 'RoleDeleted':
      // Tokens carry role names: everyone who held the role, directly or through a group, loses them.
      return [
        {
          sql: `INSERT INTO identity_revocations (id, kind, subject_id, issued_before_ms)
                SELECT $1 || '/u/' || actor_id, 'user', actor_id, $2 FROM identity_role_assignments WHERE role_id = $3 AND actor_type = 'user'
                ON CONFLICT (id) DO NOTHING`,
          params: [event.eventId, event.occurredAtMs, id],
        },
        {
          sql: `INSERT INTO identity_revocations (id, kind, subject_id, issued_before_ms)
                SELECT $1 || '/g/' || m.user_id, 'user', m.user_id, $2 FROM identity_group_members m
                JOIN identity_role_assignments a ON a.actor_type = 'group' AND a.actor_id = m.group_id WHERE a.role_id = $3
                ON CONFLICT (id) DO NOTHING`,
          params: [event.eventId, event.occurredAtMs, id],
        },
        remove('role', id),
        { sql: 'DELETE FROM identity_role_assignments WHERE role_id = $1', params: [id] },
      ];
    case 'RegionDeleted': case 'ServiceDeleted': case 'EndpointDeleted':
      return [remove(kind, id)];
    case 'GroupMemberAdded':
      return [{ sql: 'INSERT INTO identity_group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', params: [id, e.userId] }];
    case 'GroupMemberRemoved':
      return [
        { sql: 'DELETE FROM identity_group_members WHERE group_id = $1 AND user_id = $2', params: [id, e.userId] },
        revoke(event, 'user', e.userId as string),
      ];
    case 'RoleGranted':
      return [assignmentRow({ ...(e.assignment as RoleAssignment), id })];
    case 'RoleRevoked': {
      const a = e.assignment as RoleAssignment;
      return [
        a.userId ? revoke(event, 'user', a.userId) : revokeMembers(event, a.groupId!),
        { sql: 'DELETE FROM identity_role_assignments WHERE id = $1', params: [id] },
      ];
    }
    case 'TokenIssued': {
      const t = e.token as TokenRecord;
      return [
        {
          sql: `INSERT INTO identity_tokens (audit_id, user_id, project_id, domain_id, system, methods, roles, issued_at_ms, expires_at_ms, state)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'issued') ON CONFLICT (audit_id) DO NOTHING`,
          params: [id, t.userId, t.projectId, t.domainId, b(t.system), t.methods.join(','), t.roles.join(','), t.issuedAtMs, t.expiresAtMs],
        },
      ];
    }
    case 'TokenRevoked':
      return [{ sql: `UPDATE identity_tokens SET state = 'revoked' WHERE audit_id = $1`, params: [id] }, revoke(event, 'audit', id)];
    case 'TokenExpired':
      return [{ sql: `UPDATE identity_tokens SET state = 'expired' WHERE audit_id = $1`, params: [id] }];
    default:
      // Enabled events and name claims change no row: enabled travels in the Updated event, names in the resource rows.
      return [];
  }
}

export const identityProjection = (eventsTopic: string): Projection => ({
  name: 'identity',
  topics: [eventsTopic],
  handles: identityEventTypes,
  schema: IDENTITY_SCHEMA,
  tables: IDENTITY_TABLES,
  apply: (event: EventEnvelope, _position: Position) => identityStatements(event),
});
