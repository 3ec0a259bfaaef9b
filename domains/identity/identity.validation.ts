// Field rules of identity commands, shared by the API (before it sends) and the codec (for any
// other sender). A broken rule throws InvalidArgumentError naming the field (proto snake_case).
import { InvalidArgumentError } from '../kernel/rejection.js';
import type { RoleAssignment } from './identity.types.js';

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
export const camel = (snakeCase: string) => snakeCase.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const INTERFACES = ['public', 'internal', 'admin'] as const;

export function requireId(field: string, value: unknown): void {
  if (typeof value !== 'string' || value === '') throw new InvalidArgumentError(field, 'is required');
  if (!ID.test(value)) throw new InvalidArgumentError(field, `"${value}" is not an id (letters, digits, _ . -; at most 64)`);
}

const optionalId = (field: string, value: unknown) => {
  if (value !== undefined && value !== '') requireId(field, value);
};

function requireText(field: string, value: unknown, max: number, required: boolean): void {
  const s = typeof value === 'string' ? value : '';
  if (required && s.trim() === '') throw new InvalidArgumentError(field, 'is required');
  if (s.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters, got ${s.length}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

type Rules = Record<string, (value: unknown, resource: Record<string, unknown>) => void>;

const name = (v: unknown) => requireText('name', v, 255, true);
const description = (v: unknown) => requireText('description', v, 1024, false);
const enabled = () => undefined;

/** Per resource kind: the rule of every field, and which fields an update may change. */
export const RESOURCE_RULES: Record<string, { rules: Rules; mutable: readonly string[] }> = {
  domain: { rules: { id: (v) => requireId('id', v), name, description, enabled }, mutable: ['name', 'description', 'enabled'] },
  project: {
    rules: { id: (v) => requireId('id', v), name, description, enabled, domainId: (v) => requireId('domain_id', v), parentId: (v) => optionalId('parent_id', v) },
    mutable: ['name', 'description', 'enabled'],
  },
  user: {
    rules: {
      id: (v) => requireId('id', v),
      name,
      description,
      enabled,
      domainId: (v) => requireId('domain_id', v),
      email: (v) => {
        requireText('email', v, 255, false);
        if (typeof v === 'string' && v !== '' && !/^[^@\s]+@[^@\s]+$/.test(v)) throw new InvalidArgumentError('email', `"${v}" is not an email address`);
      },
      defaultProjectId: (v) => optionalId('default_project_id', v),
      lockedUntilMs: () => undefined,
    },
    mutable: ['name', 'email', 'description', 'defaultProjectId', 'enabled'],
  },
  group: {
    rules: { id: (v) => requireId('id', v), name, description, domainId: (v) => requireId('domain_id', v) },
    mutable: ['name', 'description'],
  },
  role: {
    rules: {
      id: (v) => requireId('id', v),
      name,
      description,
      implies: (v, r) => {
        const list = (v ?? []) as string[];
        list.forEach((id, i) => requireId(`implies[${i}]`, id));
        if (list.includes(r.id as string)) throw new InvalidArgumentError('implies', 'a role cannot imply itself');
      },
    },
    mutable: ['name', 'description', 'implies'],
  },
  region: {
    rules: {
      id: (v) => requireId('id', v),
      description,
      parentRegionId: (v, r) => {
        optionalId('parent_region_id', v);
        if (v !== '' && v === r.id) throw new InvalidArgumentError('parent_region_id', 'a region cannot be its own parent');
      },
    },
    mutable: ['description', 'parentRegionId'],
  },
  service: {
    rules: {
      id: (v) => requireId('id', v),
      type: (v) => {
        requireText('type', v, 255, true);
        if (!/^[a-z0-9-]+$/.test(v as string)) throw new InvalidArgumentError('type', `"${v}" must be lowercase letters, digits and dashes (compute, network, ...)`);
      },
      name: (v) => requireText('name', v, 255, false),
      description,
      enabled,
    },
    mutable: ['type', 'name', 'description', 'enabled'],
  },
  endpoint: {
    rules: {
      id: (v) => requireId('id', v),
      serviceId: (v) => requireId('service_id', v),
      regionId: (v) => requireId('region_id', v),
      interface: (v) => {
        if (!INTERFACES.includes(v as (typeof INTERFACES)[number])) {
          throw new InvalidArgumentError('interface', `must be one of ${INTERFACES.join(', ')}, got "${v}"`);
        }
      },
      url: (v) => {
        requireText('url', v, 1024, true);
        if (!/^(https?|grpcs?):\/\/[^\s]+$/.test(v as string)) throw new InvalidArgumentError('url', `"${v}" is not an http(s) or grpc(s) URL`);
      },
      enabled,
    },
    mutable: ['serviceId', 'regionId', 'interface', 'url', 'enabled'],
  },
};

export function validateResource(kind: string, resource: Record<string, unknown>): void {
  const { rules } = RESOURCE_RULES[kind];
  for (const [field, rule] of Object.entries(rules)) rule(resource[field], resource);
}

/** An update: the mask (camelCase paths) is non-empty and names mutable fields; the changed fields obey their rules. */
export function validateUpdate(kind: string, patch: Record<string, unknown>, mask: readonly string[]): void {
  const { rules, mutable } = RESOURCE_RULES[kind];
  if (mask.length === 0) throw new InvalidArgumentError('update_mask', `name the fields to change (any of ${mutable.map(snake).join(', ')})`);
  for (const path of mask) {
    if (!(path in rules)) throw new InvalidArgumentError('update_mask', `${kind} has no field ${snake(path)}`);
    if (!mutable.includes(path)) throw new InvalidArgumentError(snake(path), `cannot be changed (a ${kind}'s changeable fields: ${mutable.map(snake).join(', ')})`);
    rules[path](patch[path], patch);
  }
}

export function validateAssignment(a: RoleAssignment): void {
  const actors = [a.userId, a.groupId].filter((v) => v !== undefined && v !== '');
  if (actors.length !== 1) throw new InvalidArgumentError('assignment.actor', 'set exactly one of user_id and group_id');
  const targets = [a.projectId, a.domainId, a.system ? 'system' : undefined].filter((v) => v !== undefined && v !== '');
  if (targets.length !== 1) throw new InvalidArgumentError('assignment.target', 'set exactly one of project_id, domain_id and system');
  optionalId('assignment.user_id', a.userId);
  optionalId('assignment.group_id', a.groupId);
  optionalId('assignment.project_id', a.projectId);
  optionalId('assignment.domain_id', a.domainId);
  requireId('assignment.role_id', a.roleId);
  if (a.system && a.inherited) throw new InvalidArgumentError('assignment.inherited', 'a system role cannot be inherited');
}

/** The assignment id: one per (actor, target, role, inherited), so granting twice meets one aggregate. */
export function assignmentId(a: RoleAssignment): string {
  const actor = a.userId ? `u.${a.userId}` : `g.${a.groupId}`;
  const target = a.projectId ? `p.${a.projectId}` : a.domainId ? `d.${a.domainId}` : 's.all';
  return `${actor}.${target}.${a.roleId}${a.inherited ? '.i' : ''}`;
}

export function validatePasswordHash(hash: unknown): void {
  if (typeof hash !== 'string' || !hash.startsWith('scrypt$')) throw new InvalidArgumentError('password_hash', 'must be a scrypt hash');
}
