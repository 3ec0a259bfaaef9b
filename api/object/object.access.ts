// Who may do what in object storage: Swift's keystoneauth restated. A project's account is
// AUTH_<project id>; its members (and admins of the cloud) own it, its readers read it; anyone
// else reaches a container only through its ACLs: X-Container-Read ".r:*" (every authenticated
// caller), "<project>:*", "<project>:<user>", "*:<user>", and X-Container-Write the same
// (without ".r:*"). Refusals are PERMISSION_DENIED naming what would have granted access.
import type { Container } from '../../domains/object/object.types.js';
import { accountOf } from '../../domains/object/object.types.js';
import { invalid, refuse } from '../errors.js';
import type { Caller } from '../policy/policy.js';
import { callerProject } from '../request.js';

export type Access = 'read' | 'write';

/** The account a request names ("" = the caller's project's). */
export function accountFor(c: Caller, account: string | undefined): string {
  if (account) {
    if (!/^AUTH_[A-Za-z0-9_-]{1,128}$/.test(account)) throw invalid('account', `"${account}" is not an account (AUTH_<project id>)`);
    return account;
  }
  const project = callerProject(c);
  if (!project) throw invalid('account', 'is required for a caller without a project scope');
  return accountOf(project);
}

/** The caller's rights on the account as a whole (not through ACLs). */
export function accountRights(c: Caller, account: string): Access | undefined {
  if (c.isAdmin) return 'write';
  if (accountOf(callerProject(c)) !== account || c.scope.kind !== 'project') return undefined;
  if (c.roles.includes('member') || c.roles.includes('admin')) return 'write';
  if (c.roles.includes('reader')) return 'read';
  return undefined;
}

const grants = (acl: readonly string[], c: Caller, read: boolean) =>
  acl.some((entry) => {
    if (entry === '.r:*') return read;
    const [project, user] = entry.split(':');
    const projectOk = project === '*' || project === callerProject(c);
    const userOk = user === '*' || user === c.userId;
    return projectOk && userOk;
  });

/** Throws PERMISSION_DENIED unless the caller may read/write the account's containers themselves (create, delete, list). */
export function requireAccount(c: Caller, account: string, need: Access): void {
  const rights = accountRights(c, account);
  if (rights === 'write' || (rights === 'read' && need === 'read')) return;
  throw refuse('PERMISSION_DENIED', `${need === 'read' ? 'reading' : 'changing'} account ${account} needs a ${need === 'read' ? 'reader or member' : 'member'} role on its project`);
}

/** Throws PERMISSION_DENIED unless the caller may read/write objects of this container. */
export function requireContainer(c: Caller, account: string, container: Container | undefined, need: Access): void {
  const rights = accountRights(c, account);
  if (rights === 'write' || (rights === 'read' && need === 'read')) return;
  if (container) {
    if (need === 'read' && grants(container.readAcl ?? [], c, true)) return;
    if (need === 'write' && grants(container.writeAcl ?? [], c, false)) return;
  }
  throw refuse(
    'PERMISSION_DENIED',
    `${need === 'read' ? 'reading' : 'writing'} container ${account}/${container?.name ?? '?'} needs a role on its project or an entry in its ${need === 'read' ? 'read' : 'write'}_acl`,
  );
}
