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
  /** Hosts holding a claim for this instance (from ResourcesClaimed/Released). */
  claimHosts: readonly string[];
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
  | { kind: 'release'; claimHosts: readonly string[]; quota: boolean };

const SPAWNING: readonly (TaskState | null)[] = ['networking', 'block_device_mapping', 'spawning'];

export function nextBootStep(v: BootView, nowMs: number, o: BootOptions): BootStep {
  if (v.action !== 'create') return settle(v);

  if (v.task === 'scheduling') {
    // A claim left by an attempt that failed: give it back before anything else.
    const stale = v.claimHosts.filter((h) => v.failedHosts.includes(h));
    if (stale.length > 0) return { kind: 'release', claimHosts: stale, quota: false };
    // Claimed but not yet assigned (the runner stopped in between): finish the assignment.
    if (v.claimHosts.length > 0 && !v.host) return { kind: 'assign', host: v.claimHosts[0] };
    // Assigned: the host's agent takes it from here (its first report moves the task on).
    if (v.host) return timedOut(v, nowMs, o) ?? { kind: 'wait' };
    if (v.failedHosts.length >= o.maxAttempts) {
      return {
        kind: 'fail',
        message: `Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance ${v.instanceId} (failed on ${v.failedHosts.join(', ')})`,
      };
    }
    return { kind: 'schedule', ignoreHosts: v.failedHosts };
  }
  if (v.host && SPAWNING.includes(v.task)) return timedOut(v, nowMs, o) ?? { kind: 'wait' };
  return { kind: 'wait' };
}

/**
 * Claims and quota a server no longer needs once no action runs: everything when it is deleted
 * (quota too); otherwise claims on hosts other than its own (a boot that ended in ERROR before
 * any host took it, an offloaded shelve, the leftovers of a move). An ERROR server on a host keeps
 * its allocation and its quota, as in Nova.
 */
export function settle(v: BootView & { sourceHost?: string }): BootStep {
  if (v.action !== null) return { kind: 'wait' };
  if (v.vm === 'deleted') return v.claimHosts.length > 0 || v.quotaHeld ? { kind: 'release', claimHosts: v.claimHosts, quota: v.quotaHeld } : { kind: 'wait' };
  const keep = v.vm === 'resized' && v.sourceHost ? [v.host, v.sourceHost] : [v.host];
  const stray = v.claimHosts.filter((h) => !keep.includes(h));
  return stray.length > 0 ? { kind: 'release', claimHosts: stray, quota: false } : { kind: 'wait' };
}

const timedOut = (v: BootView, nowMs: number, o: BootOptions): BootStep | undefined =>
  nowMs - v.lastProgressMs > o.bootTimeoutMs
    ? { kind: 'reschedule', reason: `host ${v.host} did not finish the boot within ${Math.round(o.bootTimeoutMs / 1000)} s` }
    : undefined;
