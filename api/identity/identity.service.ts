// IdentityService: every RPC authenticates the caller (but IssueToken), enforces its policy
// rule, validates input with the domain's field rules, then sends commands or reads the
// identity read models. Writes return once the read model shows them (read-your-writes).
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Metadata, ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { validateAssignment, validateResource, validateUpdate, assignmentId, camel } from '../../domains/identity/identity.validation.js';
import type { RoleAssignment } from '../../domains/identity/identity.types.js';
import type { Actor } from '../../infra/envelope/envelope.js';
import { tracer } from '../../infra/telemetry/telemetry.js';
import { RESOURCE_TABLES } from '../../projections/identity/identity.projection.js';
import {
  assignmentFromRow,
  rowToResource,
  type IdentityQueries,
  type Where,
} from '../../projections/identity/identity.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { pageSize, required, type Req, type Res } from '../request.js';
import { dummyVerify, hashPassword, verifyPassword } from '../auth/password.js';
import { newAuditId, type TokenCodec, type TokenPayload, type TokenScope } from '../auth/token.js';
import { ApiError, invalid, refuse, toServiceError } from '../errors.js';
import type { Caller } from '../policy/policy.js';
import { identityPolicy } from '../policy/identity.policy.js';
import { resourceId, type IdentityWriter } from './identity.writer.js';


export interface IdentityServiceOptions {
  writer: IdentityWriter;
  queries: IdentityQueries;
  tokens: TokenCodec;
  /** Who calls: token validation and revocation, shared with the other services. */
  authenticator: Authenticator;
  /** Token lifetime (Keystone's [token] expiration, 3600 s). */
  tokenTtlMs: number;
  /** Failed password attempts in a row before a lockout (0: never), and its length. */
  lockoutAttempts: number;
  lockoutDurationMs: number;
  /** The API's clock; tests move it. */
  now?: () => number;
}

const UNAUTHENTICATED = 'the request you have made requires authentication: invalid credentials';

const KINDS = {
  domain: { noun: 'Domain', plural: 'Domains', listField: 'domains', filters: { name: 'name' } },
  project: { noun: 'Project', plural: 'Projects', listField: 'projects', filters: { domainId: 'domain_id', parentId: 'parent_id', name: 'name' } },
  user: { noun: 'User', plural: 'Users', listField: 'users', filters: { domainId: 'domain_id', name: 'name' } },
  group: { noun: 'Group', plural: 'Groups', listField: 'groups', filters: { domainId: 'domain_id', name: 'name' } },
  role: { noun: 'Role', plural: 'Roles', listField: 'roles', filters: { name: 'name' } },
  region: { noun: 'Region', plural: 'Regions', listField: 'regions', filters: { parentRegionId: 'parent_region_id' } },
  service: { noun: 'Service', plural: 'Services', listField: 'services', filters: { type: 'type' } },
  endpoint: { noun: 'Endpoint', plural: 'Endpoints', listField: 'endpoints', filters: { serviceId: 'service_id', regionId: 'region_id', interface: 'interface' } },
} as const;
type Kind = keyof typeof KINDS;
const TOGGLES = new Set<Kind>(['domain', 'project', 'user', 'service', 'endpoint']);

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const rpcRule = (rpc: string) => `identity:${snake(rpc).replace(/^_/, '')}`;
const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

const actorOf = (c: Caller): Actor => ({
  userId: c.userId,
  projectId: c.scope.kind === 'project' ? c.scope.projectId : '',
  roles: c.roles,
});

/** A resource as the client sent it, with defaults: enabled unless said otherwise. */
function fromRequest(kind: Kind, input: Req | undefined, id: string): Record<string, unknown> {
  const r: Record<string, unknown> = { ...(input ?? {}), id };
  for (const k of Object.keys(r)) if (!(k in RESOURCE_TABLES[kind].columns)) delete r[k];
  if (TOGGLES.has(kind)) r.enabled = input?.enabled ?? true;
  if (kind === 'user') r.lockedUntilMs = 0;
  return r;
}

export function createIdentityService(o: IdentityServiceOptions): UntypedServiceImplementation {
  const { writer, queries, tokens } = o;
  const now = o.now ?? Date.now;

  // ---- authentication (shared with every service: api/auth/authenticator.ts) --------------

  const validateToken = (token: string): TokenPayload => o.authenticator.validateToken(token);
  const authenticate = (metadata: Metadata): Caller => o.authenticator.authenticate(metadata);

  // ---- the RPC wrapper ---------------------------------------------------------------------

  const impl: UntypedServiceImplementation = {};
  function rpc(
    name: string,
    handler: (req: Req, caller: Caller, metadata: Metadata) => Promise<Res>,
    options: { public?: boolean; kind?: Kind } = {},
  ) {
    const rule = rpcRule(name);
    if (!options.public && !identityPolicy.has(rule)) throw new Error(`RPC ${name} has no policy rule ${rule}`);
    impl[name] = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const span = tracer().startSpan(`strata.identity.v1.IdentityService/${name}`, { kind: SpanKind.SERVER, attributes: { 'rpc.method': name } });
      context.with(trace.setSpan(context.active(), span), async () => {
        try {
          const c = options.public ? (undefined as unknown as Caller) : authenticate(call.metadata);
          if (c) {
            span.setAttribute('strata.user_id', c.userId);
            identityPolicy.enforce(rule, c, targetOf(call.request, options.kind));
          }
          callback(null, await handler(call.request, c, call.metadata));
        } catch (e) {
          const err = toServiceError(e);
          if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError)) console.error(`identity ${name}:`, e);
          span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
          callback(err as never, null);
        } finally {
          span.end();
        }
      });
    };
  }

  /** What policy rules look at: the ids a request names. */
  function targetOf(req: Req, kind?: Kind): Record<string, unknown> {
    const r = req ?? {};
    const target: Record<string, unknown> = {
      projectId: r.projectId || r.project?.id || r.assignment?.projectId,
      domainId: r.domainId || r.domain?.id,
      userId: r.userId || r.user?.id || r.assignment?.userId,
      id: r.id,
    };
    // Get/Update/Delete name their resource by id: GetProject's id is the target project.
    if (kind && r.id) target[`${kind}Id`] = r.id;
    return target;
  }

  // ---- tokens ------------------------------------------------------------------------------

  async function resolveDomainId(id: string, name: string, field: string): Promise<string | undefined> {
    if (id) return (await queries.get('domain', id)) ? id : undefined;
    if (name) return (await queries.byName('domain', name))?.id as string | undefined;
    throw invalid(field, 'name the domain by id or name');
  }

  async function passwordUser(p: Req): Promise<Record<string, unknown>> {
    const password = String(p?.password ?? '');
    if (!password) throw invalid('password.password', 'is required');
    let user: Record<string, unknown> | undefined;
    if (p.userId) user = await queries.get('user', p.userId);
    else if (p.userName) {
      const domainId = await resolveDomainId(p.domainId, p.domainName, 'password.domain_id');
      user = domainId ? await queries.byName('user', p.userName, domainId) : undefined;
    } else throw invalid('password.user_id', 'name the user by id, or by name and domain');
    const secret = user ? await queries.userSecret(String(user.id)) : undefined;
    if (!user || !secret) {
      await dummyVerify(password); // an unknown user costs as much as a wrong password
      throw refuse('UNAUTHENTICATED', UNAUTHENTICATED);
    }
    const t = now();
    if (Number(user.lockedUntilMs) > t) {
      await dummyVerify(password);
      throw refuse('UNAUTHENTICATED', `the account is locked after repeated failed attempts; try again after ${new Date(Number(user.lockedUntilMs)).toISOString()}`);
    }
    const ok = await verifyPassword(password, secret.passwordHash);
    const system: Actor = { userId: String(user.id), projectId: '', roles: [] };
    if (!ok) {
      if (o.lockoutAttempts > 0 && user.enabled) {
        await writer
          .send('user', String(user.id), { type: 'RecordAuthenticationFailure', maxAttempts: o.lockoutAttempts, lockoutDurationMs: o.lockoutDurationMs }, system)
          .catch(() => undefined);
      }
      throw refuse('UNAUTHENTICATED', UNAUTHENTICATED);
    }
    if (!user.enabled) throw refuse('UNAUTHENTICATED', UNAUTHENTICATED);
    const domain = await queries.get('domain', String(user.domainId));
    if (!domain?.enabled) throw refuse('UNAUTHENTICATED', UNAUTHENTICATED);
    if (secret.failedAttempts > 0 || Number(user.lockedUntilMs) > 0) {
      await writer.send('user', String(user.id), { type: 'RecordAuthenticationSuccess' }, system);
    }
    return user;
  }

  async function resolveScope(user: Record<string, unknown>, s: Req | undefined, from?: TokenPayload): Promise<TokenScope> {
    const kind = s?.kind as string | undefined;
    if (!kind) {
      if (from) return from.scope;
      // Keystone: the default project when it is enabled and the user has a role there, else unscoped.
      const dp = user.defaultProjectId ? await queries.get('project', String(user.defaultProjectId)) : undefined;
      if (dp?.enabled) {
        const scope: TokenScope = { kind: 'project', projectId: String(dp.id), domainId: String(dp.domainId) };
        if ((await queries.effectiveRoles(String(user.id), scope)).length > 0) return scope;
      }
      return { kind: 'unscoped' };
    }
    if (kind === 'unscoped') return { kind: 'unscoped' };
    if (kind === 'system') return { kind: 'system' };
    if (kind === 'domainId' || kind === 'domainName') {
      const domain = kind === 'domainId' ? await queries.get('domain', s!.domainId) : await queries.byName('domain', s!.domainName);
      if (!domain?.enabled) throw refuse('UNAUTHENTICATED', 'the scope names no enabled domain the user may use');
      return { kind: 'domain', domainId: String(domain.id) };
    }
    let project: Record<string, unknown> | undefined;
    if (kind === 'projectId') project = await queries.get('project', s!.projectId);
    else {
      const pn = s!.project ?? {};
      const domainId = await resolveDomainId(pn.domainId, pn.domainName, 'scope.project.domain_id');
      project = domainId ? await queries.byName('project', required('scope.project.name', pn.name), domainId) : undefined;
    }
    if (!project?.enabled) throw refuse('UNAUTHENTICATED', 'the scope names no enabled project the user may use');
    const domain = await queries.get('domain', String(project.domainId));
    if (!domain?.enabled) throw refuse('UNAUTHENTICATED', 'the scope names no enabled project the user may use');
    return { kind: 'project', projectId: String(project.id), domainId: String(project.domainId) };
  }

  async function tokenInfo(p: TokenPayload, withCatalog: boolean): Promise<Res> {
    const catalog = withCatalog && p.scope.kind !== 'unscoped' ? await queries.catalog() : [];
    return {
      methods: p.methods,
      userId: p.userId,
      userDomainId: p.userDomainId,
      projectId: p.scope.kind === 'project' ? p.scope.projectId : '',
      domainId: p.scope.kind === 'project' || p.scope.kind === 'domain' ? p.scope.domainId : '',
      system: p.scope.kind === 'system',
      roles: p.roles,
      issuedAt: timestamp(p.issuedAtMs),
      expiresAt: timestamp(p.expiresAtMs),
      auditIds: p.auditIds,
      catalog,
    };
  }

  rpc(
    'IssueToken',
    async (req) => {
      let user: Record<string, unknown>;
      let from: TokenPayload | undefined;
      if (req.method === 'password') user = await passwordUser(req.password);
      else if (req.method === 'token') {
        from = validateToken(required('token', req.token));
        if (from.scope.kind === 'system' && req.scope?.kind && req.scope.kind !== 'system') {
          throw refuse('PERMISSION_DENIED', 'a system-scoped token cannot be rescoped to a project or domain');
        }
        const u = await queries.get('user', from.userId);
        if (!u?.enabled) throw refuse('UNAUTHENTICATED', UNAUTHENTICATED);
        user = u;
      } else throw invalid('method', 'authenticate with password or token');
      const scope = await resolveScope(user, req.scope, from);
      const roles = (await queries.effectiveRoles(String(user.id), scope)).map((r) => r.name);
      if (scope.kind !== 'unscoped' && roles.length === 0) {
        throw refuse('UNAUTHENTICATED', 'the user has no role on the requested scope');
      }
      const issuedAtMs = now();
      const auditId = newAuditId();
      const payload: TokenPayload = {
        userId: String(user.id),
        userDomainId: String(user.domainId),
        methods: from ? [...new Set([...from.methods, 'token' as const])] : ['password'],
        scope,
        roles,
        issuedAtMs,
        // A rescoped token cannot outlive the token it came from.
        expiresAtMs: from ? from.expiresAtMs : issuedAtMs + o.tokenTtlMs,
        auditIds: from ? [auditId, from.auditIds[from.auditIds.length - 1]] : [auditId],
      };
      // The log records the issue (never the token) before the token is handed out.
      await writer.send(
        'token',
        auditId,
        {
          type: 'IssueToken',
          token: {
            auditId,
            userId: payload.userId,
            methods: payload.methods,
            projectId: scope.kind === 'project' ? scope.projectId : '',
            domainId: scope.kind === 'project' || scope.kind === 'domain' ? scope.domainId : '',
            system: scope.kind === 'system',
            roles,
            issuedAtMs,
            expiresAtMs: payload.expiresAtMs,
            auditIds: payload.auditIds,
          },
        },
        { userId: payload.userId, projectId: scope.kind === 'project' ? scope.projectId : '', roles },
        undefined,
        // Durable in the log is enough: no read of the token trail depends on it.
        { awaitReadModel: false },
      );
      return { token: tokens.issue(payload), info: await tokenInfo(payload, true) };
    },
    { public: true },
  );

  /** The subject token of Validate/Revoke: the caller's own, or anyone's for an admin or service. */
  function subject(req: Req, c: Caller): TokenPayload {
    let p: TokenPayload;
    try {
      p = validateToken(required('token', req.token));
    } catch (e) {
      if (e instanceof ApiError && e.rejection.code === 'UNAUTHENTICATED') throw refuse('NOT_FOUND', `token not found: ${e.message}`);
      throw e;
    }
    if (p.userId !== c.userId && !c.isAdmin && !c.roles.includes('service')) {
      throw refuse('PERMISSION_DENIED', "only an admin or a service may validate or revoke another user's token");
    }
    return p;
  }

  rpc('ValidateToken', async (req, c) => ({ info: await tokenInfo(subject(req, c), true) }));

  rpc('RevokeToken', async (req, c) => {
    const p = subject(req, c);
    // Revoking the original audit id revokes every token rescoped from it too.
    for (const auditId of p.auditIds.slice(0, 1)) await writer.send('token', auditId, { type: 'RevokeToken' }, actorOf(c));
    return {};
  });

  // ---- references between resources -------------------------------------------------------

  async function mustExist(kind: Kind, id: string, field: string): Promise<Record<string, unknown>> {
    const r = id ? await queries.get(kind, id) : undefined;
    if (!r) throw new ApiError({ code: 'NOT_FOUND', field, message: `${field}: ${kind} ${id || '(empty)'} does not exist` });
    return r;
  }

  async function checkReferences(kind: Kind, r: Record<string, unknown>): Promise<void> {
    if (kind === 'project' || kind === 'user' || kind === 'group') await mustExist('domain', String(r.domainId), 'domain_id');
    if (kind === 'project' && r.parentId) {
      const parent = await mustExist('project', String(r.parentId), 'parent_id');
      if (parent.domainId !== r.domainId) throw invalid('parent_id', `project ${r.parentId} is in domain ${parent.domainId}, not ${r.domainId}`);
    }
    if (kind === 'user' && r.defaultProjectId) await mustExist('project', String(r.defaultProjectId), 'default_project_id');
    if (kind === 'role') for (const [i, id] of ((r.implies as string[]) ?? []).entries()) await mustExist('role', id, `implies[${i}]`);
    if (kind === 'region' && r.parentRegionId) await mustExist('region', String(r.parentRegionId), 'parent_region_id');
    if (kind === 'endpoint') {
      await mustExist('service', String(r.serviceId), 'service_id');
      await mustExist('region', String(r.regionId), 'region_id');
    }
  }

  async function checkDeletable(kind: Kind, id: string): Promise<void> {
    const count = async (sql: string) => (await queries.store.query(sql, [id])).length;
    if (kind === 'project' && (await count('SELECT 1 FROM identity_projects WHERE parent_id = $1 LIMIT 1'))) {
      throw refuse('FAILED_PRECONDITION', `project ${id} has subprojects: delete them first`);
    }
    if (
      kind === 'domain' &&
      ((await count('SELECT 1 FROM identity_projects WHERE domain_id = $1 LIMIT 1')) ||
        (await count('SELECT 1 FROM identity_users WHERE domain_id = $1 LIMIT 1')) ||
        (await count('SELECT 1 FROM identity_groups WHERE domain_id = $1 LIMIT 1')))
    ) {
      throw refuse('FAILED_PRECONDITION', `domain ${id} still holds projects, users or groups: delete them first`);
    }
    if (kind === 'region' && (await count('SELECT 1 FROM identity_endpoints WHERE region_id = $1 LIMIT 1'))) {
      throw refuse('FAILED_PRECONDITION', `region ${id} has endpoints: delete them first`);
    }
    if (kind === 'service' && (await count('SELECT 1 FROM identity_endpoints WHERE service_id = $1 LIMIT 1'))) {
      throw refuse('FAILED_PRECONDITION', `service ${id} has endpoints: delete them first`);
    }
  }

  // ---- visibility of lists to non-admins ---------------------------------------------------

  async function listScope(kind: Kind, c: Caller): Promise<Where> {
    if (c.isAdmin || kind === 'role' || kind === 'region' || kind === 'service' || kind === 'endpoint') return { sql: [], params: [] };
    if (kind === 'project') {
      if (c.scope.kind === 'project') return { sql: [`id = $1`], params: [c.scope.projectId] };
      if (c.scope.kind === 'domain') return { sql: [`domain_id = $1`], params: [c.scope.domainId] };
      // Unscoped: the projects where the user holds a role, to choose a scope from.
      const ids = [...new Set((await queries.effectiveAssignments(c.userId)).filter((a) => a.projectId).map((a) => a.projectId!))];
      return ids.length ? { sql: [`id IN (${ids.map((_, i) => `$${i + 1}`).join(', ')})`], params: ids } : { sql: ['1 = 0'], params: [] };
    }
    return { sql: ['1 = 0'], params: [] };
  }

  // ---- generic CRUD ------------------------------------------------------------------------

  for (const [kindName, k] of Object.entries(KINDS)) {
    const kind = kindName as Kind;
    const field = kind;
    const out = (r: Record<string, unknown>) => ({ [field]: r });

    rpc(`Create${k.noun}`, async (req, c) => {
      const input = req[field] as Req | undefined;
      if (!input) throw invalid(field, 'is required');
      const requestId = String(req.requestId ?? '');
      const id = input.id || resourceId(kind, requestId);
      const resource = fromRequest(kind, input, id);
      validateResource(kind, resource);
      await checkReferences(kind, resource);
      const extra: Record<string, unknown> = {};
      if (kind === 'user') {
        const password = required('password', req.password);
        extra.passwordHash = await hashPassword(password);
      }
      try {
        await writer.create(kind, k.noun, resource, actorOf(c), requestId, extra);
      } catch (e) {
        // The same request_id again: the resource it created is the answer.
        if (!(requestId && e instanceof ApiError && e.rejection.code === 'ALREADY_EXISTS')) throw e;
      }
      return out(await mustExist(kind, id, 'id'));
    });

    rpc(`Get${k.noun}`, async (req) => out(await mustExist(kind, required('id', req.id), 'id')), { kind });

    rpc(`List${k.plural}`, async (req, c) => {
      const where = await listScope(kind, c);
      for (const [f, column] of Object.entries(k.filters as Record<string, string>)) {
        if (req[f]) {
          where.params.push(req[f]);
          where.sql.push(`${column} = $${where.params.length}`);
        }
      }
      const page = await queries.page(RESOURCE_TABLES[kind].table, where, pageSize(req), String(req.pageToken ?? ''), (row) => rowToResource(kind, row));
      return { [k.listField]: page.items, nextPageToken: page.nextPageToken };
    });

    rpc(`Update${k.noun}`, async (req, c) => {
      const input = req[field] as Req | undefined;
      const id = required(`${field}.id`, input?.id);
      const before = await mustExist(kind, id, `${field}.id`);
      const mask = ((req.updateMask?.paths ?? []) as string[]).filter((p) => p !== 'password').map(camel);
      const patch: Record<string, unknown> = { ...before, ...input, id };
      if (mask.length > 0) {
        validateUpdate(kind, patch, mask);
        await checkReferences(kind, { ...before, ...Object.fromEntries(mask.map((m) => [m, patch[m]])) });
      }
      const password = kind === 'user' ? String(req.password ?? '') : '';
      if (mask.length === 0 && !password) throw invalid('update_mask', 'name the fields to change');
      if (mask.length > 0) await writer.update(kind, k.noun, before, patch, mask, actorOf(c));
      if (password) await writer.send('user', id, { type: 'ChangeUserPassword', passwordHash: await hashPassword(password) }, actorOf(c));
      return out(await mustExist(kind, id, 'id'));
    }, { kind });

    rpc(`Delete${k.noun}`, async (req, c) => {
      const id = required('id', req.id);
      const before = await mustExist(kind, id, 'id');
      await checkDeletable(kind, id);
      await writer.delete(kind, k.noun, before, actorOf(c));
      return {};
    }, { kind });
  }

  // ---- group membership --------------------------------------------------------------------

  rpc('AddGroupMember', async (req, c) => {
    const groupId = required('group_id', req.groupId);
    await mustExist('group', groupId, 'group_id');
    await mustExist('user', required('user_id', req.userId), 'user_id');
    await writer.send('group', groupId, { type: 'AddGroupMember', userId: req.userId }, actorOf(c));
    return {};
  });

  rpc('CheckGroupMember', async (req) => {
    const groupId = required('group_id', req.groupId);
    const userId = required('user_id', req.userId);
    await mustExist('group', groupId, 'group_id');
    if (!(await queries.isMember(groupId, userId))) throw refuse('NOT_FOUND', `user ${userId} is not a member of group ${groupId}`);
    return {};
  });

  rpc('ListGroupMembers', async (req) => {
    const groupId = required('group_id', req.groupId);
    await mustExist('group', groupId, 'group_id');
    const page = await queries.page(
      'identity_users',
      { sql: ['id IN (SELECT user_id FROM identity_group_members WHERE group_id = $1)'], params: [groupId] },
      pageSize(req),
      String(req.pageToken ?? ''),
      (row) => rowToResource('user', row),
    );
    return { users: page.items, nextPageToken: page.nextPageToken };
  });

  rpc('RemoveGroupMember', async (req, c) => {
    const groupId = required('group_id', req.groupId);
    await mustExist('group', groupId, 'group_id');
    await writer.send('group', groupId, { type: 'RemoveGroupMember', userId: required('user_id', req.userId) }, actorOf(c));
    return {};
  });

  // ---- role assignments --------------------------------------------------------------------

  rpc('CreateRoleAssignment', async (req, c) => {
    const input = (req.assignment ?? {}) as Req;
    const a: RoleAssignment = {
      id: '',
      ...(input.userId ? { userId: input.userId } : {}),
      ...(input.groupId ? { groupId: input.groupId } : {}),
      ...(input.projectId ? { projectId: input.projectId } : {}),
      ...(input.domainId ? { domainId: input.domainId } : {}),
      ...(input.system ? { system: true } : {}),
      roleId: input.roleId ?? '',
      inherited: Boolean(input.inherited),
    };
    validateAssignment(a);
    a.id = assignmentId(a);
    if (a.userId) await mustExist('user', a.userId, 'assignment.user_id');
    if (a.groupId) await mustExist('group', a.groupId, 'assignment.group_id');
    if (a.projectId) await mustExist('project', a.projectId, 'assignment.project_id');
    if (a.domainId) await mustExist('domain', a.domainId, 'assignment.domain_id');
    await mustExist('role', a.roleId, 'assignment.role_id');
    await writer.send('role_assignment', a.id, { type: 'GrantRole', assignment: a }, actorOf(c));
    return { assignment: a };
  });

  async function assignmentById(id: string): Promise<RoleAssignment> {
    const [row] = await queries.store.query<Record<string, unknown>>('SELECT * FROM identity_role_assignments WHERE id = $1', [id]);
    if (!row) throw refuse('NOT_FOUND', `role assignment ${id} does not exist`);
    return assignmentFromRow(row);
  }

  rpc('GetRoleAssignment', async (req, c) => {
    const a = await assignmentById(required('id', req.id));
    if (!c.isAdmin && a.userId !== c.userId && !(c.scope.kind === 'project' && a.projectId === c.scope.projectId)) {
      throw refuse('PERMISSION_DENIED', 'policy identity:get_role_assignment does not allow this caller');
    }
    return { assignment: a };
  });

  rpc('ListRoleAssignments', async (req, c) => {
    // Non-admins: their own assignments, or those on the project they are scoped to.
    if (!c.isAdmin && req.userId !== c.userId && !(c.scope.kind === 'project' && req.projectId === c.scope.projectId)) {
      throw refuse('PERMISSION_DENIED', 'policy identity:list_role_assignments: non-admins list their own assignments or their project\'s');
    }
    if (req.effective) {
      const userId = required('user_id', req.userId);
      let list = await queries.effectiveAssignments(userId);
      if (req.projectId) list = list.filter((a) => a.projectId === req.projectId);
      if (req.domainId) list = list.filter((a) => a.domainId === req.domainId);
      if (req.system) list = list.filter((a) => a.system);
      if (req.roleId) list = list.filter((a) => a.roleId === req.roleId);
      const size = pageSize(req);
      const after = req.pageToken ? Buffer.from(String(req.pageToken), 'base64url').toString() : '';
      const rest = list.filter((a) => a.id > after);
      const items = rest.slice(0, size);
      return { assignments: items, nextPageToken: rest.length > size ? Buffer.from(items[items.length - 1].id).toString('base64url') : '' };
    }
    const where: Where = { sql: [], params: [] };
    const eq = (sql: string, v: unknown) => {
      where.params.push(v);
      where.sql.push(sql.replace('?', `$${where.params.length}`));
    };
    if (req.userId) eq(`actor_type = 'user' AND actor_id = ?`, req.userId);
    if (req.groupId) eq(`actor_type = 'group' AND actor_id = ?`, req.groupId);
    if (req.projectId) eq(`target_type = 'project' AND target_id = ?`, req.projectId);
    if (req.domainId) eq(`target_type = 'domain' AND target_id = ?`, req.domainId);
    if (req.system) where.sql.push(`target_type = 'system'`);
    if (req.roleId) eq('role_id = ?', req.roleId);
    const page = await queries.page('identity_role_assignments', where, pageSize(req), String(req.pageToken ?? ''), (row) => assignmentFromRow(row) as never);
    return { assignments: page.items, nextPageToken: page.nextPageToken };
  });

  rpc('DeleteRoleAssignment', async (req, c) => {
    const a = await assignmentById(required('id', req.id));
    await writer.send('role_assignment', a.id, { type: 'RevokeRole' }, actorOf(c));
    return {};
  });

  return impl;
}

