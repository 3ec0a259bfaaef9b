// What every gRPC service reads off a request the same way: required strings, page sizes, the
// request id that names a mutation (and the ids derived from it, so a retry names the same
// resource), update masks, and the caller's project and actor on commands.
import { createHash, randomUUID } from 'node:crypto';
import type { Actor } from '../infra/envelope/envelope.js';
import { invalid } from './errors.js';
import type { Caller } from './policy/policy.js';

export type Req = Record<string, any>;
export type Res = Record<string, unknown>;

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** A string field that must be there: INVALID_ARGUMENT naming it otherwise. */
export function required(field: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid(field, 'is required');
  return value;
}

/** The page size asked for (0: the default), within bounds. */
export function pageSize(req: Req): number {
  const n = Number(req.pageSize ?? 0);
  if (!Number.isInteger(n) || n < 0) throw invalid('page_size', `must be between 0 and ${MAX_PAGE_SIZE}`);
  if (n > MAX_PAGE_SIZE) throw invalid('page_size', `must be at most ${MAX_PAGE_SIZE}, got ${n}`);
  return n === 0 ? DEFAULT_PAGE_SIZE : n;
}

/** The request_id of a mutation, or a new one: it names the operation and keys the commands. */
export function requestIdOf(req: Req): string {
  const id = String(req.requestId ?? '');
  if (id.length > 128) throw invalid('request_id', `must be at most 128 characters, got ${id.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f/]/.test(id)) throw invalid('request_id', 'must not contain control characters or "/"');
  return id || randomUUID();
}

/** A resource id from the request (so a retry names the same resource). */
export const derivedId = (kind: string, scope: string, requestId: string) => createHash('sha256').update(`strata/${kind}/${scope}/${requestId}`).digest('hex').slice(0, 32);

/** The update mask's paths as the domain's field names. */
export const updateMaskOf = (req: Req) => ((req.updateMask?.paths ?? []) as string[]).map(camel);

export const callerProject = (c: Caller) => (c.scope.kind === 'project' ? c.scope.projectId : '');

/**
 * The actor on commands. The deciders let an actor with the admin role past admin-only checks,
 * so the role travels only for cloud admins: an "admin" of an ordinary project is no admin of the cloud.
 */
export const actorOf = (c: Caller): Actor => ({ userId: c.userId, projectId: callerProject(c), roles: c.isAdmin ? c.roles : c.roles.filter((r) => r !== 'admin') });
