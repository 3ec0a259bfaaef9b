// The compute commands of the strata CLI: flavor, keypair, quota, host, aggregate, server-group,
// server and operation. Server actions are the table of api/compute/server.actions.ts (one verb
// per RPC), so `strata server --help` lists exactly what the API offers; `--wait` follows the
// operation an action starts until the host finished it (create: until ACTIVE or ERROR).
import { readFileSync, writeFileSync } from 'node:fs';
import { SERVER_ACTIONS, type ServerAction } from '../api/compute/server.actions.js';
import { BLOCK_QUOTA_FLAGS, blockQuota, SERVER_VOLUME_USAGE, serverVolumeCommand } from './block.js';
import { done, EXIT_CODES, helpOrUsage, int, need, parse, properties, str, UsageError, type Context, type Options } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const COMPUTE_COMMANDS = ['flavor', 'keypair', 'quota', 'host', 'aggregate', 'server-group', 'server', 'operation'];

export const COMPUTE_HELP = `  flavor create|list|show|set|delete, flavor access add|remove|list
  keypair create|list|show|delete
  quota show [PROJECT] / quota set PROJECT --instances N ...
  host list|show|disable|enable
  aggregate create|list|show|set|delete|add-host|remove-host
  server-group create|list|show|delete
  server create|list|show|delete|<action>|console|actions|watch  (strata server --help)
  server add port|add network|remove port|remove network|interfaces
  operation show|wait NAME`;

/** A network's or port's id from its id or its name (the caller's view); the name must be unique. */
async function resolveNamed(ctx: Context, rpc: string, field: string, what: string, nameOrId: string): Promise<string> {
  const rows = (await ctx.client().call(rpc, { pageSize: 1000 }))[field] as Obj[];
  if (rows.some((r) => r.id === nameOrId)) return nameOrId;
  const named = rows.filter((r) => r.name === nameOrId);
  if (named.length > 1) throw new UsageError(`more than one ${what} is named ${nameOrId}: give its id (${named.map((r) => r.id).join(', ')})`);
  return named[0]?.id ?? nameOrId;
}
const resolveNetwork = (ctx: Context, v: string) => resolveNamed(ctx, 'ListNetworks', 'networks', 'network', v);
const resolvePort = (ctx: Context, v: string) => resolveNamed(ctx, 'ListPorts', 'ports', 'port', v);

const QUOTA_FLAGS: Record<string, string> = {
  instances: 'instances',
  cores: 'cores',
  ram: 'ram',
  'metadata-items': 'metadata_items',
  'key-pairs': 'key_pairs',
  'server-groups': 'server_groups',
  'server-group-members': 'server_group_members',
};

const time = (t: Obj | undefined) => (t && (t.seconds || t.nanos) ? new Date(Number(t.seconds) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6)).toISOString() : '');

// ---- flavors ------------------------------------------------------------------------------

async function resolveFlavor(ctx: Context, nameOrId: string): Promise<string> {
  const res = await ctx.client().call('ListFlavors', { pageSize: 1000 });
  return (res.flavors as Obj[]).find((f) => f.id === nameOrId || f.name === nameOrId)?.id ?? nameOrId;
}

const FLAVOR_COLUMNS = ['id', 'name', 'vcpus', 'ramMb', 'diskGb', 'isPublic', 'description'];

async function flavorCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata flavor create --name N --vcpus N --ram MIB --disk GIB [--ephemeral GIB] [--swap MIB] [--property K=V]... [--private] [--description D] [--id ID] [--request-id R]
       strata flavor list [--public | --private] [--page-size N] [--page-token T]
       strata flavor show ID|NAME
       strata flavor set ID|NAME [--description D] [--property K=V]...   (the properties replace the extra specs)
       strata flavor delete ID|NAME
       strata flavor access add|remove FLAVOR PROJECT_ID / strata flavor access list FLAVOR
Flavors are created and changed by admins; everyone lists the public ones and the private ones
their project was given access to.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'create': {
      const { values } = parse(
        rest,
        {
          name: { type: 'string' }, vcpus: { type: 'string' }, ram: { type: 'string' }, disk: { type: 'string' }, ephemeral: { type: 'string' }, swap: { type: 'string' },
          property: { type: 'string', multiple: true }, private: { type: 'boolean' }, description: { type: 'string' }, id: { type: 'string' }, 'request-id': { type: 'string' },
        },
        usage,
      );
      const flavor = {
        id: str(values.id) ?? '',
        name: str(values.name) ?? '',
        vcpus: int('vcpus', values.vcpus) ?? 0,
        ramMb: int('ram', values.ram) ?? 0,
        diskGb: int('disk', values.disk) ?? 0,
        ephemeralGb: int('ephemeral', values.ephemeral) ?? 0,
        swapMb: int('swap', values.swap) ?? 0,
        extraSpecs: properties(values.property),
        description: str(values.description) ?? '',
      };
      const res = await client.call('CreateFlavor', { flavor, isPublic: !values.private, requestId: str(values['request-id']) ?? '' });
      return print(ctx.output, res.flavor);
    }
    case 'list': {
      const { values } = parse(rest, { public: { type: 'boolean' }, private: { type: 'boolean' }, 'page-size': { type: 'string' }, 'page-token': { type: 'string' } }, usage);
      if (values.public && values.private) throw new UsageError('--public and --private exclude each other');
      const res = await client.call('ListFlavors', {
        pageSize: int('page-size', values['page-size']) ?? 0,
        pageToken: str(values['page-token']) ?? '',
        ...(values.public ? { isPublic: true } : values.private ? { isPublic: false } : {}),
      });
      if (ctx.output === 'json') return print(ctx.output, { flavors: res.flavors, next_page_token: res.nextPageToken });
      print(ctx.output, res.flavors, FLAVOR_COLUMNS);
      if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
      return;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetFlavor', { id: await resolveFlavor(ctx, need(positionals, 'flavor', usage)) })).flavor);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { description: { type: 'string' }, property: { type: 'string', multiple: true } }, usage);
      const id = await resolveFlavor(ctx, need(positionals, 'flavor', usage));
      const flavor: Obj = { id };
      const paths: string[] = [];
      if (str(values.description) !== undefined) {
        flavor.description = values.description;
        paths.push('description');
      }
      if (values.property) {
        flavor.extraSpecs = properties(values.property);
        paths.push('extra_specs');
      }
      if (paths.length === 0) throw new UsageError(`nothing to change: --description or --property\n\n${usage}`);
      return print(ctx.output, (await client.call('UpdateFlavor', { flavor, updateMask: { paths } })).flavor);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await resolveFlavor(ctx, need(positionals, 'flavor', usage));
      await client.call('DeleteFlavor', { id });
      return done(ctx, `flavor ${id} deleted`, { deleted: id });
    }
    case 'access': {
      const [what, ...more] = rest;
      const { positionals } = parse(more, {}, usage);
      const flavorId = await resolveFlavor(ctx, need(positionals, 'flavor', usage));
      if (what === 'list') return print(ctx.output, { flavor_id: flavorId, project_ids: (await client.call('ListFlavorAccess', { flavorId })).projectIds });
      if (what !== 'add' && what !== 'remove') throw new UsageError(usage);
      if (!positionals[1]) throw new UsageError(`name the project\n\n${usage}`);
      const res = await client.call(what === 'add' ? 'AddFlavorAccess' : 'RemoveFlavorAccess', { flavorId, projectId: positionals[1] });
      return print(ctx.output, { flavor_id: flavorId, project_ids: res.projectIds });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- key pairs ----------------------------------------------------------------------------

async function keypairCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata keypair create NAME [--public-key FILE] [--type ssh|x509] [--private-key FILE] [--user ID] [--request-id R]
       strata keypair list [--user ID]
       strata keypair show NAME [--user ID]
       strata keypair delete NAME [--user ID]
Without --public-key, an ed25519 key pair is generated: its private key is printed (or written to
--private-key FILE, mode 0600) this once and kept nowhere. --user: admins only.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['name', 'type', 'fingerprint', 'userId'];
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(
        rest,
        { 'public-key': { type: 'string' }, type: { type: 'string' }, 'private-key': { type: 'string' }, user: { type: 'string' }, 'request-id': { type: 'string' } },
        usage,
      );
      const name = need(positionals, 'key pair', usage);
      const publicKey = str(values['public-key']) ? readFileSync(str(values['public-key'])!, 'utf8') : '';
      const res = await client.call('CreateKeypair', {
        name,
        publicKey,
        type: str(values.type) ?? '',
        userId: str(values.user) ?? '',
        requestId: str(values['request-id']) ?? '',
      });
      const out = str(values['private-key']);
      if (res.privateKey && out) writeFileSync(out, res.privateKey, { mode: 0o600 });
      if (ctx.output === 'json') return print(ctx.output, { ...res.keypair, ...(res.privateKey && !out ? { private_key: res.privateKey } : {}) });
      print(ctx.output, res.keypair);
      if (res.privateKey) console.log(out ? `private key written to ${out}` : `\n${res.privateKey}`);
      return;
    }
    case 'list': {
      const { values } = parse(rest, { user: { type: 'string' } }, usage);
      const res = await client.call('ListKeypairs', { userId: str(values.user) ?? '' });
      return ctx.output === 'json' ? print(ctx.output, { keypairs: res.keypairs }) : print(ctx.output, res.keypairs, columns);
    }
    case 'show':
    case 'delete': {
      const { values, positionals } = parse(rest, { user: { type: 'string' } }, usage);
      const name = need(positionals, 'key pair', usage);
      if (verb === 'show') return print(ctx.output, (await client.call('GetKeypair', { name, userId: str(values.user) ?? '' })).keypair);
      await client.call('DeleteKeypair', { name, userId: str(values.user) ?? '' });
      return done(ctx, `key pair ${name} deleted`, { deleted: name });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- quotas -------------------------------------------------------------------------------

/** `openstack quota set`'s network flags -> Neutron's quota names. */
const NETWORK_QUOTA_FLAGS: Record<string, string> = {
  networks: 'network',
  subnets: 'subnet',
  ports: 'port',
  routers: 'router',
  'floating-ips': 'floatingip',
  secgroups: 'security_group',
  'secgroup-rules': 'security_group_rule',
};

/** Compute, network and block quotas together, as `openstack quota show|set` has them. */
async function quotaCommand(ctx: Context, argv: string[]): Promise<void> {
  const flags = [...Object.keys(QUOTA_FLAGS), ...Object.keys(NETWORK_QUOTA_FLAGS), ...Object.keys(BLOCK_QUOTA_FLAGS)];
  const usage = `Usage: strata quota show [PROJECT_ID]       (default: the project of your token)
       strata quota set PROJECT_ID ${flags.map((f) => `[--${f} N]`).join(' ')}   (admins; -1: unlimited)`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  // block: undefined from a cloud without block storage (blockQuota).
  const show = (compute: Obj, network: Obj, block?: Obj) => {
    if (ctx.output === 'json') return print(ctx.output, { ...compute, network, ...(block ? { block } : {}) });
    const rows = (q: Obj, service: string) =>
      Object.keys(q.limits)
        .sort()
        .map((name) => ({ service, quota: name, limit: q.limits[name], in_use: q.inUse?.[name] ?? '' }));
    console.log(`project ${compute.projectId}`);
    print(ctx.output, [...rows(compute, 'compute'), ...rows(network, 'network'), ...(block ? rows(block, 'block') : [])], ['service', 'quota', 'limit', 'in_use']);
  };
  if (verb === 'show') {
    const { positionals } = parse(rest, {}, usage);
    const projectId = positionals[0] ?? '';
    const [compute, network, block] = await Promise.all([client.call('GetQuota', { projectId }), client.call('GetNetworkQuota', { projectId }), blockQuota(ctx, projectId)]);
    return show(compute.quota, network.quota, block);
  }
  if (verb === 'set') {
    const { values, positionals } = parse(rest, Object.fromEntries(flags.map((f) => [f, { type: 'string' as const }])), usage);
    const projectId = need(positionals, 'project', usage);
    const limitsOf = (table: Record<string, string>) => {
      const limits: Record<string, number> = {};
      for (const [flag, name] of Object.entries(table)) {
        const n = int(flag, values[flag]);
        if (n !== undefined) limits[name] = n;
      }
      return limits;
    };
    const computeLimits = limitsOf(QUOTA_FLAGS);
    const networkLimits = limitsOf(NETWORK_QUOTA_FLAGS);
    const blockLimits = limitsOf(BLOCK_QUOTA_FLAGS);
    if (Object.keys(computeLimits).length === 0 && Object.keys(networkLimits).length === 0 && Object.keys(blockLimits).length === 0) throw new UsageError(`nothing to set\n\n${usage}`);
    const compute = Object.keys(computeLimits).length > 0 ? await client.call('SetQuota', { projectId, limits: computeLimits }) : await client.call('GetQuota', { projectId });
    const network = Object.keys(networkLimits).length > 0 ? await client.call('SetNetworkQuota', { projectId, limits: networkLimits }) : await client.call('GetNetworkQuota', { projectId });
    return show(compute.quota, network.quota, await blockQuota(ctx, projectId, blockLimits));
  }
  helpOrUsage(verb, usage);
}

// ---- hosts --------------------------------------------------------------------------------

const hostRow = (h: Obj) => ({
  id: h.id,
  zone: h.availabilityZone,
  state: h.up ? 'up' : 'down',
  status: h.enabled ? 'enabled' : 'disabled',
  vcpus: `${h.used?.vcpus ?? 0}/${h.inventory?.vcpus?.total ?? 0}`,
  ram_mb: `${h.used?.ramMb ?? 0}/${h.inventory?.ramMb?.total ?? 0}`,
  disk_gb: `${h.used?.diskGb ?? 0}/${h.inventory?.diskGb?.total ?? 0}`,
  servers: h.servers,
  disabled_reason: h.disabledReason,
});

async function hostCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata host list [--zone Z] [--enabled | --disabled]
       strata host show HOST
       strata host disable HOST [--reason TEXT]
       strata host enable HOST
Hosts register themselves (their agents); admins take them out of scheduling and back.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'list': {
      const { values } = parse(rest, { zone: { type: 'string' }, enabled: { type: 'boolean' }, disabled: { type: 'boolean' } }, usage);
      const res = await client.call('ListHosts', {
        availabilityZone: str(values.zone) ?? '',
        ...(values.enabled ? { enabled: true } : values.disabled ? { enabled: false } : {}),
      });
      return ctx.output === 'json' ? print(ctx.output, { hosts: res.hosts }) : print(ctx.output, (res.hosts as Obj[]).map(hostRow));
    }
    case 'show':
    case 'enable':
    case 'disable': {
      const { values, positionals } = parse(rest, verb === 'disable' ? { reason: { type: 'string' } } : {}, usage);
      const id = need(positionals, 'host', usage);
      const rpc = { show: 'GetHost', enable: 'EnableHost', disable: 'DisableHost' }[verb];
      const res = await client.call(rpc, { id, ...(verb === 'disable' ? { reason: str(values.reason) ?? '' } : {}) });
      return print(
        ctx.output,
        ctx.output === 'json' ? res.host : { ...hostRow(res.host), aggregates: res.host.aggregates, last_heartbeat: time(res.host.lastHeartbeat), agent_endpoint: res.host.endpoint || '-' },
      );
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- host aggregates ----------------------------------------------------------------------

async function aggregateCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata aggregate create --name N [--zone Z] [--property K=V]... [--request-id R]
       strata aggregate list [--host HOST]
       strata aggregate show ID
       strata aggregate set ID [--name N] [--zone Z] [--property K=V]... [--unset KEY]...
       strata aggregate delete ID
       strata aggregate add-host|remove-host ID HOST
Admins only. Properties are matched against flavor extra specs by the scheduler.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'name', 'availabilityZone', 'hosts', 'metadata'];
  switch (verb) {
    case 'create': {
      const { values } = parse(rest, { name: { type: 'string' }, zone: { type: 'string' }, property: { type: 'string', multiple: true }, 'request-id': { type: 'string' } }, usage);
      const aggregate = { name: str(values.name) ?? '', availabilityZone: str(values.zone) ?? '', metadata: properties(values.property) };
      return print(ctx.output, (await client.call('CreateAggregate', { aggregate, requestId: str(values['request-id']) ?? '' })).aggregate, columns);
    }
    case 'list': {
      const { values } = parse(rest, { host: { type: 'string' } }, usage);
      const res = await client.call('ListAggregates', { host: str(values.host) ?? '' });
      return ctx.output === 'json' ? print(ctx.output, { aggregates: res.aggregates }) : print(ctx.output, res.aggregates, columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetAggregate', { id: need(positionals, 'aggregate', usage) })).aggregate);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { name: { type: 'string' }, zone: { type: 'string' }, property: { type: 'string', multiple: true }, unset: { type: 'string', multiple: true } }, usage);
      const id = need(positionals, 'aggregate', usage);
      let res: Obj | undefined;
      const aggregate: Obj = { id };
      const paths: string[] = [];
      if (str(values.name) !== undefined) {
        aggregate.name = values.name;
        paths.push('name');
      }
      if (str(values.zone) !== undefined) {
        aggregate.availabilityZone = values.zone;
        paths.push('availability_zone');
      }
      if (paths.length > 0) res = await client.call('UpdateAggregate', { aggregate, updateMask: { paths } });
      if (values.property || values.unset) {
        res = await client.call('SetAggregateMetadata', { aggregateId: id, metadata: properties(values.property), removeKeys: (values.unset as string[] | undefined) ?? [] });
      }
      if (!res) throw new UsageError(`nothing to change\n\n${usage}`);
      return print(ctx.output, res.aggregate);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = need(positionals, 'aggregate', usage);
      await client.call('DeleteAggregate', { id });
      return done(ctx, `aggregate ${id} deleted`, { deleted: id });
    }
    case 'add-host':
    case 'remove-host': {
      const { positionals } = parse(rest, {}, usage);
      if (positionals.length < 2) throw new UsageError(usage);
      const res = await client.call(verb === 'add-host' ? 'AddAggregateHost' : 'RemoveAggregateHost', { aggregateId: positionals[0], host: positionals[1] });
      return print(ctx.output, res.aggregate);
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- server groups ------------------------------------------------------------------------

async function serverGroupCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata server-group create --name N --policy affinity|anti-affinity|soft-affinity|soft-anti-affinity [--max-per-host N] [--request-id R]
       strata server-group list [--all-projects]
       strata server-group show ID
       strata server-group delete ID`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'name', 'policy', 'maxServerPerHost', 'members'];
  switch (verb) {
    case 'create': {
      const { values } = parse(rest, { name: { type: 'string' }, policy: { type: 'string' }, 'max-per-host': { type: 'string' }, 'request-id': { type: 'string' } }, usage);
      const serverGroup = { name: str(values.name) ?? '', policy: str(values.policy) ?? '', maxServerPerHost: int('max-per-host', values['max-per-host']) ?? 0 };
      return print(ctx.output, (await client.call('CreateServerGroup', { serverGroup, requestId: str(values['request-id']) ?? '' })).serverGroup);
    }
    case 'list': {
      const { values } = parse(rest, { 'all-projects': { type: 'boolean' } }, usage);
      const res = await client.call('ListServerGroups', { allProjects: Boolean(values['all-projects']) });
      return ctx.output === 'json' ? print(ctx.output, { server_groups: res.serverGroups }) : print(ctx.output, res.serverGroups, columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetServerGroup', { id: need(positionals, 'server group', usage) })).serverGroup);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = need(positionals, 'server group', usage);
      await client.call('DeleteServerGroup', { id });
      return done(ctx, `server group ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- servers ------------------------------------------------------------------------------

const SERVER_COLUMNS = ['id', 'name', 'status', 'task', 'power', 'flavor', 'image', 'zone'];
const POWER = ['NOSTATE', 'RUNNING', '', 'PAUSED', 'SHUTDOWN', '', 'CRASHED', 'SUSPENDED'];

const serverRow = (s: Obj) => ({
  id: s.id,
  name: s.name,
  status: s.status,
  task: s.taskState ?? '',
  power: POWER[s.powerState] ?? s.powerState,
  flavor: s.flavor?.name ?? '',
  image: s.imageId,
  zone: s.availabilityZone,
});

const serverDetail = (s: Obj) => ({
  id: s.id,
  name: s.name,
  status: s.status,
  vm_state: s.vmState,
  task_state: s.taskState ?? '',
  power_state: POWER[s.powerState] ?? s.powerState,
  flavor: s.flavor ? `${s.flavor.name} (${s.flavor.id}: ${s.flavor.vcpus} vCPU, ${s.flavor.ramMb} MiB, ${s.flavor.diskGb} GiB)` : '',
  image: s.imageId,
  key_name: s.keyName,
  availability_zone: s.availabilityZone,
  server_group: s.serverGroupId,
  ...(s.host ? { host: s.host } : {}),
  metadata: s.metadata,
  locked: s.locked ? `yes${s.lockedReason ? `: ${s.lockedReason}` : ''}` : 'no',
  fault: s.fault?.message ?? '',
  project: s.projectId,
  user: s.userId,
  created: time(s.createdAt),
  updated: time(s.updatedAt),
  allowed_actions: s.allowedActions,
  interfaces: ((s.interfaces ?? []) as Obj[]).map(interfaceLine),
});

/** One interface as `strata server show` prints it: port, network, MAC, addresses and state. */
const interfaceLine = (i: Obj) =>
  `${i.portId} on ${i.networkId}${i.macAddress ? ` ${i.macAddress}` : ''}${(i.fixedIps ?? []).map((f: Obj) => ` ${f.ipAddress}`).join('')} (${i.state}${i.preserveOnDelete ? ', kept on delete' : ''}${i.fault ? `: ${i.fault}` : ''})`;
const INTERFACE_COLUMNS = ['port', 'network', 'mac', 'addresses', 'state', 'kept'];
const interfaceRow = (i: Obj) => ({
  port: i.portId, network: i.networkId, mac: i.macAddress, addresses: (i.fixedIps ?? []).map((f: Obj) => f.ipAddress).join(' '), state: i.state, kept: i.preserveOnDelete ? 'yes' : 'no',
});

const showServer = (ctx: Context, s: Obj) => print(ctx.output, ctx.output === 'json' ? s : serverDetail(s));

const WAIT_STEP_S = 60;

/** Waits for an operation to finish (WaitOperation in steps), up to timeoutS; returns it. */
async function waitFor(ctx: Context, op: Obj, timeoutS: number): Promise<Obj> {
  const deadline = Date.now() + timeoutS * 1000;
  let current = op;
  while (!current.done && Date.now() < deadline) {
    const seconds = Math.max(1, Math.min(WAIT_STEP_S, Math.ceil((deadline - Date.now()) / 1000)));
    current = (await ctx.client().call('WaitOperation', { name: op.name, serverId: op.serverId, timeout: { seconds } }, undefined, { timeoutMs: (seconds + 30) * 1000 })).operation;
  }
  return current;
}

/** Prints the outcome of waited operations; the exit code says whether they all succeeded. */
function waited(ctx: Context, ops: Obj[]): number {
  const failed = ops.filter((o) => o.done && o.result === 'error');
  const pending = ops.filter((o) => !o.done);
  for (const o of failed) console.error(`strata: ${o.action} of server ${o.serverId} failed: ${o.error}`);
  for (const o of pending) console.error(`strata: ${o.action} of server ${o.serverId} is still running (operation ${o.name}); strata operation wait ${o.name} --server ${o.serverId}`);
  return failed.length > 0 || pending.length > 0 ? EXIT_CODES.error : EXIT_CODES.ok;
}

const actionUsage = (a: ServerAction) =>
  `strata server ${a.verb} SERVER${Object.entries(a.flags ?? {})
    .map(([f, spec]) => (spec.type === 'boolean' ? ` [--${f}]` : spec.type === 'map' ? ` --${f} K=V...` : ` --${f} V`))
    .join('')} [--wait] [--request-id R]`;

const SERVER_USAGE = `Usage: strata server create --name N --flavor FLAVOR --image IMAGE [--key-name K] [--zone Z] [--group ID]
                            [--network NET]... [--port PORT]... [--nic net-id=NET[,v4-fixed-ip=IP]|port-id=PORT|none|auto]...
                            [--property K=V]... [--min N] [--max N] [--request-id R] [--wait] [--timeout S]
       strata server add port SERVER PORT [--wait] [--request-id R]
       strata server add network SERVER NETWORK [--fixed-ip IP] [--wait] [--request-id R]
       strata server remove port SERVER PORT [--wait] [--request-id R]
       strata server remove network SERVER NETWORK [--wait]
       strata server interfaces SERVER
${SERVER_VOLUME_USAGE}
       strata server list [--status S] [--name N] [--host H] [--project ID | --all-projects] [--page-size N] [--page-token T]
       strata server show SERVER
       strata server console SERVER [--lines N]
       strata server actions SERVER
       strata server watch [--project ID | --all-projects]
Actions (each answers with an operation; --wait waits until the host finished it):
${SERVER_ACTIONS.map((a) => `  ${actionUsage(a).padEnd(78)} ${a.summary}`).join('\n')}
\`strata server show\` lists the actions the server allows now (allowed_actions).
\`strata server console\` shows the guest's serial console, from its host's agent (the last N lines with --lines);
a host whose agent serves no console shows the server's actions instead, and says so when its agent is unreachable.
--wait gives up after --timeout seconds (default 600); create --wait waits until ACTIVE or ERROR.
Networks (Nova's): each --network makes the server a port there (deleted with it), each --port gives it a
port of yours (kept, freed); --nic none: no network; --nic auto or nothing: the one network the project may use.
add/remove port|network attach and detach interfaces (ACTIVE, PAUSED or SHUTOFF servers; a running guest
gets the NIC hot-plugged); remove network detaches every interface on that network.
add/remove volume attach and detach a volume (id or name): the guest gets a new disk (/dev/vdb, ...);
--wait waits until the attachment is attached, or gone. server volume list lists the attachments.`;

async function serverCreate(ctx: Context, argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      name: { type: 'string' }, flavor: { type: 'string' }, image: { type: 'string' }, 'key-name': { type: 'string' }, zone: { type: 'string' }, group: { type: 'string' },
      property: { type: 'string', multiple: true }, min: { type: 'string' }, max: { type: 'string' }, 'request-id': { type: 'string' }, wait: { type: 'boolean' }, timeout: { type: 'string' },
      network: { type: 'string', multiple: true }, port: { type: 'string', multiple: true }, nic: { type: 'string', multiple: true },
    },
    SERVER_USAGE,
  );
  if (!str(values.flavor)) throw new UsageError(`--flavor is required\n\n${SERVER_USAGE}`);
  const networks: Obj[] = [];
  let networkAllocation = '';
  for (const n of (values.network as string[] | undefined) ?? []) networks.push({ uuid: await resolveNetwork(ctx, n) });
  for (const p of (values.port as string[] | undefined) ?? []) networks.push({ port: await resolvePort(ctx, p) });
  for (const nic of (values.nic as string[] | undefined) ?? []) {
    if (nic === 'none' || nic === 'auto') {
      networkAllocation = nic;
      continue;
    }
    const kv = Object.fromEntries(nic.split(',').map((x) => x.split('=', 2) as [string, string]));
    const unknown = Object.keys(kv).filter((k) => !['net-id', 'port-id', 'v4-fixed-ip', 'v6-fixed-ip'].includes(k));
    if (unknown.length > 0 || (!kv['net-id'] && !kv['port-id'])) throw new UsageError(`--nic ${nic}: give net-id=NET[,v4-fixed-ip=IP], port-id=PORT, none or auto`);
    networks.push(kv['port-id'] ? { port: await resolvePort(ctx, kv['port-id']) } : { uuid: await resolveNetwork(ctx, kv['net-id']), fixedIp: kv['v4-fixed-ip'] ?? kv['v6-fixed-ip'] ?? '' });
  }
  const res = await ctx.client().call('CreateServer', {
    name: str(values.name) ?? '',
    flavorId: await resolveFlavor(ctx, str(values.flavor)!),
    imageId: str(values.image) ?? '',
    keyName: str(values['key-name']) ?? '',
    availabilityZone: str(values.zone) ?? '',
    serverGroupId: str(values.group) ?? '',
    metadata: properties(values.property),
    minCount: int('min', values.min) ?? 0,
    maxCount: int('max', values.max) ?? 0,
    requestId: str(values['request-id']) ?? '',
    networks,
    networkAllocation,
  });
  let servers = res.servers as Obj[];
  let code: number = EXIT_CODES.ok;
  if (values.wait) {
    const timeoutS = int('timeout', values.timeout) ?? 600;
    const ops = [];
    for (const op of res.operations as Obj[]) ops.push(await waitFor(ctx, op, timeoutS));
    code = waited(ctx, ops);
    servers = [];
    for (const s of res.servers as Obj[]) servers.push((await ctx.client().call('GetServer', { id: s.id })).server);
  }
  if (servers.length === 1) showServer(ctx, servers[0]);
  else if (ctx.output === 'json') print(ctx.output, { servers });
  else print(ctx.output, servers.map(serverRow), SERVER_COLUMNS);
  return code;
}

async function serverAction(ctx: Context, a: ServerAction, argv: string[]): Promise<number> {
  const options: Options = { wait: { type: 'boolean' }, timeout: { type: 'string' }, 'request-id': { type: 'string' } };
  for (const [flag, spec] of Object.entries(a.flags ?? {})) options[flag] = spec.type === 'map' ? { type: 'string', multiple: true } : { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  const usage = `Usage: ${actionUsage(a)}\n\n${a.summary}.`;
  const { values, positionals } = parse(argv, options, usage);
  const id = need(positionals, 'server', usage);
  const req: Obj = { id, requestId: str(values['request-id']) ?? '' };
  for (const [flag, spec] of Object.entries(a.flags ?? {})) {
    if (values[flag] === undefined) continue;
    req[spec.field] = spec.type === 'map' ? properties(values[flag], `--${flag}`) : spec.negate ? !values[flag] : values[flag];
  }
  if (a.rpc === 'ResizeServer' && req.flavorId) req.flavorId = await resolveFlavor(ctx, req.flavorId);
  const res = await ctx.client().call(a.rpc, req);
  let op = res.operation as Obj;
  let server = res.server as Obj;
  let code: number = EXIT_CODES.ok;
  if (values.wait) {
    op = await waitFor(ctx, op, int('timeout', values.timeout) ?? 600);
    code = waited(ctx, [op]);
    try {
      server = (await ctx.client().call('GetServer', { id })).server;
    } catch (e) {
      // A deleted server is gone from GetServer: that is what the wait was for.
      if ((e as { code?: number }).code !== 5) throw e;
      server = { ...server, status: 'DELETED', taskState: undefined };
    }
  }
  if (ctx.output === 'json') print(ctx.output, { operation: op, server, ...(res.imageId ? { image_id: res.imageId } : {}) });
  else {
    const state = op.done ? (op.result === 'success' ? 'done' : `failed: ${op.error}`) : 'running';
    console.log(`${a.verb} ${id}: ${state} (operation ${op.name}); status ${server.status}${server.taskState ? ` (${server.taskState})` : ''}${res.imageId ? `; image ${res.imageId}` : ''}`);
  }
  return code;
}

/** Follows an interface operation (--wait) and prints what became of it. */
async function interfaceOutcome(ctx: Context, what: string, id: string, res: Obj, values: Obj): Promise<number> {
  let op = res.operation as Obj;
  let code: number = EXIT_CODES.ok;
  if (values.wait) {
    op = await waitFor(ctx, op, int('timeout', values.timeout) ?? 600);
    code = waited(ctx, [op]);
  }
  if (ctx.output === 'json') print(ctx.output, { operation: op, ...(res.interface ? { interface: res.interface } : {}) });
  else console.log(`${what} ${id}: ${op.done ? (op.result === 'success' ? 'done' : `failed: ${op.error}`) : 'running'} (operation ${op.name})`);
  return code;
}

/** strata server add port|network, remove port|network, interfaces (Nova's os-interface). */
async function serverInterfaceCommand(ctx: Context, verb: string, argv: string[]): Promise<number> {
  const client = ctx.client();
  if (verb === 'interfaces') {
    const { positionals } = parse(argv, {}, SERVER_USAGE);
    const res = await client.call('ListServerInterfaces', { id: need(positionals, 'server', SERVER_USAGE) });
    print(ctx.output, ctx.output === 'json' ? { interfaces: res.interfaces } : (res.interfaces as Obj[]).map(interfaceRow), INTERFACE_COLUMNS);
    return EXIT_CODES.ok;
  }
  const [kind, ...rest] = argv;
  if (kind !== 'port' && kind !== 'network') helpOrUsage(kind, SERVER_USAGE);
  const { values, positionals } = parse(rest, { wait: { type: 'boolean' }, timeout: { type: 'string' }, 'request-id': { type: 'string' }, 'fixed-ip': { type: 'string' } }, SERVER_USAGE);
  const id = need(positionals, 'server', SERVER_USAGE);
  const target = positionals[1];
  if (!target) throw new UsageError(`name the ${kind}\n\n${SERVER_USAGE}`);
  const requestId = str(values['request-id']) ?? '';
  if (verb === 'add') {
    const req = kind === 'port' ? { id, portId: await resolvePort(ctx, target), requestId } : { id, networkId: await resolveNetwork(ctx, target), fixedIp: str(values['fixed-ip']) ?? '', requestId };
    return interfaceOutcome(ctx, `add ${kind}`, id, await client.call('AttachInterface', req), values);
  }
  if (kind === 'port') return interfaceOutcome(ctx, 'remove port', id, await client.call('DetachInterface', { id, portId: await resolvePort(ctx, target), requestId }), values);
  // remove network: every interface of the server on that network.
  const network = await resolveNetwork(ctx, target);
  const on = ((await client.call('ListServerInterfaces', { id })).interfaces as Obj[]).filter((i) => i.networkId === network);
  if (on.length === 0) {
    console.error(`strata: server ${id} has no interface on network ${network}`);
    return EXIT_CODES.notFound;
  }
  let code: number = EXIT_CODES.ok;
  for (const i of on) code = Math.max(code, await interfaceOutcome(ctx, 'remove port', id, await client.call('DetachInterface', { id, portId: i.portId }), values));
  return code;
}

async function serverCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const action = SERVER_ACTIONS.find((a) => a.verb === verb);
  if (action) return serverAction(ctx, action, rest);
  // Volumes (Nova's os-volume_attachments) are the block commands' (cli/block.ts).
  if (verb === 'volume' || ((verb === 'add' || verb === 'remove') && rest[0] === 'volume')) return serverVolumeCommand(ctx, verb, verb === 'volume' ? rest : rest.slice(1));
  switch (verb) {
    case 'create':
      return serverCreate(ctx, rest);
    case 'add':
    case 'remove':
    case 'interfaces':
      return serverInterfaceCommand(ctx, verb, rest);
    case 'list': {
      const { values } = parse(
        rest,
        { status: { type: 'string' }, name: { type: 'string' }, host: { type: 'string' }, project: { type: 'string' }, 'all-projects': { type: 'boolean' }, 'page-size': { type: 'string' }, 'page-token': { type: 'string' } },
        SERVER_USAGE,
      );
      const res = await client.call('ListServers', {
        status: str(values.status) ?? '',
        name: str(values.name) ?? '',
        host: str(values.host) ?? '',
        projectId: str(values.project) ?? '',
        allProjects: Boolean(values['all-projects']),
        pageSize: int('page-size', values['page-size']) ?? 0,
        pageToken: str(values['page-token']) ?? '',
      });
      if (ctx.output === 'json') print(ctx.output, { servers: res.servers, next_page_token: res.nextPageToken });
      else {
        print(ctx.output, (res.servers as Obj[]).map(serverRow), SERVER_COLUMNS);
        if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
      }
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, SERVER_USAGE);
      showServer(ctx, (await client.call('GetServer', { id: need(positionals, 'server', SERVER_USAGE) })).server);
      return EXIT_CODES.ok;
    }
    case 'console': {
      const { values, positionals } = parse(rest, { lines: { type: 'string' } }, SERVER_USAGE);
      const res = await client.call('GetServerConsoleOutput', { id: need(positionals, 'server', SERVER_USAGE), length: int('lines', values.lines) ?? 0 });
      if (ctx.output === 'json') print(ctx.output, { output: res.output });
      else process.stdout.write(res.output);
      return EXIT_CODES.ok;
    }
    case 'actions': {
      const { positionals } = parse(rest, {}, SERVER_USAGE);
      const res = await client.call('ListServerActions', { id: need(positionals, 'server', SERVER_USAGE) });
      const rows = (res.operations as Obj[]).map((o) => ({ request_id: o.name, action: o.action, result: o.result || 'running', started: time(o.startedAt), finished: time(o.finishedAt), error: o.error }));
      print(ctx.output, ctx.output === 'json' ? { operations: res.operations } : rows);
      return EXIT_CODES.ok;
    }
    case 'watch': {
      const { values } = parse(rest, { project: { type: 'string' }, 'all-projects': { type: 'boolean' } }, SERVER_USAGE);
      const w = client.stream('WatchServers', { projectId: str(values.project) ?? '', allProjects: Boolean(values['all-projects']) }, (m: Obj) => {
        if (ctx.output === 'json') console.log(JSON.stringify(m));
        else console.log(`${new Date().toISOString()}  ${m.server.id}  ${m.server.name}  ${m.server.status}${m.server.taskState ? ` (${m.server.taskState})` : ''}  ${m.events.join(',')}`);
      });
      process.once('SIGINT', () => w.cancel());
      await w.done;
      return EXIT_CODES.ok;
    }
    default:
      helpOrUsage(verb, SERVER_USAGE);
  }
}

// ---- operations ---------------------------------------------------------------------------

async function operationCommand(ctx: Context, argv: string[]): Promise<number> {
  const usage = `Usage: strata operation show NAME [--server ID]
       strata operation wait NAME [--server ID] [--timeout S]
NAME is the request id of the call that started it (printed by every server action).`;
  const [verb, ...rest] = argv;
  if (verb !== 'show' && verb !== 'wait') helpOrUsage(verb, usage);
  const { values, positionals } = parse(rest, { server: { type: 'string' }, timeout: { type: 'string' } }, usage);
  const name = need(positionals, 'operation', usage);
  let op = (await ctx.client().call('GetOperation', { name, serverId: str(values.server) ?? '' })).operation as Obj;
  let code: number = EXIT_CODES.ok;
  if (verb === 'wait') {
    op = await waitFor(ctx, op, int('timeout', values.timeout) ?? 600);
    code = waited(ctx, [op]);
  }
  print(ctx.output, ctx.output === 'json' ? op : { name: op.name, server: op.serverId, action: op.action, done: op.done, result: op.result, error: op.error, started: time(op.startedAt), finished: time(op.finishedAt) });
  return code;
}

/** Runs a compute command; returns the exit code. */
export async function computeCommand(ctx: Context, command: string, argv: string[]): Promise<number> {
  switch (command) {
    case 'flavor':
      await flavorCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'keypair':
      await keypairCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'quota':
      await quotaCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'host':
      await hostCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'aggregate':
      await aggregateCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'server-group':
      await serverGroupCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'server':
      return serverCommand(ctx, argv);
    case 'operation':
      return operationCommand(ctx, argv);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
