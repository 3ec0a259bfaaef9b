// NetworkService: every RPC authenticates the caller, enforces its policy rule
// (api/policy/network.policy.ts), validates input with the domain's field rules, then sends
// commands (NetworkWriter; the multi-aggregate ones as the sagas of network.sagas.ts) or reads the
// network read models; routers and floating IPs are router.service.ts's. Writes return once the
// read model shows them. Another project's resource is NOT_FOUND before any rule is asked (a
// shared network is everyone's to see and to put ports on; an external one everyone's to see). A
// project's "default" security group is made on its first network, port or security group call,
// and a port that names no group (with port security on) gets it.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { inCidr, parseCidr } from '../../domains/network/ip.js';
import type { FixedIp, Network, Port, SecurityGroup, SecurityGroupRule, Subnet } from '../../domains/network/network.types.js';
import { validateNetworkCommand } from '../../domains/network/network.validation.js';
import type { NetworkQueries, NetworkRecord, PortRecord, SecurityGroupRecord, SecurityGroupRuleRecord, SubnetRecord } from '../../projections/network/network.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError, invalid, refuse } from '../errors.js';
import { networkPolicy, networkRule } from '../policy/network.policy.js';
import { actorOf, callerProject, derivedId, pageSize, requestIdOf, required, updateMaskOf, type Req, type Res } from '../request.js';
import type { Caller } from '../policy/policy.js';
import { changeFixedIps, createNetwork, createPort, DEFAULT_SEGMENT_RANGES, defaultGroupId, defaultSubnet, deleteNetwork, deletePort, makeDefaultGroup, type SagaContext, type SegmentRanges } from './network.sagas.js';
import type { NetworkWriter } from './network.writer.js';
import { unaryRpcs, type UnaryHandler } from '../unary-rpc.js';
import { disassociateFloatingIps } from './router.sagas.js';
import { registerRouterRpcs } from './router.service.js';


export interface NetworkServiceOptions {
  writer: NetworkWriter;
  queries: NetworkQueries;
  authenticator: Authenticator;
  /** The tenant segment ranges (Neutron's vni_ranges, network_vlan_ranges). */
  segmentRanges?: SegmentRanges;
}


/** One page of rows fetched with limit size + 1. */
export const page = <T extends { id: string }>(rows: T[], size: number) => {
  const items = rows.slice(0, size);
  return { items, next: rows.length > size ? items[items.length - 1].id : '' };
};

// ---- views ---------------------------------------------------------------------------------

/** Neutron shows provider attributes to admins only. */
export const networkView = (n: NetworkRecord, admin: boolean): Res => ({
  ...n,
  ...(admin ? {} : { networkType: '', physicalNetwork: '', segmentationId: 0 }),
});
const subnetView = (s: SubnetRecord): Res => ({ ...s, gatewayIp: s.gatewayIp ?? '' });
const portView = (p: PortRecord): Res => ({ ...p });
const ruleView = (r: SecurityGroupRuleRecord): Res => {
  const { portRangeMin, portRangeMax, ...rest } = r;
  return { ...rest, ...(portRangeMin === null ? {} : { portRangeMin }), ...(portRangeMax === null ? {} : { portRangeMax }) };
};
const groupView = (g: SecurityGroupRecord): Res => ({ ...g, rules: g.rules.map(ruleView) });

const networkOf = (n: NetworkRecord): Network => ({
  id: n.id, name: n.name, projectId: n.projectId, adminStateUp: n.adminStateUp, shared: n.shared, external: n.external, mtu: n.mtu,
  networkType: n.networkType, physicalNetwork: n.physicalNetwork, segmentationId: n.segmentationId,
});
const portOf = (p: PortRecord): Port => {
  const { status: _s, hostId: _h, ...port } = p;
  return port;
};

export function createNetworkService(o: NetworkServiceOptions): UntypedServiceImplementation {
  const { writer, queries, authenticator } = o;
  const ranges = o.segmentRanges ?? DEFAULT_SEGMENT_RANGES;
  const impl: UntypedServiceImplementation = {};

  const rpc = unaryRpcs({ service: 'strata.network.v1.NetworkService', policy: networkPolicy, ruleOf: networkRule, authenticator, impl, label: 'network' });
  type Handler = UnaryHandler;

  // ---- lookups -------------------------------------------------------------------------------

  const notFound = (message: string, field: string) => new ApiError({ code: 'NOT_FOUND', message, field });

  function mustHaveProject(c: Caller): string {
    const p = callerProject(c);
    if (!p) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project');
    return p;
  }

  /** The project a new resource goes to: the caller's; an admin may name another. */
  const ownerOf = (input: Req, c: Caller) => (c.isAdmin && input.projectId ? String(input.projectId) : mustHaveProject(c));

  const saga = (c: Caller, projectId: string, requestId: string): SagaContext => ({ writer, actor: actorOf(c), projectId, requestId });

  async function visibleNetwork(id: string, c: Caller, field = 'id'): Promise<NetworkRecord> {
    const n = await queries.getNetwork(id);
    if (!n || !(c.isAdmin || n.shared || n.projectId === callerProject(c))) throw notFound(`Network ${id} could not be found.`, field);
    return n;
  }

  async function visibleSubnet(id: string, c: Caller, field = 'id'): Promise<SubnetRecord> {
    const s = await queries.getSubnet(id);
    const n = s && (await queries.getNetwork(s.networkId));
    if (!s || !(c.isAdmin || s.projectId === callerProject(c) || n?.shared)) throw notFound(`Subnet ${id} could not be found.`, field);
    return s;
  }

  async function visiblePort(id: string, c: Caller): Promise<PortRecord> {
    const p = await queries.getPort(id);
    if (!p || !(c.isAdmin || p.projectId === callerProject(c))) throw notFound(`Port ${id} could not be found.`, 'id');
    return p;
  }

  async function visibleGroup(id: string, c: Caller, field = 'id'): Promise<SecurityGroupRecord> {
    const g = await queries.getSecurityGroup(id);
    if (!g || !(c.isAdmin || g.projectId === callerProject(c))) throw notFound(`Security group ${id} does not exist`, field);
    return g;
  }

  // ---- the default security group ------------------------------------------------------------

  const haveDefault = new Set<string>();

  /** Makes the project's default group unless it exists; concurrent callers meet one command id. */
  async function ensureDefaultGroup(projectId: string, c: Caller): Promise<string> {
    const id = defaultGroupId(projectId);
    if (!projectId || haveDefault.has(projectId)) return id;
    if (!(await queries.getSecurityGroup(id))) await makeDefaultGroup(writer, projectId, actorOf(c));
    haveDefault.add(projectId);
    return id;
  }

  /** Default group first, for the calls that meet a project's network resources. */
  const withDefault = (handler: Handler): Handler => async (req, c, enforce) => {
    const p = callerProject(c);
    if (p) await ensureDefaultGroup(p, c);
    return handler(req, c, enforce);
  };

  const projectTarget = (_req: Req, c: Caller) => ({ projectId: callerProject(c) });

  // ---- networks ------------------------------------------------------------------------------

  async function networkOut(id: string, c: Caller): Promise<Res> {
    return { network: networkView((await queries.getNetwork(id))!, c.isAdmin) };
  }

  rpc(
    'CreateNetwork',
    withDefault(async (req, c, enforce) => {
      const input = (req.network ?? {}) as Req;
      const projectId = ownerOf(input, c);
      enforce({ projectId });
      const requestId = requestIdOf(req);
      const id = derivedId('network', projectId, requestId);
      if (await queries.getNetwork(id)) return networkOut(id, c);
      const network: Network = {
        id,
        name: String(input.name ?? ''),
        projectId,
        adminStateUp: req.adminStateUp ?? true,
        shared: Boolean(input.shared),
        external: Boolean(input.external),
        mtu: Number(input.mtu ?? 0),
        networkType: String(input.networkType ?? ''),
        physicalNetwork: String(input.physicalNetwork ?? ''),
        segmentationId: Number(input.segmentationId ?? 0),
      };
      validateNetworkCommand({ type: 'CreateNetwork', network, segmentAllocated: false });
      await createNetwork(saga(c, projectId, requestId), network, ranges, c.isAdmin);
      return networkOut(id, c);
    }),
  );

  rpc('GetNetwork', withDefault(async (req, c, enforce) => {
    // Neutron: external networks are everyone's to see (routers' gateways, floating IPs).
    const external = await queries.getNetwork(required('id', req.id));
    const n = external?.external ? external : await visibleNetwork(required('id', req.id), c);
    if (!n.shared && !n.external) enforce({ projectId: n.projectId });
    return { network: networkView(n, c.isAdmin) };
  }));

  rpc(
    'ListNetworks',
    withDefault(async (req, c) => {
      const size = pageSize(req);
      const scope = c.isAdmin && (req.allProjects || !callerProject(c)) ? {} : { projectId: mustHaveProject(c) };
      const rows = await queries.listNetworks({ ...scope, withExternal: true, name: String(req.name ?? ''), limit: size + 1, marker: String(req.pageToken ?? '') });
      const { items, next } = page(rows, size);
      return { networks: items.map((n) => networkView(n, c.isAdmin)), nextPageToken: next };
    }),
    projectTarget,
  );

  rpc('UpdateNetwork', withDefault(async (req, c, enforce) => {
    const input = (req.network ?? {}) as Req;
    const n = await visibleNetwork(required('network.id', input.id), c, 'network.id');
    enforce({ projectId: n.projectId });
    const updateMask = updateMaskOf(req);
    const before = networkOf(n);
    const patch = { ...before, ...Object.fromEntries(updateMask.map((m) => [m, input[m]])), id: n.id };
    const command = { type: 'UpdateNetwork', network: patch, updateMask };
    validateNetworkCommand(command);
    await writer.send('network', n.id, command, actorOf(c));
    return networkOut(n.id, c);
  }));

  rpc('DeleteNetwork', withDefault(async (req, c, enforce) => {
    const n = await visibleNetwork(required('id', req.id), c);
    enforce({ projectId: n.projectId });
    await deleteNetwork(saga(c, n.projectId, requestIdOf(req)), networkOf(n), n.subnets);
    return {};
  }));

  // ---- subnets -------------------------------------------------------------------------------

  rpc('CreateSubnet', async (req, c, enforce) => {
    const input = (req.subnet ?? {}) as Req;
    const n = await visibleNetwork(required('subnet.network_id', input.networkId), c, 'subnet.network_id');
    // Only the network's owner (or an admin) adds subnets, shared or not.
    if (!c.isAdmin && n.projectId !== callerProject(c)) throw refuse('PERMISSION_DENIED', `subnet.network_id: only the owner of network ${n.id} may add subnets to it`, { field: 'subnet.network_id' });
    enforce({ projectId: n.projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('subnet', n.projectId, requestId);
    const existing = await queries.getSubnet(id);
    if (existing) return { subnet: subnetView(existing) };
    const subnet: Subnet = {
      id,
      networkId: n.id,
      projectId: n.projectId,
      name: String(input.name ?? ''),
      ipVersion: Number(input.ipVersion || 4),
      cidr: String(input.cidr ?? ''),
      gatewayIp: input.gatewayIp ? String(input.gatewayIp) : null,
      allocationPools: input.allocationPools ?? [],
      dnsNameservers: input.dnsNameservers ?? [],
      hostRoutes: input.hostRoutes ?? [],
      enableDhcp: req.enableDhcp ?? true,
    };
    const command = { type: 'CreateSubnet', subnet, noGateway: Boolean(req.noGateway) };
    validateNetworkCommand(command);
    // Neutron: the subnets of one network do not overlap.
    const cidr = parseCidr(subnet.cidr)!;
    for (const other of await queries.subnetsOf(n.id)) {
      const o2 = parseCidr(other.cidr);
      if (o2 && o2.version === cidr.version && (inCidr(o2, { version: cidr.version, value: cidr.network }) || inCidr(cidr, { version: o2.version, value: o2.network }))) {
        throw invalid('subnet.cidr', `${subnet.cidr} overlaps subnet ${other.id} (${other.cidr}) of network ${n.id}`);
      }
    }
    const s = saga(c, n.projectId, requestId);
    const cmd = (name: string) => ({ commandId: `network/${n.projectId}/${requestId}/subnet/${id}/${name}`, correlationId: requestId });
    await writer.send('network_quota', n.projectId, { type: 'ReserveNetworkQuota', consumerId: id, usage: { subnet: 1 } }, s.actor, cmd('reserve'));
    const reply = await writer.reply('subnet', id, command, s.actor, cmd('create'));
    if (reply.kind === 'rejected') {
      await writer.reply('network_quota', n.projectId, { type: 'ReleaseNetworkQuota', consumerId: id }, s.actor, cmd('release'));
      throw new ApiError(reply.rejection);
    }
    return { subnet: subnetView((await queries.getSubnet(id))!) };
  });

  rpc('GetSubnet', async (req, c, enforce) => {
    const s = await visibleSubnet(required('id', req.id), c);
    if (s.projectId === callerProject(c)) enforce({ projectId: s.projectId });
    return { subnet: subnetView(s) };
  });

  rpc(
    'ListSubnets',
    async (req, c) => {
      const size = pageSize(req);
      let networkIds: string[] | undefined;
      if (req.networkId) networkIds = [(await visibleNetwork(String(req.networkId), c, 'network_id')).id];
      else if (!c.isAdmin) networkIds = (await queries.listNetworks({ projectId: mustHaveProject(c), limit: 100_000 })).map((n) => n.id);
      const rows = await queries.listSubnets({ networkIds, limit: size + 1, marker: String(req.pageToken ?? '') });
      const { items, next } = page(rows, size);
      return { subnets: items.map(subnetView), nextPageToken: next };
    },
    projectTarget,
  );

  rpc('UpdateSubnet', async (req, c, enforce) => {
    const input = (req.subnet ?? {}) as Req;
    const s = await visibleSubnet(required('subnet.id', input.id), c, 'subnet.id');
    enforce({ projectId: s.projectId });
    const updateMask = updateMaskOf(req);
    const { usedIps: _u, ...before } = s;
    const patch = { ...before, ...Object.fromEntries(updateMask.map((m) => [m, input[m]])), id: s.id };
    const command = { type: 'UpdateSubnet', subnet: patch, updateMask };
    validateNetworkCommand(command);
    await writer.send('subnet', s.id, command, actorOf(c));
    return { subnet: subnetView((await queries.getSubnet(s.id))!) };
  });

  rpc('DeleteSubnet', async (req, c, enforce) => {
    const s = await visibleSubnet(required('id', req.id), c);
    enforce({ projectId: s.projectId });
    await writer.send('subnet', s.id, { type: 'DeleteSubnet' }, actorOf(c));
    await writer.send('network_quota', s.projectId, { type: 'ReleaseNetworkQuota', consumerId: s.id }, actorOf(c));
    return {};
  });

  // ---- ports ---------------------------------------------------------------------------------

  /** The groups of a port, each the project's (NOT_FOUND naming the entry otherwise). */
  async function portGroups(groups: string[], projectId: string, c: Caller): Promise<void> {
    for (const [i, g] of groups.entries()) {
      const found = await queries.getSecurityGroup(g);
      if (!found || found.projectId !== projectId) throw notFound(`port.security_groups[${i}]: Security group ${g} does not exist`, `port.security_groups[${i}]`);
    }
    void c;
  }

  /** The fixed IPs a request asks for, each on a subnet of the network (INVALID_ARGUMENT naming the entry otherwise). */
  async function fixedIpsAsked(networkId: string, asked: Req[], defaultOne: boolean): Promise<FixedIp[]> {
    const subnets = await queries.subnetsOf(networkId);
    if (asked.length === 0) {
      const first = defaultSubnet(subnets);
      return defaultOne && first ? [{ subnetId: first.id, ipAddress: '' }] : [];
    }
    return asked.map((f, i) => {
      let subnetId = String(f.subnetId ?? '');
      const ipAddress = String(f.ipAddress ?? '');
      const a = ipAddress ? parseCidr(`${ipAddress}/${ipAddress.includes(':') ? 128 : 32}`) : undefined;
      if (ipAddress && !a) throw invalid(`port.fixed_ips[${i}].ip_address`, `"${ipAddress}" is not an IP address`);
      if (!subnetId && a) {
        subnetId = subnets.find((x) => inCidr(parseCidr(x.cidr)!, { version: a.version, value: a.network }))?.id ?? '';
        if (!subnetId) throw invalid(`port.fixed_ips[${i}].ip_address`, `${ipAddress} is on no subnet of network ${networkId}`);
      }
      if (!subnetId) throw invalid(`port.fixed_ips[${i}].subnet_id`, 'is required (or an ip_address on one of the network\'s subnets)');
      if (!subnets.some((x) => x.id === subnetId)) throw invalid(`port.fixed_ips[${i}].subnet_id`, `subnet ${subnetId} is not on network ${networkId}`);
      return { subnetId, ipAddress };
    });
  }

  rpc('CreatePort', withDefault(async (req, c, enforce) => {
    const input = (req.port ?? {}) as Req;
    const n = await visibleNetwork(required('port.network_id', input.networkId), c, 'port.network_id');
    const projectId = ownerOf(input, c);
    enforce({ projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('port', projectId, requestId);
    const existing = await queries.getPort(id);
    if (existing) return { port: portView(existing) };

    // Fixed IPs: each on a subnet of this network; none asked: one of its first IPv4 subnet.
    const wanted = await fixedIpsAsked(n.id, (input.fixedIps ?? []) as Req[], true);

    const portSecurityEnabled = req.portSecurityEnabled ?? true;
    const named = (input.securityGroups ?? []) as string[];
    const securityGroups = named.length > 0 || !portSecurityEnabled ? named : [await ensureDefaultGroup(projectId, c)];
    const port: Port = {
      id,
      networkId: n.id,
      projectId,
      name: String(input.name ?? ''),
      macAddress: String(input.macAddress ?? ''),
      fixedIps: [],
      deviceOwner: String(input.deviceOwner ?? ''),
      deviceId: String(input.deviceId ?? ''),
      securityGroups,
      portSecurityEnabled,
      allowedAddressPairs: input.allowedAddressPairs ?? [],
      adminStateUp: req.adminStateUp ?? true,
    };
    // Every field rule before anything is taken (a placeholder MAC when it is to be drawn).
    validateNetworkCommand({ type: 'CreatePort', port: { ...port, macAddress: port.macAddress || 'fa:16:3e:00:00:00' } });
    await portGroups(securityGroups, projectId, c);
    await createPort(saga(c, projectId, requestId), port, wanted, port.deviceOwner);
    return { port: portView((await queries.getPort(id))!) };
  }));

  rpc('GetPort', async (req, c, enforce) => {
    const p = await visiblePort(required('id', req.id), c);
    enforce({ projectId: p.projectId });
    return { port: portView(p) };
  });

  rpc(
    'ListPorts',
    async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listPorts({
        ...(c.isAdmin ? {} : { projectId: mustHaveProject(c) }),
        networkId: String(req.networkId ?? ''),
        deviceId: String(req.deviceId ?? ''),
        limit: size + 1,
        marker: String(req.pageToken ?? ''),
      });
      const { items, next } = page(rows, size);
      return { ports: items.map(portView), nextPageToken: next };
    },
    projectTarget,
  );

  rpc('UpdatePort', async (req, c, enforce) => {
    const input = (req.port ?? {}) as Req;
    const p = await visiblePort(required('port.id', input.id), c);
    enforce({ projectId: p.projectId });
    const updateMask = updateMaskOf(req);
    // fixed_ips are addresses the subnets hand out: they change through the saga, after the rest is checked.
    const fields = updateMask.filter((m) => m !== 'fixedIps');
    const patch = { ...portOf(p), ...Object.fromEntries(fields.map((m) => [m, input[m]])), id: p.id };
    const command = { type: 'UpdatePort', port: patch, updateMask: fields };
    if (fields.length > 0 || !updateMask.includes('fixedIps')) validateNetworkCommand(command);
    const wanted = updateMask.includes('fixedIps') ? await fixedIpsAsked(p.networkId, (input.fixedIps ?? []) as Req[], false) : undefined;
    if (updateMask.includes('securityGroups')) await portGroups(patch.securityGroups, p.projectId, c);
    if (fields.length > 0) await writer.send('port', p.id, command, actorOf(c));
    if (wanted) await changeFixedIps(saga(c, p.projectId, requestIdOf(req)), portOf(p), wanted);
    return { port: portView((await queries.getPort(p.id))!) };
  });

  rpc('DeletePort', async (req, c, enforce) => {
    const p = await visiblePort(required('id', req.id), c);
    enforce({ projectId: p.projectId });
    const s = saga(c, p.projectId, requestIdOf(req));
    await deletePort(s, portOf(p));
    await disassociateFloatingIps(s, (await queries.listFloatingIps({ portId: p.id })).map((f) => f.id));
    return {};
  });

  // ---- security groups -----------------------------------------------------------------------

  rpc('CreateSecurityGroup', withDefault(async (req, c, enforce) => {
    const input = (req.securityGroup ?? {}) as Req;
    const projectId = ownerOf(input, c);
    enforce({ projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('security_group', projectId, requestId);
    const existing = await queries.getSecurityGroup(id);
    if (existing) return { securityGroup: groupView(existing) };
    const securityGroup: SecurityGroup = { id, projectId, name: String(input.name ?? ''), description: String(input.description ?? ''), stateful: true, isDefault: false };
    if (securityGroup.name === 'default') throw invalid('security_group.name', '"default" is the name of the project\'s default group');
    const command = { type: 'CreateSecurityGroup', securityGroup };
    validateNetworkCommand(command);
    const actor = actorOf(c);
    const cmd = (name: string) => ({ commandId: `network/${projectId}/${requestId}/security_group/${id}/${name}`, correlationId: requestId });
    await writer.send('network_quota', projectId, { type: 'ReserveNetworkQuota', consumerId: id, usage: { security_group: 1 } }, actor, cmd('reserve'));
    const reply = await writer.reply('security_group', id, command, actor, cmd('create'));
    if (reply.kind === 'rejected') {
      await writer.reply('network_quota', projectId, { type: 'ReleaseNetworkQuota', consumerId: id }, actor, cmd('release'));
      throw new ApiError(reply.rejection);
    }
    return { securityGroup: groupView((await queries.getSecurityGroup(id))!) };
  }));

  rpc('GetSecurityGroup', withDefault(async (req, c, enforce) => {
    const g = await visibleGroup(required('id', req.id), c);
    enforce({ projectId: g.projectId });
    return { securityGroup: groupView(g) };
  }));

  rpc(
    'ListSecurityGroups',
    withDefault(async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listSecurityGroups({ ...(c.isAdmin ? {} : { projectId: mustHaveProject(c) }), limit: size + 1, marker: String(req.pageToken ?? '') });
      const { items, next } = page(rows, size);
      return { securityGroups: items.map(groupView), nextPageToken: next };
    }),
    projectTarget,
  );

  rpc('UpdateSecurityGroup', withDefault(async (req, c, enforce) => {
    const input = (req.securityGroup ?? {}) as Req;
    const g = await visibleGroup(required('security_group.id', input.id), c, 'security_group.id');
    enforce({ projectId: g.projectId });
    const updateMask = updateMaskOf(req);
    const { rules: _r, ...before } = g;
    const patch = { ...before, ...Object.fromEntries(updateMask.map((m) => [m, input[m]])), id: g.id };
    if (g.isDefault && updateMask.includes('name') && patch.name !== 'default') throw invalid('security_group.name', 'the default group keeps its name');
    const command = { type: 'UpdateSecurityGroup', securityGroup: patch, updateMask };
    validateNetworkCommand(command);
    await writer.send('security_group', g.id, command, actorOf(c));
    return { securityGroup: groupView((await queries.getSecurityGroup(g.id))!) };
  }));

  rpc('DeleteSecurityGroup', withDefault(async (req, c, enforce) => {
    const g = await visibleGroup(required('id', req.id), c);
    enforce({ projectId: g.projectId });
    const users = await queries.portsUsingGroup(g.id);
    if (users.length > 0) throw refuse('FAILED_PRECONDITION', `Security Group ${g.id} in use: ${users.length} port(s) use it (${users.slice(0, 3).join(', ')})`, { state: 'in use' });
    await writer.send('security_group', g.id, { type: 'DeleteSecurityGroup' }, actorOf(c));
    if (!g.isDefault) await writer.send('network_quota', g.projectId, { type: 'ReleaseNetworkQuota', consumerId: g.id }, actorOf(c));
    else haveDefault.delete(g.projectId);
    return {};
  }));

  // ---- security group rules ------------------------------------------------------------------

  async function visibleRule(id: string, c: Caller): Promise<SecurityGroupRuleRecord> {
    const r = await queries.getRule(id);
    if (!r || !(c.isAdmin || r.projectId === callerProject(c))) throw notFound(`Security group rule ${id} does not exist`, 'id');
    return r;
  }

  rpc('CreateSecurityGroupRule', async (req, c, enforce) => {
    const g = await visibleGroup(required('security_group_id', req.securityGroupId), c, 'security_group_id');
    enforce({ projectId: g.projectId });
    const input = (req.rule ?? {}) as Req;
    const requestId = requestIdOf(req);
    const id = derivedId('security_group_rule', g.id, requestId);
    const existing = await queries.getRule(id);
    if (existing) return { rule: ruleView(existing) };
    const rule: SecurityGroupRule = {
      id,
      direction: String(input.direction ?? ''),
      ethertype: String(input.ethertype || 'IPv4'),
      protocol: String(input.protocol ?? ''),
      portRangeMin: input.portRangeMin ?? null,
      portRangeMax: input.portRangeMax ?? null,
      remoteIpPrefix: String(input.remoteIpPrefix ?? ''),
      remoteGroupId: String(input.remoteGroupId ?? ''),
      description: String(input.description ?? ''),
    };
    const command = { type: 'AddSecurityGroupRule', rule };
    validateNetworkCommand(command);
    if (rule.remoteGroupId) await visibleGroup(rule.remoteGroupId, c, 'rule.remote_group_id');
    await writer.send('security_group', g.id, command, actorOf(c), { commandId: `network/${g.projectId}/${requestId}/rule/${id}`, correlationId: requestId });
    return { rule: ruleView((await queries.getRule(id))!) };
  });

  rpc('GetSecurityGroupRule', async (req, c, enforce) => {
    const r = await visibleRule(required('id', req.id), c);
    enforce({ projectId: r.projectId });
    return { rule: ruleView(r) };
  });

  rpc(
    'ListSecurityGroupRules',
    async (req, c) => {
      if (req.securityGroupId) await visibleGroup(String(req.securityGroupId), c, 'security_group_id');
      const rules = await queries.listRules({ ...(c.isAdmin ? {} : { projectId: mustHaveProject(c) }), securityGroupId: String(req.securityGroupId ?? '') });
      return { rules: rules.map(ruleView) };
    },
    projectTarget,
  );

  rpc('DeleteSecurityGroupRule', async (req, c, enforce) => {
    const r = await visibleRule(required('id', req.id), c);
    enforce({ projectId: r.projectId });
    await writer.send('security_group', r.securityGroupId, { type: 'RemoveSecurityGroupRule', ruleId: r.id }, actorOf(c));
    return {};
  });

  // ---- quotas (Neutron's quotas API) ---------------------------------------------------------

  const quotaProject = (req: Req, c: Caller) => String(req.projectId || callerProject(c));
  const quotaOut = async (projectId: string): Promise<Res> => ({ quota: await queries.getNetworkQuota(projectId) });

  rpc('GetNetworkQuota', async (req, c, enforce) => {
    const projectId = required('project_id', quotaProject(req, c));
    // Another project's quota is NOT_FOUND to a non-admin, as another project's resources are.
    if (!c.isAdmin && projectId !== callerProject(c)) throw notFound(`Quota for project ${projectId} could not be found.`, 'project_id');
    enforce({ projectId });
    return quotaOut(projectId);
  });

  rpc(
    'SetNetworkQuota',
    async (req, c) => {
      const projectId = required('project_id', req.projectId);
      const limits = Object.fromEntries(Object.entries((req.limits ?? {}) as Record<string, unknown>).map(([k, v]) => [k, Number(v)]));
      const command = { type: 'SetNetworkQuotaLimits', limits };
      validateNetworkCommand(command);
      await writer.send('network_quota', projectId, command, actorOf(c));
      return quotaOut(projectId);
    },
    () => ({}),
  );

  registerRouterRpcs({ rpc, writer, queries, saga, ownerOf, mustHaveProject, visibleSubnet, visiblePort });

  return impl;
}
