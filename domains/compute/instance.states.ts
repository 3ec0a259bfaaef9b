// Nova's instance states, spelled byte-exact (shared/reference §1.1), and the API status
// derived from (vm_state, task_state) by Nova's table (§1.2).

export const VM_STATES = [
  'building', 'active', 'paused', 'suspended', 'stopped', 'rescued', 'resized',
  'soft-delete', 'deleted', 'error', 'shelved', 'shelved_offloaded',
] as const;
export type VmState = (typeof VM_STATES)[number];

export const TASK_STATES = [
  'scheduling', 'networking', 'block_device_mapping', 'spawning',
  'image_snapshot_pending', 'image_snapshot', 'image_pending_upload', 'image_uploading', 'image_backup',
  'updating_password',
  'resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish', 'resize_reverting', 'resize_confirming',
  'rebooting', 'reboot_pending', 'reboot_started', 'rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard',
  'pausing', 'unpausing', 'suspending', 'resuming', 'powering-off', 'powering-on', 'rescuing', 'unrescuing',
  'rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning', 'migrating',
  'deleting', 'soft-deleting', 'restoring',
  'shelving', 'shelving_image_pending_upload', 'shelving_image_uploading', 'shelving_offloading', 'unshelving',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** Hard reboot may interrupt these (Nova's ALLOW_REBOOT). */
export const ALLOW_REBOOT: readonly (TaskState | null)[] = [
  null, 'rebooting', 'reboot_pending', 'reboot_started', 'resuming', 'rebooting_hard', 'unpausing', 'pausing', 'suspending',
];

/** power_state as Nova reports it (observed from the hypervisor, never driven by the API). */
export const POWER_STATES = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;
export type PowerState = (typeof POWER_STATES)[keyof typeof POWER_STATES];

const REBOOT = ['rebooting', 'reboot_pending', 'reboot_started'];
const HARD_REBOOT = ['rebooting_hard', 'reboot_pending_hard', 'reboot_started_hard'];
const REBUILD = ['rebuilding', 'rebuild_block_device_mapping', 'rebuild_spawning'];
const RESIZE = ['resize_prep', 'resize_migrating', 'resize_migrated', 'resize_finish'];

/** The status the API shows, from Nova's table; UNKNOWN for combinations it does not list. */
export function instanceStatus(vm: VmState, task: TaskState | null): string {
  const t = task ?? '';
  switch (vm) {
    case 'active':
      if (REBOOT.includes(t)) return 'REBOOT';
      if (HARD_REBOOT.includes(t)) return 'HARD_REBOOT';
      if (t === 'updating_password') return 'PASSWORD';
      if (REBUILD.includes(t)) return 'REBUILD';
      if (t === 'migrating') return 'MIGRATING';
      if (RESIZE.includes(t)) return 'RESIZE';
      return 'ACTIVE';
    case 'building':
      return 'BUILD';
    case 'stopped':
      if (RESIZE.includes(t)) return 'RESIZE';
      if (REBUILD.includes(t)) return 'REBUILD';
      return 'SHUTOFF';
    case 'resized':
      return t === 'resize_reverting' ? 'REVERT_RESIZE' : 'VERIFY_RESIZE';
    case 'paused':
      return t === 'migrating' ? 'MIGRATING' : 'PAUSED';
    case 'suspended':
      return 'SUSPENDED';
    case 'rescued':
      return 'RESCUE';
    case 'error':
      return REBUILD.includes(t) ? 'REBUILD' : 'ERROR';
    case 'deleted':
      return 'DELETED';
    case 'soft-delete':
      return 'SOFT_DELETED';
    case 'shelved':
      return 'SHELVED';
    case 'shelved_offloaded':
      return 'SHELVED_OFFLOADED';
    default:
      return 'UNKNOWN';
  }
}
