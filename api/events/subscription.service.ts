// SubscriptionService (proto/strata/events/v1/subscription_service.proto): a server stream of the
// events of the log, filtered by domain, type and owner project, each with a resume cursor.
//
// It reads the events topics with log.tail, whose onBatch awaits: the log is read only as fast
// as the subscriber takes messages. A message goes to grpc-js with call.write(); when that says
// the stream's buffer is full, the next one waits for 'drain'. What a subscriber can hold up on
// the server is therefore bounded (grpc-js's buffer, HTTP/2's window, one batch of the log), and
// one that takes nothing for stallTimeoutMs is cut off with RESOURCE_EXHAUSTED and the cursor to
// resume from, in the message and in trailing metadata strata-resume-cursor. Its status follows
// the messages still queued for it; one that never reads again has its HTTP/2 stream reset after
// a grace, so that it holds nothing.
//
// Tenancy: an event's owner is the project of its resource, which the envelope does not carry
// (an admin or an agent may act on a tenant's resource): the audit projection knows it
// (`owners`), and the stream waits until that projection has an event before it decides whether
// the subscriber may see it. Tenants see their token's project; admins all, or one project.
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import { decodeEvent } from '../../infra/envelope/envelope.codec.js';
import { hostedDomains, type HostedDomain } from '../../infra/domains.js';
import type { Log, LogRecord, Subscription } from '../../infra/log/log.js';
import { HEADER_EVENT_TYPE } from '../../infra/runtime/partition-decider.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import { tracer } from '../../infra/telemetry/telemetry.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse, toServiceError } from '../errors.js';
import { EVENTS_SUBSCRIBE_RULE, eventsPolicy } from '../policy/events.policy.js';
import type { Caller } from '../policy/policy.js';
import { callerProject, type Req, type Res } from '../request.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { decodeCursor, encodeCursor, type Offsets } from './cursor.js';
import { timestamp } from '../compute/compute.views.js';
import { payloadJson, payloadOf } from '../../infra/events/catalog.js';

export const SUBSCRIPTION_SERVICE = 'strata.events.v1.SubscriptionService';

/** The metadata key of the cursor a cut-off (or ended) stream resumes from. */
export const RESUME_CURSOR_METADATA = 'strata-resume-cursor';

/** Who owns each event: the audit projection (projections/audit). */
export interface EventOwners {
  /** Resolves once the owners of every event up to `position` are known. */
  waitFor(position: Position): Promise<void>;
  /** offset -> owner project id ('' = none) of the events of a partition in [fromOffset, toOffset]. */
  ownersAt(topic: string, partition: number, fromOffset: number, toOffset: number): Promise<Map<number, string>>;
}

export interface SubscriptionServiceOptions {
  log: Log;
  authenticator: Pick<Authenticator, 'authenticate' | 'stillValid'>;
  owners: EventOwners;
  /** The domains one may subscribe to (default: the hosted ones, infra/domains.ts). */
  domains?: readonly HostedDomain[];
  /** A subscriber that takes no message for this long is cut off (env STRATA_SUBSCRIBE_STALL_MS, default 30 s). */
  stallTimeoutMs?: number;
  /** Progress messages at least this often (env STRATA_SUBSCRIBE_HEARTBEAT_MS, default 5 s). */
  heartbeatMs?: number;
  /** How long a cut-off stream's queued messages and status may wait for the subscriber before its stream is reset (default: stallTimeoutMs). */
  closeGraceMs?: number;
}

export interface SubscriptionServiceHandle {
  implementation: UntypedServiceImplementation;
  /** Streams running now. */
  readonly active: number;
  /** Calls not over yet: the running streams and the cut-off ones whose status has not gone out. */
  readonly calls: number;
  /** Ends every stream (UNAVAILABLE, with its resume cursor). */
  close(): Promise<void>;
}

const envMs = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const EVENT_TYPE = /^[A-Za-z][A-Za-z0-9_.]{0,127}$/;
const MAX_FILTERS = 256;

/** A stream's filters and starting point, from its request; throws the refusals. */
interface Plan {
  topics: string[];
  types: Set<string> | undefined;
  /** Only events owned by this project ('' = every event). */
  project: string;
  offsets: Offsets;
  /** Per topic, the end offsets when the call started (stop_at_end, caught_up). */
  ends: Map<string, number[]>;
  stopAtEnd: boolean;
}

export function createSubscriptionService(o: SubscriptionServiceOptions): SubscriptionServiceHandle {
  const domains = o.domains ?? hostedDomains;
  const stallTimeoutMs = o.stallTimeoutMs ?? envMs('STRATA_SUBSCRIBE_STALL_MS', 30_000);
  const heartbeatMs = o.heartbeatMs ?? envMs('STRATA_SUBSCRIBE_HEARTBEAT_MS', 5_000);
  const closeGraceMs = o.closeGraceMs ?? stallTimeoutMs;
  const domainOfTopic = new Map(domains.map((d) => [domainTopics(d.name).events, d.name]));
  const domainByName = new Map(domains.map((d) => [d.name, d]));
  const knownTypes = new Set(domains.flatMap((d) => d.eventTypes));
  const streams = new Set<(error: ApiError) => void>();
  let calls = 0;

  // The heartbeats' end offsets, shared by every stream: one look per topic and half heartbeat
  // however many subscribers there are (on Kafka each look is a request to the brokers).
  const endsSeen = new Map<string, { atMs: number; ends: Promise<number[]> }>();
  const recentEnds = (topic: string): Promise<number[]> => {
    const seen = endsSeen.get(topic);
    if (seen && Date.now() - seen.atMs < heartbeatMs / 2) return seen.ends;
    const ends = o.log.endOffsets(topic);
    endsSeen.set(topic, { atMs: Date.now(), ends });
    ends.catch(() => endsSeen.delete(topic));
    return ends;
  };

  /** The payload as deterministic JSON, or '' when no codec here knows it. */
  const payloadText = (domain: string, e: EventEnvelope): string => {
    try {
      return payloadJson(payloadOf(domainByName.get(domain)!, e));
    } catch {
      return '';
    }
  };

  async function plan(c: Caller, req: Req): Promise<Plan> {
    const asked = ((req.domains ?? []) as string[]).map(String);
    if (asked.length > MAX_FILTERS) throw invalid('domains', `at most ${MAX_FILTERS}`);
    const known = domains.map((d) => d.name);
    for (const d of asked) if (!known.includes(d)) throw invalid('domains', `unknown domain "${d.slice(0, 80)}"; this cloud hosts ${known.join(', ')}`);
    const topics = (asked.length > 0 ? [...new Set(asked)] : known).map((d) => domainTopics(d).events);

    const typeList = ((req.eventTypes ?? []) as string[]).map(String);
    if (typeList.length > MAX_FILTERS) throw invalid('event_types', `at most ${MAX_FILTERS}`);
    for (const t of typeList) {
      if (!EVENT_TYPE.test(t)) throw invalid('event_types', `"${t.slice(0, 80)}" is not an event type name`);
      if (!knownTypes.has(t)) throw invalid('event_types', `no domain of this cloud has an event type ${t}`);
    }
    const types = typeList.length > 0 ? new Set(typeList) : undefined;

    // Tenancy first: a tenant's stream is its own project's whatever it asks; asking for another
    // project fails the rule on that project (PERMISSION_DENIED).
    const askedProject = String(req.projectId ?? '');
    let project: string;
    if (c.isAdmin) project = askedProject;
    else {
      project = callerProject(c);
      if (!project) throw refuse('PERMISSION_DENIED', 'subscribing needs a token scoped to a project (or a cloud admin)');
    }
    eventsPolicy.enforce(EVENTS_SUBSCRIBE_RULE, c, { projectId: askedProject || project || undefined });

    const ends = new Map<string, number[]>();
    for (const t of topics) ends.set(t, await o.log.endOffsets(t));
    const cursor = req.start === 'cursor' || req.cursor ? String(req.cursor ?? '') : '';
    let offsets: Offsets;
    if (cursor) {
      offsets = decodeCursor(cursor);
      for (const t of topics) {
        const end = ends.get(t)!;
        // A topic or partition the cursor does not know is new to this subscriber: all of it.
        const from = end.map((_, p) => offsets.get(t)?.[p] ?? 0);
        from.forEach((f, p) => {
          if (f > end[p]) throw invalid('cursor', `is ahead of the log (${t} partition ${p}: ${f} > ${end[p]}); is it from another cloud?`);
        });
        offsets.set(t, from);
      }
    } else {
      const earliest = req.position === 'START_POSITION_EARLIEST';
      offsets = new Map(topics.map((t) => [t, earliest ? ends.get(t)!.map(() => 0) : [...ends.get(t)!]]));
    }
    return { topics, types, project, offsets, ends, stopAtEnd: Boolean(req.stopAtEnd) };
  }

  const reached = (offsets: Offsets, ends: Map<string, number[]>) =>
    [...ends].every(([t, end]) => end.every((e, p) => (offsets.get(t)?.[p] ?? 0) >= e));

  /** The HTTP/2 stream under a grpc-js server call (internal: found by walking its wrappers). */
  function resetStream(call: unknown): void {
    let c = (call as { call?: unknown }).call as Record<string, unknown> | undefined;
    for (let i = 0; c && i < 8; i++) {
      const s = c.stream as { close?: (code: number) => void; destroyed?: boolean } | undefined;
      if (s && typeof s.close === 'function') {
        if (!s.destroyed) s.close(0x8); // NGHTTP2_CANCEL
        return;
      }
      c = c.nextCall as Record<string, unknown> | undefined;
    }
  }

  function subscribe(call: ServerWritableStream<Req, Res>): void {
    const span = tracer().startSpan(`${SUBSCRIPTION_SERVICE}/Subscribe`, { kind: SpanKind.SERVER, attributes: { 'rpc.method': 'Subscribe' } });
    let ended = false;
    let onEnded!: () => void;
    const whenEnded = new Promise<void>((resolve) => (onEnded = resolve));
    let sub: Subscription | undefined;
    let offsets: Offsets = new Map();
    let timers: NodeJS.Timeout[] = [];
    /** Since when the stream's buffer has been full (undefined: it is not). */
    let blockedSince: number | undefined;
    const wakers = new Set<() => void>();
    const wakeWriters = () => {
      for (const w of wakers) w();
      wakers.clear();
    };
    let graceTimer: NodeJS.Timeout | undefined;

    const finish = (error?: unknown, withCursor = true) => {
      if (ended) return;
      ended = true;
      onEnded();
      streams.delete(finish);
      for (const t of timers) clearInterval(t);
      wakeWriters();
      void sub?.close().catch(() => undefined);
      if (error) {
        const status = toServiceError(error);
        if (withCursor && offsets.size > 0) status.metadata!.set(RESUME_CURSOR_METADATA, encodeCursor(offsets));
        span.setStatus({ code: SpanStatusCode.ERROR, message: status.details });
        call.emit('error', status);
        // The status goes out after the messages grpc-js still holds for the subscriber; one that
        // never reads them would keep them (and the call) forever: reset its stream after a grace.
        if (!call.cancelled) {
          graceTimer = setTimeout(() => resetStream(call), closeGraceMs);
          graceTimer.unref();
        }
      } else if (!call.cancelled) call.end();
      span.end();
    };
    calls++;
    let over = false;
    const gone = () => {
      if (!over) calls--;
      over = true;
      clearTimeout(graceTimer);
      finish();
    };
    call.on('cancelled', gone);
    call.on('close', gone);
    call.on('drain', () => {
      blockedSince = undefined;
      wakeWriters();
    });

    /** Writes a message; false once the stream is over. Waits while grpc-js's buffer is full. */
    const send = async (message: Res): Promise<boolean> => {
      if (ended) return false;
      if (!call.write(message)) blockedSince ??= Date.now();
      while (blockedSince !== undefined && !ended) await new Promise<void>((resolve) => wakers.add(resolve));
      return !ended;
    };

    const progress = (caughtUp: boolean): Res => ({ progress: { cursor: encodeCursor(offsets), caughtUp } });

    void (async () => {
      let p: Plan;
      let c: Caller;
      try {
        c = o.authenticator.authenticate(call.metadata);
        p = await plan(c, call.request ?? {});
      } catch (e) {
        if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError)) console.error('events Subscribe:', e);
        finish(e, false);
        return;
      }
      if (ended) return;
      offsets = p.offsets;
      streams.add(finish);
      const cut = () =>
        finish(refuse('RESOURCE_EXHAUSTED', `the subscriber fell behind: it took no message for ${Math.round(stallTimeoutMs / 1000)} s; resume from cursor ${encodeCursor(offsets)}`));

      // The watchdog: a full buffer for stallTimeoutMs cuts the subscriber off; an expired or
      // revoked token ends the stream.
      const watchdog = setInterval(() => {
        if (blockedSince !== undefined && Date.now() - blockedSince >= stallTimeoutMs) cut();
        else if (!o.authenticator.stillValid(c)) finish(refuse('UNAUTHENTICATED', 'the token expired or was revoked during the subscription'));
      }, Math.max(10, Math.min(1000, stallTimeoutMs / 4)));
      // Heartbeats: the cursor so far (a filtered stream moves on too), and whether it has caught up.
      let beating = false;
      const heartbeat = setInterval(() => {
        if (beating || ended || blockedSince !== undefined) return;
        beating = true;
        void (async () => {
          try {
            const ends = new Map<string, number[]>();
            for (const t of p.topics) ends.set(t, await recentEnds(t));
            if (!ended && blockedSince === undefined) void send(progress(reached(offsets, ends)));
          } catch {
            // The log is unreachable for now: the next beat tries again.
          } finally {
            beating = false;
          }
        })();
      }, heartbeatMs);
      timers = [watchdog, heartbeat];
      for (const t of timers) t.unref();

      let ending = false;
      const atEnd = () => {
        if (!p.stopAtEnd || ended || ending || !reached(offsets, p.ends)) return ending;
        ending = true;
        void send(progress(true)).then(() => finish());
        return true;
      };
      if (!(await send(progress(reached(offsets, p.ends))))) return;
      if (atEnd()) return;

      // Kafka hands batches of several partitions at once: one at a time here, in arrival order.
      let queue = Promise.resolve();
      const onBatch = (records: LogRecord[]) => {
        const run = queue.then(() => deliver(records));
        queue = run.catch(() => undefined);
        return run;
      };
      const deliver = async (records: LogRecord[]): Promise<void> => {
        for (const group of byPartition(records)) {
          if (ended) return;
          const { topic, partition } = group[0];
          const domain = domainOfTopic.get(topic)!;
          const wanted = p.types ? group.filter((r) => r.headers[HEADER_EVENT_TYPE] === undefined || p.types!.has(r.headers[HEADER_EVENT_TYPE])) : group;
          let owners = new Map<number, string>();
          if (wanted.length > 0) {
            const last = wanted[wanted.length - 1].offset;
            // The owners are known once the audit projection has the events (a stream that ends meanwhile stops waiting).
            await Promise.race([o.owners.waitFor({ topic, partition, offset: last }), whenEnded]);
            if (ended) return;
            owners = await o.owners.ownersAt(topic, partition, wanted[0].offset, last);
          }
          const next = offsets.get(topic)!;
          for (const r of group) {
            if (ended) return;
            if (r.offset < next[partition]) continue; // delivered already (a consumer that re-read)
            next[partition] = r.offset + 1;
            const headerType = r.headers[HEADER_EVENT_TYPE];
            if (p.types && headerType !== undefined && !p.types.has(headerType)) continue;
            let e: EventEnvelope;
            try {
              e = decodeEvent(r.value);
            } catch (err) {
              console.error(`events Subscribe: ${topic}/${partition}@${r.offset} is no event envelope (${(err as Error).message}); passed over`);
              continue;
            }
            if (p.types && !p.types.has(e.type)) continue;
            const owner = owners.get(r.offset) ?? '';
            if (p.project && owner !== p.project) continue;
            const ok = await send({
              event: {
                eventId: e.eventId,
                domain,
                aggregateType: e.aggregateType,
                aggregateId: e.aggregateId,
                version: e.version,
                type: e.type,
                occurredAt: timestamp(e.occurredAtMs),
                actor: e.actor,
                causationId: e.causationId,
                correlationId: e.correlationId,
                traceparent: e.traceparent,
                projectId: owner,
                payloadJson: payloadText(domain, e),
                position: { topic, partition, offset: r.offset },
                cursor: encodeCursor(offsets),
              },
            });
            if (!ok) return;
          }
        }
        atEnd();
      };
      try {
        sub = await o.log.tail({
          topics: p.topics,
          from: (topic, partition) => offsets.get(topic)?.[partition] ?? 0,
          onBatch,
          // Past offsets that hold no event (Kafka's transaction markers): the cursor moves on.
          onProgress: (topic, partition, lastOffset) => {
            const next = offsets.get(topic);
            if (ended || !next) return;
            // Only once the batches before have been delivered.
            void queue.then(() => {
              if (!ended && next[partition] !== undefined && lastOffset + 1 > next[partition]) next[partition] = lastOffset + 1;
              atEnd();
            });
          },
        });
        if (ended) await sub.close();
      } catch (e) {
        console.error('events Subscribe: tail:', e);
        finish(refuse('UNAVAILABLE', 'the log cannot be read now; resume later from the last cursor'));
      }
    })();
  }

  return {
    implementation: { Subscribe: subscribe },
    get active() {
      return streams.size;
    },
    get calls() {
      return calls;
    },
    async close() {
      for (const finish of [...streams]) finish(refuse('UNAVAILABLE', 'the server is going down; resume from the last cursor'));
    },
  };
}

/** Records grouped by topic and partition, each group in offset order. */
function byPartition(records: LogRecord[]): LogRecord[][] {
  const groups = new Map<string, LogRecord[]>();
  for (const r of records) {
    const key = `${r.topic}/${r.partition}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()];
}
