// Object storage (issue acceptance f), on the all-in-one test cloud of test/support/object-rig.ts:
// the embedded log, SQLite read models, TLS gRPC on loopback and three object servers (one device
// each, in three zones, the ring's three replicas), all in this process with the bench. Every
// request goes through the member client, as a user's would: PutObject streamed (header, then the
// body) to the proxy, which writes the three replicas (a quorum of 2 answers) and records the
// version in the log; GetObject streamed back and read to its end.
//  1. 4 KiB objects, PUT then GET, at concurrency 1 (one request after the other; each timed, p50
//     and p99) and 16 (16 workers taking the next object from a shared counter; ops/s from the
//     wall time of the whole phase). Each phase PUTs new names (no overwrites) and GETs the names of
//     the PUT phase of the same concurrency.
//  2. 16 MiB objects, PUT then GET one after the other: MB/s (10^6 bytes) from the phase's wall time.
// Baseline, in the same process on the same filesystem (a mkdtemp directory in os.tmpdir(), where
// the rig's devices live): what one replica write costs on the local disk, i.e. write the body to a
// temporary name, fsync it, rename it into place and fsync the directory (as ReplicaStore.commit
// does); GET reads the file to its end. Same object counts, sizes, bodies and concurrency, run right
// after the same phase of the system under test; the ratio is object storage / baseline (for ops/s
// and MB/s: below 1 is slower than the disk). Each phase starts with a warm-up (not counted).
// Every GET (object storage and baseline) checks the body's size and MD5 against the one PUT: a
// mismatch, a missing replica count or a wrong ETag ends the bench with an error.
//
//   npm run bench:object
//   STRATA_BENCH_SMALL_OBJECTS=200 STRATA_BENCH_LARGE_OBJECTS=8 STRATA_BENCH_CONCURRENCY=16 npm run bench:object
//
// STRATA_BENCH_SMALL_BYTES (default 4096) and STRATA_BENCH_LARGE_MB (MiB, default 16) change the sizes
// (the figure names keep 4k and 16m).
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { digestOf, patternBody, patternMd5, startObjectRig, type ObjectRig } from '../test/support/object-rig.js';

const SMALL = Number(process.env.STRATA_BENCH_SMALL_OBJECTS ?? 200);
const SMALL_BYTES = Number(process.env.STRATA_BENCH_SMALL_BYTES ?? 4096);
const LARGE = Number(process.env.STRATA_BENCH_LARGE_OBJECTS ?? 8);
const LARGE_BYTES = Number(process.env.STRATA_BENCH_LARGE_MB ?? 16) * 1024 * 1024;
const CONCURRENCY = Number(process.env.STRATA_BENCH_CONCURRENCY ?? 16);
const WARM_SMALL = Math.max(1, Math.min(20, Math.ceil(SMALL / 10)));
const WARM_LARGE = 1;

const figures: string[] = [];
const figure = (name: string, value: number, unit: string) => figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** A phase's result: how many, in what wall time, each one's latency (ms). */
interface Run {
  count: number;
  bytes: number;
  wallMs: number;
  latencies: number[];
}
const opsPerSec = (r: Run) => (r.count / r.wallMs) * 1000;
const mbPerSec = (r: Run) => r.bytes / 1e6 / (r.wallMs / 1000);

/** Runs op(0..count-1) with `concurrency` workers taking the next index; times each and the whole. */
async function phase(count: number, concurrency: number, bytesEach: number, op: (i: number) => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      for (let i = next++; i < count; i = next++) {
        const s = performance.now();
        await op(i);
        latencies.push(performance.now() - s);
      }
    }),
  );
  return { count, bytes: count * bytesEach, wallMs: performance.now() - t0, latencies };
}

/** The MD5 of each seed's body, computed once (the bench checks every GET against it). */
const md5s = new Map<string, string>();
const md5Of = async (size: number, seed: number) => {
  const key = `${size}/${seed}`;
  let m = md5s.get(key);
  if (!m) md5s.set(key, (m = await patternMd5(size, seed)));
  return m;
};
const check = (what: string, got: { size: number; md5: string }, size: number, md5: string) => {
  if (got.size !== size || got.md5 !== md5) throw new Error(`${what}: read ${got.size} bytes with MD5 ${got.md5}, expected ${size} bytes with MD5 ${md5}`);
};

// The system under test.
let rig: ObjectRig | undefined;
const container = `bench-${randomUUID().slice(0, 8)}`;
async function objectPut(name: string, size: number, seed: number): Promise<void> {
  const res = await rig!.member.upload<{ etag: string; size: number | string; replicasWritten: number }>(
    'PutObject',
    { container, name, contentType: 'application/octet-stream', contentLength: size },
    patternBody(size, seed),
  );
  const md5 = await md5Of(size, seed);
  if (res.etag !== md5 || Number(res.size) !== size) throw new Error(`PutObject ${name}: etag ${res.etag} size ${res.size}, expected ${md5} and ${size}`);
  if (!(res.replicasWritten >= 2)) throw new Error(`PutObject ${name}: ${res.replicasWritten} replicas written`);
  replicas.set(res.replicasWritten, (replicas.get(res.replicasWritten) ?? 0) + 1);
}
const replicas = new Map<number, number>();
async function objectGet(name: string, size: number, seed: number): Promise<void> {
  const got = await rig!.member.download('GetObject', { container, name });
  check(`GetObject ${name}`, await digestOf(got.body), size, await md5Of(size, seed));
}

// The baseline: the same bodies as files on the same filesystem.
const baseDir = mkdtempSync(join(tmpdir(), 'strata-object-baseline-'));
const baseTmp = join(baseDir, 'tmp');
const baseObjects = join(baseDir, 'objects');
async function diskPut(name: string, size: number, seed: number): Promise<void> {
  const tmp = join(baseTmp, randomUUID());
  const fh = await open(tmp, 'wx');
  try {
    for await (const c of patternBody(size, seed)) {
      for (let off = 0; off < c.length; ) off += (await fh.write(c, off, c.length - off)).bytesWritten;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(baseObjects, name));
  const d = await open(baseObjects, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
async function diskGet(name: string, size: number, seed: number): Promise<void> {
  const fh = await open(join(baseObjects, name), 'r');
  const h = createHash('md5');
  let total = 0;
  try {
    const buf = Buffer.allocUnsafe(Math.min(size, 1024 * 1024) || 1);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      total += bytesRead;
    }
  } finally {
    await fh.close();
  }
  check(`baseline read ${name}`, { size: total, md5: h.digest('hex') }, size, await md5Of(size, seed));
}

const describe = (r: Run) => {
  const l = sorted(r.latencies);
  return `${f1(opsPerSec(r))} ops/s, ${f1(mbPerSec(r))} MB/s, latency p50 ${f2(pct(l, 50))} ms p99 ${f2(pct(l, 99))} ms (${r.count} in ${(r.wallMs / 1000).toFixed(2)} s)`;
};

console.log(
  `bench:object on the embedded log, 3 object servers (3 zones, 3 replicas) in this process; ${SMALL} x ${SMALL_BYTES} B per small phase, ${LARGE} x ${LARGE_BYTES / 1024 / 1024} MiB; ` +
    `load average at start ${load()} (${cpus().length} cores); baseline in ${baseDir}`,
);
try {
  await mkdir(baseTmp);
  await mkdir(baseObjects);
  const r0 = performance.now();
  rig = await startObjectRig({ devices: 3 });
  console.log(`rig up in ${(performance.now() - r0).toFixed(0)} ms, devices under ${dirname(rig.deviceConfigs[0]!.root)}`);
  await rig.member.call('CreateContainer', { container: { name: container } });

  // Every body's MD5 before any timing (PUT checks the ETag against it, GET the body).
  for (const c of [1, CONCURRENCY]) for (let i = 0; i < SMALL; i++) await md5Of(SMALL_BYTES, c * 100_000 + i);
  for (let i = 0; i < WARM_SMALL; i++) await md5Of(SMALL_BYTES, i);
  for (let i = 0; i < LARGE; i++) await md5Of(LARGE_BYTES, 2000 + i);
  for (let i = 0; i < WARM_LARGE; i++) await md5Of(LARGE_BYTES, 1000 + i);

  const sides = [
    { side: 'object', put: objectPut, get: objectGet },
    { side: 'baseline', put: diskPut, get: diskGet },
  ] as const;
  const results = new Map<string, Run>();

  // Warm-up, both sides: small and large objects, PUT and GET (names not used after).
  for (const s of sides) {
    await phase(WARM_SMALL, 1, SMALL_BYTES, (i) => s.put(`warm-s-${i}`, SMALL_BYTES, i));
    await phase(WARM_SMALL, CONCURRENCY, SMALL_BYTES, (i) => s.get(`warm-s-${i}`, SMALL_BYTES, i));
    await phase(WARM_LARGE, 1, LARGE_BYTES, (i) => s.put(`warm-l-${i}`, LARGE_BYTES, 1000 + i));
    await phase(WARM_LARGE, 1, LARGE_BYTES, (i) => s.get(`warm-l-${i}`, LARGE_BYTES, 1000 + i));
  }
  console.log(`warmed up (load ${load()})`);

  // 4 KiB: PUT then GET at concurrency 1 and CONCURRENCY; the baseline right after each.
  for (const c of [1, CONCURRENCY]) {
    for (const op of ['put', 'get'] as const) {
      for (const s of sides) {
        const seed = (i: number) => c * 100_000 + i;
        const r = await phase(SMALL, c, SMALL_BYTES, (i) => s[op](`small-c${c}-${i}`, SMALL_BYTES, seed(i)));
        results.set(`${s.side}_${op}_small_c${c}`, r);
        console.log(`${s.side.padEnd(8)} ${op.toUpperCase()} ${SMALL_BYTES} B at concurrency ${c}: ${describe(r)} (load ${load()})`);
      }
    }
  }
  // 16 MiB, one after the other.
  for (const op of ['put', 'get'] as const) {
    for (const s of sides) {
      const r = await phase(LARGE, 1, LARGE_BYTES, (i) => s[op](`large-${i}`, LARGE_BYTES, 2000 + i));
      results.set(`${s.side}_${op}_large`, r);
      console.log(`${s.side.padEnd(8)} ${op.toUpperCase()} ${LARGE_BYTES / 1024 / 1024} MiB one at a time: ${describe(r)} (load ${load()})`);
    }
  }
  console.log(`replicas written per PUT: ${[...replicas].sort(([a], [b]) => a - b).map(([n, k]) => `${n}: ${k}`).join(', ')}`);

  const get = (k: string) => results.get(k)!;
  for (const c of [1, CONCURRENCY]) {
    for (const op of ['put', 'get'] as const) {
      const o = opsPerSec(get(`object_${op}_small_c${c}`));
      const b = opsPerSec(get(`baseline_${op}_small_c${c}`));
      figure(`object_${op}_4k_c${c}_ops`, o, 'ops/s');
      figure(`object_${op}_4k_c${c}_baseline_ops`, b, 'ops/s');
      figure(`object_${op}_4k_c${c}_ratio`, o / b, 'x');
    }
  }
  for (const op of ['put', 'get'] as const) {
    const o = mbPerSec(get(`object_${op}_large`));
    const b = mbPerSec(get(`baseline_${op}_large`));
    figure(`object_${op}_16m_mbps`, o, 'MB/s');
    figure(`object_${op}_16m_baseline_mbps`, b, 'MB/s');
    figure(`object_${op}_16m_ratio`, o / b, 'x');
  }
  for (const [name, k] of [['put', 'put_small_c1'], ['get', 'get_small_c1']] as const) {
    const o = sorted(get(`object_${k}`).latencies);
    const b = sorted(get(`baseline_${k}`).latencies);
    figure(`object_${name}_4k_c1_p50`, pct(o, 50), 'ms');
    figure(`object_${name}_4k_c1_p99`, pct(o, 99), 'ms');
    figure(`object_${name}_4k_c1_baseline_p50`, pct(b, 50), 'ms');
    figure(`object_${name}_4k_c1_baseline_p99`, pct(b, 99), 'ms');
  }
} finally {
  const devices = rig ? dirname(rig.deviceConfigs[0]!.root) : undefined;
  await rig?.close();
  for (const d of [baseDir, devices, rig?.dir]) if (d) rmSync(d, { recursive: true, force: true });
}
console.log(`load average at the end ${load()}`);
for (const f of figures) console.log(f);
process.exit(0);
