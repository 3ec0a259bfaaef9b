// The all-in-one cloud's parts in one process: a decider worker per hosted domain, the identity
// API (projection, token keys), the compute API (projection, watch streams) and the network API
// (projection), their services on one gRPC server, and the compute conductor (boot and move sagas). infra/main.ts runs it from
// the environment; tests start it on a temporary state directory. Host agents are processes of
// their own (agents/compute/main.ts) that meet the cloud through the log; for a zero-setup demo
// the cloud can also run fake-driver hosts in this process (computeHosts).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createComputeApi, COMPUTE_SERVICE, type ComputeApi, type ComputeApiOptions } from '../api/compute/compute.api.js';
import { startGrpcServer, type GrpcServer } from '../api/grpc/server.js';
import { createNetworkApi, NETWORK_SERVICE, type NetworkApi, type NetworkApiOptions } from '../api/network/network.api.js';
import { createBlockApi, VOLUME_SERVICE, type BlockApi } from '../api/block/block.api.js';
import { BlockAgent, type BlockAgentOptions } from '../agents/block/block.agent.js';
import { BlockConductor } from './sagas/block.conductor.js';
import { imageServiceForBlock } from '../api/block/block.images.js';
import { BlockQueries } from '../projections/block/block.queries.js';
import { followBlock } from './sagas/block.feed.js';
import { createObjectApi, OBJECT_SERVICE, type ObjectApi, type ObjectApiOptions } from '../api/object/object.api.js';
import { ObjectAgent, type ObjectDeviceConfig } from '../agents/object/object.agent.js';
import { createImageApi, IMAGE_SERVICE, type ImageApi } from '../api/image/image.api.js';
import { createEventsApi, type EventsApi, type EventsApiOptions } from '../api/events/events.api.js';
import { imageUsableBy } from '../domains/image/image.types.js';
import { refuse } from '../api/errors.js';
import { actorOf } from '../api/request.js';
import type { ServerImages } from '../api/compute/compute.service.js';
import { followImages, type ImageFeed } from './sagas/image.feed.js';
import { createIdentityApi, IDENTITY_SERVICE, type IdentityApi, type IdentityApiOptions } from '../api/identity/identity.api.js';
import { ComputeAgents, type HostConfig } from '../agents/compute/compute.agent.js';
import { protoRoot } from './envelope/envelope.codec.js';
import { Conductor, type ConductorOptions } from './sagas/compute.conductor.js';
import { ComputeFeed } from './sagas/compute.feed.js';
import { hostedDomains } from './domains.js';
import { NETWORK_DOMAIN } from '../domains/network/network.types.js';
import type { Log } from './log/log.js';
import { DeciderWorker } from './runtime/decider-worker.js';
import type { TopologyOptions } from './runtime/topology.js';
import type { Store } from './store/store.js';

export interface CloudOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  /** Token keys live in <stateDir>/token-keys. */
  stateDir: string;
  tls: IdentityApiOptions['tls'];
  host?: string;
  port?: number;
  identity?: Partial<Pick<IdentityApiOptions, 'tokenTtlMs' | 'lockoutAttempts' | 'lockoutDurationMs' | 'maxActiveKeys' | 'now' | 'adminProjectId'>>;
  compute?: Partial<Pick<ComputeApiOptions, 'consoleOutput'>>;
  network?: Partial<Pick<NetworkApiOptions, 'segmentRanges'>>;
  /** The compute conductor's settings, or false when it runs elsewhere (one per cloud). Default: here. */
  conductor?: Omit<Partial<ConductorOptions>, 'log' | 'topology' | 'feed'> | false;
  /** Compute hosts whose agents run in this process (fake-driver hosts for a demo or a test). */
  computeHosts?: HostConfig[];
  /** Where those agents serve their console (ComputeAgentService, "host:port"); absent: nowhere. */
  computeAgentListen?: string;
  /** Storage hosts whose block agents run in this process (the all-in-one cloud's local volumes, tests). */
  blockHosts?: Omit<BlockAgentOptions, 'log' | 'topology' | 'feed' | 'onError'>[];
  /** The ring made at first start (part power, replicas). */
  objectRing?: ObjectApiOptions['ring'];
  /** Object storage devices whose object servers run in this process (the all-in-one cloud's, tests). */
  objectDevices?: ObjectDeviceConfig[];
  /** Their agent's settings (replication and audit intervals, reclaim age). */
  objectAgent?: { replicateEveryMs?: number; auditEveryMs?: number; reclaimAfterMs?: number };
  /** Which instance states usage metering bills besides the running ones (default none; a change needs a rebuild of the usage read model). */
  metering?: EventsApiOptions['metering'];
  onError?: (error: Error) => void;
}

export interface Cloud {
  /** The identity API's parts; its port and server are the shared ones. */
  identity: IdentityApi;
  compute: ComputeApi;
  network: NetworkApi;
  block: BlockApi;
  blockConductor: BlockConductor;
  blockAgents: BlockAgent[];
  object: ObjectApi;
  /** The image service (Glance), its data in object storage. */
  image: ImageApi;
  /** The image domain folded (for compute hosts in this process that boot from the image service). */
  imageFeed: ImageFeed;
  /** The audit trail, subscriptions, metering and replay. */
  events: EventsApi;
  /** The object agent of objectDevices (absent without any). */
  objectAgent?: ObjectAgent;
  server: GrpcServer;
  port: number;
  workers: DeciderWorker[];
  conductor?: Conductor;
  agents?: ComputeAgents;
  close(): Promise<void>;
}

/** The in-process storage hosts' actor on image commands (uploads of volumes). */
const BLOCK_AGENT_ACTOR = { userId: 'strata-block-agent', projectId: '', roles: ['service'] };

export async function startCloud(o: CloudOptions): Promise<Cloud> {
  mkdirSync(o.stateDir, { recursive: true });
  const workers = hostedDomains.map(
    (d) =>
      new DeciderWorker({
        log: o.log,
        domain: d.name,
        aggregates: d.aggregates,
        topology: o.topology,
        onError: o.onError ?? ((e) => console.error(`decider ${d.name}: ${e.message}`)),
      }),
  );
  for (const w of workers) await w.start();
  const { implementation: identityService, ...identity } = await createIdentityApi({
    log: o.log,
    store: o.store,
    topology: o.topology,
    keysDir: join(o.stateDir, 'token-keys'),
    ...o.identity,
  });
  const network = await createNetworkApi({
    log: o.log,
    store: o.store,
    topology: o.topology,
    authenticator: identity.authenticator,
    now: o.identity?.now,
    ...o.network,
  });
  // The compute API asks the image service, which starts after it (it needs object storage).
  let imageApi: ImageApi | undefined;
  const serverImages: ServerImages = {
    async usable(imageId, c) {
      const image = await imageApi?.queries.getImage(imageId);
      if (!image) return undefined;
      const members = await imageApi!.queries.members(imageId);
      const project = c.scope.kind === 'project' ? c.scope.projectId : '';
      if (!imageUsableBy(image, members, project, c.isAdmin)) throw refuse('NOT_FOUND', `Image ${imageId} could not be found.`);
      return { status: image.status, properties: image.properties };
    },
    async createSnapshot(image, c) {
      if (!imageApi) throw refuse('UNAVAILABLE', 'the image service is not running');
      const reply = await imageApi.writer.reply(
        'image',
        image.id,
        { type: 'CreateImage', image: { id: image.id, owner: image.owner, name: image.name, visibility: 'private', diskFormat: 'qcow2', containerFormat: 'bare', properties: image.properties } },
        actorOf(c),
      );
      if (reply.kind === 'rejected' && reply.rejection.code !== 'ALREADY_EXISTS') throw refuse(reply.rejection.code, reply.rejection.message, reply.rejection);
    },
  };
  const compute = await createComputeApi({
    log: o.log,
    store: o.store,
    topology: o.topology,
    authenticator: identity.authenticator,
    now: o.identity?.now,
    // CreateServer and AttachInterface check the networks and ports asked for in the network read models.
    networks: network.queries,
    // Moves of servers with volumes attached are refused: the block read models say which have some.
    volumes: new BlockQueries(o.store),
    images: serverImages,
    ...o.compute,
  });
  const block = await createBlockApi({ log: o.log, store: o.store, topology: o.topology, authenticator: identity.authenticator, servers: compute.queries, images: imageServiceForBlock(() => imageApi), now: o.identity?.now });
  const onError = o.onError ?? ((e: Error) => console.error(`compute: ${e.message}`));
  // One block feed for the block conductor, the in-process storage hosts and compute agents.
  const blockFeed = await followBlock({ log: o.log, topology: o.topology });
  const needFeed = o.conductor !== false || (o.computeHosts?.length ?? 0) > 0;
  const feed = needFeed ? await ComputeFeed.start(o.log, o.topology) : undefined;
  // The conductor makes, binds and lets go of the servers' ports in the network domain hosted here.
  const conductor = o.conductor === false ? undefined : await Conductor.start({ log: o.log, topology: o.topology, feed, onError, network: { domain: NETWORK_DOMAIN }, now: o.identity?.now, ...o.conductor });
  const agents = o.computeHosts?.length
    ? await ComputeAgents.start({ log: o.log, topology: o.topology, feed, hosts: o.computeHosts, onError, listen: o.computeAgentListen, block: { feed: blockFeed }, now: o.identity?.now })
    : undefined;
  const blockConductor = await BlockConductor.start({ log: o.log, topology: o.topology, feed: blockFeed, compute: feed, onError, now: o.identity?.now });
  const blockAgents: BlockAgent[] = [];
  const object = await createObjectApi({ log: o.log, store: o.store, topology: o.topology, authenticator: identity.authenticator, ring: o.objectRing, now: o.identity?.now });
  const objectAgent = o.objectDevices?.length
    ? await ObjectAgent.start({
        devices: o.objectDevices,
        feed: object.feed,
        ...o.objectAgent,
        report: async (id, command) => void (await object.writer.reply('object', id, command, { userId: 'strata-object-agent', projectId: '', roles: ['service'] })),
        onError: (e) => console.error(`object agent: ${e.message}`),
      })
    : undefined;
  if (objectAgent) await registerDevices(object, objectAgent, o.objectDevices!);
  const image = await createImageApi({ log: o.log, store: o.store, topology: o.topology, authenticator: identity.authenticator, proxy: object.proxy, objectWriter: object.writer, now: o.identity?.now });
  imageApi = image;
  const imageFeed = await followImages({ log: o.log, topology: o.topology });
  // The in-process storage hosts make volumes from images of the image service and upload volumes to it.
  const blockImages = { image: (id: string) => imageFeed.view.image(id), store: image.imageStore, commands: async (id: string, command: Record<string, unknown> & { type: string }) => void (await image.writer.send('image', id, command, BLOCK_AGENT_ACTOR)) };
  for (const h of o.blockHosts ?? []) blockAgents.push(await BlockAgent.start({ now: o.identity?.now, ...h, log: o.log, topology: o.topology, feed: blockFeed, onError, images: blockImages }));
  const events = await createEventsApi({ log: o.log, store: o.store, topology: o.topology, authenticator: identity.authenticator, scratchDir: join(o.stateDir, 'replay'), now: o.identity?.now, metering: o.metering });
  const server = await startGrpcServer({
    host: o.host,
    port: o.port ?? 0,
    tls: o.tls,
    root: protoRoot(),
    services: [
      { name: IDENTITY_SERVICE, implementation: identityService },
      { name: COMPUTE_SERVICE, implementation: compute.implementation },
      { name: NETWORK_SERVICE, implementation: network.implementation },
      { name: VOLUME_SERVICE, implementation: block.implementation },
      { name: OBJECT_SERVICE, implementation: object.implementation },
      { name: IMAGE_SERVICE, implementation: image.implementation },
      ...events.services,
    ],
  });
  return {
    identity: { ...identity, port: server.port, server },
    compute,
    network,
    block,
    blockConductor,
    blockAgents,
    object,
    image,
    imageFeed,
    events,
    objectAgent,
    server,
    port: server.port,
    workers,
    conductor,
    agents,
    async close() {
      compute.drain();
      await events.endStreams();
      await agents?.close();
      for (const a of blockAgents) await a.close();
      await objectAgent?.close();
      await blockConductor.close();
      await blockFeed.close();
      await conductor?.close();
      await feed?.close();
      await server.close();
      await compute.close();
      await network.close();
      await block.close();
      await imageFeed.close();
      await events.close();
      await image.close();
      await object.close();
      await identity.close();
      for (const w of workers) await w.stop();
    },
  };
}

/**
 * Puts devices that run in this process into the ring if they are not in it yet (the all-in-one
 * cloud's: one zone each, equal weights), then rebalances: object storage works with no ring to
 * build by hand. Devices already in the ring are left as the operator set them.
 */
async function registerDevices(object: ObjectApi, agent: ObjectAgent, devices: ObjectDeviceConfig[]): Promise<void> {
  const system = { userId: 'strata-object-agent', projectId: '', roles: ['admin'] };
  const builder = object.feed.view.builderDevices();
  let added = 0;
  for (const [i, d] of devices.entries()) {
    const address = agent.devices.find((x) => x.deviceId === d.deviceId)!.address;
    const known = builder.find((b) => b.id === d.deviceId);
    if (known && known.host === address) continue;
    if (known) {
      // A new port after a restart (port 0): the device keeps its partitions (Swift's set_info).
      const reply = await object.writer.send('object_ring', 'default', { type: 'SetRingDeviceAddress', deviceId: d.deviceId, host: address }, system);
      await object.feed.caughtUp(reply.position, reply.events.length);
      continue;
    }
    const reply = await object.writer.send('object_ring', 'default', { type: 'AddRingDevice', device: { id: d.deviceId, region: d.region ?? 1, zone: d.zone ?? i + 1, host: address, device: `d${d.deviceId}`, weight: d.weight ?? 100 } }, system);
    await object.feed.caughtUp(reply.position, reply.events.length);
    added++;
  }
  if (added > 0) {
    const reply = await object.writer.send('object_ring', 'default', { type: 'RebalanceRing' }, system);
    await object.feed.caughtUp(reply.position, reply.events.length);
  }
}
