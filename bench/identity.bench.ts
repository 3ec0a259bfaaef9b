// Identity: token validation and issue rates, with latency percentiles.
//   1. validation in process on one core: Fernet decrypt + MAC check + payload decode + the
//      revocation list check (holding 10,000 revocations), as every authenticated RPC does it.
//      Baseline, same process: one bare HMAC-SHA256 of the token's bytes.
//   2. ValidateToken over gRPC with TLS on loopback, 32 concurrent callers.
//   3. IssueToken by password (scrypt-bound) and by token (rescoping; bound by the log write of
//      the TokenIssued audit record), 4 concurrent callers each.
//
//   npm run bench:identity
//   STRATA_BENCH_SECONDS=5 npm run bench:identity   # time per measurement (default 3)
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { hashPassword, SCRYPT_DEFAULTS } from '../api/auth/password.js';
import { TokenCodec, type TokenPayload } from '../api/auth/token.js';
import { ADMIN_PASSWORD, startTestCloud } from '../test/identity/cloud.js';

const SECONDS = Number(process.env.STRATA_BENCH_SECONDS ?? 3);
const figures: string[] = [];
const figure = (name: string, value: number, unit: string) => figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Calls `op` in a tight loop for SECONDS: ops/s and per-call latency percentiles (µs), timing batches of 64. */
function loop(op: () => void): { rate: number; p50: number; p99: number } {
  const batchTimes: number[] = [];
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    for (let i = 0; i < 64; i++) op();
    batchTimes.push(((performance.now() - t0) * 1000) / 64);
    n += 64;
  }
  batchTimes.sort((a, b) => a - b);
  return { rate: n / SECONDS, p50: pct(batchTimes, 50), p99: pct(batchTimes, 99) };
}

/** `clients` concurrent loops of `op` for SECONDS: ops/s and latency percentiles (ms). */
async function concurrent(clients: number, op: () => Promise<unknown>) {
  const latencies: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    [...Array(clients)].map(async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        await op();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / SECONDS, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

const t = await startTestCloud({ lockoutAttempts: 0 });
try {
  const admin = t.client(await t.adminToken());
  const token = await t.adminToken();
  const identity = t.cloud.identity;

  // 1. In-process validation against a revocation list of 10,000 entries.
  const codec = new TokenCodec(identity.keys);
  const revocations = identity.revocations;
  await t.store.apply(
    [...Array(10_000)].map((_, i) => ({
      sql: `INSERT INTO identity_revocations (id, kind, subject_id, issued_before_ms) VALUES ($1, $2, $3, $4)`,
      params: [`bench-${i}`, i % 2 ? 'user' : 'audit', randomUUID(), Date.now()],
    })),
    [],
  );
  await revocations.reload();
  let payload: TokenPayload | undefined;
  const validation = loop(() => {
    payload = codec.validate(token, Date.now());
    if (revocations.revoked(payload)) throw new Error('revoked');
  });
  const key = randomBytes(16);
  const bytes = Buffer.from(token, 'base64url');
  const hmac = loop(() => createHmac('sha256', key).update(bytes).digest());
  console.log(`validation in process: ${Math.round(validation.rate)}/s, p50 ${validation.p50.toFixed(1)} µs, p99 ${validation.p99.toFixed(1)} µs (${revocations.size} revocations); bare HMAC ${Math.round(hmac.rate)}/s`);
  figure('identity.validate.inprocess.rate', Math.round(validation.rate), 'per_s');
  figure('identity.validate.inprocess.p50', validation.p50, 'us');
  figure('identity.validate.inprocess.p99', validation.p99, 'us');
  figure('identity.validate.vs_bare_hmac', hmac.rate / validation.rate, 'x_slower');
  figure('identity.token.length', token.length, 'chars');

  // 2. ValidateToken over gRPC.
  const rpc = await concurrent(32, () => admin.call('ValidateToken', { token }));
  console.log(`ValidateToken over gRPC (TLS, 32 callers): ${Math.round(rpc.rate)}/s, p50 ${rpc.p50.toFixed(2)} ms, p99 ${rpc.p99.toFixed(2)} ms`);
  figure('identity.validate.grpc.rate', Math.round(rpc.rate), 'per_s');
  figure('identity.validate.grpc.p99', rpc.p99, 'ms');

  // 3. Issue rates.
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await hashPassword('a password of usual length');
  const scryptMs = (performance.now() - t0) / 10;
  console.log(`scrypt at N=2^${SCRYPT_DEFAULTS.ln}, r=${SCRYPT_DEFAULTS.r}, p=${SCRYPT_DEFAULTS.p}: ${scryptMs.toFixed(1)} ms per hash`);
  figure('identity.scrypt.ms', scryptMs, 'ms');
  const byPassword = await concurrent(4, () =>
    t.client().call('IssueToken', { password: { userName: 'admin', domainName: 'Default', password: ADMIN_PASSWORD }, scope: { projectId: t.boot.adminProjectId } }),
  );
  console.log(`IssueToken by password (4 callers): ${byPassword.rate.toFixed(1)}/s, p50 ${byPassword.p50.toFixed(1)} ms, p99 ${byPassword.p99.toFixed(1)} ms`);
  figure('identity.issue.password.rate', byPassword.rate, 'per_s');
  figure('identity.issue.password.p99', byPassword.p99, 'ms');
  const byToken = await concurrent(4, () => t.client().call('IssueToken', { token, scope: { projectId: t.boot.adminProjectId } }));
  console.log(`IssueToken by token (4 callers): ${byToken.rate.toFixed(1)}/s, p50 ${byToken.p50.toFixed(1)} ms, p99 ${byToken.p99.toFixed(1)} ms`);
  figure('identity.issue.token.rate', byToken.rate, 'per_s');
  figure('identity.issue.token.p99', byToken.p99, 'ms');
} finally {
  await t.close();
}
for (const f of figures) console.log(f);
