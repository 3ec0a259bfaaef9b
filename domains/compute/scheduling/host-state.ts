// What the scheduler knows of a host: placement-style inventories (total, reserved, allocation
// ratio, used), where it is, whether its service is enabled and up, its aggregates' metadata, and
// how many members of each server group it runs.
import type { FlavorRef } from '../instance.actions.js';

export interface Inventory {
  total: number;
  reserved: number;
  allocationRatio: number;
  used: number;
}

export interface HostState {
  id: string;
  availabilityZone: string;
  enabled: boolean;
  /** Heartbeat recent enough (the caller decides with its clock; the scheduler stays pure). */
  up: boolean;
  vcpus: Inventory;
  ramMb: Inventory;
  diskGb: Inventory;
  /** Metadata of the host's aggregates: key -> every value some aggregate gives it. */
  aggregateMetadata: Record<string, string[]>;
  /** Server group id -> members on this host. */
  groupMembers: Record<string, number>;
  /** Recent build failures (BuildFailureWeigher). */
  buildFailures: number;
}

export type GroupPolicy = 'affinity' | 'anti-affinity' | 'soft-affinity' | 'soft-anti-affinity';

export interface RequestSpec {
  instanceId: string;
  projectId: string;
  flavor: FlavorRef;
  /** Empty: any zone. */
  availabilityZone: string;
  serverGroup?: { id: string; policy: GroupPolicy; maxServerPerHost: number; members: number };
  /** Hosts not to try again (earlier attempts that failed). */
  ignoreHosts: readonly string[];
}

/** Placement's capacity: (total - reserved) * allocation_ratio. */
export const capacity = (i: Inventory) => (i.total - i.reserved) * i.allocationRatio;
export const free = (i: Inventory) => capacity(i) - i.used;
export const fits = (i: Inventory, amount: number) => i.used + amount <= capacity(i);

/** The disk a flavor takes on its host: root + ephemeral (+ swap, in GiB rounded up). */
export const flavorDiskGb = (f: FlavorRef) => f.diskGb + f.ephemeralGb + Math.ceil(f.swapMb / 1024);
