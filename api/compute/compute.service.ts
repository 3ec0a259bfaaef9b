// ComputeService: every RPC authenticates the caller (api/auth/authenticator.ts), enforces its
// policy rule (api/policy/compute.policy.ts), validates input with the domain's field rules,
// then sends commands (ComputeWriter) or reads the compute read models. Writes return once the
// read model shows them. Servers of another project are NOT_FOUND before any rule is asked, so a
// project cannot even learn that they exist. Which server action is legal when is the instance
// machine's to say: its refusals come back as they are (FAILED_PRECONDITION naming the state).
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { status as grpcStatus, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { validateComputeCommand, validateComputeResource, validateComputeUpdate } from '../../domains/compute/compute.validation.js';
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import { QUOTA_DEFAULTS } from '../../domains/compute/quota.machine.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import type { Actor } from '../../infra/envelope/envelope.js';
import { tracer } from '../../infra/telemetry/telemetry.js';
import type { ComputeQueries, FlavorRecord, Server, ServerInterfaceRecord } from '../../projections/compute/compute.queries.js';
import type { NetworkQueries } from '../../projections/network/network.queries.js';
import { requestedInterface } from '../../domains/compute/instance.interfaces.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse, toServiceError } from '../errors.js';
import { computePolicy, computeRule } from '../policy/compute.policy.js';
import type { Caller, Target } from '../policy/policy.js';
import type { AgentCallError, AgentConsoleClient } from './agent-console.js';
import { aggregateView, hostView, interfaceView, operationView, quotaView, serverGroupView, serverView, timestamp } from './compute.views.js';
import type { ComputeWriter } from './compute.writer.js';
import { createInstanceCommand, createServers, type ServerRequest } from './create-server.js';
import { attachNetwork, interfacePortId, serverNetworks } from './server-networks.js';
import { generateEd25519, sshFingerprint, x509Fingerprint } from './keypair.js';
import type { ServerWatch } from './server-watch.js';
import { machineAction, SERVER_ACTIONS, type ServerAction } from './server.actions.js';
import { actorOf, callerProject, derivedId, pageSize, requestIdOf, required, updateMaskOf, type Req, type Res } from '../request.js';


export interface ComputeServiceOptions {
  writer: ComputeWriter;
  queries: ComputeQueries;
  authenticator: Authenticator;
  watch: ServerWatch;
  /** The API's clock; tests move it. */
  now?: () => number;
  /**
   * A server's console (its last `length` lines; 0: all), instead of asking its host's agent.
   * Undefined: the console the control plane can tell (its instance actions, as a boot log would
   * show them).
   */
  consoleOutput?: (server: Server, length: number) => Promise<string | undefined>;
  /**
   * Without consoleOutput: the client that asks the agent at the endpoint the server's host
   * registered (ComputeAgentService). A host with no endpoint, or none of these: the control
   * plane's record, as above; an agent that cannot answer: that record, saying why.
   */
  agents?: AgentConsoleClient;
  /** A host whose last heartbeat is older is down (Nova's service_down_time; the conductor's too). */
  serviceDownMs?: number;
  /** The network read models, to check the networks and ports servers ask for; absent: servers get no networks. */
  networks?: NetworkQueries;
  /** The servers' volume attachments (block read models); absent: servers have no volumes. */
  volumes?: { attachmentsOfServer(serverId: string): Promise<{ volumeId: string }[]> };
  /** The image service; absent (or an image it does not know): a host's own image directory decides. */
  images?: ServerImages;
}

/** What the compute API asks the image service (Glance, as Nova does). */
export interface ServerImages {
  /** The image as the caller may see it: undefined when the image service does not have it; NOT_FOUND when the caller may not use it. */
  usable(imageId: string, c: Caller): Promise<{ status: string; properties: Record<string, string> } | undefined>;
  /** Creates the queued image a server's snapshot will be uploaded into (a retry with the same id is a no-op). */
  createSnapshot(image: { id: string; name: string; owner: string; properties: Record<string, string> }, c: Caller): Promise<void>;
}

/** An image id from a request id: a uuid in form, as the image service's ids are. */
const snapshotImageId = (serverId: string, requestId: string) => {
  const h = derivedId('image', serverId, requestId);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};

/**
 * Actions that move a guest to another host or take it off its host: a server with volumes
 * attached is refused them until the volumes follow a move (its guest would come up without them).
 */
const MOVES_VOLUMES_CANNOT_FOLLOW = new Set(['ResizeServer', 'MigrateServer', 'LiveMigrateServer', 'EvacuateServer', 'ShelveServer', 'ShelveOffloadServer']);

const DEFAULT_WAIT_MS = 30_000;
const MAX_WAIT_MS = 600_000;
/** Servers one CreateServer may ask for (Nova has no fixed cap; the quota is the real limit). */
const MAX_COUNT = 1000;

const flavorOut = (f: FlavorRecord): Res => {
  const { access: _access, ...flavor } = f;
  return flavor;
};

const flavorRef = (f: FlavorRecord): FlavorRef => ({
  id: f.id,
  name: f.name,
  vcpus: f.vcpus,
  ramMb: f.ramMb,
  diskGb: f.diskGb,
  ephemeralGb: f.ephemeralGb,
  swapMb: f.swapMb,
  extraSpecs: f.extraSpecs,
});

/** Milliseconds of a google.protobuf.Duration (absent: undefined). */
const durationMs = (d: { seconds?: number; nanos?: number } | undefined | null) =>
  d && (d.seconds || d.nanos) ? Number(d.seconds ?? 0) * 1000 + Math.floor(Number(d.nanos ?? 0) / 1e6) : undefined;

export function createComputeService(o: ComputeServiceOptions): UntypedServiceImplementation {
  const { writer, queries, authenticator, watch } = o;
  const now = o.now ?? Date.now;

  // ---- the RPC wrappers --------------------------------------------------------------------

  type Enforce = (target: Target) => void;
  type Handler = (req: Req, c: Caller, enforce: Enforce) => Promise<Res>;
  const impl: UntypedServiceImplementation = {};

  /** Runs a handler in an RPC span, turning what it throws into a gRPC status. */
  function traced(name: string, run: (span: ReturnType<ReturnType<typeof tracer>['startSpan']>) => Promise<void>) {
    const span = tracer().startSpan(`strata.compute.v1.ComputeService/${name}`, { kind: SpanKind.SERVER, attributes: { 'rpc.method': name } });
    return context.with(trace.setSpan(context.active(), span), async () => {
      try {
        await run(span);
      } finally {
        span.end();
      }
    });
  }

  const fail = (name: string, span: { setStatus: (s: { code: SpanStatusCode; message?: string }) => void }, e: unknown) => {
    const err = toServiceError(e);
    if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError)) console.error(`compute ${name}:`, e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
    return err;
  };

  /**
   * A unary RPC. `target` gives what the policy rule looks at before the handler runs; without
   * it, the handler calls enforce() itself once it knows the target (servers: after the
   * tenancy check).
   */
  function rpc(name: string, handler: Handler, target?: (req: Req, c: Caller) => Target) {
    const rule = computeRule(name);
    if (!computePolicy.has(rule)) throw new Error(`RPC ${name} has no policy rule ${rule}`);
    impl[name] = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) =>
      void traced(name, async (span) => {
        try {
          const c = authenticator.authenticate(call.metadata);
          span.setAttribute('strata.user_id', c.userId);
          const enforce: Enforce = (t) => computePolicy.enforce(rule, c, t);
          if (target) enforce(target(call.request ?? {}, c));
          callback(null, await handler(call.request ?? {}, c, enforce));
        } catch (e) {
          callback(fail(name, span, e) as never, null);
        }
      });
  }

  // ---- lookups -----------------------------------------------------------------------------

  const notFound = (what: string, field?: string) => new ApiError({ code: 'NOT_FOUND', message: what, ...(field ? { field } : {}) });

  /** A server the caller may know of: its project's, or any for an admin; NOT_FOUND otherwise. */
  async function visibleServer(id: string, c: Caller, options: { includeDeleted?: boolean } = {}): Promise<Server> {
    const s = await queries.getServer(id, options);
    if (!s || (!c.isAdmin && s.projectId !== callerProject(c))) throw notFound(`Instance ${id} could not be found.`, 'id');
    return s;
  }

  /** A flavor the caller's project may use (admins: any). */
  async function usableFlavor(id: string, c: Caller, field: string): Promise<FlavorRecord> {
    const f = await queries.getFlavor(id, c.isAdmin ? {} : { projectId: callerProject(c) });
    if (!f) throw notFound(`${field}: Flavor ${id} could not be found.`, field);
    return f;
  }

  async function quotaLimit(projectId: string, name: keyof typeof QUOTA_DEFAULTS): Promise<number> {
    return projectId ? (await queries.getQuota(projectId)).limits[name] : QUOTA_DEFAULTS[name];
  }

  const exhausted = (quota: string, message: string) => new ApiError({ code: 'RESOURCE_EXHAUSTED', field: quota, message: `Quota exceeded for ${quota}: ${message}` });

  /** The caller's project, for what must live in one. */
  function mustHaveProject(c: Caller): string {
    const p = callerProject(c);
    if (!p) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project');
    return p;
  }

  const nameTaken = async (table: string, name: string, exceptId = '') =>
    (await queries.store.query(`SELECT id FROM ${table} WHERE name = $1 AND id <> $2 LIMIT 1`, [name, exceptId])).length > 0;

  const send = (aggregateType: string, id: string, command: Req & { type: string }, c: Caller, commandId?: string, correlationId?: string) =>
    writer.send(aggregateType, id, command, actorOf(c), { commandId, correlationId });

  // ---- flavors -----------------------------------------------------------------------------

  const flavorRow = async (id: string) => {
    const f = await queries.getFlavor(id);
    if (!f) throw notFound(`Flavor ${id} could not be found.`, 'id');
    return f;
  };

  rpc(
    'CreateFlavor',
    async (req, c) => {
      const input = (req.flavor ?? {}) as Req;
      const requestId = requestIdOf(req);
      const id = String(input.id || derivedId('flavor', '', requestId));
      const flavor = {
        id,
        name: input.name ?? '',
        vcpus: input.vcpus ?? 0,
        ramMb: input.ramMb ?? 0,
        diskGb: input.diskGb ?? 0,
        ephemeralGb: input.ephemeralGb ?? 0,
        swapMb: input.swapMb ?? 0,
        extraSpecs: input.extraSpecs ?? {},
        isPublic: req.isPublic ?? true,
        description: input.description ?? '',
      };
      validateComputeResource('flavor', flavor);
      const existing = await queries.getFlavor(id);
      const retried = existing && existing.name === flavor.name && req.requestId;
      if (!retried && (await nameTaken('compute_flavors', flavor.name, id))) throw refuse('ALREADY_EXISTS', `Flavor with name ${flavor.name} already exists.`);
      try {
        await send('flavor', id, { type: 'CreateFlavor', flavor }, c, `compute/flavor/${requestId}`);
      } catch (e) {
        if (e instanceof ApiError && e.rejection.code === 'ALREADY_EXISTS') {
          // A deleted flavor's id stays taken: its lifecycle ended, and the log remembers it.
          const why = (await queries.getFlavor(id)) ? 'already exists' : 'was used by a deleted flavor; choose another id';
          throw refuse('ALREADY_EXISTS', `Flavor with ID ${id} ${why}.`, { field: 'flavor.id' });
        }
        throw e;
      }
      return { flavor: flavorOut(await flavorRow(id)) };
    },
    () => ({}),
  );

  rpc('GetFlavor', async (req, c) => ({ flavor: flavorOut(await usableFlavor(required('id', req.id), c, 'id')) }), () => ({}));

  rpc(
    'ListFlavors',
    async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listFlavors({
        ...(c.isAdmin ? {} : { projectId: callerProject(c) }),
        ...(req.isPublic !== undefined && req.isPublic !== null ? { isPublic: Boolean(req.isPublic) } : {}),
        limit: size + 1,
        marker: String(req.pageToken ?? ''),
      });
      const page = rows.slice(0, size);
      return { flavors: page.map(flavorOut), nextPageToken: rows.length > size ? page[page.length - 1].id : '' };
    },
    () => ({}),
  );

  rpc(
    'UpdateFlavor',
    async (req, c) => {
      const input = (req.flavor ?? {}) as Req;
      const id = required('flavor.id', input.id);
      const before = flavorOut(await flavorRow(id));
      const mask = updateMaskOf(req);
      const patch = { ...before, ...Object.fromEntries(mask.map((m) => [m, input[m]])), id };
      validateComputeUpdate('flavor', patch, mask);
      await send('flavor', id, { type: 'UpdateFlavor', flavor: patch, updateMask: mask }, c);
      return { flavor: flavorOut(await flavorRow(id)) };
    },
    () => ({}),
  );

  rpc(
    'DeleteFlavor',
    async (req, c) => {
      const id = required('id', req.id);
      await flavorRow(id);
      await send('flavor', id, { type: 'DeleteFlavor' }, c);
      return {};
    },
    () => ({}),
  );

  async function privateFlavor(id: string): Promise<FlavorRecord> {
    const f = await queries.getFlavor(id);
    if (!f) throw notFound(`Flavor ${id} could not be found.`, 'flavor_id');
    if (f.isPublic) throw refuse('FAILED_PRECONDITION', `flavor ${id} is public: access lists are for private flavors`, { state: 'public' });
    return f;
  }

  for (const [name, type] of [
    ['AddFlavorAccess', 'AddFlavorAccess'],
    ['RemoveFlavorAccess', 'RemoveFlavorAccess'],
  ] as const) {
    rpc(
      name,
      async (req, c) => {
        const id = required('flavor_id', req.flavorId);
        await privateFlavor(id);
        await send('flavor', id, { type, projectId: required('project_id', req.projectId) }, c);
        return { projectIds: (await flavorRow(id)).access };
      },
      () => ({}),
    );
  }

  rpc('ListFlavorAccess', async (req) => ({ projectIds: (await privateFlavor(required('flavor_id', req.flavorId))).access }), () => ({}));

  // ---- key pairs ---------------------------------------------------------------------------

  const keypairUser = (req: Req, c: Caller) => String(req.userId || c.userId);

  async function keypairByName(userId: string, name: string) {
    const k = await queries.getKeypairByName(userId, name);
    if (!k) throw notFound(`Keypair ${name} not found for user ${userId}`, 'name');
    return k;
  }
  const keypairOut = ({ createdAtMs: _c, ...k }: Awaited<ReturnType<typeof keypairByName>>) => k;

  rpc(
    'CreateKeypair',
    async (req, c) => {
      const userId = keypairUser(req, c);
      const requestId = requestIdOf(req);
      const id = derivedId('keypair', userId, requestId);
      const type = String(req.type || 'ssh');
      const name = String(req.name ?? '');
      let publicKey = String(req.publicKey ?? '');
      let privateKey = '';
      if (!publicKey) {
        if (type !== 'ssh') throw invalid('public_key', 'is required for x509 key pairs (only ssh key pairs are generated)');
        ({ publicKey, privateKey } = generateEd25519(name.replace(/\s+/g, '-')));
      }
      const keypair = { id, name, userId, publicKey, type, fingerprint: '' };
      validateComputeResource('keypair', keypair);
      keypair.fingerprint = type === 'x509' ? x509Fingerprint(publicKey) : sshFingerprint(publicKey);
      const existing = await queries.getKeypairByName(userId, name);
      if (existing && existing.id !== id) throw refuse('ALREADY_EXISTS', `Key pair '${name}' already exists.`, { field: 'name' });
      if (!existing) {
        const limit = await quotaLimit(callerProject(c), 'key_pairs');
        const used = (await queries.listKeypairs(userId)).length;
        if (limit >= 0 && used + 1 > limit) throw exhausted('key_pairs', `Requested 1, but already used ${used} of ${limit} key_pairs`);
      }
      await send('keypair', id, { type: 'CreateKeypair', keypair }, c, `compute/keypair/${userId}/${requestId}`);
      const stored = await keypairByName(userId, name);
      // A retried request meets the key pair the first call made: its private key went to that call only.
      return { keypair: keypairOut(stored), privateKey: stored.publicKey === publicKey ? privateKey : '' };
    },
    (req, c) => ({ userId: keypairUser(req, c) }),
  );

  rpc('GetKeypair', async (req, c) => ({ keypair: keypairOut(await keypairByName(keypairUser(req, c), required('name', req.name))) }), (req, c) => ({
    userId: keypairUser(req, c),
  }));

  rpc('ListKeypairs', async (req, c) => ({ keypairs: (await queries.listKeypairs(keypairUser(req, c))).map(keypairOut) }), (req, c) => ({
    userId: keypairUser(req, c),
  }));

  rpc(
    'DeleteKeypair',
    async (req, c) => {
      const k = await keypairByName(keypairUser(req, c), required('name', req.name));
      await send('keypair', k.id, { type: 'DeleteKeypair' }, c);
      return {};
    },
    (req, c) => ({ userId: keypairUser(req, c) }),
  );

  // ---- quotas ------------------------------------------------------------------------------

  const quotaProject = (req: Req, c: Caller) => String(req.projectId || callerProject(c));

  async function quotaOut(projectId: string, c: Caller): Promise<Res> {
    const q = await queries.getQuota(projectId);
    const groups = (await queries.listServerGroups(projectId)).length;
    const keyPairs = (await queries.listKeypairs(c.userId)).length;
    return { quota: quotaView(q, { server_groups: groups, key_pairs: keyPairs }) };
  }

  rpc(
    'GetQuota',
    async (req, c) => quotaOut(required('project_id', quotaProject(req, c)), c),
    (req, c) => ({ projectId: quotaProject(req, c) }),
  );

  rpc(
    'SetQuota',
    async (req, c) => {
      const projectId = required('project_id', req.projectId);
      const limits = Object.fromEntries(Object.entries((req.limits ?? {}) as Record<string, unknown>).map(([k, v]) => [k, Number(v)]));
      const command = { type: 'SetQuotaLimits', limits };
      validateComputeCommand(command);
      await send('quota', projectId, command, c);
      return quotaOut(projectId, c);
    },
    () => ({}),
  );

  // ---- server groups -----------------------------------------------------------------------

  async function visibleGroup(id: string, c: Caller, field = 'id') {
    const g = await queries.getServerGroup(id);
    if (!g || (!c.isAdmin && g.projectId !== callerProject(c))) throw notFound(`Server group ${id} could not be found.`, field);
    return g;
  }

  rpc(
    'CreateServerGroup',
    async (req, c) => {
      const projectId = mustHaveProject(c);
      const input = (req.serverGroup ?? {}) as Req;
      const requestId = requestIdOf(req);
      const id = derivedId('server_group', projectId, requestId);
      const group = { id, name: input.name ?? '', projectId, userId: c.userId, policy: input.policy ?? '', maxServerPerHost: input.maxServerPerHost ?? 0 };
      validateComputeResource('serverGroup', group);
      if (!(await queries.getServerGroup(id))) {
        const limit = await quotaLimit(projectId, 'server_groups');
        const used = (await queries.listServerGroups(projectId)).length;
        if (limit >= 0 && used + 1 > limit) throw exhausted('server_groups', `Requested 1, but already used ${used} of ${limit} server_groups`);
      }
      await send('server_group', id, { type: 'CreateServerGroup', serverGroup: group }, c, `compute/server_group/${projectId}/${requestId}`);
      return { serverGroup: serverGroupView(await visibleGroup(id, c)) };
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  rpc('GetServerGroup', async (req, c, enforce) => {
    const g = await visibleGroup(required('id', req.id), c);
    enforce({ projectId: g.projectId });
    return { serverGroup: serverGroupView(g) };
  });

  rpc(
    'ListServerGroups',
    async (req, c) => {
      const all = c.isAdmin && req.allProjects;
      return { serverGroups: (await queries.listServerGroups(all ? undefined : mustHaveProject(c))).map(serverGroupView) };
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  rpc('DeleteServerGroup', async (req, c, enforce) => {
    const g = await visibleGroup(required('id', req.id), c);
    enforce({ projectId: g.projectId });
    await send('server_group', g.id, { type: 'DeleteServerGroup' }, c);
    return {};
  });

  // ---- host aggregates ---------------------------------------------------------------------

  async function aggregateRow(id: string, field = 'id') {
    const a = await queries.getAggregate(id);
    if (!a) throw notFound(`Aggregate ${id} could not be found.`, field);
    return a;
  }
  const aggregateFields = (a: { id: string; name: string; availabilityZone: string; metadata: Record<string, string> }) => ({
    id: a.id,
    name: a.name,
    availabilityZone: a.availabilityZone,
    metadata: a.metadata,
  });

  rpc(
    'CreateAggregate',
    async (req, c) => {
      const input = (req.aggregate ?? {}) as Req;
      const requestId = requestIdOf(req);
      const id = derivedId('aggregate', '', requestId);
      const aggregate = { id, name: input.name ?? '', availabilityZone: input.availabilityZone ?? '', metadata: input.metadata ?? {} };
      validateComputeResource('aggregate', aggregate);
      if (await nameTaken('compute_aggregates', aggregate.name, id)) throw refuse('ALREADY_EXISTS', `Aggregate ${aggregate.name} already exists.`, { field: 'aggregate.name' });
      await send('aggregate', id, { type: 'CreateAggregate', aggregate }, c, `compute/aggregate/${requestId}`);
      return { aggregate: aggregateView(await aggregateRow(id)) };
    },
    () => ({}),
  );

  rpc('GetAggregate', async (req) => ({ aggregate: aggregateView(await aggregateRow(required('id', req.id))) }), () => ({}));

  rpc('ListAggregates', async (req) => ({ aggregates: (await queries.listAggregates(req.host ? { host: String(req.host) } : {})).map(aggregateView) }), () => ({}));

  /** Nova: a host may not sit in two availability zones at once. */
  async function checkZone(host: string, zone: string, exceptAggregate: string) {
    if (!zone) return;
    for (const other of await queries.listAggregates({ host })) {
      if (other.id !== exceptAggregate && other.availabilityZone && other.availabilityZone !== zone) {
        throw refuse('FAILED_PRECONDITION', `host ${host} is in availability zone ${other.availabilityZone} (aggregate ${other.name}); it cannot also be in ${zone}`, {
          state: other.availabilityZone,
        });
      }
    }
  }

  rpc(
    'UpdateAggregate',
    async (req, c) => {
      const input = (req.aggregate ?? {}) as Req;
      const id = required('aggregate.id', input.id);
      const before = aggregateFields(await aggregateRow(id, 'aggregate.id'));
      const mask = updateMaskOf(req);
      const patch = { ...before, ...Object.fromEntries(mask.map((m) => [m, input[m]])), id };
      validateComputeUpdate('aggregate', patch, mask);
      if (mask.includes('name') && (await nameTaken('compute_aggregates', String(patch.name), id))) {
        throw refuse('ALREADY_EXISTS', `Aggregate ${patch.name} already exists.`, { field: 'aggregate.name' });
      }
      if (mask.includes('availabilityZone')) for (const host of (await aggregateRow(id)).hosts) await checkZone(host, String(patch.availabilityZone), id);
      await send('aggregate', id, { type: 'UpdateAggregate', aggregate: patch, updateMask: mask }, c);
      return { aggregate: aggregateView(await aggregateRow(id)) };
    },
    () => ({}),
  );

  rpc(
    'DeleteAggregate',
    async (req, c) => {
      const a = await aggregateRow(required('id', req.id));
      if (a.hosts.length > 0) {
        throw refuse('FAILED_PRECONDITION', `aggregate ${a.id} still has hosts (${a.hosts.join(', ')}): remove them first`, { state: 'has-hosts' });
      }
      await send('aggregate', a.id, { type: 'DeleteAggregate' }, c);
      return {};
    },
    () => ({}),
  );

  rpc(
    'AddAggregateHost',
    async (req, c) => {
      const a = await aggregateRow(required('aggregate_id', req.aggregateId), 'aggregate_id');
      const host = required('host', req.host);
      if (!(await queries.getHost(host))) throw notFound(`Compute host ${host} could not be found.`, 'host');
      await checkZone(host, a.availabilityZone, a.id);
      await send('aggregate', a.id, { type: 'AddAggregateHost', host }, c);
      return { aggregate: aggregateView(await aggregateRow(a.id)) };
    },
    () => ({}),
  );

  rpc(
    'RemoveAggregateHost',
    async (req, c) => {
      const a = await aggregateRow(required('aggregate_id', req.aggregateId), 'aggregate_id');
      await send('aggregate', a.id, { type: 'RemoveAggregateHost', host: required('host', req.host) }, c);
      return { aggregate: aggregateView(await aggregateRow(a.id)) };
    },
    () => ({}),
  );

  rpc(
    'SetAggregateMetadata',
    async (req, c) => {
      const before = aggregateFields(await aggregateRow(required('aggregate_id', req.aggregateId), 'aggregate_id'));
      const metadata: Record<string, string> = { ...before.metadata, ...((req.metadata ?? {}) as Record<string, string>) };
      for (const k of (req.removeKeys ?? []) as string[]) delete metadata[k];
      const patch = { ...before, metadata };
      validateComputeUpdate('aggregate', patch, ['metadata']);
      await send('aggregate', before.id, { type: 'UpdateAggregate', aggregate: patch, updateMask: ['metadata'] }, c);
      return { aggregate: aggregateView(await aggregateRow(before.id)) };
    },
    () => ({}),
  );

  // ---- hosts -------------------------------------------------------------------------------

  async function hostOut(id: string): Promise<Res> {
    const h = await queries.getHost(id);
    if (!h) throw notFound(`Compute host ${id} could not be found.`, 'id');
    return hostView(h, (await queries.listAggregates({ host: id })).map((a) => a.name), now());
  }

  rpc(
    'ListHosts',
    async (req) => {
      const hosts = await queries.listHosts({
        ...(req.availabilityZone ? { availabilityZone: String(req.availabilityZone) } : {}),
        ...(req.enabled !== undefined && req.enabled !== null ? { enabled: Boolean(req.enabled) } : {}),
      });
      const aggregates = await queries.listAggregates();
      return { hosts: hosts.map((h) => hostView(h, aggregates.filter((a) => a.hosts.includes(h.id)).map((a) => a.name), now())) };
    },
    () => ({}),
  );

  rpc('GetHost', async (req) => ({ host: await hostOut(required('id', req.id)) }), () => ({}));

  rpc(
    'DisableHost',
    async (req, c) => {
      const id = required('id', req.id);
      await hostOut(id);
      const command = { type: 'DisableHost', reason: String(req.reason ?? '') };
      validateComputeCommand(command);
      await send('host', id, command, c);
      return { host: await hostOut(id) };
    },
    () => ({}),
  );

  rpc(
    'EnableHost',
    async (req, c) => {
      const id = required('id', req.id);
      await hostOut(id);
      await send('host', id, { type: 'EnableHost' }, c);
      return { host: await hostOut(id) };
    },
    () => ({}),
  );

  // ---- servers -----------------------------------------------------------------------------

  const view = (s: Server, c: Caller, interfaces?: ServerInterfaceRecord[]) => serverView(s, c.isAdmin, interfaces);
  /** Servers as the API shows them, with their interfaces. */
  const views = async (servers: Server[], c: Caller) => {
    const interfaces = await queries.interfacesOf(servers.map((s) => s.id));
    return servers.map((s) => view(s, c, interfaces.get(s.id)));
  };

  /** The operation a request started on a server; one that left no row finished within its decision. */
  async function operationOf(serverId: string, requestId: string, action: string): Promise<Res> {
    const a = await queries.getInstanceAction(serverId, requestId);
    if (a) return operationView(a);
    return { name: requestId, serverId, action, done: true, result: 'success', error: '', userId: '', startedAt: timestamp(now()), finishedAt: timestamp(now()) };
  }

  rpc(
    'CreateServer',
    async (req, c) => {
      const projectId = mustHaveProject(c);
      const requestId = requestIdOf(req);
      const minCount = Number(req.minCount || 1);
      const maxCount = Number(req.maxCount || minCount);
      if (!Number.isInteger(minCount) || minCount < 1) throw invalid('min_count', `must be at least 1, got ${req.minCount}`);
      if (!Number.isInteger(maxCount) || maxCount < minCount) throw invalid('max_count', `must be at least min_count (${minCount}), got ${req.maxCount}`);
      if (maxCount > MAX_COUNT) throw invalid('max_count', `must be at most ${MAX_COUNT}, got ${maxCount}`);
      const flavor = flavorRef(await usableFlavor(required('flavor_id', req.flavorId), c, 'flavor_id'));
      const keyName = String(req.keyName ?? '');
      if (keyName && !(await queries.getKeypairByName(c.userId, keyName))) throw notFound(`key_name: Keypair ${keyName} not found for user ${c.userId}`, 'key_name');
      const serverGroupId = String(req.serverGroupId ?? '');
      if (serverGroupId) await visibleGroup(serverGroupId, c, 'server_group_id');
      const availabilityZone = String(req.availabilityZone ?? '');
      if (availabilityZone) {
        const zones = new Set([...(await queries.listHosts()).map((h) => h.availabilityZone), ...(await queries.listAggregates()).map((a) => a.availabilityZone)]);
        if (!zones.has(availabilityZone)) throw invalid('availability_zone', `The requested availability zone ${availabilityZone} is not available`);
      }
      const metadata = (req.metadata ?? {}) as Record<string, string>;
      const quota = await queries.getQuota(projectId);
      const items = Object.keys(metadata).length;
      if (quota.limits.metadata_items >= 0 && items > quota.limits.metadata_items) {
        throw exhausted('metadata_items', `Requested ${items}, but the limit is ${quota.limits.metadata_items} metadata_items per server`);
      }
      if (req.imageId && o.images) {
        // Nova asks Glance: an image it has must be active and usable by the caller.
        const image = await o.images.usable(String(req.imageId), c);
        if (image && image.status !== 'active') throw refuse('FAILED_PRECONDITION', `Image ${req.imageId} is not active (it is ${image.status}).`, { state: image.status });
      }
      const networks = await serverNetworks(o.networks, { projectId, isAdmin: c.isAdmin }, req, maxCount);
      const plan: ServerRequest = {
        networks,
        requestId,
        projectId,
        userId: c.userId,
        actor: actorOf(c),
        name: String(req.name ?? ''),
        flavor,
        imageId: String(req.imageId ?? ''),
        keyName,
        availabilityZone,
        serverGroupId,
        metadata,
        minCount,
        maxCount,
        maxGroupMembers: quota.limits.server_group_members,
      };
      // Every field rule before anything is reserved (the longest name a multi-create makes).
      validateComputeCommand(createInstanceCommand(plan, maxCount - 1, maxCount));
      const ids = await createServers(writer, plan);
      const made: Server[] = [];
      const operations: Res[] = [];
      for (const id of ids) {
        const s = await queries.getServer(id, { includeDeleted: true });
        if (s) made.push(s);
        operations.push(await operationOf(id, requestId, 'create'));
      }
      return { servers: await views(made, c), operations };
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  rpc('GetServer', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    return { server: (await views([s], c))[0] };
  });

  rpc(
    'ListServers',
    async (req, c) => {
      const size = pageSize(req);
      // Admins: a given project, all (asked, or when their token names no project), else their own.
      const own = callerProject(c);
      const scope = c.isAdmin
        ? req.allProjects || (!req.projectId && !own)
          ? { allProjects: true }
          : { projectId: String(req.projectId || own) }
        : { projectId: mustHaveProject(c) };
      try {
        const page = await queries.listServers({
          ...scope,
          ...(req.status ? { status: String(req.status) } : {}),
          ...(req.name ? { name: String(req.name) } : {}),
          // Nova ignores admin-only filters from others.
          ...(c.isAdmin && req.host ? { host: String(req.host) } : {}),
          limit: size,
          marker: String(req.pageToken ?? ''),
        });
        return { servers: await views(page.servers, c), nextPageToken: page.nextMarker };
      } catch (e) {
        if (e instanceof InvalidArgumentError && e.field === 'marker') throw invalid('page_token', `no server ${req.pageToken} to continue after`);
        throw e;
      }
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  /** The instance command an action RPC sends, with what it needs looked up. */
  async function actionCommand(a: ServerAction, req: Req, s: Server, c: Caller, requestId: string): Promise<Req & { type: string }> {
    switch (a.rpc) {
      case 'DeleteServer':
        return { type: 'DeleteInstance', soft: Boolean(req.soft) };
      case 'RebootServer':
        return { type: req.hard ? 'HardRebootInstance' : 'RebootInstance' };
      case 'RebuildServer':
        return { type: a.command, imageId: required('image_id', req.imageId) };
      case 'ResizeServer':
        return { type: a.command, flavor: flavorRef(await usableFlavor(required('flavor_id', req.flavorId), c, 'flavor_id')) };
      case 'LockServer':
        return { type: a.command, reason: String(req.reason ?? '') };
      case 'ShelveServer':
        return { type: a.command, ...(req.offload !== undefined && req.offload !== null ? { offload: Boolean(req.offload) } : {}) };
      case 'CreateServerImage':
      case 'CreateServerBackup':
        return { type: a.command, name: required('name', req.name), imageId: snapshotImageId(s.id, requestId) };
      case 'SetServerMetadata':
        return { type: a.command, items: req.metadata ?? {}, maxItems: (await queries.getQuota(s.projectId)).limits.metadata_items };
      case 'DeleteServerMetadata':
        return { type: a.command, key: required('key', req.key) };
      case 'ResetServerState':
        return { type: a.command, vmState: String(req.vmState ?? '') };
      case 'EvacuateServer': {
        // Nova evacuates only from a host whose compute service is down.
        const host = s.host ? await queries.getHost(s.host) : undefined;
        if (host && (o.now ?? Date.now)() - host.lastHeartbeatMs <= (o.serviceDownMs ?? 60_000)) {
          throw refuse('FAILED_PRECONDITION', `Compute service of ${s.host} is still in use.`, { state: 'up' });
        }
        return { type: a.command };
      }
      default:
        return { type: a.command };
    }
  }

  for (const a of SERVER_ACTIONS) {
    rpc(a.rpc, async (req, c, enforce) => {
      const s = await visibleServer(required('id', req.id), c);
      enforce({ projectId: s.projectId });
      const requestId = requestIdOf(req);
      if (MOVES_VOLUMES_CANNOT_FOLLOW.has(a.rpc) && o.volumes) {
        const attached = await o.volumes.attachmentsOfServer(s.id);
        if (attached.length > 0) {
          throw refuse('FAILED_PRECONDITION', `Cannot '${a.verb}' server ${s.id} while volumes are attached to it (${attached.map((x) => x.volumeId).join(', ')}): detach them first; moves of servers with volumes are not supported yet`, { state: 'volumes attached' });
        }
      }
      const command = await actionCommand(a, req, s, c, requestId);
      validateComputeCommand(command);
      if ((a.rpc === 'CreateServerImage' || a.rpc === 'CreateServerBackup') && o.images) {
        // As Nova: the image exists (queued) before the host is asked to snapshot into it. It boots
        // as the server's image did: a machine image's kernel and ramdisk come along.
        const base = s.imageId ? await o.images.usable(s.imageId, c).catch(() => undefined) : undefined;
        const inherited = Object.fromEntries(Object.entries(base?.properties ?? {}).filter(([k]) => ['kernel_id', 'ramdisk_id', 'os_command_line', 'hw_disk_bus'].includes(k)));
        await o.images.createSnapshot(
          { id: String(command.imageId), name: String(command.name), owner: s.projectId, properties: { ...inherited, image_type: a.rpc === 'CreateServerImage' ? 'snapshot' : 'backup', instance_uuid: s.id, base_image_ref: s.imageId ?? '' } },
          c,
        );
      }
      // Keyed by the user and the server as well: request ids are the caller's to choose.
      await send('instance', s.id, command, c, `compute/${c.userId}/${s.id}/${requestId}/${command.type}`, requestId);
      const after = (await queries.getServer(s.id, { includeDeleted: true })) ?? s;
      return {
        operation: await operationOf(s.id, requestId, machineAction(command.type).name),
        server: (await views([after], c))[0],
        ...(command.imageId && a.rpc !== 'RebuildServer' ? { imageId: command.imageId } : {}),
      };
    });
  }

  // ---- network interfaces (os-interface) -----------------------------------------------------

  rpc('AttachInterface', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    const requestId = requestIdOf(req);
    const n = await attachNetwork(o.networks, { projectId: s.projectId, isAdmin: c.isAdmin }, req);
    const iface = requestedInterface({
      portId: n.portId || interfacePortId(s.id, requestId, 0), networkId: n.networkId, requestedIp: n.fixedIp, preserveOnDelete: Boolean(n.portId), requestId,
    });
    const command = { type: 'AttachInstanceInterface', interface: iface };
    validateComputeCommand(command);
    await send('instance', s.id, command, c, `compute/${c.userId}/${s.id}/${requestId}/AttachInstanceInterface`, requestId);
    const after = (await queries.getServer(s.id, { includeDeleted: true })) ?? s;
    const interfaces = (await queries.interfacesOf([s.id])).get(s.id) ?? [];
    const mine = interfaces.find((i) => i.portId === iface.portId);
    return {
      operation: await operationOf(s.id, requestId, 'attach_interface'),
      server: view(after, c, interfaces),
      interface: interfaceView(mine ?? { ...iface, preserveOnDelete: iface.preserveOnDelete }),
    };
  });

  rpc('DetachInterface', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    const requestId = requestIdOf(req);
    const command = { type: 'DetachInstanceInterface', portId: required('port_id', req.portId), requestId };
    validateComputeCommand(command);
    await send('instance', s.id, command, c, `compute/${c.userId}/${s.id}/${requestId}/DetachInstanceInterface`, requestId);
    const after = (await queries.getServer(s.id, { includeDeleted: true })) ?? s;
    return { operation: await operationOf(s.id, requestId, 'detach_interface'), server: (await views([after], c))[0] };
  });

  rpc('ListServerInterfaces', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    return { interfaces: ((await queries.interfacesOf([s.id])).get(s.id) ?? []).map(interfaceView) };
  });

  rpc('GetServerConsoleOutput', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    if (!s.host) throw refuse('FAILED_PRECONDITION', `Instance ${s.id} is not ready: it has no host (vm_state ${s.vmState})`, { state: s.vmState });
    const length = Number(req.length ?? 0);
    if (!Number.isInteger(length) || length < 0) throw invalid('length', `must be 0 or more, got ${req.length}`);
    let note = '';
    let text = o.consoleOutput ? ((await o.consoleOutput(s, length)) ?? undefined) : undefined;
    if (!o.consoleOutput && o.agents) {
      const got = await agentConsole(o.agents, s, length);
      text = got.output;
      note = got.note ?? '';
    }
    if (text === undefined) {
      const actions = (await queries.listInstanceActions(s.id)).reverse();
      text = actions
        .flatMap((x) => [
          `[${new Date(x.startedAtMs).toISOString()}] strata: ${x.action} started (request ${x.requestId})`,
          ...(x.finishedAtMs !== null ? [`[${new Date(x.finishedAtMs).toISOString()}] strata: ${x.action} ${x.result}${x.message ? `: ${x.message}` : ''}`] : []),
        ])
        .join('\n');
      text = `${s.name} login: (console of ${s.id} on ${s.host})\n${text}\n`;
      // Last, so that it survives `length`: whoever reads this must not take it for the guest's console.
      if (note) text += `${note}\n`;
    }
    if (length > 0 && text !== '') text = text.replace(/\n$/, '').split('\n').slice(-length).join('\n') + '\n';
    return { output: text };
  });

  /** The console from the agent at the endpoint of the server's host; a note instead when it cannot answer. */
  async function agentConsole(agents: AgentConsoleClient, s: Server, length: number): Promise<{ output?: string; note?: string }> {
    const endpoint = (await queries.getHost(s.host))?.endpoint ?? '';
    if (!endpoint) return {};
    try {
      const { output } = await agents.consoleOutput(endpoint, s.id, length);
      return { output: output === '' || output.endsWith('\n') ? output : `${output}\n` };
    } catch (e) {
      const err = e as AgentCallError;
      const why = `${grpcStatus[err.code] ?? err.code}: ${err.details ?? err.message}`;
      const what = "the lines above are the control plane's record of the server's actions, not its console";
      return {
        note:
          err.code === grpcStatus.NOT_FOUND
            ? `[strata] console unavailable: the agent of host ${s.host} at ${endpoint} does not run ${s.id} (${why}); ${what}`
            : `[strata] console unavailable: the agent of host ${s.host} at ${endpoint} is unreachable (${why}); ${what}`,
      };
    }
  }

  rpc('ListServerActions', async (req, c, enforce) => {
    const s = await visibleServer(required('id', req.id), c, { includeDeleted: true });
    enforce({ projectId: s.projectId });
    return { operations: (await queries.listInstanceActions(s.id)).map(operationView) };
  });

  /** The operation `name` on a visible server (found by request id alone when it touched one). */
  async function findOperation(req: Req, c: Caller, enforce: Enforce): Promise<{ serverId: string; operation: Res }> {
    const name = required('name', req.name);
    let serverId = String(req.serverId ?? '');
    if (!serverId) {
      const servers = new Set<string>();
      for (const a of await queries.findInstanceActions(name)) {
        const s = await queries.getServer(a.instanceId, { includeDeleted: true });
        if (s && (c.isAdmin || s.projectId === callerProject(c))) servers.add(a.instanceId);
      }
      if (servers.size === 0) throw notFound(`operation ${name} not found`, 'name');
      if (servers.size > 1) throw invalid('server_id', `request ${name} touched ${servers.size} servers: name one`);
      serverId = [...servers][0];
    }
    const s = await visibleServer(serverId, c, { includeDeleted: true });
    enforce({ projectId: s.projectId });
    const a = await queries.getInstanceAction(serverId, name);
    if (!a) throw notFound(`operation ${name} not found on server ${serverId}`, 'name');
    return { serverId, operation: operationView(a) };
  }

  rpc('GetOperation', async (req, c, enforce) => ({ operation: (await findOperation(req, c, enforce)).operation }));

  rpc('WaitOperation', async (req, c, enforce) => {
    const timeout = durationMs(req.timeout) ?? DEFAULT_WAIT_MS;
    if (timeout < 0 || timeout > MAX_WAIT_MS) throw invalid('timeout', `must be between 0 and ${MAX_WAIT_MS / 1000} s`);
    const deadline = Date.now() + timeout;
    let { serverId, operation } = await findOperation(req, c, enforce);
    while (!operation.done && Date.now() < deadline) {
      const next = watch.changed(serverId);
      // Read again after registering: a change between the last read and now is not missed.
      const a = await queries.getInstanceAction(serverId, String(req.name));
      if (a?.result) {
        next.cancel();
        return { operation: operationView(a) };
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([next.promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, deadline - Date.now())))]);
      clearTimeout(timer);
      next.cancel();
      ({ serverId, operation } = await findOperation({ ...req, serverId }, c, () => undefined));
    }
    return { operation };
  });

  // WatchServers: a server stream. Authenticated and authorized once at the start; it ends when
  // the caller goes away, the server stops, or the token expires or is revoked (UNAUTHENTICATED).
  {
    const name = 'WatchServers';
    const rule = computeRule(name);
    impl[name] = (call: ServerWritableStream<Req, Res>) =>
      void traced(name, async (span) => {
        try {
          const c = authenticator.authenticate(call.metadata);
          const req = call.request ?? {};
          const all = c.isAdmin && Boolean(req.allProjects);
          const projectId = c.isAdmin && req.projectId ? String(req.projectId) : callerProject(c);
          if (!all && !projectId) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project (admins: all_projects or project_id)');
          computePolicy.enforce(rule, c, { projectId });
          await new Promise<void>((resolve) => {
            let ended = false;
            const finish = (error?: unknown) => {
              if (ended) return;
              ended = true;
              stop();
              clearInterval(check);
              if (error) call.emit('error', toServiceError(error));
              else call.end();
              resolve();
            };
            const stop = watch.watch({
              accepts: (s) => all || s.projectId === projectId,
              push: (s, events) => {
                if (!ended) call.write({ server: view(s, c), events });
              },
              end: () => finish(),
            });
            const check = setInterval(() => {
              if (!authenticator.stillValid(c)) finish(refuse('UNAUTHENTICATED', 'the token expired or was revoked during the watch'));
            }, 1000);
            check.unref();
            call.on('cancelled', () => finish());
            call.on('close', () => finish());
          });
        } catch (e) {
          call.emit('error', fail(name, span, e));
        }
      });
  }

  return impl;
}
