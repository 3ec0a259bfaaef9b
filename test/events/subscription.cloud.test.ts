// SubscriptionService on a real all-in-one cloud (issue 9, acceptance d-subscribe): tenancy comes
// from the audit projection's owner of each event. Two projects act; each tenant's stream carries
// its own project's events only, an admin can narrow to one project, and a tenant asking for
// another project is refused. Then `strata events tail` as a user runs it: JSON lines, the cursor
// on stderr, an exact resume, a bad cursor named.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeCursor } from '../../api/events/cursor.js';
import { ApiCallError } from '../../cli/client.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';
import { cliRunner } from '../support/cli-runner.js';

// Heartbeats often, so a stream's cursor shows soon that it has passed everything.
process.env.STRATA_SUBSCRIBE_HEARTBEAT_MS = '200';

const PERMISSION_DENIED = 7;
const CLI = new URL('../../cli/strata.mjs', import.meta.url).pathname;
type Obj = Record<string, any>;

interface Tail {
  events: Obj[];
  cursor: string;
  stop(): void;
  done: Promise<void>;
}

describe('SubscriptionService in the cloud', () => {
  let t: ComputeTestCloud;
  let alice: Member;
  let bob: Member;

  beforeAll(async () => {
    t = await startComputeCloud();
    alice = await t.member();
    bob = await t.member();
  }, 120_000);
  afterAll(async () => t?.close());
  const cli = cliRunner('events', () => t);

  function tail(client: Member['client'], request: Obj = {}): Tail {
    const out = { events: [] as Obj[], cursor: '' } as Tail;
    const s = client.stream('Subscribe', request, (m: Obj) => {
      if (m.event) out.events.push(m.event);
      out.cursor = m.event?.cursor ?? m.progress?.cursor ?? out.cursor;
    });
    out.stop = s.cancel;
    out.done = s.done;
    s.done.catch(() => undefined); // a stream still open when the cloud closes
    return out;
  }

  /** Resolves once the stream's cursor has passed the end of every topic it follows as the log is now. */
  async function passedEnd(s: Tail) {
    const ends = new Map<string, number[]>();
    for (const topic of decodeCursor(s.cursor).keys()) ends.set(topic, await t.log.endOffsets(topic));
    for (let i = 0; i < 300; i++) {
      const at = decodeCursor(s.cursor);
      if ([...ends].every(([topic, end]) => end.every((e, p) => (at.get(topic)?.[p] ?? 0) >= e))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the stream never passed the end of the log');
  }

  const group = (m: Member, name: string) => m.client.call('CreateServerGroup', { serverGroup: { name, policy: 'anti-affinity' } });

  it("d: each tenant's stream carries its own project's events only; an admin narrows to one project; another project is PERMISSION_DENIED", async () => {
    const aliceTail = tail(alice.client);
    const bobTail = tail(bob.client);
    const adminTail = tail(t.admin, { projectId: alice.project.id });
    const allTail = tail(t.admin, { domains: ['compute'] });
    for (const s of [aliceTail, bobTail, adminTail, allTail]) await expect.poll(() => s.cursor, { timeout: 30_000 }).not.toBe('');

    const made = { alice: [] as string[], bob: [] as string[] };
    for (let i = 0; i < 3; i++) {
      made.alice.push((await group(alice, `a-${i}`)).serverGroup.id);
      made.bob.push((await group(bob, `b-${i}`)).serverGroup.id);
    }
    for (const s of [aliceTail, bobTail, adminTail, allTail]) await passedEnd(s);

    const ids = (s: Tail) => s.events.filter((e) => e.type === 'ServerGroupCreated').map((e) => e.aggregateId);
    expect(ids(aliceTail)).toEqual(made.alice);
    expect(ids(bobTail)).toEqual(made.bob);
    expect(aliceTail.events.every((e) => e.projectId === alice.project.id)).toBe(true);
    expect(bobTail.events.every((e) => e.projectId === bob.project.id)).toBe(true);
    expect(adminTail.events.map((e) => e.eventId)).toEqual(aliceTail.events.map((e) => e.eventId));
    expect(new Set(ids(allTail))).toEqual(new Set([...made.alice, ...made.bob]));
    const created = aliceTail.events.find((e) => e.type === 'ServerGroupCreated')!;
    expect(created).toMatchObject({ domain: 'compute', aggregateType: 'server_group', actor: { userId: alice.user.id, projectId: alice.project.id } });
    expect(JSON.parse(created.payloadJson).serverGroup).toMatchObject({ name: 'a-0', policy: 'anti-affinity' });
    for (const s of [aliceTail, bobTail, adminTail, allTail]) s.stop();

    // Another project's events: refused, whether by name or through the admin's filter.
    const denied = tail(alice.client, { projectId: bob.project.id });
    const err = await denied.done.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ApiCallError);
    expect((err as ApiCallError).code).toBe(PERMISSION_DENIED);
    // Its own project by name is its stream as before.
    const own = tail(alice.client, { projectId: alice.project.id });
    await expect.poll(() => own.cursor, { timeout: 30_000 }).not.toBe('');
    own.stop();
  }, 120_000);

  it('strata events tail: JSON lines from the earliest, the cursor on stderr, an exact resume, a bad cursor named', async () => {
    const name = `cli-${randomUUID().slice(0, 8)}`;
    await group(alice, name);
    const first = await cli.strata(['--output', 'json', 'events', 'tail', '--from', 'earliest', '--no-follow', '--domain', 'compute', '--type', 'ServerGroupCreated'], alice.token);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.every((e) => e.projectId === alice.project.id && e.type === 'ServerGroupCreated')).toBe(true);
    // Ordered per aggregate (partition), not across them: the group is there, wherever.
    expect(lines.filter((e) => e.payload.serverGroup.name === name)).toHaveLength(1);
    expect(new Set(lines.map((e) => e.eventId)).size).toBe(lines.length);
    const cursor = /cursor (v1\.\S+)/.exec(first.stderr)![1];

    // Nothing new: an empty resume. One more group: exactly that one, in the table form.
    const none = await cli.strata(['events', 'tail', '--from', cursor, '--no-follow', '--domain', 'compute', '--type', 'ServerGroupCreated'], alice.token);
    expect([none.code, none.stdout]).toEqual([0, '']);
    const again = (await group(alice, `${name}-2`)).serverGroup.id;
    const next = await cli.strata(['events', 'tail', '--from', cursor, '--no-follow', '--domain', 'compute', '--type', 'ServerGroupCreated'], alice.token);
    expect(next.code, next.stderr).toBe(0);
    const rows = next.stdout.trim().split('\n');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z  ServerGroupCreated  compute/server_group/${again} v1  by ${alice.user.id}@${alice.project.id}  project ${alice.project.id}$`));

    const bad = await cli.strata(['events', 'tail', '--from', 'v1.garbage!', '--no-follow'], alice.token);
    expect(bad.code).toBe(6);
    expect(bad.stderr).toContain('field cursor');
    const other = await cli.strata(['events', 'tail', '--project', bob.project.id, '--no-follow'], alice.token);
    expect(other.code).toBe(4);
  }, 120_000);

  it('strata events tail follows until Ctrl-C, then prints the cursor and exits 0', async () => {
    const child = spawn(process.execPath, [CLI, 'events', 'tail', '--domain', 'compute'], {
      env: { PATH: process.env.PATH ?? '', HOME: cli.config, XDG_CONFIG_HOME: cli.config, STRATA_URL: t.url, STRATA_CA_CERT: t.tls.caCertPath, STRATA_TOKEN: alice.token },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The stream is up once the process has had time to connect; groups made until a line shows.
    const made: string[] = [];
    for (let i = 0; i < 60 && !stdout.includes('ServerGroupCreated'); i++) {
      made.push((await group(alice, `follow-${i}`)).serverGroup.id);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(stdout).toContain('ServerGroupCreated');
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/^cursor v1\.\S+$/m);
    expect(made.some((id) => stdout.includes(id))).toBe(true);
  }, 120_000);
});
