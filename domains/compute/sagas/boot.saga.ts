// The boot saga's next step for one instance, from what the log says of it: level-triggered, so a
// runner that crashed at any point asks again and gets the step still missing. Quota is reserved
// by the API before the instance exists (RESOURCE_EXHAUSTED answers the caller at once); from
// there: schedule and claim, assign the host, let the host's agent spawn; a failed spawn comes
// back as a reschedule until max_attempts hosts failed; then ERROR with the reason. Every ending
// gives back what it held: the claim always, the quota when the server is deleted (an ERROR
// server still counts against its project, as in Nova).
import type { TaskState, VmState } from '../instance.states.js';

export interface BootView {
  instanceId: string;
  vm: VmState;
  task: TaskState | null;
  action: string | null;
  host: string;
  failedHosts: readonly string[];
  /** The host holding a claim for this instance, if any (from ResourcesClaimed/Released). */
  claimHost: string;
  quotaHeld: boolean;
  /** When the boot last moved on (host assigned, task changed), by the log's clock. */
  lastProgressMs: number;
}

export interface BootOptions {
  /** Hosts a boot may fail on before ERROR (Nova's max_attempts, default 3). */
  maxAttempts: number;
  /** How long a host may take from assignment to ACTIVE before the boot moves on. */
  bootTimeoutMs: number;
}

export type BootStep =
  | { kind: 'wait' }
  | { kind: 'schedule'; ignoreHosts: readonly string[] }
  | { kind: 'assign'; host: string }
  | { kind: 'reschedule'; reason: string }
  | { kind: 'fail'; message: string }
  | { kind: 'release'; claimHost: string; quota: boolean };

const SPAWNING: readonly (TaskState | null)[] = ['networking', 'block_device_mapping', 'spawning'];

export function nextBootStep(v: BootView, nowMs: number, o: BootOptions): BootStep {
  if (v.vm === 'deleted') return v.claimHost || v.quotaHeld ? { kind: 'release', claimHost: v.claimHost, quota: v.quotaHeld } : { kind: 'wait' };
  if (v.vm === 'error' && v.action === null) return v.claimHost ? { kind: 'release', claimHost: v.claimHost, quota: false } : { kind: 'wait' };
  if (v.action !== 'create') return { kind: 'wait' };

  if (v.task === 'scheduling') {
    // A claim left by an attempt that failed: give it back before anything else.
    if (v.claimHost && v.failedHosts.includes(v.claimHost)) return { kind: 'release', claimHost: v.claimHost, quota: false };
    // Claimed but not yet assigned (the runner stopped in between): finish the assignment.
    if (v.claimHost) return { kind: 'assign', host: v.claimHost };
    if (v.failedHosts.length >= o.maxAttempts) {
      return {
        kind: 'fail',
        message: `Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance ${v.instanceId} (failed on ${v.failedHosts.join(', ')})`,
      };
    }
    return { kind: 'schedule', ignoreHosts: v.failedHosts };
  }
  if (v.host && SPAWNING.includes(v.task) && nowMs - v.lastProgressMs > o.bootTimeoutMs) {
    return { kind: 'reschedule', reason: `host ${v.host} did not finish the boot within ${Math.round(o.bootTimeoutMs / 1000)} s` };
  }
  return { kind: 'wait' };
}
