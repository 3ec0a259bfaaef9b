// What a host's agent owes an instance, from what the log says of it: the one pure statement of
// which host does which action, so that two agents never both act and a restarted agent finds
// its unfinished work again.
import type { InstanceView } from '../compute.view.js';
import { MOVE_TASKS } from './move.saga.js';

export type HostDuty =
  /** Boot the server here (create, or unshelve of an offloaded server). */
  | { kind: 'spawn' }
  /** Receive the server from elsewhere (resize, migrations, evacuate, revert resize). */
  | { kind: 'receive' }
  /** Live migration, destination: get ready to receive the running guest and say where. */
  | { kind: 'listen' }
  /** Live migration, source: send the running guest to where the destination listens. */
  | { kind: 'send'; uri: string }
  /** Run a plain action on the server that runs here. */
  | { kind: 'act'; action: string }
  /** Nothing to do for this server now. */
  | { kind: 'none' };

export function hostDuty(v: InstanceView, hostId: string): HostDuty {
  if (v.action === 'live-migration' && v.assigned) {
    // Two hosts take part: the destination listens first, then the source sends (and completes).
    if (v.host === hostId && !v.migrationUri) return { kind: 'listen' };
    if (v.sourceHost === hostId && v.host !== hostId && v.migrationUri) return { kind: 'send', uri: v.migrationUri };
    return { kind: 'none' };
  }
  if (v.host !== hostId || v.action === null) return { kind: 'none' };
  if (v.action === 'create') return v.assigned ? { kind: 'spawn' } : { kind: 'none' };
  if (v.action === 'revertResize') return v.assigned ? { kind: 'receive' } : { kind: 'none' };
  if (MOVE_TASKS[v.action] && !(v.action === 'unshelve' && !v.assigned)) {
    if (!v.assigned) return { kind: 'none' };
    return v.action === 'unshelve' ? { kind: 'spawn' } : { kind: 'receive' };
  }
  return { kind: 'act', action: v.action };
}
