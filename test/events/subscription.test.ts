// SubscriptionService (issue 9, acceptance c and d): resuming from a cursor is exact, a stalled
// subscriber is cut off with its cursor while the server's memory stays bounded, tenants see their
// own project's events only, and bad requests name their field. Events are appended to the log
// directly (real envelopes and image payloads) for volume.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor } from '../../api/events/cursor.js';
import { BACKENDS, openTestLog, type TestLog } from '../support/backends.js';
import { produce, stallingRelay, startRig, subscribe, type Message, type Produced, type Rig } from './subscription-rig.js';

const SERVER = fileURLToPath(new URL('./subscription-server.ts', import.meta.url));
const STATUS = { OK: 0, INVALID_ARGUMENT: 3, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8 };
const events = (ms: Message[]) => ms.filter((m) => m.event).map((m) => m.event!);

/** Checks that the events streamed, in order, are exactly `produced`: ids as a set, per-partition offsets consecutive, per-aggregate versions in order. */
function expectExactly(received: Record<string, any>[], produced: Produced[], startOffsets?: Map<number, number>) {
  const ids = received.map((e) => e.eventId as string);
  expect(new Set(ids).size, 'no event twice').toBe(ids.length);
  expect(new Set(ids)).toEqual(new Set(produced.map((p) => p.eventId)));
  const next = new Map(startOffsets ?? []);
  for (const e of received) {
    const { partition, offset } = e.position;
    if (next.has(partition)) expect(Number(offset), `partition ${partition} has no gap`).toBe(next.get(partition));
    next.set(partition, Number(offset) + 1);
  }
  const versions = new Map<string, number>();
  for (const e of received) {
    const before = versions.get(e.aggregateId);
    if (before !== undefined) expect(Number(e.version), `${e.aggregateId} in order`).toBe(before + 1);
    versions.set(e.aggregateId, Number(e.version));
  }
  return next;
}

for (const backend of BACKENDS) {
  describe(`SubscriptionService on the ${backend} log`, () => {
    let t: TestLog;
    let rig: Rig;

    beforeAll(async () => {
      t = await openTestLog(backend);
      rig = await startRig(t.log, t.domain, t.topology, { heartbeatMs: 200 });
    }, 120_000);

    afterAll(async () => {
      await rig?.close();
      await t?.close();
    });

    it('refuses a malformed cursor naming cursor, an unknown domain naming domains, an unknown type naming event_types', async () => {
      for (const cursor of ['nonsense', 'v1.!!', `v1.${Buffer.from('[1]').toString('base64url')}`, `v1.${Buffer.from('{"strata.events.x":[-1]}').toString('base64url')}`]) {
        const s = await subscribe(rig.url, { cursor }).done;
        expect(s.code, cursor).toBe(STATUS.INVALID_ARGUMENT);
        expect(s.field).toBe('cursor');
        expect(s.details).toMatch(/^cursor: /);
      }
      const d = await subscribe(rig.url, { domains: ['nowhere'] }).done;
      expect([d.code, d.field]).toEqual([STATUS.INVALID_ARGUMENT, 'domains']);
      expect(d.details).toContain(t.domain);
      const e = await subscribe(rig.url, { eventTypes: ['NoSuchThing'] }).done;
      expect([e.code, e.field]).toEqual([STATUS.INVALID_ARGUMENT, 'event_types']);
    });

    it('c1: a subscriber cut off after some events resumes from its last cursor with exactly the missed ones, 10,000 produced meanwhile', async () => {
      const versions = new Map<string, number>();
      // From now on: the first progress message comes before anything is produced.
      let cursor = '';
      let taken = 0;
      const first = subscribe(rig.url, { domains: [t.domain] }, 'admin:admin', {
        onMessage: (m, s) => {
          if (taken >= 150) return;
          if (m.event) taken++;
          cursor = m.event?.cursor ?? m.progress?.cursor ?? cursor;
          if (taken === 150) s.call.cancel();
        },
      });
      await until(() => cursor !== '');
      const before = await produce(t.log, t.domain, t.topology.partitions, 200, { versions, prefix: 'a' });
      await first.done;
      const seen = events(first.messages).slice(0, 150);
      expect(seen).toHaveLength(150);
      expect(seen[149].cursor).toBe(cursor);
      const after = await produce(t.log, t.domain, t.topology.partitions, 10_000, { versions, prefix: 'b' });

      const started = Date.now();
      const second = subscribe(rig.url, { domains: [t.domain], cursor, stopAtEnd: true });
      const end = await second.done;
      expect(end.code, end.details).toBe(STATUS.OK);
      const resumed = events(second.messages);
      console.log(`c1 (${backend}): resumed ${resumed.length} events in ${Date.now() - started} ms`);
      const next = expectExactly(seen, before.filter((p) => seen.some((e) => e.eventId === p.eventId)));
      expectExactly(resumed, [...before.filter((p) => !seen.some((e) => e.eventId === p.eventId)), ...after], next);
      // Together: every event produced, once.
      expectExactly([...seen, ...resumed], [...before, ...after]);
      const last = second.messages[second.messages.length - 1];
      expect(last.progress?.caughtUp).toBe(true);
      expect(decodeCursor(last.progress!.cursor)).toEqual(decodeCursor(resumed[resumed.length - 1].cursor));
      // The payload, decoded and deterministic.
      const one = resumed.find((e) => e.eventId === 'b-7/0')!;
      expect(JSON.parse(one.payloadJson).image).toMatchObject({ id: 'img-7', name: 'image 7', owner: 'p1', size: 7168 });
      expect(one.payloadJson).toBe(JSON.stringify(JSON.parse(one.payloadJson)));
      expect(one).toMatchObject({ domain: t.domain, aggregateType: 'image', type: 'ImageCreated', projectId: 'p1', actor: { userId: 'u', projectId: 'p1', roles: ['member'] } });
    }, 180_000);

    it('c2: a subscriber whose connection takes nothing while 100,000 events are produced is cut off with RESOURCE_EXHAUSTED and its cursor; the server process stays bounded', async () => {
      const N = 100_000;
      const server = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', SERVER], {
        env: { ...process.env, ...t.env, STRATA_DOMAIN: t.domain, STRATA_PARTITIONS: String(t.topology.partitions), STRATA_SUBSCRIBE_STALL_MS: '2000', STRATA_SUBSCRIBE_GRACE_MS: '8000' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const relays: { close(): void }[] = [];
      const samples: { at: number; rss: number; heap: number; active: number; calls: number; live: boolean }[] = [];
      let port = 0;
      let buffered = '';
      server.stdout!.on('data', (d: Buffer) => {
        buffered += d.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const l of lines) {
          const [word, ...n] = l.split(' ');
          if (word === 'ready') port = Number(n[0]);
          if (word === 'mem') samples.push({ at: Date.now(), rss: Number(n[0]), heap: Number(n[1]), active: Number(n[2]), calls: Number(n[3]), live: n[4] === '1' });
        }
      });
      try {
        await until(() => port > 0, 60_000);
        await new Promise((r) => setTimeout(r, 2500));
        // Figures after a collection: what the server holds, not garbage it has yet to collect.
        const base = samples.filter((x) => x.live).slice(-2);
        const baseRss = Math.max(...base.map((x) => x.rss));
        const baseHeap = Math.max(...base.map((x) => x.heap));
        const address = `127.0.0.1:${port}`;
        // Two subscribers whose connections stop reading (the relay stops taking the server's bytes).
        const relayA = await stallingRelay(address);
        const relayB = await stallingRelay(address);
        relays.push(relayA, relayB);
        const stalled = subscribe(relayA.address, { domains: [t.domain] });
        const never = subscribe(relayB.address, { domains: [t.domain] });
        await until(() => stalled.messages.length > 0 && never.messages.length > 0);
        await until(() => samples.at(-1)!.active === 2);
        relayA.stall();
        relayB.stall();
        const started = Date.now();
        let producedMs = 0;
        const production = produce(t.log, t.domain, t.topology.partitions, N, { prefix: 'c2', padding: 200, batch: 2000 }).then((p) => {
          producedMs = Date.now() - started;
          return p;
        });
        // Both are cut off once their buffers have stayed full for the stall timeout (2 s), production going on.
        await until(() => samples.at(-1)!.active === 0, 60_000);
        const cutAfterMs = Date.now() - started;
        // Its connection reads again (within the grace): what the server had queued for it, then the status with the cursor.
        relayA.resume();
        const cut = await stalled.done;
        const produced = await production;
        await new Promise((r) => setTimeout(r, 1100));
        const stallPhase = samples.filter((x) => x.at >= started && x.live);
        expect(cut.code, cut.details).toBe(STATUS.RESOURCE_EXHAUSTED);
        expect(cut.details).toMatch(/fell behind.*resume from cursor v1\./);
        const got = events(stalled.messages);
        const lastCursor = stalled.messages.at(-1)!.event?.cursor ?? stalled.messages.at(-1)!.progress!.cursor;
        expect(decodeCursor(cut.cursor!)).toEqual(decodeCursor(lastCursor));
        expect(cut.details).toContain(cut.cursor!);
        // Resuming from that cursor gives the rest, exactly.
        const streamStart = Date.now();
        const rest = subscribe(address, { domains: [t.domain], cursor: cut.cursor, stopAtEnd: true });
        const end = await rest.done;
        const streamMs = Date.now() - streamStart;
        expect(end.code, end.details).toBe(STATUS.OK);
        const resumed = events(rest.messages);
        const next = expectExactly(got, produced.slice(0, 0).concat(produced.filter((p) => got.some((e) => e.eventId === p.eventId))));
        expectExactly(resumed, produced.filter((p) => !got.some((e) => e.eventId === p.eventId)), next);
        expect(got.length + resumed.length).toBe(N);
        // The one that never reads again: its stream is reset after the grace; nothing of it stays.
        await until(() => samples.at(-1)!.calls === 0, 30_000);
        never.call.cancel();
        expect((await never.done).code).not.toBe(STATUS.OK);

        const streamPhase = samples.filter((x) => x.at >= streamStart && x.at <= streamStart + streamMs && x.live);
        const mb = (b: number) => (b / 2 ** 20).toFixed(1);
        const peak = (xs: typeof samples, k: 'rss' | 'heap') => Math.max(...xs.map((x) => x[k]));
        const bytes = N * 330;
        console.log(
          `c2 (${backend}): ${N} events (~${mb(bytes)} MiB) produced in ${producedMs} ms; both stalled subscribers cut off ${cutAfterMs} ms after production began; the first got ${got.length} before the cut; ` +
            `server baseline rss ${mb(baseRss)} MiB heap ${mb(baseHeap)} MiB (live, after a GC); while stalled: peak rss +${mb(peak(stallPhase, 'rss') - baseRss)} MiB, heap +${mb(peak(stallPhase, 'heap') - baseHeap)} MiB; ` +
            `streaming the other ${resumed.length} to a reader in ${streamMs} ms: peak rss +${mb(peak(streamPhase, 'rss') - baseRss)} MiB, heap +${mb(peak(streamPhase, 'heap') - baseHeap)} MiB`,
        );
        expect(got.length).toBeLessThan(5_000);
        expect(peak(stallPhase, 'heap') - baseHeap).toBeLessThan(bytes / 4);
        expect(peak(stallPhase, 'rss') - baseRss).toBeLessThan(bytes / 2);
      } finally {
        for (const r of relays) r.close();
        server.kill('SIGTERM');
        await new Promise((r) => server.once('exit', r));
      }
    }, 300_000);

    it('filters by type and project yet moves the cursor on (progress), and an earliest stream with stop_at_end ends caught up', async () => {
      const s = subscribe(rig.url, { domains: [t.domain], position: 'START_POSITION_EARLIEST', projectId: 'nobody', stopAtEnd: true });
      const end = await s.done;
      expect(end.code, end.details).toBe(STATUS.OK);
      expect(events(s.messages)).toHaveLength(0);
      const last = s.messages[s.messages.length - 1].progress!;
      expect(last.caughtUp).toBe(true);
      const ends = await t.log.endOffsets(`strata.events.${t.domain}`);
      expect(decodeCursor(last.cursor).get(`strata.events.${t.domain}`)).toEqual(ends);
    }, 60_000);
  });
}

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
