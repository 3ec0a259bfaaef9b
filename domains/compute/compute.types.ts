// The compute resources as the domain sees them: the messages of
// proto/strata/compute/v1/resources.proto with camelCase fields. Instances carry a FlavorRef
// (instance.actions.ts); hosts a HostInventory (host.machine.ts).

export const COMPUTE_DOMAIN = 'compute';

export interface Flavor {
  id: string;
  name: string;
  vcpus: number;
  ramMb: number;
  diskGb: number;
  ephemeralGb: number;
  swapMb: number;
  extraSpecs: Record<string, string>;
  isPublic: boolean;
  description: string;
}

export const KEYPAIR_TYPES = ['ssh', 'x509'] as const;

export interface Keypair {
  id: string;
  name: string;
  userId: string;
  publicKey: string;
  fingerprint: string;
  type: (typeof KEYPAIR_TYPES)[number];
}

export const GROUP_POLICIES = ['affinity', 'anti-affinity', 'soft-affinity', 'soft-anti-affinity'] as const;

export interface ServerGroup {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  policy: (typeof GROUP_POLICIES)[number];
  /** Anti-affinity only; 0: the default, 1. */
  maxServerPerHost: number;
}

export interface Aggregate {
  id: string;
  name: string;
  /** Empty: none. */
  availabilityZone: string;
  metadata: Record<string, string>;
}

/** What one server counts against its project's quota. */
export interface QuotaUsage {
  instances: number;
  cores: number;
  ram: number;
}
