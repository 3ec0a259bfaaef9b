// select_destinations, pure: filter the hosts, weigh the survivors, and return the best host with
// alternates (max_attempts - 1) for reschedules. "No valid host" says which filter emptied the
// list. Linear in the number of hosts, with no sorting of the whole list.
import { DEFAULT_FILTERS, type HostFilter } from './filters.js';
import type { HostState, RequestSpec } from './host-state.js';
import { SPREAD, weighers, type HostWeigher, type WeigherOptions } from './weighers.js';

export interface SchedulerOptions {
  filters?: readonly HostFilter[];
  weights?: WeigherOptions;
  /** Hosts returned: the selection and its alternates (Nova's max_attempts, default 3). */
  maxAttempts?: number;
}

export type Selection = { hosts: string[] } | { noValidHost: string };

export class Scheduler {
  private readonly filters: readonly HostFilter[];
  private readonly weighers: HostWeigher[];
  private readonly maxAttempts: number;
  /** Scratch space reused across decisions: a decision at 10,000 hosts allocates nothing big. */
  private passed: HostState[] = [];
  private total = new Float64Array(0);
  private raw = new Float64Array(0);

  constructor(options: SchedulerOptions = {}) {
    this.filters = options.filters ?? DEFAULT_FILTERS;
    this.weighers = weighers(options.weights ?? SPREAD);
    this.maxAttempts = options.maxAttempts ?? 3;
  }

  select(spec: RequestSpec, hosts: readonly HostState[]): Selection {
    const filters = this.filters.filter((f) => f.applies?.(spec) ?? true);
    const passed = this.passed;
    passed.length = 0;
    const left = new Array<number>(filters.length).fill(0);
    for (const h of hosts) {
      let ok = true;
      for (let f = 0; f < filters.length; f++) {
        if (!filters[f].passes(h, spec)) {
          ok = false;
          break;
        }
        left[f]++;
      }
      if (ok) passed.push(h);
    }
    if (passed.length === 0) {
      const at = left.findIndex((n) => n === 0);
      const trail = filters
        .slice(0, at + 1)
        .map((f, i) => `${f.name} left ${left[i]}`)
        .join(', ');
      return { noValidHost: `No valid host was found. There are not enough hosts available (${hosts.length} hosts; ${trail})` };
    }

    // Normalise each weigher to 0..1 over the candidates, then sum with the multipliers.
    const n = passed.length;
    if (this.total.length < n) {
      this.total = new Float64Array(n);
      this.raw = new Float64Array(n);
    }
    const total = this.total;
    const raw = this.raw;
    total.fill(0, 0, n);
    for (const w of this.weighers) {
      if (w.applies && !w.applies(spec)) continue;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < n; i++) {
        const v = w.raw(passed[i], spec);
        raw[i] = v;
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (max === min) continue;
      const scale = w.multiplier / (max - min);
      for (let i = 0; i < n; i++) total[i] += (raw[i] - min) * scale;
    }

    // The k best, best first; ties go to the lower host id, so decisions are reproducible.
    const k = Math.min(this.maxAttempts, n);
    const best: number[] = [];
    const better = (a: number, b: number) => total[a] > total[b] || (total[a] === total[b] && passed[a].id < passed[b].id);
    for (let i = 0; i < n; i++) {
      if (best.length === k && !better(i, best[k - 1])) continue;
      let j = best.length === k ? k - 1 : best.length;
      if (best.length < k) best.push(i);
      while (j > 0 && better(i, best[j - 1])) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = i;
    }
    const chosen = best.map((i) => passed[i].id);
    passed.length = 0; // hold no hosts between decisions
    return { hosts: chosen };
  }
}
