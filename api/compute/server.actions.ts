// The server actions of ComputeService, as data: each RPC, the CLI verb that calls it, and the
// instance command(s) it sends. Which action is legal when is the instance machine's business
// (domains/compute/instance.actions.ts); this table only ties the API's names to the machine's
// commands, so policy, the service, the CLI and `allowed_actions` all read one list.
import { ACTION_BY_COMMAND, allowsTask, allowsVm, type InstanceAction } from '../../domains/compute/instance.actions.js';
import type { TaskState, VmState } from '../../domains/compute/instance.states.js';

export interface ServerAction {
  /** The RPC ("StopServer"). */
  rpc: string;
  /** The CLI's name (`strata server stop`), also what allowed_actions lists. */
  verb: string;
  /** The instance command the RPC sends (RebootServer: the soft one; `hard` picks the other). */
  command: string;
  /** A one-line description for help texts. */
  summary: string;
  /** Request fields the CLI passes: flag -> request field (and type). */
  flags?: Record<string, { field: string; type: 'string' | 'boolean' | 'map'; help: string; negate?: boolean }>;
}

export const SERVER_ACTIONS: readonly ServerAction[] = [
  { rpc: 'DeleteServer', verb: 'delete', command: 'DeleteInstance', summary: 'delete a server (--soft: restorable until force-deleted)', flags: { soft: { field: 'soft', type: 'boolean', help: 'keep it restorable' } } },
  { rpc: 'StartServer', verb: 'start', command: 'StartInstance', summary: 'power a stopped server on' },
  { rpc: 'StopServer', verb: 'stop', command: 'StopInstance', summary: 'power a server off' },
  { rpc: 'RebootServer', verb: 'reboot', command: 'RebootInstance', summary: 'reboot through the guest (--hard: power-cycle)', flags: { hard: { field: 'hard', type: 'boolean', help: 'power-cycle it' } } },
  { rpc: 'RebuildServer', verb: 'rebuild', command: 'RebuildInstance', summary: 'rebuild from an image', flags: { image: { field: 'imageId', type: 'string', help: 'the image' } } },
  { rpc: 'ResizeServer', verb: 'resize', command: 'ResizeInstance', summary: 'resize to another flavor (then confirm-resize or revert-resize)', flags: { flavor: { field: 'flavorId', type: 'string', help: 'the new flavor' } } },
  { rpc: 'ConfirmResizeServer', verb: 'confirm-resize', command: 'ConfirmResizeInstance', summary: 'keep the new flavor and host' },
  { rpc: 'RevertResizeServer', verb: 'revert-resize', command: 'RevertResizeInstance', summary: 'go back to the old flavor and host' },
  { rpc: 'MigrateServer', verb: 'migrate', command: 'MigrateInstance', summary: 'move to another host, powered off (admin)' },
  { rpc: 'LiveMigrateServer', verb: 'live-migrate', command: 'LiveMigrateInstance', summary: 'move to another host, running (admin)' },
  { rpc: 'EvacuateServer', verb: 'evacuate', command: 'EvacuateInstance', summary: 'rebuild on another host after its host failed (admin)' },
  { rpc: 'PauseServer', verb: 'pause', command: 'PauseInstance', summary: 'pause in memory' },
  { rpc: 'UnpauseServer', verb: 'unpause', command: 'UnpauseInstance', summary: 'unpause' },
  { rpc: 'SuspendServer', verb: 'suspend', command: 'SuspendInstance', summary: 'suspend to disk' },
  { rpc: 'ResumeServer', verb: 'resume', command: 'ResumeInstance', summary: 'resume a suspended server' },
  { rpc: 'LockServer', verb: 'lock', command: 'LockInstance', summary: 'refuse lock-checked actions by non-admins', flags: { reason: { field: 'reason', type: 'string', help: 'why' } } },
  { rpc: 'UnlockServer', verb: 'unlock', command: 'UnlockInstance', summary: 'lift the lock' },
  { rpc: 'RescueServer', verb: 'rescue', command: 'RescueInstance', summary: 'boot from a rescue image' },
  { rpc: 'UnrescueServer', verb: 'unrescue', command: 'UnrescueInstance', summary: 'leave rescue mode' },
  { rpc: 'ShelveServer', verb: 'shelve', command: 'ShelveInstance', summary: 'shelve (and free the host unless --no-offload)', flags: { 'no-offload': { field: 'offload', type: 'boolean', help: 'keep it on its host', negate: true } } },
  { rpc: 'ShelveOffloadServer', verb: 'shelve-offload', command: 'ShelveOffloadInstance', summary: 'free the host of a shelved server' },
  { rpc: 'UnshelveServer', verb: 'unshelve', command: 'UnshelveInstance', summary: 'bring a shelved server back' },
  { rpc: 'CreateServerImage', verb: 'create-image', command: 'CreateInstanceImage', summary: 'snapshot into a new image', flags: { name: { field: 'name', type: 'string', help: "the image's name" } } },
  { rpc: 'CreateServerBackup', verb: 'create-backup', command: 'CreateInstanceBackup', summary: 'back up into a new image', flags: { name: { field: 'name', type: 'string', help: "the backup's name" } } },
  { rpc: 'SetServerMetadata', verb: 'set-metadata', command: 'SetInstanceMetadata', summary: 'add or replace metadata items', flags: { property: { field: 'metadata', type: 'map', help: 'KEY=VALUE, repeatable' } } },
  { rpc: 'DeleteServerMetadata', verb: 'delete-metadata', command: 'DeleteInstanceMetadata', summary: 'remove one metadata item', flags: { key: { field: 'key', type: 'string', help: 'the key' } } },
  { rpc: 'ForceDeleteServer', verb: 'force-delete', command: 'ForceDeleteInstance', summary: 'delete a soft-deleted server for good' },
  { rpc: 'RestoreServer', verb: 'restore', command: 'RestoreInstance', summary: 'restore a soft-deleted server' },
  { rpc: 'ResetServerState', verb: 'reset-state', command: 'ResetInstanceState', summary: 'force vm_state to active or error (admin)', flags: { state: { field: 'vmState', type: 'string', help: 'active or error' } } },
];

export const ACTION_BY_RPC = new Map(SERVER_ACTIONS.map((a) => [a.rpc, a]));

/** The machine's row of an RPC's command. */
export const machineAction = (command: string): InstanceAction => {
  const a = ACTION_BY_COMMAND.get(command);
  if (!a) throw new Error(`no instance action for command ${command}`);
  return a;
};

/** Admin-only RPCs, straight from the machine's table (migrate, live migrate, evacuate, reset state). */
export const ADMIN_ONLY_RPCS = new Set(SERVER_ACTIONS.filter((a) => machineAction(a.command).adminOnly).map((a) => a.rpc));

export interface ServerFacts {
  vmState: VmState;
  taskState: TaskState | null;
  launched: boolean;
  locked: boolean;
  /** 'admin', 'owner' or ''. */
  lockedBy: string;
}

/** Whether the machine would take the command from this server and caller (its table, read from the read model). */
export function commandAllowed(command: string, s: ServerFacts, admin: boolean): boolean {
  const a = machineAction(command);
  if (!allowsVm(a, s.vmState) || !allowsTask(a, s.taskState)) return false;
  if (a.mustHaveLaunched && !s.launched) return false;
  if (a.adminOnly && !admin) return false;
  if (a.lockChecked && s.locked && !admin) return false;
  if (a.command === 'UnlockInstance' && (!s.locked || (s.lockedBy === 'admin' && !admin))) return false;
  if (a.command === 'LockInstance' && s.locked) return false;
  return true;
}

/** The verbs the caller may use on the server now ("reboot-hard" for a hard reboot). */
export function allowedActions(s: ServerFacts, admin: boolean): string[] {
  if (s.vmState === 'deleted') return [];
  const verbs: string[] = [];
  for (const a of SERVER_ACTIONS) {
    if (commandAllowed(a.command, s, admin)) verbs.push(a.verb);
    if (a.rpc === 'RebootServer' && commandAllowed('HardRebootInstance', s, admin)) verbs.push('reboot-hard');
  }
  return verbs;
}
