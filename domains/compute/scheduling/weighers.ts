// Host weighers: each gives a raw value per host; the scheduler normalises each to 0..1 across
// the candidates and adds them times their multiplier. Positive multipliers spread, negative stack.
import { free, type HostState, type RequestSpec } from './host-state.js';

export interface HostWeigher {
  name: string;
  multiplier: number;
  raw(host: HostState, spec: RequestSpec): number;
  /** False when every host would weigh the same for this request: the scheduler skips it. */
  applies?(spec: RequestSpec): boolean;
}

export interface WeigherOptions {
  ram: number;
  cpu: number;
  disk: number;
  softAffinity: number;
  softAntiAffinity: number;
  buildFailure: number;
}

/** Nova's defaults: spread on RAM, CPU and disk; strongly avoid hosts that fail builds. */
export const SPREAD: WeigherOptions = { ram: 1, cpu: 1, disk: 1, softAffinity: 1, softAntiAffinity: 1, buildFailure: 1_000_000 };
/** Stacking: fill hosts before using new ones. */
export const STACK: WeigherOptions = { ...SPREAD, ram: -1, cpu: -1, disk: -1 };

export function weighers(o: WeigherOptions): HostWeigher[] {
  const members = (h: HostState, s: RequestSpec) => (s.serverGroup ? (h.groupMembers[s.serverGroup.id] ?? 0) : 0);
  const all: HostWeigher[] = [
    { name: 'RAMWeigher', multiplier: o.ram, raw: (h) => free(h.ramMb) },
    { name: 'CPUWeigher', multiplier: o.cpu, raw: (h) => free(h.vcpus) },
    { name: 'DiskWeigher', multiplier: o.disk, raw: (h) => free(h.diskGb) },
    { name: 'ServerGroupSoftAffinityWeigher', multiplier: o.softAffinity, applies: (s) => s.serverGroup?.policy === 'soft-affinity', raw: (h, s) => members(h, s) },
    { name: 'ServerGroupSoftAntiAffinityWeigher', multiplier: o.softAntiAffinity, applies: (s) => s.serverGroup?.policy === 'soft-anti-affinity', raw: (h, s) => -members(h, s) },
    { name: 'BuildFailureWeigher', multiplier: o.buildFailure, raw: (h) => -h.buildFailures },
  ];
  return all.filter((w) => w.multiplier !== 0);
}
