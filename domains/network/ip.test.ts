// Address arithmetic as the RFCs and Neutron state it: strict parsing, RFC 5952 text, CIDRs and
// Neutron's default gateway and pools.
import { describe, expect, it } from 'vitest';
import { canonicalIp, defaultGateway, defaultPools, formatIp, parseCidr, parseIp } from './ip.js';

const text = (r: { start: bigint; end: bigint }[], v: 4 | 6) => r.map((x) => `${formatIp(v, x.start)}-${formatIp(v, x.end)}`);

describe('ip', () => {
  it.each([
    ['10.0.0.1', '10.0.0.1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fe80::', 'fe80::'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2:3:4:5:6'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
  ])('canonical %s -> %s', (input, out) => expect(canonicalIp(input)).toBe(out));

  it.each(['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', '1::2::3', '2001:db8:0:0:0:0:0:0:1', 'g::1', '', '12345::', ':1'])('refuses %s', (bad) => expect(parseIp(bad)).toBeUndefined());

  it('parses CIDRs and tells host bits', () => {
    expect(parseCidr('10.0.0.0/24')).toEqual({ version: 4, network: 0x0a000000n, prefix: 24, hostBits: false });
    expect(parseCidr('10.0.0.1/24')?.hostBits).toBe(true);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('2001:db8::/64')).toMatchObject({ version: 6, prefix: 64, hostBits: false });
    expect(parseCidr('2001:db8::/129')).toBeUndefined();
  });

  it("fills Neutron's defaults: first host as gateway, the rest as the pool", () => {
    const v4 = parseCidr('10.0.0.0/24')!;
    expect(formatIp(4, defaultGateway(v4))).toBe('10.0.0.1');
    expect(text(defaultPools(v4, defaultGateway(v4)), 4)).toEqual(['10.0.0.2-10.0.0.254']);
    expect(text(defaultPools(v4, 0x0a000064n), 4)).toEqual(['10.0.0.1-10.0.0.99', '10.0.0.101-10.0.0.254']);
    expect(text(defaultPools(v4, null), 4)).toEqual(['10.0.0.1-10.0.0.254']);
    const v6 = parseCidr('2001:db8::/64')!;
    expect(text(defaultPools(v6, defaultGateway(v6)), 6)).toEqual(['2001:db8::2-2001:db8::ffff:ffff:ffff:ffff']);
    expect(text(defaultPools(parseCidr('10.0.0.0/31')!, null), 4)).toEqual(['10.0.0.0-10.0.0.1']);
  });
});
