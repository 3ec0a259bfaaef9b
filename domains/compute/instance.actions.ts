// Every server action of Nova's API as data (shared/reference §1.3): which vm_states allow it,
// what task_state it needs, whether the lock stops it, the task_state it starts with, and the
// vm_state it ends in. The instance machine is generated from this table, so the table is the
// single statement of which action is legal when; API errors and CLI help read it too.
import type { InstanceInterface } from './instance.interfaces.js';
import { ALLOW_REBOOT, type TaskState, type VmState } from './instance.states.js';

export interface FlavorRef {
  id: string;
  name: string;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  ephemeralGb: number;
  swapMb: number;
  extraSpecs: Record<string, string>;
}

export interface InstanceContext {
  vm: VmState;
  task: TaskState | null;
  /** The action in progress (Nova's name), while task is set. */
  action: string | null;
  /** The vm_state to go back to: resume, unrescue, confirm or revert a resize. */
  previousVm: VmState | null;
  name: string;
  projectId: string;
  userId: string;
  flavor: FlavorRef | null;
  /** During a resize: the flavor asked for. */
  newFlavor: FlavorRef | null;
  /** After a resize, until confirmed or reverted: the flavor to go back to. */
  oldFlavor: FlavorRef | null;
  imageId: string;
  keyName: string;
  availabilityZone: string;
  serverGroupId: string;
  metadata: Record<string, string>;
  host: string;
  node: string;
  launched: boolean;
  locked: boolean;
  lockedReason: string;
  lockedByAdmin: boolean;
  powerState: number;
  fault: { code: number; message: string } | null;
  /** Set by shelve: offload right away (Nova's shelved_offload_time = 0). */
  offloadOnShelve: boolean;
  /** Hosts this boot failed on, in order (the scheduler skips them; their count bounds retries). */
  failedHosts: string[];
  /** Its network interfaces (Nova's VIFs), one per port (instance.interfaces.ts). */
  interfaces: InstanceInterface[];
}

export type TaskGuard = 'null' | 'any' | readonly (TaskState | null)[];

export interface InstanceAction {
  /** Nova's name, as its messages say it: "Cannot 'pause' instance ...". */
  name: string;
  command: string;
  lockChecked: boolean;
  vmStates: readonly VmState[] | 'any';
  task: TaskGuard;
  /** Refused before the first boot finished (Nova's must_have_launched). */
  mustHaveLaunched: boolean;
  /** Only an admin may ask (migrate, live migrate, evacuate, reset state). */
  adminOnly?: boolean;
  /** The task_state the action starts with; null: it completes within the decision. */
  startTask: (i: InstanceContext, command: Record<string, unknown>) => TaskState | null;
  /** The vm_state when it completes. */
  result: (i: InstanceContext, command: Record<string, unknown>) => VmState;
}

const same = (i: InstanceContext) => i.vm;
const to = (vm: VmState) => () => vm;
const task = (t: TaskState) => () => t;
const previousOr = (fallback: VmState) => (i: InstanceContext) => i.previousVm ?? fallback;
const ANY = 'any' as const;

export const INSTANCE_ACTIONS: readonly InstanceAction[] = [
  {
    name: 'delete', command: 'DeleteInstance', lockChecked: true, vmStates: ANY, task: ANY, mustHaveLaunched: false,
    // No host to clean (never scheduled, or offloaded): deleted at once, as Nova's API does locally.
    startTask: (i, c) => (!i.host ? null : c.soft && i.launched ? 'soft-deleting' : 'deleting'),
    result: (i, c) => (c.soft && i.launched ? 'soft-delete' : 'deleted'),
  },
  { name: 'forceDelete', command: 'ForceDeleteInstance', lockChecked: true, vmStates: ['soft-delete'], task: ANY, mustHaveLaunched: false, startTask: (i) => (i.host ? 'deleting' : null), result: to('deleted') },
  { name: 'restore', command: 'RestoreInstance', lockChecked: true, vmStates: ['soft-delete'], task: 'null', mustHaveLaunched: true, startTask: (i) => (i.host ? 'restoring' : null), result: to('active') },
  { name: 'start', command: 'StartInstance', lockChecked: true, vmStates: ['stopped'], task: 'null', mustHaveLaunched: true, startTask: task('powering-on'), result: to('active') },
  { name: 'stop', command: 'StopInstance', lockChecked: true, vmStates: ['active', 'error'], task: 'null', mustHaveLaunched: true, startTask: task('powering-off'), result: to('stopped') },
  { name: 'reboot', command: 'RebootInstance', lockChecked: true, vmStates: ['active'], task: [null], mustHaveLaunched: true, startTask: task('rebooting'), result: to('active') },
  {
    name: 'reboot', command: 'HardRebootInstance', lockChecked: true, vmStates: ['active', 'stopped', 'paused', 'suspended', 'error'], task: ALLOW_REBOOT,
    mustHaveLaunched: true, startTask: task('rebooting_hard'), result: to('active'),
  },
  {
    name: 'rebuild', command: 'RebuildInstance', lockChecked: true, vmStates: ['active', 'stopped', 'error'], task: 'null', mustHaveLaunched: true,
    startTask: task('rebuilding'), result: (i) => (i.vm === 'stopped' ? 'stopped' : 'active'),
  },
  { name: 'resize', command: 'ResizeInstance', lockChecked: true, vmStates: ['active', 'stopped'], task: 'null', mustHaveLaunched: true, startTask: task('resize_prep'), result: to('resized') },
  { name: 'confirmResize', command: 'ConfirmResizeInstance', lockChecked: true, vmStates: ['resized'], task: 'null', mustHaveLaunched: true, startTask: () => null, result: previousOr('active') },
  { name: 'revertResize', command: 'RevertResizeInstance', lockChecked: true, vmStates: ['resized'], task: 'null', mustHaveLaunched: true, startTask: task('resize_reverting'), result: previousOr('active') },
  { name: 'migrate', command: 'MigrateInstance', lockChecked: true, vmStates: ['active', 'stopped'], task: 'null', mustHaveLaunched: true, adminOnly: true, startTask: task('resize_prep'), result: to('resized') },
  { name: 'live-migration', command: 'LiveMigrateInstance', lockChecked: true, vmStates: ['active', 'paused'], task: 'null', mustHaveLaunched: true, adminOnly: true, startTask: task('migrating'), result: same },
  // Since microversion 2.95 an evacuated server arrives stopped.
  { name: 'evacuate', command: 'EvacuateInstance', lockChecked: false, vmStates: ['active', 'stopped', 'error'], task: ANY, mustHaveLaunched: true, adminOnly: true, startTask: task('rebuilding'), result: to('stopped') },
  { name: 'pause', command: 'PauseInstance', lockChecked: true, vmStates: ['active'], task: 'null', mustHaveLaunched: true, startTask: task('pausing'), result: to('paused') },
  { name: 'unpause', command: 'UnpauseInstance', lockChecked: true, vmStates: ['paused'], task: 'null', mustHaveLaunched: true, startTask: task('unpausing'), result: to('active') },
  { name: 'suspend', command: 'SuspendInstance', lockChecked: true, vmStates: ['active'], task: 'null', mustHaveLaunched: true, startTask: task('suspending'), result: to('suspended') },
  { name: 'resume', command: 'ResumeInstance', lockChecked: true, vmStates: ['suspended'], task: 'null', mustHaveLaunched: true, startTask: task('resuming'), result: previousOr('active') },
  { name: 'lock', command: 'LockInstance', lockChecked: false, vmStates: ANY, task: ANY, mustHaveLaunched: false, startTask: () => null, result: same },
  { name: 'unlock', command: 'UnlockInstance', lockChecked: false, vmStates: ANY, task: ANY, mustHaveLaunched: false, startTask: () => null, result: same },
  { name: 'rescue', command: 'RescueInstance', lockChecked: true, vmStates: ['active', 'stopped', 'error'], task: 'null', mustHaveLaunched: true, startTask: task('rescuing'), result: to('rescued') },
  { name: 'unrescue', command: 'UnrescueInstance', lockChecked: true, vmStates: ['rescued'], task: 'null', mustHaveLaunched: true, startTask: task('unrescuing'), result: to('active') },
  {
    name: 'shelve', command: 'ShelveInstance', lockChecked: true, vmStates: ['active', 'stopped', 'paused', 'suspended'], task: 'null', mustHaveLaunched: true,
    startTask: task('shelving'), result: (i) => (i.offloadOnShelve ? 'shelved_offloaded' : 'shelved'),
  },
  { name: 'shelveOffload', command: 'ShelveOffloadInstance', lockChecked: true, vmStates: ['shelved'], task: 'null', mustHaveLaunched: true, startTask: task('shelving_offloading'), result: to('shelved_offloaded') },
  { name: 'unshelve', command: 'UnshelveInstance', lockChecked: true, vmStates: ['shelved', 'shelved_offloaded'], task: 'null', mustHaveLaunched: true, startTask: task('unshelving'), result: to('active') },
  { name: 'createImage', command: 'CreateInstanceImage', lockChecked: false, vmStates: ['active', 'stopped', 'paused', 'suspended'], task: 'null', mustHaveLaunched: true, startTask: task('image_snapshot_pending'), result: same },
  { name: 'createBackup', command: 'CreateInstanceBackup', lockChecked: false, vmStates: ['active', 'stopped', 'paused', 'suspended'], task: 'null', mustHaveLaunched: true, startTask: task('image_backup'), result: same },
  { name: 'changePassword', command: 'ChangeInstancePassword', lockChecked: true, vmStates: ['active'], task: 'null', mustHaveLaunched: true, startTask: task('updating_password'), result: to('active') },
  { name: 'update_metadata', command: 'SetInstanceMetadata', lockChecked: true, vmStates: ['active', 'paused', 'suspended', 'stopped'], task: ANY, mustHaveLaunched: true, startTask: () => null, result: same },
  { name: 'delete_metadata', command: 'DeleteInstanceMetadata', lockChecked: true, vmStates: ['active', 'paused', 'suspended', 'stopped'], task: ANY, mustHaveLaunched: true, startTask: () => null, result: same },
  // os-interface: the port is made or claimed and bound by the conductor, plugged or unplugged by
  // the host's agent (instance.interfaces.ts); the server's vm_state and task_state do not change.
  { name: 'attach_interface', command: 'AttachInstanceInterface', lockChecked: true, vmStates: ['active', 'paused', 'stopped'], task: 'null', mustHaveLaunched: true, startTask: () => null, result: same },
  { name: 'detach_interface', command: 'DetachInstanceInterface', lockChecked: true, vmStates: ['active', 'paused', 'stopped'], task: 'null', mustHaveLaunched: true, startTask: () => null, result: same },
  {
    name: 'resetState', command: 'ResetInstanceState', lockChecked: false, vmStates: ANY, task: ANY, mustHaveLaunched: false, adminOnly: true,
    startTask: () => null, result: (_i, c) => (c.vmState === 'error' ? 'error' : 'active'),
  },
];

export const ACTION_BY_COMMAND = new Map(INSTANCE_ACTIONS.map((a) => [a.command, a]));

export const allowsVm = (a: InstanceAction, vm: VmState) => a.vmStates === 'any' || a.vmStates.includes(vm);
export const allowsTask = (a: InstanceAction, t: TaskState | null) =>
  a.task === 'any' ? true : a.task === 'null' ? t === null : a.task.includes(t);
