// Acceptance b of usage metering: the billing subscriber (agents/billing/main.ts) and the usage read
// model's projection runner are killed mid-stream, several times each, while thousands of events
// flow; restarted, they end where uninterrupted runs end. A real cloud (embedded log) serves the
// subscription; realistic events (the real compute, network and object deciders at chosen times:
// servers booted, stopped, resized, deleted over two months, floating IPs, objects) are appended
// to its events topics in chunks. The interrupted billing process's invoices (its database rows
// and its files) are byte-identical to those of a billing process that read the whole log in one
// go with a fresh database; the interrupted usage read model equals a rebuild from offset 0; the
// billing meter's state equals the read model's (the same UsageMeter over the same events). Also:
// each streamed event's payload_json decodes to what the codec decodes from the log.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING_DOMAINS, BILLING_EVENT_TYPES, meteredEventOf } from '../../agents/billing/biller.js';
import { BILLING_TABLES } from '../../agents/billing/billing.store.js';
import { decodeCursor } from '../../api/events/cursor.js';
import { computeAggregate } from '../../domains/compute/compute.deciders.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { addLines, lineKey, segmentLines, type UsageLine } from '../../domains/metering/billing.js';
import { HOUR_MS, type Metric } from '../../domains/metering/usage.js';
import { networkAggregate } from '../../domains/network/network.deciders.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { objectAggregate } from '../../domains/object/object.deciders.js';
import { OBJECT_DOMAIN, objectId } from '../../domains/object/object.types.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import { objectCodecFor } from '../../infra/codecs/object.codec.js';
import { hostedDomains } from '../../infra/domains.js';
import type { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import type { LogRecord } from '../../infra/log/log.js';
import { decodeDomainEvent } from '../../infra/sagas/domain.feed.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';
import { USAGE_TABLES, USAGE_TOPICS, usageProjection } from '../../projections/metering/usage.projection.js';
import { ADMIN_PASSWORD, startTestCloud, type TestCloud } from '../identity/cloud.js';
import { DecidedLog, dumpTables } from '../support/projection-harness.js';
import { until } from '../support/wait.js';

const BILLING_MAIN = fileURLToPath(new URL('../../agents/billing/main.ts', import.meta.url));
const USAGE_RUNNER = fileURLToPath(new URL('./usage-runner.process.ts', import.meta.url));
const RATES = fileURLToPath(new URL('../../agents/billing/rate-card.example.json', import.meta.url));
const PARTITIONS = 4;

/** A seeded PRNG (mulberry32): the same activity on every run. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    uuid: () => {
      const hex = Array.from({ length: 32 }, () => Math.floor(next() * 16).toString(16)).join('');
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
    },
  };
}

const flavor = (name: string, vcpus: number, ramMb: number) => ({ id: `f-${name}`, name, vcpus, ramMb, diskGb: 10, ephemeralGb: 0, swapMb: 0, extraSpecs: {} });
const FLAVORS = [flavor('m1.tiny', 1, 512), flavor('m1.small', 1, 2048), flavor('m1.large', 4, 8192)];
const PROJECTS = ['proj-a', 'proj-b', 'proj-c', 'proj-d'];
const WINDOW_START = Date.UTC(2026, 0, 20);

interface Op {
  domain: 'compute' | 'network' | 'object';
  aggregateType: string;
  aggregateId: string;
  command: Record<string, unknown>;
  atMs: number;
  projectId: string;
  seq: number;
}

/** Servers, floating IPs and objects over about seven weeks, as commands in time order. */
function activity(seed: number): Op[] {
  const r = prng(seed);
  const ops: Op[] = [];
  let seq = 0;
  const add = (domain: Op['domain'], aggregateType: string, aggregateId: string, projectId: string, steps: [number, Record<string, unknown>][]) => {
    for (const [atMs, command] of steps) ops.push({ domain, aggregateType, aggregateId, command, atMs, projectId, seq: seq++ });
  };
  const minutes = (m: number) => m * 60_000;
  for (let i = 0; i < 500; i++) {
    const projectId = PROJECTS[i % PROJECTS.length];
    const id = r.uuid();
    const f = FLAVORS[r.int(0, 1)];
    let t = WINDOW_START + r.int(0, 1000 * 60) * 60_000;
    const steps: [number, Record<string, unknown>][] = [
      [t, { type: 'CreateInstance', name: `vm-${i}`, projectId, userId: `u-${projectId}`, flavor: f, imageId: 'img', keyName: '', availabilityZone: '', serverGroupId: '', metadata: {} }],
      [t, { type: 'AssignInstanceHost', host: `host-${i % 7}`, availabilityZone: 'nova' }],
      [(t += minutes(r.int(1, 5))), { type: 'CompleteInstanceAction', action: 'create' }],
    ];
    if (r.next() < 0.4) {
      steps.push([(t += minutes(r.int(60, 6000))), { type: 'StopInstance' }], [(t += minutes(1)), { type: 'CompleteInstanceAction', action: 'stop' }]);
      steps.push([(t += minutes(r.int(60, 3000))), { type: 'StartInstance' }], [(t += minutes(1)), { type: 'CompleteInstanceAction', action: 'start' }]);
    }
    if (r.next() < 0.3) {
      steps.push([(t += minutes(r.int(60, 6000))), { type: 'ResizeInstance', flavor: FLAVORS[2] }], [t, { type: 'AssignInstanceHost', host: `host-${(i + 1) % 7}`, availabilityZone: 'nova' }]);
      steps.push([(t += minutes(r.int(2, 30))), { type: 'CompleteInstanceAction', action: 'resize' }], [(t += minutes(r.int(5, 600))), { type: 'ConfirmResizeInstance' }]);
    }
    if (r.next() < 0.8) steps.push([(t += minutes(r.int(60, 20000))), { type: 'DeleteInstance' }], [(t += minutes(1)), { type: 'CompleteInstanceAction', action: 'delete' }]);
    add('compute', 'instance', id, projectId, steps);
  }
  for (let i = 0; i < 60; i++) {
    const projectId = PROJECTS[i % PROJECTS.length];
    const id = r.uuid();
    let t = WINDOW_START + r.int(0, 1200 * 60) * 60_000;
    const fip = { id, projectId, floatingNetworkId: '6a1e7c2d-0000-4000-8000-000000000001', floatingIpAddress: `203.0.113.${i + 1}`, portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' };
    const steps: [number, Record<string, unknown>][] = [[t, { type: 'CreateFloatingIp', floatingIp: fip }]];
    if (r.next() < 0.7) steps.push([(t += minutes(r.int(30, 30000))), { type: 'DeleteFloatingIp' }]);
    add('network', 'floating_ip', id, projectId, steps);
  }
  for (let i = 0; i < 80; i++) {
    const projectId = PROJECTS[i % PROJECTS.length];
    const account = `AUTH_${projectId}`;
    const name = `obj-${i}`;
    const id = objectId(account, 'c', name);
    let t = WINDOW_START + r.int(0, 1200 * 60) * 60_000;
    let n = 0;
    const version = (size: number) => ({
      account, container: 'c', name, timestamp: `${Math.floor(t / 1000)}.${String(++n).padStart(5, '0')}`, etag: (i * 100 + n).toString(16).padStart(32, '0'), size,
      contentType: 'application/octet-stream', metadata: {}, partition: 0, segments: [], ringVersion: 1,
    });
    const steps: [number, Record<string, unknown>][] = [[t, { type: 'RecordObject', object: version(r.int(1, 5) * 1024 ** 3) }]];
    if (r.next() < 0.5) steps.push([(t += minutes(r.int(60, 20000))), { type: 'RecordObject', object: version(r.int(1, 50) * 1024 ** 2) }]);
    if (r.next() < 0.5) steps.push([(t += minutes(r.int(60, 20000))), { type: 'RecordObjectDeleted', timestamp: `${Math.floor(t / 1000)}.${String(++n).padStart(5, '0')}` }]);
    add('object', 'object', id, projectId, steps);
  }
  return ops.sort((a, b) => a.atMs - b.atMs || a.seq - b.seq);
}

/** A child process that prints "ready"; resolves once it has. */
function spawnReady(script: string, env: Record<string, string>, children: Set<ChildProcess>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.on('exit', (code, signal) => reject(new Error(`${relative(process.cwd(), script)} exited (${code ?? signal}) before it was ready`)));
  });
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill(signal);
  const [code] = (await exited) as [number | null];
  return code;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every table of a billing database, rows in order, as JSON lines. */
function dumpBilling(path: string): Record<string, string[]> {
  const db = new Database(path, { readonly: true });
  try {
    const out: Record<string, string[]> = {};
    for (const table of BILLING_TABLES) out[table] = (db.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[]).map((r) => JSON.stringify(r)).sort();
    return out;
  } finally {
    db.close();
  }
}

function readMeta(path: string, name: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: string } | undefined)?.value;
  } catch {
    return undefined; // not made yet
  } finally {
    db.close();
  }
}

/** relative path -> content of every file under dir. */
function files(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  return out;
}

/** Uint8Arrays as base64, as payload_json carries bytes. */
const bytesAsBase64 = (v: unknown): unknown =>
  v instanceof Uint8Array ? Buffer.from(v).toString('base64') : Array.isArray(v) ? v.map(bytesAsBase64) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, bytesAsBase64(x)])) : v;

describe('billing subscriber (acceptance b)', () => {
  let t: TestCloud;
  let token = '';
  const children = new Set<ChildProcess>();
  const work = mkdtempSync(join(tmpdir(), 'strata-billing-'));
  const heartbeat = process.env.STRATA_SUBSCRIBE_HEARTBEAT_MS;

  beforeAll(async () => {
    // Progress messages often, so that a subscriber's cursor reaches the end of the log soon after the last event.
    process.env.STRATA_SUBSCRIBE_HEARTBEAT_MS = '200';
    t = await startTestCloud();
    token = await t.adminToken();
  }, 120_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await t?.close();
    if (heartbeat === undefined) delete process.env.STRATA_SUBSCRIBE_HEARTBEAT_MS;
    else process.env.STRATA_SUBSCRIBE_HEARTBEAT_MS = heartbeat;
  });

  const billingEnv = (name: string, extra: Record<string, string> = {}) => ({
    STRATA_URL: t.url,
    STRATA_CA_CERT: join(t.dir, 'tls', 'ca.crt'),
    STRATA_TOKEN: token,
    STRATA_BILLING_DB: join(work, `${name}.db`),
    STRATA_BILLING_OUT: join(work, `${name}-invoices`),
    STRATA_BILLING_RATES: RATES,
    XDG_CONFIG_HOME: join(work, 'config'),
    ...extra,
  });

  const canonical = (offsets: Map<string, number[]>) => JSON.stringify([...offsets].sort(([a], [b]) => (a < b ? -1 : 1)));
  /** The cursor of a subscriber that has read every billed topic to its current end. */
  async function endCursor(): Promise<Map<string, number[]>> {
    const ends = new Map<string, number[]>();
    for (const d of BILLING_DOMAINS) ends.set(domainTopics(d).events, await t.log.endOffsets(domainTopics(d).events));
    return ends;
  }
  const cursorAt = (db: string) => {
    const c = readMeta(db, 'cursor');
    return c ? canonical(decodeCursor(c)) : undefined;
  };

  it('killed and restarted billing and metering give the invoices and usage of uninterrupted runs', async () => {
    const ops = activity(9);
    const aggregates = {
      compute: (a: string) => ({ decider: computeAggregate(a).decider as never, codec: computeCodecFor(a) as never }),
      network: (a: string) => ({ decider: networkAggregate(a).decider as never, codec: networkCodecFor(a) as never }),
      object: (a: string) => ({ decider: objectAggregate(a).decider as never, codec: objectCodecFor(a) as never }),
    };
    const topicOf = { compute: COMPUTE_DOMAIN, network: NETWORK_DOMAIN, object: OBJECT_DOMAIN };
    const decided = Object.fromEntries(
      (['compute', 'network', 'object'] as const).map((d) => [
        d,
        new DecidedLog({ log: t.log as EmbeddedLog, runner: () => t.cloud.events.auditRunner, eventsTopic: domainTopics(topicOf[d]).events, partitions: PARTITIONS, aggregate: aggregates[d] }),
      ]),
    ) as Record<Op['domain'], DecidedLog>;

    // The usage read model's runner moves to a process of its own, killed twice below.
    await t.cloud.events.usage.runner.stop();
    const usageEnv = { STRATA_LOG: 'embedded', STRATA_LOG_PATH: t.logPath, STRATA_USAGE_STORE: join(t.dir, 'read-models.db') };
    let usageRunner = await spawnReady(USAGE_RUNNER, usageEnv, children);

    // Billing A: interrupted, small batches (many transactions to be killed in between).
    const envA = billingEnv('a', { STRATA_BILLING_BATCH: '10', STRATA_BILLING_INVOICE_MS: '100' });
    let billing = await spawnReady(BILLING_MAIN, envA, children);
    const unexpected: string[] = [];
    const watch = (c: ChildProcess, what: string) => c.on('exit', (code, signal) => signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0 && unexpected.push(`${what} exited ${code ?? signal}`));
    watch(billing, 'billing');

    // Events flow in chunks while billing and metering are killed at random points.
    const CHUNK = 100;
    let fed = 0;
    let events = 0;
    const feeding = (async () => {
      for (let i = 0; i < ops.length; i += CHUNK) {
        const chunk = ops.slice(i, i + CHUNK);
        for (const op of chunk) {
          const actor = { userId: `u-${op.projectId}`, projectId: op.projectId, roles: ['member', 'reader'] };
          events += decided[op.domain].send(op.aggregateType, op.aggregateId, op.command as never, { atMs: op.atMs, actor }).length;
        }
        for (const d of Object.values(decided)) await d.flush();
        fed = i + chunk.length;
        await sleep(700);
      }
    })();

    const r = prng(4);
    let billingKills = 0;
    const KILLS = 8;
    const killedAt: [number, number][] = [];
    const sum = (offsets: Map<string, number[]>) => [...offsets.values()].flat().reduce((a, b) => a + b, 0);
    const decodeCursorOr = (c: string | undefined) => (c ? decodeCursor(c) : new Map<string, number[]>());
    let usageKills = 0;
    let feedDone = false;
    const done = () => (feedDone = true);
    feeding.then(done, done);
    while (!feedDone || billingKills < KILLS) {
      await sleep(r.int(20, 400));
      if (!feedDone || billingKills < KILLS) {
        // Where billing stood and where the log stood when it was killed.
        const billed = sum(decodeCursorOr(readMeta(envA.STRATA_BILLING_DB, 'cursor')));
        expect(await kill(billing, 'SIGKILL')).toBe(null);
        killedAt.push([billed, sum(await endCursor())]);
        billingKills++;
        billing = await spawnReady(BILLING_MAIN, envA, children);
        watch(billing, 'billing');
      }
      if (usageKills < 2 && fed > ops.length * (usageKills + 1) / 3) {
        await kill(usageRunner, 'SIGKILL');
        usageKills++;
        usageRunner = await spawnReady(USAGE_RUNNER, usageEnv, children);
      }
    }
    await feeding;
    expect(events, 'thousands of events').toBeGreaterThan(3000);
    expect(usageKills).toBe(2);
    // Killed mid-stream: behind the log (the cursor committed then counts records of the billed topics).
    expect(killedAt.filter(([billed, log]) => billed > 0 && billed < log).length, JSON.stringify(killedAt)).toBeGreaterThanOrEqual(4);

    // The end: billing A reads to the end of the log, then stops cleanly.
    const final = canonical(await endCursor());
    await until(() => cursorAt(envA.STRATA_BILLING_DB) === final, 'billing A at the end of the log', 60_000);
    expect(await kill(billing, 'SIGTERM')).toBe(0);
    // The usage runner is killed a third time; one in this process finishes.
    await kill(usageRunner, 'SIGKILL');
    const runner = new ProjectionRunner(t.log, t.store, usageProjection());
    await runner.start();
    for (const topic of USAGE_TOPICS) {
      const ends = await t.log.endOffsets(topic);
      for (let p = 0; p < ends.length; p++) if (ends[p] > 0) await runner.waitFor({ topic, partition: p, offset: ends[p] - 1 });
    }

    // Billing B: one uninterrupted run over the same log, a fresh database, default batches.
    // (It logs in with a user and password instead of taking a token.)
    const envB = billingEnv('b', { STRATA_TOKEN: '', STRATA_USER: 'admin', STRATA_PASSWORD: ADMIN_PASSWORD, STRATA_PROJECT_ID: t.boot.adminProjectId });
    const b = await spawnReady(BILLING_MAIN, envB, children);
    await until(() => cursorAt(envB.STRATA_BILLING_DB) === final, 'billing B at the end of the log', 60_000);
    expect(await kill(b, 'SIGTERM')).toBe(0);
    expect(unexpected).toEqual([]);

    // Invoices: the database rows and the files byte for byte.
    const dumpA = dumpBilling(envA.STRATA_BILLING_DB);
    const dumpB = dumpBilling(envB.STRATA_BILLING_DB);
    for (const table of BILLING_TABLES) expect(dumpA[table], table).toEqual(dumpB[table]);
    const filesA = files(envA.STRATA_BILLING_OUT);
    const filesB = files(envB.STRATA_BILLING_OUT);
    expect(Object.keys(filesA).sort()).toEqual(Object.keys(filesB).sort());
    for (const f of Object.keys(filesB)) expect(filesA[f], f).toBe(filesB[f]);

    // ... and they are not trivial: every project, several months and metrics, money.
    const invoices = Object.values(filesB).map((s) => JSON.parse(s) as { projectId: string; month: string; totalMinor: string; lines: { metric: Metric; amountMinor: string }[] });
    expect(new Set(invoices.map((i) => i.projectId))).toEqual(new Set(PROJECTS));
    expect(new Set(invoices.map((i) => i.month)).size).toBeGreaterThanOrEqual(3);
    const metrics = new Set(invoices.flatMap((i) => i.lines.map((l) => l.metric)));
    for (const m of ['instance', 'vcpu', 'ram_mb', 'floating_ip', 'object_bytes'] as Metric[]) expect(metrics.has(m), m).toBe(true);
    for (const p of PROJECTS) expect(invoices.filter((i) => i.projectId === p).reduce((s, i) => s + BigInt(i.totalMinor), 0n), p).toBeGreaterThan(0n);

    // The usage read model, its runner killed three times, equals a rebuild from offset 0.
    const fresh = new SqliteStore(join(work, 'rebuilt.db'));
    await ProjectionRunner.rebuild(t.log, fresh, usageProjection());
    expect(await dumpTables(t.store, USAGE_TABLES)).toEqual(await dumpTables(fresh, USAGE_TABLES));
    await fresh.close();

    // Billing meters as the read model does: the same per-resource state, and the read model's
    // closed segments cut into months are billing's closed usage.
    const db = new Database(envA.STRATA_BILLING_DB, { readonly: true });
    const billed = db.prepare('SELECT resource_id, kind, project_id, version, state FROM meter_resources ORDER BY resource_id').all() as Record<string, unknown>[];
    const closedRows = db.prepare('SELECT project_id, month, metric, metric_key, quantity_ms FROM usage_closed').all() as Record<string, string>[];
    db.close();
    const modelled = await t.store.query<Record<string, unknown>>('SELECT resource_id, kind, project_id, version, state FROM usage_resources ORDER BY resource_id');
    const parse = (rows: Record<string, unknown>[]) => rows.map((x) => ({ ...x, version: Number(x.version), state: JSON.parse(String(x.state)) }));
    expect(parse(billed)).toEqual(parse(modelled));
    const segments = await t.store.query<{ project_id: string; metric: Metric; metric_key: string; quantity: number; start_ms: number; end_ms: number | null }>(
      'SELECT project_id, metric, metric_key, quantity, start_ms, end_ms FROM usage_segments WHERE end_ms IS NOT NULL',
    );
    const fromModel = new Map<string, UsageLine>();
    for (const s of segments) addLines(fromModel, segmentLines(s.project_id, { metric: s.metric, key: s.metric_key, quantity: Number(s.quantity), startMs: Number(s.start_ms) }, Number(s.end_ms)));
    const asText = (lines: Iterable<UsageLine>) => Object.fromEntries([...lines].filter((l) => l.quantityMs > 0n).map((l) => [lineKey(l), l.quantityMs.toString()]));
    expect(asText(closedRows.map((x) => ({ projectId: x.project_id, month: x.month, metric: x.metric as Metric, key: x.metric_key, quantityMs: BigInt(x.quantity_ms) })))).toEqual(asText(fromModel.values()));
    await runner.stop();
    console.log(`billing acceptance b: ${events} events, billing killed ${billingKills} times (at [billed, log] records ${JSON.stringify(killedAt)}), usage runner ${usageKills + 1} times; ${invoices.length} invoices, ${Object.keys(filesB).length} files`);
  }, 300_000);

  it('streams payloads that decode to what the codecs decode from the log', async () => {
    const client = t.client(token);
    const received: { event: Record<string, any> }[] = [];
    await client.stream('Subscribe', { domains: BILLING_DOMAINS, eventTypes: BILLING_EVENT_TYPES, position: 'START_POSITION_EARLIEST', stopAtEnd: true }, (m: Record<string, any>) => m.event && received.push(m as { event: Record<string, any> })).done;
    expect(received.length).toBeGreaterThan(2000);
    const records = new Map<string, LogRecord>();
    for (const d of BILLING_DOMAINS) {
      const topic = domainTopics(d).events;
      const ends = await t.log.endOffsets(topic);
      for (let p = 0; p < ends.length; p++) for await (const batch of t.log.read(topic, p, 0, ends[p])) for (const rec of batch) records.set(`${topic}/${p}/${rec.offset}`, rec);
    }
    for (const { event } of received) {
      const rec = records.get(`${event.position.topic}/${event.position.partition}/${event.position.offset}`)!;
      const codecFor = hostedDomains.find((d) => d.name === event.domain)!.codecFor;
      expect(meteredEventOf(event as never), `${event.type} ${event.aggregateId}`).toEqual(bytesAsBase64(decodeDomainEvent(rec, codecFor)));
    }
  }, 120_000);
});

void HOUR_MS;
