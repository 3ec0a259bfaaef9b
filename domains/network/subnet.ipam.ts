// A subnet's addresses: the defaults Neutron fills in (gateway, allocation pools), the checks of a
// subnet's shape, and IPAM: which address an AllocateIp gets. The subnet aggregate is the single
// writer of its allocations, so two ports can never be given one address, however many ask at
// once. Its state holds only the allocated addresses (canonical text -> port id), never the pool.
import { InvalidArgumentError } from '../kernel/rejection.js';
import { canonicalIp, cidrText, defaultGateway, defaultPools, formatIp, inCidr, parseCidr, parseIp, reserved, type Cidr, type Range } from './ip.js';
import type { AllocationPool, Subnet } from './network.types.js';

/** The subnet's CIDR, parsed; throws naming `field` when it is not a canonical CIDR of ip_version. */
export function subnetCidr(subnet: Pick<Subnet, 'cidr' | 'ipVersion'>, field = 'subnet.cidr'): Cidr {
  const c = parseCidr(subnet.cidr);
  if (!c) throw new InvalidArgumentError(field, `"${subnet.cidr}" is not a CIDR (address/prefix)`);
  if (c.hostBits) throw new InvalidArgumentError(field, `"${subnet.cidr}" has host bits set (the network is ${cidrText(c)})`);
  if (subnet.ipVersion !== c.version) throw new InvalidArgumentError(field, `"${subnet.cidr}" is not an IPv${subnet.ipVersion} CIDR (ip_version ${subnet.ipVersion})`);
  return c;
}

const address = (c: Cidr, text: string, field: string): bigint => {
  const a = parseIp(text);
  if (!a) throw new InvalidArgumentError(field, `"${text}" is not an IP address`);
  if (a.version !== c.version) throw new InvalidArgumentError(field, `"${text}" is not an IPv${c.version} address`);
  if (!inCidr(c, a)) throw new InvalidArgumentError(field, `${text} is outside the subnet's CIDR ${cidrText(c)}`);
  return a.value;
};

/** The pools as ranges, checked: inside the CIDR, start <= end, not overlapping, without the gateway. */
export function poolRanges(c: Cidr, pools: readonly AllocationPool[], gateway: bigint | null, field = 'subnet.allocation_pools'): Range[] {
  const ranges = pools.map((p, i) => {
    const start = address(c, p.start, `${field}[${i}].start`);
    const end = address(c, p.end, `${field}[${i}].end`);
    if (start > end) throw new InvalidArgumentError(`${field}[${i}]`, `start ${p.start} is after end ${p.end}`);
    if (gateway !== null && gateway >= start && gateway <= end) {
      throw new InvalidArgumentError(`${field}[${i}]`, `${p.start}-${p.end} contains the gateway ${formatIp(c.version, gateway)}`);
    }
    return { start, end, i };
  });
  const sorted = [...ranges].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let k = 1; k < sorted.length; k++) {
    if (sorted[k].start <= sorted[k - 1].end) {
      const [a, b] = [sorted[k - 1], sorted[k]];
      throw new InvalidArgumentError(`${field}[${b.i}]`, `${pools[b.i].start}-${pools[b.i].end} overlaps ${pools[a.i].start}-${pools[a.i].end}`);
    }
  }
  return sorted.map(({ start, end }) => ({ start, end }));
}

/**
 * The subnet as it is created: the gateway defaults to the first host (none when noGateway), the
 * pools to the whole CIDR minus network, broadcast and gateway (Neutron's defaults); every address
 * canonical. Throws InvalidArgumentError naming the field of a bad CIDR, gateway or pool.
 */
export function resolveSubnet(subnet: Subnet, noGateway: boolean): Subnet {
  const c = subnetCidr(subnet);
  let gateway: bigint | null = null;
  if (noGateway) {
    if (subnet.gatewayIp) throw new InvalidArgumentError('subnet.gateway_ip', 'must be empty when no_gateway is set');
  } else gateway = subnet.gatewayIp ? address(c, subnet.gatewayIp, 'subnet.gateway_ip') : defaultGateway(c);
  const given = subnet.allocationPools ?? [];
  const ranges = given.length > 0 ? poolRanges(c, given, gateway) : defaultPools(c, gateway);
  if (given.length === 0 && ranges.length === 0) throw new InvalidArgumentError('subnet.cidr', `${subnet.cidr} leaves no address to allocate`);
  return {
    ...subnet,
    cidr: cidrText(c),
    gatewayIp: gateway === null ? null : formatIp(c.version, gateway),
    allocationPools: ranges.map((r) => ({ start: formatIp(c.version, r.start), end: formatIp(c.version, r.end) })),
  };
}

/** What IPAM holds: allocated address (canonical) -> the port holding it. */
export type Allocations = Record<string, string>;

export type IpamOutcome = { ipAddress: string } | { retry: true } | { code: 'ALREADY_EXISTS' | 'RESOURCE_EXHAUSTED' | 'INVALID_ARGUMENT'; field?: string; message: string };

/** The lowest free address of the pools, or null. Costs O(allocations · log) whatever the pool's size. */
export function nextFree(c: Cidr, pools: readonly Range[], allocations: Allocations): bigint | null {
  const taken = Object.keys(allocations)
    .map((a) => parseIp(a)!.value)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const pool of pools) {
    let k = 0;
    // Each step passes one allocated or reserved address: the walk is bounded by the allocations.
    for (let candidate = pool.start; candidate <= pool.end; candidate++) {
      while (k < taken.length && taken[k] < candidate) k++;
      if ((k < taken.length && taken[k] === candidate) || reserved(c, candidate)) continue;
      return candidate;
    }
  }
  return null;
}

/** The decision of AllocateIp {portId, ipAddress ('' = the next free one)} against a subnet. */
export function allocate(subnetId: string, subnet: Subnet, allocations: Allocations, portId: string, wanted: string, deviceOwner = ''): IpamOutcome {
  const c = parseCidr(subnet.cidr)!;
  if (wanted) {
    const a = parseIp(wanted);
    if (!a || !inCidr(c, a)) {
      return { code: 'INVALID_ARGUMENT', field: 'ip_address', message: `ip_address: ${wanted} is not a valid IP for subnet ${subnetId} (${subnet.cidr})` };
    }
    const text = formatIp(a.version, a.value);
    if (reserved(c, a.value)) return { code: 'INVALID_ARGUMENT', field: 'ip_address', message: `ip_address: ${text} is the network's reserved address on subnet ${subnetId}` };
    if (text === subnet.gatewayIp && !deviceOwner.startsWith('network:router')) {
      return { code: 'INVALID_ARGUMENT', field: 'ip_address', message: `ip_address: ${text} is the gateway of subnet ${subnetId}; only a router interface may take it` };
    }
    const holder = allocations[text];
    if (holder === portId) return { retry: true };
    if (holder !== undefined) {
      return { code: 'ALREADY_EXISTS', field: 'ip_address', message: `IP address ${text} already allocated in subnet ${subnetId}` };
    }
    return { ipAddress: text };
  }
  const pools = subnet.allocationPools.map((p) => ({ start: parseIp(p.start)!.value, end: parseIp(p.end)!.value }));
  const free = nextFree(c, pools, allocations);
  if (free === null) {
    return { code: 'RESOURCE_EXHAUSTED', message: `No more IP addresses available on subnet ${subnetId} (network ${subnet.networkId})` };
  }
  return { ipAddress: formatIp(c.version, free) };
}

/** The addresses ReleaseIp {portId, ipAddress ('' = all the port's)} gives back. */
export function releasable(allocations: Allocations, portId: string, ipAddress: string): string[] {
  if (ipAddress) {
    const text = canonicalIp(ipAddress);
    return text !== undefined && allocations[text] === portId ? [text] : [];
  }
  return Object.entries(allocations)
    .filter(([, p]) => p === portId)
    .map(([a]) => a);
}
