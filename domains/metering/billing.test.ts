// Billing as a specification: rate cards refused with the field named, usage cut at UTC month
// boundaries, and invoices priced exactly (amounts computed by hand in the comments).
import { describe, expect, it } from 'vitest';
import {
  amountMinor, BillingMeter, formatMinor, formatQuantity, invoices, monthBounds, monthOf, openLines, parseRateCard, RateCardError, segmentLines, splitByMonth,
  type RateCard, type UsageLine,
} from './billing.js';
import { HOUR_MS, type MeteredEvent } from './usage.js';

const card = (o: Record<string, unknown> = {}): RateCard =>
  parseRateCard({
    currency: 'EUR',
    rates: [
      { metric: 'instance', key: 'm1.small', price: '0.02' },
      { metric: 'instance', price: '0.05' },
      { metric: 'vcpu', price: '0.01' },
      { metric: 'ram_mb', price: '0.003' },
      { metric: 'object_bytes', price: '0.00003' },
      { metric: 'floating_ip', price: '0.004' },
    ],
    ...o,
  });

function refusal(input: unknown): { field: string; message: string } {
  try {
    parseRateCard(input);
  } catch (e) {
    expect(e).toBeInstanceOf(RateCardError);
    return { field: (e as RateCardError).field, message: (e as RateCardError).message };
  }
  throw new Error('accepted');
}

describe('rate card', () => {
  it('is parsed with minorDigits defaulting to 2', () => {
    const c = card();
    expect(c.currency).toBe('EUR');
    expect(c.minorDigits).toBe(2);
    expect(c.rates[1]).toEqual({ metric: 'instance', price: '0.05' });
  });

  it('is refused naming the field', () => {
    const ok = { currency: 'EUR', rates: [{ metric: 'vcpu', price: '1' }] };
    expect(refusal([]).field).toBe('(rate card)');
    expect(refusal({ ...ok, currency: 'euro' }).field).toBe('currency');
    expect(refusal({ ...ok, minorDigits: 2.5 }).field).toBe('minorDigits');
    expect(refusal({ ...ok, rates: [] }).field).toBe('rates');
    expect(refusal({ ...ok, prices: [] }).field).toBe('prices');
    expect(refusal({ ...ok, rates: [{ metric: 'cpu', price: '1' }] }).field).toBe('rates[0].metric');
    expect(refusal({ ...ok, rates: [{ metric: 'vcpu', price: 0.01 }] })).toMatchObject({ field: 'rates[0].price', message: expect.stringContaining('string') });
    for (const price of ['-1', '1e-3', '.5', '01', '0.1234567890123', '']) expect(refusal({ ...ok, rates: [{ metric: 'vcpu', price }] }).field, price).toBe('rates[0].price');
    expect(refusal({ ...ok, rates: [{ metric: 'vcpu', price: '1', cost: 1 }] }).field).toBe('rates[0].cost');
    expect(refusal({ ...ok, rates: [{ metric: 'instance', key: 5, price: '1' }] }).field).toBe('rates[0].key');
    expect(refusal({ ...ok, rates: [{ metric: 'vcpu', price: '1' }, { metric: 'vcpu', price: '2' }] }).field).toBe('rates[1].metric');
    expect(refusal({ ...ok, rates: [{ metric: 'instance', key: 'a', price: '1' }, { metric: 'instance', key: 'a', price: '2' }] }).field).toBe('rates[1].key');
  });
});

describe('amounts', () => {
  it('are exact and rounded half up once per line', () => {
    // 1 vCPU-hour at 0.01 = 1 cent; 1.5 h = 1.5 cents -> 2; 1.49 h -> 1.
    expect(amountMinor({ minorDigits: 2 }, 'vcpu', BigInt(HOUR_MS), '0.01')).toBe(1n);
    expect(amountMinor({ minorDigits: 2 }, 'vcpu', BigInt(1.5 * HOUR_MS), '0.01')).toBe(2n);
    expect(amountMinor({ minorDigits: 2 }, 'vcpu', BigInt(1.49 * HOUR_MS), '0.01')).toBe(1n);
    // 0.1 + 0.2 in floats is 0.30000000000000004; here 3 hours at 0.1 are 30 cents exactly.
    expect(amountMinor({ minorDigits: 2 }, 'vcpu', BigInt(3 * HOUR_MS), '0.1')).toBe(30n);
    // ram: 2048 MB for 10 h = 20 GiB-hours at 0.003 = 0.06 -> 6 cents.
    expect(amountMinor({ minorDigits: 2 }, 'ram_mb', 2048n * BigInt(10 * HOUR_MS), '0.003')).toBe(6n);
    // 5 TiB of objects for 31 days = 5120 GiB x 744 h = 3,809,280 GiB-hours at 0.00003 = 114.2784 -> 114.28.
    const bytes = 5n * 1024n ** 4n;
    const ms = BigInt(31 * 24 * HOUR_MS);
    expect(bytes * ms > BigInt(Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(amountMinor({ minorDigits: 2 }, 'object_bytes', bytes * ms, '0.00003')).toBe(11428n);
    expect(amountMinor({ minorDigits: 0 }, 'vcpu', BigInt(HOUR_MS), '0.5')).toBe(1n);
    expect(formatMinor(11428n, 2)).toBe('114.28');
    expect(formatMinor(5n, 2)).toBe('0.05');
    expect(formatMinor(7n, 0)).toBe('7');
    expect(formatQuantity('ram_mb', 2048n * BigInt(10 * HOUR_MS))).toBe('20.000000');
    expect(formatQuantity('vcpu', 1n)).toBe('0.000000');
  });
});

describe('months', () => {
  it('are UTC calendar months, leap years included', () => {
    expect(monthOf(Date.UTC(2026, 0, 31, 23, 59, 59, 999))).toBe('2026-01');
    expect(monthOf(Date.UTC(2026, 1, 1))).toBe('2026-02');
    expect(monthOf(Date.UTC(2024, 1, 29, 12))).toBe('2024-02');
    expect(monthOf(0)).toBe('1970-01');
    expect(monthBounds('2024-02')).toEqual({ startMs: Date.UTC(2024, 1, 1), endMs: Date.UTC(2024, 2, 1) });
    expect(monthBounds('2026-12').endMs).toBe(Date.UTC(2027, 0, 1));
  });

  it('cut an interval at their boundaries', () => {
    // 2026-01-31 22:00 to 2026-03-01 01:00: 2 h in January, all of February (28 days), 1 h in March.
    expect(splitByMonth(Date.UTC(2026, 0, 31, 22), Date.UTC(2026, 2, 1, 1))).toEqual([
      { month: '2026-01', ms: 2 * HOUR_MS },
      { month: '2026-02', ms: 28 * 24 * HOUR_MS },
      { month: '2026-03', ms: HOUR_MS },
    ]);
    expect(splitByMonth(5, 5)).toEqual([]);
    expect(segmentLines('p1', { metric: 'vcpu', key: '', quantity: 4, startMs: Date.UTC(2026, 0, 31, 23), endMs: 0 } as never, Date.UTC(2026, 1, 1, 2))).toEqual([
      { projectId: 'p1', month: '2026-01', metric: 'vcpu', key: '', quantityMs: 4n * BigInt(HOUR_MS) },
      { projectId: 'p1', month: '2026-02', metric: 'vcpu', key: '', quantityMs: 8n * BigInt(HOUR_MS) },
    ]);
  });
});

const T0 = Date.UTC(2026, 0, 31, 20); // 2026-01-31 20:00Z
const at = (h: number, m = 0) => T0 + h * HOUR_MS + m * 60_000;
const SMALL = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048 };
const LARGE = { id: 'f2', name: 'm1.large', vcpus: 4, ramMb: 8192 };

function stream(aggregateType: string, aggregateId: string) {
  let version = 0;
  return (type: string, atMs: number, payload: Record<string, unknown> = {}): MeteredEvent => ({ ...payload, type, aggregateType, aggregateId, version: ++version, occurredAtMs: atMs });
}

describe('billing meter and invoices', () => {
  // p1: a server small from 21:00 (Jan 31) to 02:00 (Feb 1), then large until 03:30, deleted.
  //     A floating IP from 20:30 (Jan 31), still held at the last event (Feb 1 06:00).
  // p2: an object of 1 GiB from 23:00 (Jan 31) to 01:00 (Feb 1), deleted.
  function events(): MeteredEvent[] {
    const i = stream('instance', 'i1');
    const f = stream('floating_ip', 'fip1');
    const o = stream('object', 'o1');
    return [
      i('InstanceCreated', at(0, 50), { projectId: 'p1', flavor: SMALL }),
      f('FloatingIpCreated', at(0, 30), { floatingIp: { projectId: 'p1', floatingNetworkId: 'ext' } }),
      i('InstanceActionCompleted', at(1), { vmState: 'active' }),
      o('ObjectRecorded', at(3), { object: { account: 'AUTH_p2', size: 1024 ** 3, segments: [] } }),
      i('InstanceActionCompleted', at(6), { vmState: 'resized', flavor: LARGE }),
      o('ObjectDeleted', at(5)),
      i('InstanceActionCompleted', at(7, 30), { vmState: 'deleted' }),
      stream('instance', 'i2')('InstanceCreated', at(10), { projectId: 'p1', flavor: SMALL }), // building: bills nothing; the latest event
    ];
  }

  it('closes usage into months; open segments count up to the latest event time; redelivery adds nothing', () => {
    const b = new BillingMeter();
    const closed: UsageLine[] = [];
    const evs = events();
    for (const e of evs) closed.push(...b.apply(e));
    for (const e of evs) expect(b.apply(e), 'a redelivery closes nothing').toEqual([]);
    expect(b.asOfMs).toBe(at(10));
    const c = card();
    const inv = invoices(c, [...closed, ...openLines(b.meter.export(), b.asOfMs)], b.asOfMs);
    expect(inv.map((x) => `${x.projectId} ${x.month}`)).toEqual(['p1 2026-01', 'p1 2026-02', 'p2 2026-01', 'p2 2026-02']);
    const [p1jan, p1feb, p2jan, p2feb] = inv;
    // p1 January: small 21:00-24:00 = 3 h (instance 3 h at 0.02 = 6 cents, vcpu 3 h at 0.01 = 3,
    // ram 2 GiB x 3 h = 6 GiB-h at 0.003 = 1.8 -> 2); floating IP 20:30-24:00 = 3.5 h at 0.004 = 1.4 -> 1.
    expect(p1jan.lines.map((l) => [l.metric, l.key, l.quantity, l.amountMinor])).toEqual([
      ['instance', 'm1.small', '3.000000', '6'],
      ['vcpu', '', '3.000000', '3'],
      ['ram_mb', '', '6.000000', '2'],
      ['floating_ip', 'ext', '3.500000', '1'],
    ]);
    expect([p1jan.totalMinor, p1jan.total, p1jan.currency]).toEqual(['12', '0.12', 'EUR']);
    expect(p1jan.usageThroughMs).toBe(Date.UTC(2026, 1, 1));
    // p1 February: small 00:00-02:00 = 2 h (4 cents), large 02:00-03:30 = 1.5 h at 0.05 (the
    // metric's rate) = 7.5 -> 8; vcpu 2 + 4 x 1.5 = 8 h = 8 cents; ram 4 + 8 x 1.5 = 16 GiB-h =
    // 4.8 -> 5; floating IP 00:00-06:00 (open, up to the latest event) = 6 h = 2.4 -> 2.
    expect(p1feb.lines.map((l) => [l.metric, l.key, l.quantity, l.unitPrice, l.amountMinor])).toEqual([
      ['instance', 'm1.large', '1.500000', '0.05', '8'],
      ['instance', 'm1.small', '2.000000', '0.02', '4'],
      ['vcpu', '', '8.000000', '0.01', '8'],
      ['ram_mb', '', '16.000000', '0.003', '5'],
      ['floating_ip', 'ext', '6.000000', '0.004', '2'],
    ]);
    expect(p1feb.totalMinor).toBe('27');
    expect(p1feb.usageThroughMs).toBe(at(10));
    // p2: 1 GiB 23:00-01:00 = 1 GiB-h each month at 0.00003 -> 0.003 cents -> 0.
    expect(p2jan.lines.map((l) => [l.metric, l.quantity, l.amountMinor])).toEqual([['object_bytes', '1.000000', '0']]);
    expect(p2feb.lines[0].quantityMs).toBe(String(1024 ** 3 * HOUR_MS));
  });

  it('gives the same invoices however the events of different resources interleave, and a line without a rate costs 0', () => {
    const evs = events();
    const run = (order: MeteredEvent[]) => {
      const b = new BillingMeter();
      const closed = order.flatMap((e) => b.apply(e));
      return invoices(card(), [...closed, ...openLines(b.meter.export(), b.asOfMs)], b.asOfMs);
    };
    const byResource = [...evs].sort((a, b) => (a.aggregateId < b.aggregateId ? -1 : a.aggregateId > b.aggregateId ? 1 : a.version - b.version));
    expect(run(byResource)).toEqual(run(evs));
    const b = new BillingMeter();
    const closed = evs.flatMap((e) => b.apply(e));
    const noFip = parseRateCard({ currency: 'USD', minorDigits: 3, rates: [{ metric: 'vcpu', price: '0.01' }] });
    const jan = invoices(noFip, closed, b.asOfMs).find((x) => x.projectId === 'p1' && x.month === '2026-01')!;
    expect(jan.lines.find((l) => l.metric === 'instance')).toMatchObject({ unitPrice: null, amountMinor: '0' });
    expect(jan.lines.find((l) => l.metric === 'vcpu')).toMatchObject({ amountMinor: '30', amount: '0.030' });
  });
});
