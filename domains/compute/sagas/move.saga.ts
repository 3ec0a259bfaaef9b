// The conductor's part in actions that put a server on another host: resize and cold migrate
// (resize_prep), live migration (migrating), evacuate (rebuilding away from a failed host),
// unshelve of an offloaded server (no host at all) and revert resize (back to the source).
// Level-triggered like the boot saga: from what the log says, the step still missing. The
// destination's agent does the work once the host is assigned; settle() gives back the claim
// that is no longer needed when the action ends.
import type { TaskState } from '../instance.states.js';
import type { BootStep, BootView } from './boot.saga.js';

export interface MoveView extends BootView {
  /** A host was assigned during the current action. */
  assigned: boolean;
  /** The host a resize left, until it is confirmed or reverted. */
  sourceHost: string;
}

/** Actions that need a destination, and the task_state in which they wait for one. */
export const MOVE_TASKS: Readonly<Record<string, TaskState>> = {
  resize: 'resize_prep',
  migrate: 'resize_prep',
  'live-migration': 'migrating',
  evacuate: 'rebuilding',
  unshelve: 'unshelving',
};

/** The conductor's next step for a move, or undefined when the action is not a move (or needs no host). */
export function nextMoveStep(v: MoveView): BootStep | undefined {
  if (v.action === 'revertResize') {
    return !v.assigned && v.sourceHost && v.host !== v.sourceHost ? { kind: 'assign', host: v.sourceHost } : v.assigned ? { kind: 'wait' } : undefined;
  }
  const task = v.action ? MOVE_TASKS[v.action] : undefined;
  if (!task || v.task !== task) return v.action && MOVE_TASKS[v.action] ? { kind: 'wait' } : undefined;
  // A shelved (not offloaded) server still sits on its host: its agent unshelves it there.
  if (v.action === 'unshelve' && v.host) return undefined;
  if (v.assigned) return { kind: 'wait' };
  const destination = v.claimHosts.find((h) => h !== v.host);
  if (destination) return { kind: 'assign', host: destination };
  return { kind: 'schedule', ignoreHosts: v.host ? [v.host] : [] };
}
