// Billing as pure functions over the usage meter (./usage.ts): a rate card (prices per metric and
// key, as exact decimals), the usage of closed segments cut at UTC month boundaries per project,
// month, metric and key, and invoices priced from it. No floating point touches money or usage:
// usage is quantity x milliseconds as a bigint (an object's bytes x a month's milliseconds is far
// beyond 2^53), prices are decimals held as bigint units of 10^-scale, amounts are bigint minor
// units (cents).
//
// Rounding: an invoice line's amount is its whole month's usage times its price, rounded once to
// the currency's minor unit, half up (every amount is >= 0): the amount does not depend on how
// the usage was cut into segments or batches. The invoice total is the sum of its rounded lines.
//
// What an invoice holds: the closed usage of the month (segments whose end was seen), plus the
// segments still open counted up to `asOfMs`, the latest event time the biller has seen (never a
// clock): the same events give the same invoice, however they were delivered.
import { HOUR_MS, METRIC_UNITS, METRICS, UsageMeter, type MeteredEvent, type MeteredResource, type MeteringPolicy, type Metric } from './usage.js';

// ---- the rate card -------------------------------------------------------------------------

/** A price per unit of a metric (METRIC_UNITS: instance-hours, vCPU-hours, GiB-hours, IP-hours). */
export interface Rate {
  metric: Metric;
  /** The key it prices (a flavor name, a volume type id, an external network); absent: every key of the metric without a rate of its own. */
  key?: string;
  /** In the currency's major unit per metric unit, an exact decimal string ("0.0125"). */
  price: string;
}

export interface RateCard {
  /** ISO 4217 code (EUR, USD). */
  currency: string;
  /** Digits of the minor unit (2 for cents; default 2). */
  minorDigits: number;
  rates: Rate[];
}

/** A rate card that is not one: `field` names what is wrong (currency, rates[2].price). */
export class RateCardError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'RateCardError';
  }
}

const MAX_PRICE_SCALE = 12;
const DECIMAL = /^(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?$/;
const CARD_FIELDS = ['currency', 'minorDigits', 'rates', 'description'];
const RATE_FIELDS = ['metric', 'key', 'price', 'description'];

/** Checks a parsed rate card (JSON) and returns it typed; throws RateCardError naming the field. */
export function parseRateCard(input: unknown): RateCard {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RateCardError('(rate card)', 'must be a JSON object with currency and rates');
  const o = input as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!CARD_FIELDS.includes(k)) throw new RateCardError(k, `unknown field; a rate card has ${CARD_FIELDS.join(', ')}`);
  if (typeof o.currency !== 'string' || !/^[A-Z]{3}$/.test(o.currency)) throw new RateCardError('currency', 'must be an ISO 4217 code of three capital letters (EUR, USD)');
  let minorDigits = 2;
  if (o.minorDigits !== undefined) {
    if (!Number.isInteger(o.minorDigits) || (o.minorDigits as number) < 0 || (o.minorDigits as number) > 6) throw new RateCardError('minorDigits', 'must be an integer from 0 to 6 (2 for cents)');
    minorDigits = o.minorDigits as number;
  }
  if (!Array.isArray(o.rates) || o.rates.length === 0) throw new RateCardError('rates', 'must be a non-empty list of {metric, key?, price}');
  const seen = new Set<string>();
  const rates: Rate[] = o.rates.map((raw, i) => {
    const at = `rates[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new RateCardError(at, 'must be an object {metric, key?, price}');
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!RATE_FIELDS.includes(k)) throw new RateCardError(`${at}.${k}`, `unknown field; a rate has ${RATE_FIELDS.join(', ')}`);
    if (typeof r.metric !== 'string' || !(METRICS as readonly string[]).includes(r.metric)) throw new RateCardError(`${at}.metric`, `must be one of ${METRICS.join(', ')}`);
    if (r.key !== undefined && (typeof r.key !== 'string' || r.key.length > 255)) throw new RateCardError(`${at}.key`, 'must be a string of at most 255 characters (or absent: every key)');
    if (typeof r.price !== 'string') throw new RateCardError(`${at}.price`, 'must be a decimal in a string, e.g. "0.0125" (a JSON number would be a binary float)');
    if (!DECIMAL.test(r.price)) throw new RateCardError(`${at}.price`, `"${r.price.slice(0, 40)}" is not a decimal >= 0 with at most ${MAX_PRICE_SCALE} digits after the point`);
    const id = `${r.metric}\u0000${r.key === undefined ? '*' : `=${r.key}`}`;
    if (seen.has(id)) throw new RateCardError(r.key === undefined ? `${at}.metric` : `${at}.key`, `a second rate for ${r.metric}${r.key === undefined ? ' (every key)' : ` key "${r.key}"`}`);
    seen.add(id);
    return { metric: r.metric as Metric, ...(r.key === undefined ? {} : { key: r.key as string }), price: r.price };
  });
  return { currency: o.currency, minorDigits, rates };
}

/** A decimal as units of 10^-scale. */
interface Decimal {
  units: bigint;
  scale: number;
}

export function parseDecimal(s: string): Decimal {
  const [whole, frac = ''] = s.split('.');
  return { units: BigInt(whole + frac), scale: frac.length };
}

/** The rate of a metric and key: the key's own, else the metric's for every key; undefined: unpriced. */
export function rateFor(card: RateCard, metric: Metric, key: string): Rate | undefined {
  return card.rates.find((r) => r.metric === metric && r.key === key) ?? card.rates.find((r) => r.metric === metric && r.key === undefined);
}

const pow10 = (n: number) => 10n ** BigInt(n);

/** quantity-ms of a metric at a price, in minor units, rounded half up. */
export function amountMinor(card: Pick<RateCard, 'minorDigits'>, metric: Metric, quantityMs: bigint, price: string): bigint {
  const p = parseDecimal(price);
  const num = quantityMs * p.units * pow10(card.minorDigits);
  const den = BigInt(HOUR_MS) * BigInt(METRIC_UNITS[metric].divisor) * pow10(p.scale);
  return (2n * num + den) / (2n * den);
}

/** Minor units as a decimal string in the major unit (1234n, 2 -> "12.34"). */
export function formatMinor(minor: bigint, digits: number): string {
  const neg = minor < 0n;
  const s = (neg ? -minor : minor).toString().padStart(digits + 1, '0');
  const out = digits === 0 ? s : `${s.slice(0, s.length - digits)}.${s.slice(s.length - digits)}`;
  return neg ? `-${out}` : out;
}

/** quantity-ms in the metric's unit, rounded half up to `digits` decimals, as a string (for reading; amounts use quantity-ms). */
export function formatQuantity(metric: Metric, quantityMs: bigint, digits = 6): string {
  const den = BigInt(HOUR_MS) * BigInt(METRIC_UNITS[metric].divisor);
  return formatMinor((2n * quantityMs * pow10(digits) + den) / (2n * den), digits);
}

// ---- months (UTC) --------------------------------------------------------------------------

/** "YYYY-MM" of the UTC month holding ms. */
export function monthOf(ms: number): string {
  let y = 1970 + Math.floor(ms / (365.2425 * 86_400_000));
  while (Date.UTC(y, 0, 1) > ms) y--;
  while (Date.UTC(y + 1, 0, 1) <= ms) y++;
  let m = 11;
  while (Date.UTC(y, m, 1) > ms) m--;
  return `${String(y).padStart(4, '0')}-${String(m + 1).padStart(2, '0')}`;
}

/** [start, end) of a "YYYY-MM" month in ms. */
export function monthBounds(month: string): { startMs: number; endMs: number } {
  const m = /^(\d{4})-(\d{2})$/.exec(month);
  if (!m) throw new Error(`not a month: ${month}`);
  const y = Number(m[1]);
  const mo = Number(m[2]) - 1;
  return { startMs: Date.UTC(y, mo, 1), endMs: Date.UTC(y, mo + 1, 1) };
}

/** An interval [startMs, endMs) cut at month boundaries: the milliseconds in each month. */
export function splitByMonth(startMs: number, endMs: number): { month: string; ms: number }[] {
  const out: { month: string; ms: number }[] = [];
  for (let t = startMs; t < endMs; ) {
    const month = monthOf(t);
    const next = Math.min(monthBounds(month).endMs, endMs);
    out.push({ month, ms: next - t });
    t = next;
  }
  return out;
}

// ---- usage per project, month, metric and key -----------------------------------------------

/** Usage of one project in one month of one metric and key: quantity x milliseconds. */
export interface UsageLine {
  projectId: string;
  month: string;
  metric: Metric;
  key: string;
  quantityMs: bigint;
}

export const lineKey = (l: Pick<UsageLine, 'projectId' | 'month' | 'metric' | 'key'>) => `${l.projectId}\u0000${l.month}\u0000${l.metric}\u0000${l.key}`;

/** A segment of `quantity` from startMs to endMs as usage lines, one per month it touches. */
export function segmentLines(projectId: string, s: { metric: Metric; key: string; quantity: number; startMs: number }, endMs: number): UsageLine[] {
  return splitByMonth(s.startMs, endMs).map((p) => ({ projectId, month: p.month, metric: s.metric, key: s.key, quantityMs: BigInt(s.quantity) * BigInt(p.ms) }));
}

/** Adds lines into a map keyed by lineKey (summing quantity-ms). */
export function addLines(into: Map<string, UsageLine>, lines: Iterable<UsageLine>): void {
  for (const l of lines) {
    const k = lineKey(l);
    const had = into.get(k);
    if (had) had.quantityMs += l.quantityMs;
    else into.set(k, { ...l });
  }
}

/**
 * The usage meter for billing: folds events as the usage read model does (the same UsageMeter,
 * so the same segments), and turns each segment that closes into usage lines. `asOfMs` is the
 * latest event time folded.
 */
export class BillingMeter {
  readonly meter: UsageMeter;
  asOfMs = 0;

  constructor(policy: Partial<MeteringPolicy> = {}) {
    this.meter = new UsageMeter(policy);
  }

  /** Folds one event; returns the usage it closed (empty when it closed nothing or was a redelivery). */
  apply(e: MeteredEvent): UsageLine[] {
    if (!UsageMeter.folds(e.type)) return [];
    const before = this.meter.resource(e.aggregateId);
    const open = before ? before.open.map((o) => ({ ...o })) : [];
    const projectId = before?.projectId ?? '';
    const changes = this.meter.apply(e);
    const r = this.meter.resource(e.aggregateId);
    if (r && r.version === e.version) this.asOfMs = Math.max(this.asOfMs, r.lastMs);
    const lines: UsageLine[] = [];
    for (const c of changes) if (c.kind === 'close') for (const o of open) lines.push(...segmentLines(projectId, o, c.endMs));
    return lines;
  }
}

/** The open segments of the meter's resources counted up to asOfMs, as usage lines. */
export function openLines(resources: Iterable<MeteredResource>, asOfMs: number): UsageLine[] {
  const out: UsageLine[] = [];
  for (const r of resources) for (const o of r.open) if (o.startMs < asOfMs) out.push(...segmentLines(r.projectId, o, asOfMs));
  return out;
}

// ---- invoices ------------------------------------------------------------------------------

export interface InvoiceLine {
  metric: Metric;
  key: string;
  unit: string;
  /** quantity x milliseconds, exact (a decimal string: it may pass 2^53). */
  quantityMs: string;
  /** In the unit, rounded to 6 decimals for reading. */
  quantity: string;
  /** The price per unit applied; null: no rate (amount 0). */
  unitPrice: string | null;
  amountMinor: string;
  amount: string;
}

export interface Invoice {
  projectId: string;
  /** "YYYY-MM" (UTC). */
  month: string;
  currency: string;
  /** The month's [start, end). */
  periodStartMs: number;
  periodEndMs: number;
  /** Usage is counted up to here: min(month end, the latest event time seen). */
  usageThroughMs: number;
  lines: InvoiceLine[];
  totalMinor: string;
  total: string;
}

const metricOrder = (m: Metric) => METRICS.indexOf(m);
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Invoices per project and month from usage lines (closed and open together), sorted by project, month, metric, key. */
export function invoices(card: RateCard, lines: Iterable<UsageLine>, asOfMs: number): Invoice[] {
  const summed = new Map<string, UsageLine>();
  addLines(summed, lines);
  const byInvoice = new Map<string, UsageLine[]>();
  for (const l of summed.values()) {
    if (l.quantityMs === 0n) continue;
    const k = `${l.projectId}\u0000${l.month}`;
    const list = byInvoice.get(k);
    if (list) list.push(l);
    else byInvoice.set(k, [l]);
  }
  const out: Invoice[] = [];
  for (const list of byInvoice.values()) {
    const { projectId, month } = list[0];
    list.sort((a, b) => metricOrder(a.metric) - metricOrder(b.metric) || cmp(a.key, b.key));
    let total = 0n;
    const priced = list.map((l): InvoiceLine => {
      const rate = rateFor(card, l.metric, l.key);
      const minor = rate ? amountMinor(card, l.metric, l.quantityMs, rate.price) : 0n;
      total += minor;
      return {
        metric: l.metric,
        key: l.key,
        unit: METRIC_UNITS[l.metric].unit,
        quantityMs: l.quantityMs.toString(),
        quantity: formatQuantity(l.metric, l.quantityMs),
        unitPrice: rate?.price ?? null,
        amountMinor: minor.toString(),
        amount: formatMinor(minor, card.minorDigits),
      };
    });
    const { startMs, endMs } = monthBounds(month);
    out.push({
      projectId,
      month,
      currency: card.currency,
      periodStartMs: startMs,
      periodEndMs: endMs,
      usageThroughMs: Math.max(startMs, Math.min(endMs, asOfMs)),
      lines: priced,
      totalMinor: total.toString(),
      total: formatMinor(total, card.minorDigits),
    });
  }
  return out.sort((a, b) => cmp(a.projectId, b.projectId) || cmp(a.month, b.month));
}
