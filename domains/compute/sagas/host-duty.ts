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
  /** A move's destination: get ready to receive the guest (running, or its disk) and say where. */
  | { kind: 'listen'; mode: 'live' | 'cold' }
  /** A move's source: send the guest to where the destination listens. */
  | { kind: 'send'; uri: string }
  /** Run a plain action on the server that runs here. */
  | { kind: 'act'; action: string }
  /** Plug an allocated interface into the guest (attach interface: hot-plugged if it runs). */
  | { kind: 'plug'; portId: string }
  /** Unplug a detaching interface from the guest. */
  | { kind: 'unplug'; portId: string }
  /** Nothing to do for this server now. */
  | { kind: 'none' };

/**
 * Moves from a host whose agent takes part: live migration sends the running guest, resize and
 * cold migration power it off and send its disk (evacuate rebuilds: its source is down).
 */
export const TWO_HOST_MOVES: Readonly<Record<string, 'live' | 'cold'>> = { 'live-migration': 'live', resize: 'cold', migrate: 'cold' };

export function hostDuty(v: InstanceView, hostId: string): HostDuty {
  if (v.action !== null && TWO_HOST_MOVES[v.action] && v.assigned && v.sourceHost && v.sourceHost !== v.host) {
    // Two hosts take part: the destination listens first, then the source sends (and completes).
    const mode = TWO_HOST_MOVES[v.action]!;
    if (v.host === hostId && !v.migrationUri) return { kind: 'listen', mode };
    if (v.sourceHost === hostId && v.migrationUri) return { kind: 'send', uri: v.migrationUri };
    return { kind: 'none' };
  }
  if (v.host !== hostId) return { kind: 'none' };
  if (v.action === null) return interfaceDuty(v);
  // A boot spawns once the conductor has made and bound the ports of its interfaces.
  if (v.action === 'create') return v.assigned && !v.interfaces.some((i) => i.state === 'requested') ? { kind: 'spawn' } : { kind: 'none' };
  if (v.action === 'revertResize') return v.assigned ? { kind: 'receive' } : { kind: 'none' };
  if (MOVE_TASKS[v.action] && !(v.action === 'unshelve' && !v.assigned)) {
    if (!v.assigned) return { kind: 'none' };
    return v.action === 'unshelve' ? { kind: 'spawn' } : { kind: 'receive' };
  }
  return { kind: 'act', action: v.action };
}

/**
 * VM states whose guest (running or not) is on its host and may have interfaces plugged or
 * unplugged. Not suspended: the saved machine must come back with the devices it had (an
 * interface allocated just before a suspend is plugged after the resume).
 */
const PLUGGABLE = new Set(['active', 'paused', 'stopped', 'rescued', 'resized', 'shelved']);

/** Between actions: interfaces to plug (attached, or allocated during an action) and to unplug. */
function interfaceDuty(v: InstanceView): HostDuty {
  if (!PLUGGABLE.has(v.vm)) return { kind: 'none' };
  const unplug = v.interfaces.find((i) => i.state === 'detaching');
  if (unplug) return { kind: 'unplug', portId: unplug.portId };
  const plug = v.interfaces.find((i) => i.state === 'allocated');
  return plug ? { kind: 'plug', portId: plug.portId } : { kind: 'none' };
}
