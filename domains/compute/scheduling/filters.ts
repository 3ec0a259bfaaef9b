// Host filters: small pure predicates, each named as Nova names it. A host passes a request when
// every enabled filter passes it. RAM, CPU and disk are Placement's job in Nova; here one filter
// does it, with the same capacity rule.
import { fits, flavorDiskGb, type HostState, type RequestSpec } from './host-state.js';

export interface HostFilter {
  name: string;
  passes(host: HostState, spec: RequestSpec): boolean;
  /** False when the filter cannot reject any host for this request: the scheduler skips it. */
  applies?(spec: RequestSpec): boolean;
}

/** The service is enabled and its heartbeat recent. */
export const computeFilter: HostFilter = { name: 'ComputeFilter', passes: (h) => h.enabled && h.up };

export const availabilityZoneFilter: HostFilter = {
  name: 'AvailabilityZoneFilter',
  applies: (s) => s.availabilityZone !== '',
  passes: (h, s) => s.availabilityZone === '' || h.availabilityZone === s.availabilityZone,
};

export const resourcesFilter: HostFilter = {
  name: 'ResourcesFilter',
  passes: (h, s) => fits(h.vcpus, s.flavor.vcpus) && fits(h.ramMb, s.flavor.ramMb) && fits(h.diskGb, flavorDiskGb(s.flavor)),
};

const AGGREGATE_SCOPE = 'aggregate_instance_extra_specs:';

/** The (key, wanted value) pairs this filter checks: aggregate-scoped or unscoped extra specs. */
const aggregateSpecs = new WeakMap<Record<string, string>, [string, string][]>();
function specsOf(extraSpecs: Record<string, string>): [string, string][] {
  let list = aggregateSpecs.get(extraSpecs);
  if (!list) {
    list = [];
    for (const [rawKey, wanted] of Object.entries(extraSpecs)) {
      if (rawKey.startsWith(AGGREGATE_SCOPE)) list.push([rawKey.slice(AGGREGATE_SCOPE.length), wanted]);
      else if (!rawKey.includes(':')) list.push([rawKey, wanted]); // other scopes (hw:, capabilities:) are not this filter's
    }
    aggregateSpecs.set(extraSpecs, list);
  }
  return list;
}

/** Flavor extra specs scoped aggregate_instance_extra_specs: (or unscoped) must match aggregate metadata. */
export const aggregateInstanceExtraSpecsFilter: HostFilter = {
  name: 'AggregateInstanceExtraSpecsFilter',
  applies: (s) => specsOf(s.flavor.extraSpecs).length > 0,
  passes: (h, s) => {
    for (const [key, wanted] of specsOf(s.flavor.extraSpecs)) {
      const values = h.aggregateMetadata[key];
      if (!values || !values.some((v) => matches(v, wanted))) return false;
    }
    return true;
  },
};

/** Nova's extra-spec operators: "<in> a", "s== a", "= 4" (at least), "<or> a <or> b"; else equality. */
export function matches(actual: string, wanted: string): boolean {
  const w = wanted.trim();
  if (w.startsWith('<in>')) return actual.includes(w.slice(4).trim());
  if (w.startsWith('s==')) return actual === w.slice(3).trim();
  if (w.startsWith('<or>')) return w.split('<or>').map((x) => x.trim()).filter(Boolean).includes(actual);
  if (w.startsWith('=')) return Number(actual) >= Number(w.slice(1).trim());
  return actual === w;
}

/** affinity: the host already runs a member, or the group has none yet. */
export const serverGroupAffinityFilter: HostFilter = {
  name: 'ServerGroupAffinityFilter',
  applies: (s) => s.serverGroup?.policy === 'affinity' && s.serverGroup.members > 0,
  passes: (h, s) => s.serverGroup?.policy !== 'affinity' || s.serverGroup.members === 0 || (h.groupMembers[s.serverGroup.id] ?? 0) > 0,
};

/** anti-affinity: fewer than max_server_per_host members on the host. */
export const serverGroupAntiAffinityFilter: HostFilter = {
  name: 'ServerGroupAntiAffinityFilter',
  applies: (s) => s.serverGroup?.policy === 'anti-affinity',
  passes: (h, s) => s.serverGroup?.policy !== 'anti-affinity' || (h.groupMembers[s.serverGroup.id] ?? 0) < s.serverGroup.maxServerPerHost,
};

/** Hosts an earlier attempt of this boot failed on. */
export const retryFilter: HostFilter = { name: 'IgnoreHostsFilter', applies: (s) => s.ignoreHosts.length > 0, passes: (h, s) => !s.ignoreHosts.includes(h.id) };

export const DEFAULT_FILTERS: readonly HostFilter[] = [
  retryFilter,
  computeFilter,
  availabilityZoneFilter,
  resourcesFilter,
  aggregateInstanceExtraSpecsFilter,
  serverGroupAffinityFilter,
  serverGroupAntiAffinityFilter,
];
