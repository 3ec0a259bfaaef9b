// A SubscriptionService on its own for tests: a test domain (the image domain's aggregates and
// codecs under a unique name, so Kafka tests do not meet each other's topics), events appended
// straight to its events topic (real envelopes, real payloads), a gRPC server with the service
// alone, and a raw client. The owners stand in for the audit projection: the owner of an event is
// the owner named in its image payload.
import { credentials, Metadata, type ClientReadableStream } from '@grpc/grpc-js';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import type { Caller } from '../../api/policy/policy.js';
import { clientConstructor } from '../../api/grpc/service-definition.js';
import { startGrpcServer, type GrpcServer } from '../../api/grpc/server.js';
import { createSubscriptionService, SUBSCRIPTION_SERVICE, type EventOwners, type SubscriptionServiceHandle, type SubscriptionServiceOptions } from '../../api/events/subscription.service.js';
import { imageCodecFor, imageDefinitions, imageEventTypes } from '../../infra/codecs/image.codec.js';
import { decodeEvent, encodeEvent, protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { Log } from '../../infra/log/log.js';
import { partitionForKey } from '../../infra/log/partitioner.js';
import { HEADER_EVENT_TYPE } from '../../infra/runtime/partition-decider.js';
import { domainTopics, ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';

const imageCodec = imageDefinitions[0].codec;

export const caller = (projectId: string, isAdmin = false): Caller => ({
  userId: `user-${projectId}`,
  userDomainId: 'default',
  methods: ['password'],
  scope: { kind: 'project', projectId, domainId: 'default' },
  roles: isAdmin ? ['admin', 'member', 'reader'] : ['member', 'reader'],
  issuedAtMs: Date.now(),
  expiresAtMs: Date.now() + 3_600_000,
  auditIds: ['a'],
  isAdmin,
} as unknown as Caller);

/** Tokens are project ids here: "admin:P" is a cloud admin scoped to P. */
export const fakeAuthenticator: SubscriptionServiceOptions['authenticator'] = {
  authenticate: (metadata) => {
    const token = String(metadata.get('x-auth-token')[0] ?? '');
    return token.startsWith('admin:') ? caller(token.slice(6), true) : caller(token);
  },
  stillValid: () => true,
};

/** Owners read from the events themselves (the image's owner), as the audit projection would record them. */
export const payloadOwners = (log: Log): EventOwners => ({
  waitFor: async () => undefined,
  async ownersAt(topic, partition, from, to) {
    const owners = new Map<number, string>();
    for await (const batch of log.read(topic, partition, from, to + 1)) {
      for (const r of batch) {
        const e = decodeEvent(r.value);
        const payload = imageCodec.decodeEvent(e.type, e.payload) as unknown as { image?: { owner?: string } };
        owners.set(r.offset, payload.image?.owner ?? '');
      }
    }
    return owners;
  },
});

/** Every owner is ''; no read at all (volume tests where tenancy is not the point). */
export const noOwners: EventOwners = { waitFor: async () => undefined, ownersAt: async () => new Map() };

export interface Produced {
  eventId: string;
  aggregateId: string;
  version: number;
}

/**
 * Appends `count` ImageCreated events spread over `aggregates` aggregates (versions counting up
 * per aggregate from `versions`), `batch` records per append. Returns what it appended.
 */
export async function produce(
  log: Log,
  domain: string,
  partitions: number,
  count: number,
  o: { aggregates?: number; batch?: number; owner?: (i: number) => string; prefix?: string; versions?: Map<string, number>; padding?: number } = {},
): Promise<Produced[]> {
  const topic = domainTopics(domain).events;
  const aggregates = o.aggregates ?? 64;
  const batch = o.batch ?? 1000;
  const versions = o.versions ?? new Map<string, number>();
  const out: Produced[] = [];
  const pad = 'x'.repeat(o.padding ?? 0);
  for (let start = 0; start < count; start += batch) {
    const records = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      const aggregateId = `img-${i % aggregates}`;
      const version = (versions.get(aggregateId) ?? 0) + 1;
      versions.set(aggregateId, version);
      const eventId = `${o.prefix ?? 'cmd'}-${i}/0`;
      const owner = o.owner?.(i) ?? 'p1';
      const payload = imageCodec.encodeEvent({ type: 'ImageCreated', image: { id: aggregateId, name: `image ${i}${pad}`, owner, size: 1024 * i } } as never);
      const value = encodeEvent({
        eventId,
        aggregateType: 'image',
        aggregateId,
        version,
        type: 'ImageCreated',
        payload,
        actor: { userId: 'u', projectId: owner, roles: ['member'] },
        causationId: eventId.slice(0, -2),
        correlationId: 'c',
        traceparent: '',
        tracestate: '',
        occurredAtMs: 1_700_000_000_000 + i,
      });
      records.push({ topic, partition: partitionForKey(aggregateId, partitions), key: aggregateId, value, headers: { [HEADER_EVENT_TYPE]: 'ImageCreated' } });
      out.push({ eventId, aggregateId, version });
    }
    await log.append(records);
  }
  return out;
}

export interface Rig {
  server: GrpcServer;
  service: SubscriptionServiceHandle;
  url: string;
  close(): Promise<void>;
}

export async function startRig(log: Log, domain: string, topology: TopologyOptions, options: Partial<SubscriptionServiceOptions> = {}): Promise<Rig> {
  await ensureDomainTopics(log, domain, topology);
  const service = createSubscriptionService({
    log,
    authenticator: fakeAuthenticator,
    owners: payloadOwners(log),
    domains: [{ name: domain, aggregates: imageDefinitions, eventTypes: imageEventTypes, codecFor: imageCodecFor }],
    ...options,
  });
  const server = await startGrpcServer({ tls: 'insecure', root: protoRoot(), services: [{ name: SUBSCRIPTION_SERVICE, implementation: service.implementation }] });
  return {
    server,
    service,
    url: `127.0.0.1:${server.port}`,
    async close() {
      await service.close();
      await server.close(500);
    },
  };
}

export type Message = { message?: 'event' | 'progress'; event?: Record<string, any>; progress?: { cursor: string; caughtUp: boolean } };

export interface Stream {
  call: ClientReadableStream<Message>;
  messages: Message[];
  /** Settles with the final status (code 0 when it ended OK). */
  done: Promise<{ code: number; details: string; cursor?: string; field?: string }>;
  /** Starts taking messages (a paused stream). */
  resume(): void;
}

const Client = clientConstructor(protoRoot(), SUBSCRIPTION_SERVICE);

/** A raw Subscribe call. `paused`: the client asks for no message until resume() (a stalled subscriber). */
export function subscribe(address: string, request: Record<string, unknown>, token = 'admin:admin', o: { paused?: boolean; onMessage?: (m: Message, s: Stream) => void } = {}): Stream {
  const client = new Client(address, credentials.createInsecure()) as unknown as Record<string, (...a: unknown[]) => ClientReadableStream<Message>> & { close(): void };
  const metadata = new Metadata();
  metadata.set('x-auth-token', token);
  const call = client.Subscribe(request, metadata);
  const messages: Message[] = [];
  const stream = { call, messages } as Stream;
  stream.done = new Promise((resolve) => {
    call.on('error', () => undefined); // the status says it all
    call.on('status', (s: { code: number; details: string; metadata: Metadata }) => {
      client.close();
      resolve({ code: s.code, details: s.details, cursor: s.metadata.get('strata-resume-cursor')[0]?.toString(), field: s.metadata.get('strata-field')[0]?.toString() });
    });
  });
  stream.resume = () =>
    call.on('data', (m: Message) => {
      messages.push(m);
      o.onMessage?.(m, stream);
    });
  if (!o.paused) stream.resume();
  return stream;
}

/**
 * A TCP relay to the server whose stall() stops reading what the server sends, as a subscriber
 * does whose process hangs or whose network stalls: TCP and HTTP/2 flow control then push back on
 * the server. (A grpc-js client that merely takes no messages does not: Node's HTTP/2 client keeps
 * acknowledging the data and buffers it in the client's memory.)
 */
export async function stallingRelay(target: string): Promise<{ address: string; stall(): void; resume(): void; close(): void }> {
  const [host, port] = target.split(':');
  let stalled = false;
  const upstreams = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(port), host);
    upstreams.add(upstream);
    client.pipe(upstream);
    upstream.on('data', (d: Buffer) => {
      if (!client.write(d)) upstream.pause();
    });
    client.on('drain', () => !stalled && upstream.resume());
    if (stalled) upstream.pause();
    const end = () => {
      client.destroy();
      upstream.destroy();
      upstreams.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    stall: () => {
      stalled = true;
      for (const u of upstreams) u.pause();
    },
    resume: () => {
      stalled = false;
      for (const u of upstreams) u.resume();
    },
    close: () => {
      for (const u of upstreams) u.destroy();
      server.close();
    },
  };
}
