// Object storage under faults and change, on real object servers (in-process devices, real files,
// real HTTP): (b) a stopped object server does not stop writes (2 of 3 is a quorum), and once it
// is back the replicator gives it a copy of everything written meanwhile; (c) a replica corrupted
// on disk is never served (a GET fails over mid-stream and resumes elsewhere), the auditor finds
// rot nobody has read, quarantines it, records it in the log, and the replicator replaces it; (d)
// a device added to the ring takes its share of partitions, moving no more than that share + 5%,
// while every object stays readable, and afterwards every object has exactly 3 replicas.
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectAgent } from '../../agents/object/object.agent.js';
import { nameHash } from '../../agents/object/replica-store.js';
import { theoreticalMoves } from '../../domains/object/ring.js';
import { digestOf, patternBody, patternMd5, startObjectRig, type ObjectRig } from '../support/object-rig.js';
import { until } from '../support/wait.js';

let rig: ObjectRig;

beforeAll(async () => {
  rig = await startObjectRig({ partPower: 8 });
}, 120_000);
afterAll(async () => {
  await rig?.close();
});

const put = (container: string, name: string, size: number, seed = 1) =>
  rig.member.upload('PutObject', { container, name, contentType: 'application/octet-stream', contentLength: size }, patternBody(size, seed));
const get = async (container: string, name: string) => digestOf((await rig.member.download('GetObject', { container, name })).body);

/** The devices holding a live replica of the object with this ETag. */
async function holders(container: string, name: string, etag: string): Promise<number[]> {
  const partition = rig.cloud.object.proxy.partitionOf(rig.account, container, name);
  const out: number[] = [];
  for (const d of rig.agent.devices) {
    const m = await d.store.head(partition, rig.account, container, name);
    if (m && !m.deleted && m.etag === etag) out.push(d.deviceId);
  }
  return out;
}

/** Flips one byte of a device's replica file, `offset` bytes into the body. */
async function rot(deviceId: number, container: string, name: string, offset: number): Promise<void> {
  const d = rig.agent.devices.find((x) => x.deviceId === deviceId)!;
  const partition = rig.cloud.object.proxy.partitionOf(rig.account, container, name);
  const dir = d.store.hashDir(partition, nameHash(rig.account, container, name));
  const { readdir } = await import('node:fs/promises');
  const file = (await readdir(dir)).find((f) => f.endsWith('.data'))!;
  const fh = await open(join(dir, file), 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] ^= 0xff;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}

describe('object storage faults', () => {
  it('b. writes go on with one object server stopped; once back, the replicator restores 3 copies of what was written meanwhile', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'outage' } });
    const stopped = 2;
    await rig.agent.stopDevice(stopped);
    const written: { name: string; etag: string }[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await put('outage', `during-${i}`, 4096 + i * 100, i);
      // Each write reached the two live primaries it had, or a handoff stood in for the stopped one.
      expect(r.replicasWritten).toBeGreaterThanOrEqual(2);
      written.push({ name: `during-${i}`, etag: r.etag });
    }
    // Readable meanwhile.
    for (const w of written.slice(0, 5)) expect((await get('outage', w.name)).md5).toBe(w.etag);
    const onStopped = async () => (await Promise.all(written.map((w) => holders('outage', w.name, w.etag)))).filter((h) => h.includes(stopped)).length;
    expect(await onStopped()).toBe(0);

    const started = Date.now();
    await rig.agent.startDevice(stopped);
    const ring = rig.cloud.object.feed.view.ring()!;
    const owed = written.filter((w) => {
      const p = rig.cloud.object.proxy.partitionOf(rig.account, 'outage', w.name);
      return ring.assignment.some((row) => row[p] === stopped);
    });
    expect(owed.length).toBe(written.length); // 3 devices, 3 replicas: every partition is on every device
    await until(async () => (await onStopped()) === owed.length, 'the restarted device holds every object written while it was stopped', 30_000);
    const restoredMs = Date.now() - started;
    for (const w of written) expect((await holders('outage', w.name, w.etag)).sort()).toEqual([1, 2, 3]);
    // The bound stated in the closing note: one replication pass, which the restart starts at once.
    expect(restoredMs).toBeLessThan(10_000);
    console.log(`figure object_outage_restore ${restoredMs} ms (${written.length} objects)`);
  }, 120_000);

  it('c. a corrupted replica is never served; the auditor quarantines rot nobody read, records it, and the replicator replaces it', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'rot' } });
    const size = 1024 * 1024;
    const md5 = await patternMd5(size, 5);
    await put('rot', 'read-me', size, 5);
    await put('rot', 'never-read', size, 5);
    // Rot in the 5th chunk of every replica but one of read-me: whichever node a GET starts at, it breaks off there and resumes on a good one.
    const partition = rig.cloud.object.proxy.partitionOf(rig.account, 'rot', 'read-me');
    const primaries = rig.cloud.object.feed.view.ring()!.assignment.map((row) => row[partition]);
    await rot(primaries[0], 'rot', 'read-me', 5 * 65536 + 123);
    await rot(primaries[1], 'rot', 'read-me', 5 * 65536 + 123);
    for (let i = 0; i < 3; i++) expect(await get('rot', 'read-me')).toEqual({ size, md5 });
    // Serving found the rot: those replicas are quarantined.
    expect((await holders('rot', 'read-me', md5)).length).toBeLessThan(3);

    await rot(3, 'rot', 'never-read', 200_000);
    const audits = await rig.agent.auditNow();
    const found = audits.flatMap((a) => a.quarantined).filter((q) => q.meta.object === 'never-read');
    expect(found.length).toBe(1);
    expect(found[0].reason).toMatch(/md5|digest|chunk/i);
    await until(async () => (await rig.cloud.object.queries.quarantines(`${rig.account}/rot/never-read`)).length === 1, 'the quarantine recorded in the log', 10_000);
    const recorded = await rig.cloud.object.queries.quarantines(`${rig.account}/rot/never-read`);
    expect(recorded[0].deviceId).toBe(3);

    await rig.agent.replicateNow();
    expect((await holders('rot', 'never-read', md5)).sort()).toEqual([1, 2, 3]);
    expect((await holders('rot', 'read-me', md5)).sort()).toEqual([1, 2, 3]);
    // The replaced replicas are whole: read each device's copy directly.
    for (const d of rig.agent.devices) {
      const { body } = await d.store.read(rig.cloud.object.proxy.partitionOf(rig.account, 'rot', 'never-read'), rig.account, 'rot', 'never-read');
      expect(await digestOf(body)).toEqual({ size, md5 });
    }
  }, 120_000);

  it('d. a device added to the ring takes its share, moving at most that share + 5%, and every object stays readable during the move', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'move' } });
    const objects: { name: string; etag: string }[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await put('move', `o-${i}`, 2048 + i, 100 + i);
      objects.push({ name: `o-${i}`, etag: r.etag });
    }
    const before = rig.cloud.object.feed.view.ring()!;
    const dir = mkdtempSync(join(tmpdir(), 'strata-object-d4-'));
    const fourth = await ObjectAgent.start({ devices: [{ deviceId: 4, root: join(dir, 'd4'), port: 0 }], feed: rig.cloud.object.feed, replicateEveryMs: 60_000, auditEveryMs: 3_600_000 });
    try {
      const device = { id: 4, region: 1, zone: 4, host: fourth.devices[0].address, device: 'd4', weight: 100 };
      await rig.admin.call('AddRingDevice', { device });
      const theoretical = theoreticalMoves(before, [...before.devices, device]);
      const rebalanced = (await rig.admin.call('RebalanceRing', {})).ring;
      expect(rebalanced.version).toBe(before.version + 1);
      expect(rebalanced.lastMoved).toBeLessThanOrEqual(Math.ceil(theoretical * 1.05));
      expect(rebalanced.lastMoved).toBeGreaterThan(0);
      const share = rebalanced.devices.find((d: any) => d.device.id === 4).partitions;
      expect(share).toBe(theoretical);
      console.log(`figure object_rebalance_moved ${rebalanced.lastMoved} partition-replicas (theoretical ${theoretical})`);

      // Reads during the move: the new primaries have nothing yet; each GET must still return the right bytes.
      let reading = true;
      let reads = 0;
      const reader = (async () => {
        while (reading) {
          for (const o of objects) {
            expect((await get('move', o.name)).md5).toBe(o.etag);
            reads++;
          }
        }
      })();
      await Promise.all([fourth.replicateNow(), rig.agent.replicateNow()]);
      await Promise.all([fourth.replicateNow(), rig.agent.replicateNow()]);
      reading = false;
      await reader;
      expect(reads).toBeGreaterThan(0);
      // Afterwards: exactly the ring's 3 devices hold each object.
      const ring = rig.cloud.object.feed.view.ring()!;
      const all = [...rig.agent.devices, ...fourth.devices];
      for (const o of objects) {
        const p = rig.cloud.object.proxy.partitionOf(rig.account, 'move', o.name);
        const want = ring.assignment.map((row) => row[p]).sort();
        const have: number[] = [];
        for (const d of all) {
          const m = await d.store.head(p, rig.account, 'move', o.name);
          if (m && !m.deleted && m.etag === o.etag) have.push(d.deviceId);
        }
        expect(have.sort()).toEqual(want);
        expect((await get('move', o.name)).md5).toBe(o.etag);
      }
    } finally {
      await fourth.close();
    }
  }, 180_000);

  it('serves only the version the log records, and a refused PUT leaves the recorded version in place', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'pinned', quotaBytes: 100 } });
    const a = await put('pinned', 'a', 60, 7);
    await put('pinned', 'b', 30, 8);
    // Over quota, found only as the body streams (no content_length): refused before any replica commits.
    await expect(rig.member.upload('PutObject', { container: 'pinned', name: 'a' }, patternBody(80, 9))).rejects.toMatchObject({ code: 8, message: expect.stringContaining('quota_bytes') });
    expect(await get('pinned', 'a')).toEqual({ size: 60, md5: a.etag });
    expect((await holders('pinned', 'a', a.etag)).sort()).toEqual([1, 2, 3]);

    // A replica ahead of the log (a write that was never recorded) on one device is passed over.
    const partition = rig.cloud.object.proxy.partitionOf(rig.account, 'pinned', 'a');
    const first = rig.agent.devices[0];
    await first.store.put(partition, { account: rig.account, container: 'pinned', object: 'a', timestamp: '9999999999.00000', contentType: 'text/plain', metadata: {} }, patternBody(50, 10));
    for (let i = 0; i < 3; i++) expect(await get('pinned', 'a')).toEqual({ size: 60, md5: a.etag });
    const head = (await rig.member.call('HeadObject', { container: 'pinned', name: 'a' })).object;
    expect([head.etag, head.size]).toEqual([a.etag, 60]);
  }, 60_000);

  it('a PUT that every object server refuses (a newer version there) fails as a conflict, leaving the newer version', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'refused' } });
    const partition = rig.cloud.object.proxy.partitionOf(rig.account, 'refused', 'x');
    for (const d of rig.agent.devices) {
      await d.store.put(partition, { account: rig.account, container: 'refused', object: 'x', timestamp: '9999999999.00000', contentType: 'text/plain', metadata: {} }, patternBody(10, 11));
    }
    const started = Date.now();
    await expect(
      rig.cloud.object.proxy.put({ account: rig.account, container: 'refused', name: 'x', contentType: 'application/octet-stream', metadata: {}, timestamp: '1764640000.00001' }, patternBody(8 * 1024 * 1024, 12, 4096)),
    ).rejects.toThrow(/a newer version of refused\/x than 1764640000.00001 is stored/);
    expect(Date.now() - started).toBeLessThan(15_000);
    for (const d of rig.agent.devices) expect((await d.store.head(partition, rig.account, 'refused', 'x'))?.timestamp).toBe('9999999999.00000');
  }, 60_000);
});
