// Compute: scheduler decision time at 1,000 and 10,000 hosts (filters + weighers + selection of
// the best host and two alternates, with usage applied after each decision as the claim would).
// Baseline in the same process: one pass over the same hosts reading one field, the floor of
// any per-host work. End-to-end boots/s with the fake driver comes with the boot saga.
//
//   npm run bench:compute
//   STRATA_BENCH_DECISIONS=5000 npm run bench:compute
import { performance } from 'node:perf_hooks';
import type { HostState, RequestSpec } from '../domains/compute/scheduling/host-state.js';
import { Scheduler } from '../domains/compute/scheduling/scheduler.js';

const DECISIONS = Number(process.env.STRATA_BENCH_DECISIONS ?? 2000);
const figures: string[] = [];
const figure = (name: string, value: number, unit: string) => figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

function hosts(n: number): HostState[] {
  return [...Array(n)].map((_, i) => ({
    id: `host-${String(i).padStart(5, '0')}`,
    availabilityZone: `az${i % 4}`,
    enabled: i % 97 !== 0,
    up: i % 89 !== 0,
    vcpus: { total: 64, reserved: 0, allocationRatio: 4, used: (i * 7) % 128 },
    ramMb: { total: 262_144, reserved: 512, allocationRatio: 1, used: (i * 4099) % 131_072 },
    diskGb: { total: 4000, reserved: 0, allocationRatio: 1, used: (i * 13) % 2000 },
    aggregateMetadata: (i % 3 === 0 ? { ssd: ['true'] } : {}) as Record<string, string[]>,
    groupMembers: {},
    buildFailures: i % 501 === 0 ? 1 : 0,
  }));
}

function run(n: number) {
  const all = hosts(n);
  const byId = new Map(all.map((h) => [h.id, h]));
  const scheduler = new Scheduler();
  const times: number[] = [];
  let noValid = 0;
  for (let d = 0; d < DECISIONS; d++) {
    const group = `g${d % 50}`;
    const spec: RequestSpec = {
      instanceId: `i${d}`,
      projectId: 'p',
      flavor: { id: 'f', name: 'm1.medium', vcpus: 2, ramMb: 4096, diskGb: 40, ephemeralGb: 0, swapMb: 0, extraSpecs: d % 5 === 0 ? { 'aggregate_instance_extra_specs:ssd': 'true' } : {} },
      availabilityZone: d % 2 ? `az${d % 4}` : '',
      serverGroup: { id: group, policy: 'anti-affinity', maxServerPerHost: 1, members: 0 },
      ignoreHosts: [],
    };
    const t0 = performance.now();
    const r = scheduler.select(spec, all);
    times.push(performance.now() - t0);
    if ('noValidHost' in r) {
      noValid++;
      continue;
    }
    // Apply the claim, as the host-inventory aggregate would.
    const h = byId.get(r.hosts[0])!;
    h.vcpus.used += 2;
    h.ramMb.used += 4096;
    h.diskGb.used += 40;
    h.groupMembers[group] = (h.groupMembers[group] ?? 0) + 1;
  }
  times.sort((a, b) => a - b);
  let sink = 0;
  const b0 = performance.now();
  for (let d = 0; d < 200; d++) for (const h of all) sink += h.vcpus.used;
  const baseline = (performance.now() - b0) / 200;
  return { p50: pct(times, 50), p99: pct(times, 99), noValid, baseline, sink };
}

for (const n of [1000, 10_000]) {
  const r = run(n);
  console.log(`scheduler at ${n} hosts: p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms over ${DECISIONS} decisions (${r.noValid} no valid host); one bare pass ${r.baseline.toFixed(3)} ms`);
  figure(`compute.scheduler.${n}_hosts.p50`, r.p50, 'ms');
  figure(`compute.scheduler.${n}_hosts.p99`, r.p99, 'ms');
  figure(`compute.scheduler.${n}_hosts.ratio_to_bare_pass`, r.p50 / r.baseline, 'x');
}
for (const f of figures) console.log(f);
