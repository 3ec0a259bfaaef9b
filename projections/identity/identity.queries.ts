// Queries over the identity read models: resources by id and name, paged lists, and the
// effective roles of a user on a scope (direct and through groups, inherited from domains and
// parent projects, expanded through implied roles), as Keystone computes them.
import type { Store } from '../../infra/store/store.js';
import type { RoleAssignment } from '../../domains/identity/identity.types.js';
import { RESOURCE_TABLES } from './identity.projection.js';

type Row = Record<string, unknown>;

export type Scope =
  | { kind: 'unscoped' }
  | { kind: 'project'; projectId: string; domainId: string }
  | { kind: 'domain'; domainId: string }
  | { kind: 'system' };

export function rowToResource(kind: string, row: Row): Row {
  const out: Row = {};
  for (const [field, column] of Object.entries(RESOURCE_TABLES[kind].columns)) {
    const v = row[column];
    out[field] = field === 'enabled' ? Number(v) === 1 : field === 'implies' ? JSON.parse(String(v || '[]')) : field === 'lockedUntilMs' ? Number(v) : v;
  }
  return out;
}

export const assignmentFromRow = (row: Row): RoleAssignment => ({
  id: String(row.id),
  ...(row.actor_type === 'user' ? { userId: String(row.actor_id) } : { groupId: String(row.actor_id) }),
  ...(row.target_type === 'project'
    ? { projectId: String(row.target_id) }
    : row.target_type === 'domain'
      ? { domainId: String(row.target_id) }
      : { system: true }),
  roleId: String(row.role_id),
  inherited: Number(row.inherited) === 1,
});

export interface Page<T> {
  items: T[];
  nextPageToken: string;
}

export const encodePageToken = (lastId: string) => Buffer.from(lastId, 'utf8').toString('base64url');
export const decodePageToken = (token: string): string => Buffer.from(token, 'base64url').toString('utf8');

export interface Where {
  sql: string[];
  params: unknown[];
}

export class IdentityQueries {
  constructor(readonly store: Store) {}

  async get(kind: string, id: string): Promise<Row | undefined> {
    const [row] = await this.store.query<Row>(`SELECT * FROM ${RESOURCE_TABLES[kind].table} WHERE id = $1`, [id]);
    return row ? rowToResource(kind, row) : undefined;
  }

  /** Rows of `table` matching `where`, by id, after the page token: size+1 rows tell whether more follow. */
  async page(table: string, where: Where, pageSize: number, pageToken: string, map: (row: Row) => Row): Promise<Page<Row>> {
    const sql = [...where.sql];
    const params = [...where.params];
    if (pageToken) {
      params.push(decodePageToken(pageToken));
      sql.push(`id > $${params.length}`);
    }
    params.push(pageSize + 1);
    const rows = await this.store.query<Row>(
      `SELECT * FROM ${table}${sql.length ? ` WHERE ${sql.join(' AND ')}` : ''} ORDER BY id LIMIT $${params.length}`,
      params,
    );
    const more = rows.length > pageSize;
    const items = rows.slice(0, pageSize);
    return { items: items.map(map), nextPageToken: more ? encodePageToken(String(items[items.length - 1].id)) : '' };
  }

  async byName(kind: 'domain' | 'project' | 'user' | 'group' | 'role', name: string, domainId?: string): Promise<Row | undefined> {
    const { table } = RESOURCE_TABLES[kind];
    const rows = await this.store.query<Row>(
      domainId === undefined
        ? `SELECT * FROM ${table} WHERE lower(name) = lower($1)`
        : `SELECT * FROM ${table} WHERE lower(name) = lower($1) AND domain_id = $2`,
      domainId === undefined ? [name] : [name, domainId],
    );
    return rows[0] ? rowToResource(kind, rows[0]) : undefined;
  }

  async userSecret(userId: string): Promise<{ passwordHash: string; failedAttempts: number } | undefined> {
    const [row] = await this.store.query<Row>('SELECT password_hash, failed_attempts FROM identity_user_secrets WHERE user_id = $1', [userId]);
    return row ? { passwordHash: String(row.password_hash), failedAttempts: Number(row.failed_attempts) } : undefined;
  }

  async groupsOf(userId: string): Promise<string[]> {
    const rows = await this.store.query<Row>('SELECT group_id FROM identity_group_members WHERE user_id = $1', [userId]);
    return rows.map((r) => String(r.group_id));
  }

  async isMember(groupId: string, userId: string): Promise<boolean> {
    const rows = await this.store.query('SELECT 1 FROM identity_group_members WHERE group_id = $1 AND user_id = $2', [groupId, userId]);
    return rows.length > 0;
  }

  /** The project's parents, nearest first. */
  async ancestors(projectId: string): Promise<string[]> {
    const out: string[] = [];
    let id = projectId;
    for (let depth = 0; depth < 64; depth++) {
      const [row] = await this.store.query<Row>('SELECT parent_id FROM identity_projects WHERE id = $1', [id]);
      const parent = row ? String(row.parent_id) : '';
      if (!parent || out.includes(parent)) break;
      out.push(parent);
      id = parent;
    }
    return out;
  }

  private async roleClosure(roleIds: Iterable<string>): Promise<{ id: string; name: string }[]> {
    const roles = await this.store.query<Row>('SELECT id, name, implies FROM identity_roles');
    const byId = new Map(roles.map((r) => [String(r.id), { name: String(r.name), implies: JSON.parse(String(r.implies || '[]')) as string[] }]));
    const seen = new Set<string>();
    const stack = [...roleIds];
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (seen.has(id) || !byId.has(id)) continue;
      seen.add(id);
      stack.push(...byId.get(id)!.implies);
    }
    return [...seen].map((id) => ({ id, name: byId.get(id)!.name })).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** The user's effective roles on a scope: none for an unscoped token. */
  async effectiveRoles(userId: string, scope: Scope): Promise<{ id: string; name: string }[]> {
    if (scope.kind === 'unscoped') return [];
    const actors = [userId, ...(await this.groupsOf(userId))];
    const inActors = actors.map((_, i) => `$${i + 1}`).join(', ');
    const params: unknown[] = [...actors];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    let target: string;
    if (scope.kind === 'system') target = `target_type = 'system'`;
    else if (scope.kind === 'domain') target = `target_type = 'domain' AND target_id = ${p(scope.domainId)} AND inherited = 0`;
    else {
      const ancestors = await this.ancestors(scope.projectId);
      target =
        `((target_type = 'project' AND target_id = ${p(scope.projectId)} AND inherited = 0)` +
        ` OR (target_type = 'domain' AND target_id = ${p(scope.domainId)} AND inherited = 1)` +
        (ancestors.length ? ` OR (target_type = 'project' AND inherited = 1 AND target_id IN (${ancestors.map((a) => p(a)).join(', ')}))` : '') +
        ')';
    }
    const rows = await this.store.query<Row>(`SELECT DISTINCT role_id FROM identity_role_assignments WHERE actor_id IN (${inActors}) AND ${target}`, params);
    return this.roleClosure(rows.map((r) => String(r.role_id)));
  }

  /**
   * Keystone's effective role assignments of a user: one per (target, role) where the user holds
   * the role, groups and inheritance resolved to the projects they reach, implied roles added.
   */
  async effectiveAssignments(userId: string): Promise<RoleAssignment[]> {
    const actors = [userId, ...(await this.groupsOf(userId))];
    const rows = await this.store.query<Row>(
      `SELECT * FROM identity_role_assignments WHERE actor_id IN (${actors.map((_, i) => `$${i + 1}`).join(', ')})`,
      actors,
    );
    const projects = await this.store.query<Row>('SELECT id, domain_id, parent_id FROM identity_projects');
    const children = new Map<string, string[]>();
    for (const pr of projects) children.set(String(pr.parent_id), [...(children.get(String(pr.parent_id)) ?? []), String(pr.id)]);
    const descendants = (id: string): string[] => (children.get(id) ?? []).flatMap((c) => [c, ...descendants(c)]);
    const targets = new Map<string, { target: Partial<RoleAssignment>; roles: Set<string> }>();
    const add = (key: string, target: Partial<RoleAssignment>, role: string) => {
      const t = targets.get(key) ?? { target, roles: new Set<string>() };
      t.roles.add(role);
      targets.set(key, t);
    };
    for (const r of rows) {
      const a = assignmentFromRow(r);
      if (a.system) add('s', { system: true }, a.roleId);
      else if (a.domainId && !a.inherited) add(`d.${a.domainId}`, { domainId: a.domainId }, a.roleId);
      else if (a.domainId) {
        for (const pr of projects.filter((x) => x.domain_id === a.domainId)) add(`p.${pr.id}`, { projectId: String(pr.id) }, a.roleId);
      } else if (a.projectId && !a.inherited) add(`p.${a.projectId}`, { projectId: a.projectId }, a.roleId);
      else if (a.projectId) for (const d of descendants(a.projectId)) add(`p.${d}`, { projectId: d }, a.roleId);
    }
    const out: RoleAssignment[] = [];
    for (const [key, { target, roles }] of [...targets].sort(([a], [b]) => a.localeCompare(b))) {
      for (const role of await this.roleClosure(roles)) {
        out.push({ id: `${key}.${role.id}`, userId, ...target, roleId: role.id, inherited: false });
      }
    }
    return out;
  }

  private cachedCatalog: Promise<{ id: string; type: string; name: string; endpoints: Row[] }[]> | undefined;

  /** Forget the cached catalog (the projection applied a service or endpoint event). */
  invalidateCatalog(): void {
    this.cachedCatalog = undefined;
  }

  /** Enabled services with their enabled endpoints; cached until invalidateCatalog(). */
  catalog(): Promise<{ id: string; type: string; name: string; endpoints: Row[] }[]> {
    this.cachedCatalog ??= this.loadCatalog().catch((e) => {
      this.cachedCatalog = undefined;
      throw e;
    });
    return this.cachedCatalog;
  }

  private async loadCatalog(): Promise<{ id: string; type: string; name: string; endpoints: Row[] }[]> {
    const services = await this.store.query<Row>('SELECT * FROM identity_services WHERE enabled = 1 ORDER BY type, id');
    const endpoints = await this.store.query<Row>('SELECT * FROM identity_endpoints WHERE enabled = 1 ORDER BY id');
    return services.map((s) => ({
      id: String(s.id),
      type: String(s.type),
      name: String(s.name),
      endpoints: endpoints.filter((e) => e.service_id === s.id).map((e) => rowToResource('endpoint', e)),
    }));
  }
}
