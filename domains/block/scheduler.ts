// Where a new volume goes: Cinder's filter scheduler in small pure pieces. Filters (each named as
// Cinder names it) drop the hosts that cannot take the volume; the weigher (CapacityWeigher:
// most free capacity first, ties by host id so the choice is deterministic) picks among the rest.
// When no host is left the rejection says, as Cinder's NoValidBackend does, that none was found,
// and names what filtered each host out.
import type { Rejection } from '../kernel/rejection.js';

export interface BlockHostState {
  hostId: string;
  backend: string;
  availabilityZone: string;
  totalGb: number;
  /** What its volumes take (their sizes), in GiB. */
  allocatedGb: number;
  /** Registered and serving (Cinder's service enabled and up). */
  enabled: boolean;
}

export interface VolumeRequest {
  sizeGb: number;
  /** The volume type's backend; '' = any. */
  backend: string;
  /** '' = any. */
  availabilityZone: string;
  /** Hosts already tried (a retry after a failed create). */
  excludeHostIds?: readonly string[];
}

export interface BlockHostFilter {
  name: string;
  /** Why this host cannot take the request (undefined: it can). */
  refuses(host: BlockHostState, request: VolumeRequest): string | undefined;
}

const freeGb = (h: BlockHostState) => h.totalGb - h.allocatedGb;

/** The host's service is enabled and up. */
export const enabledFilter: BlockHostFilter = { name: 'EnabledFilter', refuses: (h) => (h.enabled ? undefined : 'disabled') };

/** Hosts tried already for this volume (Cinder's retry: the previous hosts are ignored). */
export const ignoreAttemptedHostsFilter: BlockHostFilter = {
  name: 'IgnoreAttemptedHostsFilter',
  refuses: (h, r) => ((r.excludeHostIds ?? []).includes(h.hostId) ? 'tried already' : undefined),
};

export const availabilityZoneFilter: BlockHostFilter = {
  name: 'AvailabilityZoneFilter',
  refuses: (h, r) => (r.availabilityZone === '' || h.availabilityZone === r.availabilityZone ? undefined : `in zone ${h.availabilityZone || "''"}, not ${r.availabilityZone}`),
};

/** The type's volume_backend_name (Cinder's CapabilitiesFilter on that capability). */
export const capabilitiesFilter: BlockHostFilter = {
  name: 'CapabilitiesFilter',
  refuses: (h, r) => (r.backend === '' || h.backend === r.backend ? undefined : `backend ${h.backend || "''"}, not ${r.backend}`),
};

/** Thin provisioning aside (ratio 1): the free capacity covers the size. */
export const capacityFilter: BlockHostFilter = {
  name: 'CapacityFilter',
  refuses: (h, r) => (freeGb(h) >= r.sizeGb ? undefined : `${Math.max(0, freeGb(h))}G free, ${r.sizeGb}G needed`),
};

export const BLOCK_FILTERS: readonly BlockHostFilter[] = [enabledFilter, ignoreAttemptedHostsFilter, availabilityZoneFilter, capabilitiesFilter, capacityFilter];

/** Cinder's CapacityWeigher with its default multiplier: more free capacity first; ties by host id. */
export const capacityWeigher = (a: BlockHostState, b: BlockHostState): number => freeGb(b) - freeGb(a) || (a.hostId < b.hostId ? -1 : a.hostId > b.hostId ? 1 : 0);

/** The host for a new volume, or RESOURCE_EXHAUSTED naming why every host was filtered out. */
export function scheduleVolume(hosts: readonly BlockHostState[], request: VolumeRequest): { hostId: string } | { rejection: Rejection } {
  const passing: BlockHostState[] = [];
  const why: string[] = [];
  for (const h of hosts) {
    let refused: string | undefined;
    for (const f of BLOCK_FILTERS) {
      const reason = f.refuses(h, request);
      if (reason) {
        refused = `${h.hostId}: ${f.name} (${reason})`;
        break;
      }
    }
    if (refused) why.push(refused);
    else passing.push(h);
  }
  if (passing.length > 0) return { hostId: passing.sort(capacityWeigher)[0].hostId };
  const detail = hosts.length === 0 ? 'there are no storage hosts' : why.sort().join('; ');
  return { rejection: { code: 'RESOURCE_EXHAUSTED', message: `No valid backend was found. No host can take a ${request.sizeGb}G volume: ${detail}` } };
}
