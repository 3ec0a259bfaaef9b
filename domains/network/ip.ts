// IPv4 and IPv6 address arithmetic on bigint, pure and dependency-free: parsing (strict: no
// leading zeros in IPv4 octets, at most one "::" in IPv6), the canonical text (RFC 5952 for IPv6:
// lower case, the longest run of two or more zero groups compressed), CIDRs and ranges. Subnets,
// allocation pools and IPAM all compare addresses as bigints and store them as canonical text.

export type IpVersion = 4 | 6;

export interface Address {
  version: IpVersion;
  value: bigint;
}

export interface Cidr {
  version: IpVersion;
  /** The first address (host bits zero when the CIDR is canonical). */
  network: bigint;
  prefix: number;
}

export const BITS: Record<IpVersion, number> = { 4: 32, 6: 128 };

const IPV4 = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function parseV4(s: string): bigint | undefined {
  const m = IPV4.exec(s);
  if (!m) return undefined;
  let v = 0n;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return undefined;
    v = (v << 8n) | BigInt(o);
  }
  return v;
}

function parseV6(s: string): bigint | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length > 45) return undefined;
  // An embedded IPv4 tail (::ffff:192.0.2.1) is the last two groups.
  let text = s;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${s.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if ([...head, ...tail].some((g) => !/^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  const explicit = head.length + tail.length;
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined;
  const all = [...head, ...Array<string>(8 - explicit).fill('0'), ...tail];
  return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** An IPv4 or IPv6 address, or undefined when the text is not one. */
export function parseIp(s: string): Address | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { version: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { version: 4, value: v };
}

export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(16 * (7 - i))) & 0xffffn));
  // The longest run of at least two zero groups (the first one on a tie) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The canonical text of an address (or undefined when it is not one). */
export const canonicalIp = (s: string): string | undefined => {
  const a = parseIp(s);
  return a && formatIp(a.version, a.value);
};

/** "10.0.0.0/24" -> its version, first address and prefix; hostBits: the address had host bits set. */
export function parseCidr(s: string): (Cidr & { hostBits: boolean }) | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const a = parseIp(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!a || !/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
  const prefix = Number(p);
  if (prefix > BITS[a.version]) return undefined;
  const network = a.value & mask(a.version, prefix);
  return { version: a.version, network, prefix, hostBits: network !== a.value };
}

export const mask = (version: IpVersion, prefix: number): bigint => {
  const bits = BigInt(BITS[version]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
};

export const size = (c: Cidr): bigint => 1n << BigInt(BITS[c.version] - c.prefix);
export const lastOf = (c: Cidr): bigint => c.network + size(c) - 1n;
export const cidrText = (c: Cidr): string => `${formatIp(c.version, c.network)}/${c.prefix}`;
export const inCidr = (c: Cidr, a: Address): boolean => a.version === c.version && a.value >= c.network && a.value <= lastOf(c);

export interface Range {
  start: bigint;
  end: bigint;
}

/**
 * Neutron's default allocation pool: the whole CIDR minus the gateway; IPv4 (prefix up to /30) also
 * without the network and broadcast addresses, IPv6 without the subnet-router anycast (first)
 * address. Ranges in order; empty when nothing is left.
 */
export function defaultPools(c: Cidr, gateway: bigint | null): Range[] {
  let start = c.network;
  let end = lastOf(c);
  if (c.version === 4 && c.prefix <= 30) {
    start += 1n;
    end -= 1n;
  } else if (c.version === 6 && c.prefix < 128) start += 1n;
  if (start > end) return [];
  if (gateway === null || gateway < start || gateway > end) return [{ start, end }];
  return [
    ...(gateway > start ? [{ start, end: gateway - 1n }] : []),
    ...(gateway < end ? [{ start: gateway + 1n, end }] : []),
  ];
}

/** Neutron's default gateway: the first host address (the first address of a /31, /32, /127 or /128). */
export function defaultGateway(c: Cidr): bigint {
  const tiny = (c.version === 4 && c.prefix >= 31) || (c.version === 6 && c.prefix === 128);
  return tiny ? c.network : c.network + 1n;
}

/** Addresses that are never handed out: IPv4's network and broadcast (up to /30), IPv6's subnet-router anycast. */
export function reserved(c: Cidr, value: bigint): boolean {
  if (c.version === 4 && c.prefix <= 30) return value === c.network || value === lastOf(c);
  if (c.version === 6 && c.prefix < 128) return value === c.network;
  return false;
}
