// keystone-manage bootstrap, event-sourced: the default domain, the default roles (admin implies
// manager implies member implies reader, and service), the admin project and user with admin on
// that project and on the system, and the catalog's region, identity service and endpoints.
// Idempotent: every id and command id is fixed, so a second run meets the first run's replies.
// An existing admin keeps its password (change it with `strata user update --password`).
import { createHash } from 'node:crypto';
import type { RoleAssignment } from '../../domains/identity/identity.types.js';
import { assignmentId } from '../../domains/identity/identity.validation.js';
import type { Actor } from '../../infra/envelope/envelope.js';
import { hashPassword } from '../auth/password.js';
import { ApiError } from '../errors.js';
import type { IdentityWriter } from './identity.writer.js';

export const bootstrapId = (kind: string, name: string) =>
  createHash('sha256').update(`strata/bootstrap/${kind}/${name}`).digest('hex').slice(0, 32);

export const DEFAULT_DOMAIN_ID = 'default';
export const DEFAULT_ROLES = ['reader', 'member', 'manager', 'admin', 'service'] as const;
const IMPLIES: Record<string, string[]> = { member: ['reader'], manager: ['member'], admin: ['manager'] };

export const adminProjectId = (name = 'admin') => bootstrapId('project', name);
export const roleId = (name: string) => bootstrapId('role', name);

export interface BootstrapOptions {
  adminPassword: string;
  adminUserName?: string;
  adminProjectName?: string;
  regionId?: string;
  /** The identity API's URL for the catalog, e.g. grpcs://127.0.0.1:5050. */
  identityUrl: string;
}

export interface BootstrapResult {
  domainId: string;
  adminProjectId: string;
  adminUserId: string;
}

const BOOTSTRAP_ACTOR: Actor = { userId: 'strata-bootstrap', projectId: '', roles: ['admin'] };

export async function bootstrap(writer: IdentityWriter, o: BootstrapOptions): Promise<BootstrapResult> {
  if (!o.adminPassword) throw new Error('bootstrap needs an admin password');
  const make = async (kind: string, noun: string, resource: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    try {
      await writer.create(kind, noun, resource, BOOTSTRAP_ACTOR, `bootstrap/${kind}/${resource.id}`, extra);
    } catch (e) {
      if (!(e instanceof ApiError && e.rejection.code === 'ALREADY_EXISTS')) throw e;
    }
  };
  const grant = async (assignment: RoleAssignment) => {
    const id = assignmentId(assignment);
    await writer.send('role_assignment', id, { type: 'GrantRole', assignment: { ...assignment, id } }, BOOTSTRAP_ACTOR, `bootstrap/grant/${id}`);
  };

  await make('domain', 'Domain', { id: DEFAULT_DOMAIN_ID, name: 'Default', description: 'The default domain', enabled: true });
  for (const name of DEFAULT_ROLES) {
    await make('role', 'Role', { id: roleId(name), name, description: `The default ${name} role`, implies: (IMPLIES[name] ?? []).map(roleId) });
  }
  const projectId = adminProjectId(o.adminProjectName ?? 'admin');
  await make('project', 'Project', {
    id: projectId, name: o.adminProjectName ?? 'admin', description: 'The cloud administrators\' project', domainId: DEFAULT_DOMAIN_ID, parentId: '', enabled: true,
  });
  const userName = o.adminUserName ?? 'admin';
  const userId = bootstrapId('user', userName);
  await make(
    'user',
    'User',
    { id: userId, name: userName, domainId: DEFAULT_DOMAIN_ID, email: '', description: 'The cloud administrator', defaultProjectId: projectId, enabled: true, lockedUntilMs: 0 },
    { passwordHash: await hashPassword(o.adminPassword) },
  );
  const admin = roleId('admin');
  await grant({ id: '', userId, projectId, roleId: admin, inherited: false });
  await grant({ id: '', userId, system: true, roleId: admin, inherited: false });

  const region = o.regionId ?? 'RegionOne';
  await make('region', 'Region', { id: region, description: 'The first region', parentRegionId: '' });
  const serviceId = bootstrapId('service', 'identity');
  await make('service', 'Service', { id: serviceId, type: 'identity', name: 'strata-identity', description: 'Strata identity', enabled: true });
  for (const iface of ['public', 'internal', 'admin']) {
    await make('endpoint', 'Endpoint', { id: bootstrapId('endpoint', `identity/${region}/${iface}`), serviceId, regionId: region, interface: iface, url: o.identityUrl, enabled: true });
  }
  return { domainId: DEFAULT_DOMAIN_ID, adminProjectId: projectId, adminUserId: userId };
}
