// NetworkService's routers and floating IPs (Neutron's L3 API): the RPCs mounted by
// createNetworkService with its wrapper (authentication, the policy rule, errors). The checks
// that need several resources (an external network, a subnet's gateway, the router a floating IP
// goes through) are made here from the read models, with Neutron's messages; the ones on one
// aggregate's state are its decider's (routerRefusal: made here first on the read model, so a
// refused interface takes no port and no address). Another project's router, floating IP, port
// or subnet is NOT_FOUND; external networks are everyone's to see.
import { canonicalIp, inCidr, parseCidr, parseIp } from '../../domains/network/ip.js';
import type { ExternalGatewayInfo, FixedIp, FloatingIp, Port, Router } from '../../domains/network/network.types.js';
import { routerRefusal, type RouterInterface, type RouterInterfaceSubnet } from '../../domains/network/router.machine.js';
import { validateNetworkCommand } from '../../domains/network/network.validation.js';
import type { FloatingIpRecord, NetworkQueries, NetworkRecord, PortRecord, RouterRecord, SubnetRecord } from '../../projections/network/network.queries.js';
import { ApiError, invalid, refuse } from '../errors.js';
import type { Caller, Target } from '../policy/policy.js';
import type { SagaContext } from './network.sagas.js';
import { actorOf, callerProject, derivedId, pageSize, requestIdOf, required, updateMaskOf, type Req, type Res } from '../request.js';
import { page } from './network.service.js';
import {
  addRouterInterfaceByPort, addRouterInterfaceBySubnet, clearRouterGateway, createFloatingIp, createRouter, deleteFloatingIp, deleteRouter, floatingIpPortId, l3PortId,
  removeRouterInterface, setRouterGateway, type GatewayRequest,
} from './router.sagas.js';
import type { NetworkWriter } from './network.writer.js';
import type { RegisterRpc } from '../unary-rpc.js';

/** What the L3 RPCs borrow from createNetworkService. */
export interface RouterRpcDeps {
  rpc: RegisterRpc;
  writer: NetworkWriter;
  queries: NetworkQueries;
  saga: (c: Caller, projectId: string, requestId: string) => SagaContext;
  ownerOf: (input: Req, c: Caller) => string;
  mustHaveProject: (c: Caller) => string;
  visibleSubnet: (id: string, c: Caller, field?: string) => Promise<SubnetRecord>;
  visiblePort: (id: string, c: Caller) => Promise<PortRecord>;
}

const notFound = (message: string, field: string) => new ApiError({ code: 'NOT_FOUND', message, field });
const bad = (resource: string, field: string, message: string) => new ApiError({ code: 'INVALID_ARGUMENT', field, message: `Bad ${resource} request: ${message}` });
const isV4 = (address: string) => parseIp(address)?.version === 4;

const portOf = (p: PortRecord): Port => {
  const { status: _s, hostId: _h, ...port } = p;
  return port;
};

export const routerView = (r: RouterRecord): Res => ({
  id: r.id,
  projectId: r.projectId,
  name: r.name,
  adminStateUp: r.adminStateUp,
  status: r.status,
  ...(r.externalGatewayInfo ? { externalGatewayInfo: r.externalGatewayInfo } : {}),
  interfacesInfo: r.interfaces.map((i) => ({ portId: i.portId, subnetId: i.subnetId, ipAddress: i.ipAddress })),
});

const floatingIpView = (f: FloatingIpRecord): Res => ({ ...f });

/** The router's interfaces as its decider holds them, from the read model. */
const interfacesOf = (r: RouterRecord): RouterInterface[] => {
  const byPort = new Map<string, RouterInterfaceSubnet[]>();
  for (const i of r.interfaces) byPort.set(i.portId, [...(byPort.get(i.portId) ?? []), { subnetId: i.subnetId, cidr: i.cidr }]);
  return [...byPort].map(([portId, subnets]) => ({ portId, subnets }));
};

export function registerRouterRpcs(d: RouterRpcDeps): void {
  const { rpc, writer, queries } = d;

  async function visibleRouter(id: string, c: Caller, field = 'id'): Promise<RouterRecord> {
    const r = await queries.getRouter(id);
    if (!r || !(c.isAdmin || r.projectId === callerProject(c))) throw notFound(`Router ${id} could not be found`, field);
    return r;
  }

  async function visibleFloatingIp(id: string, c: Caller, field = 'id'): Promise<FloatingIpRecord> {
    const f = await queries.getFloatingIp(id);
    if (!f || !(c.isAdmin || f.projectId === callerProject(c))) throw notFound(`Floating IP ${id} could not be found`, field);
    return f;
  }

  /** An external network, by id (external networks are visible to every project). */
  async function externalNetwork(id: string, c: Caller, field: string, resource: string, notExternal: string): Promise<NetworkRecord> {
    const n = await queries.getNetwork(id);
    if (!n || !(c.isAdmin || n.shared || n.external || n.projectId === callerProject(c))) throw notFound(`Network ${id} could not be found.`, field);
    if (!n.external) throw bad(resource, field, notExternal);
    return n;
  }

  /** Which subnet of the network an address is on; '' when none. */
  async function subnetHolding(networkId: string, address: string): Promise<string> {
    const a = parseIp(address);
    const subnets = await queries.subnetsOf(networkId);
    return subnets.find((s) => a && inCidr(parseCidr(s.cidr)!, a))?.id ?? '';
  }

  /** The first IPv4 subnet of a network (where an address is drawn when none is named), or undefined. */
  const firstV4 = async (networkId: string) => {
    const subnets = await queries.subnetsOf(networkId);
    return subnets.find((s) => s.ipVersion === 4) ?? subnets[0];
  };

  // ---- routers -------------------------------------------------------------------------------

  /** external_gateway_info as asked: an external network; SNAT and fixed IPs are the admins' (Neutron's policy). */
  async function gatewayRequest(input: Req, c: Caller, p: string): Promise<GatewayRequest> {
    const networkId = required(`${p}.network_id`, input.networkId);
    const n = await externalNetwork(networkId, c, `${p}.network_id`, 'router', `Network ${networkId} is not an external network`);
    if (!c.isAdmin && input.enableSnat !== undefined && input.enableSnat !== null) {
      throw refuse('PERMISSION_DENIED', `${p}.enable_snat: only an admin may set enable_snat`, { field: `${p}.enable_snat` });
    }
    const asked = (input.externalFixedIps ?? []) as Req[];
    if (!c.isAdmin && asked.length > 0) throw refuse('PERMISSION_DENIED', `${p}.external_fixed_ips: only an admin may choose the gateway's addresses`, { field: `${p}.external_fixed_ips` });
    const subnets = await queries.subnetsOf(n.id);
    let wanted: FixedIp[];
    if (asked.length > 0) {
      wanted = await Promise.all(asked.map(async (f, i) => {
        const field = `${p}.external_fixed_ips[${i}]`;
        const ipAddress = String(f.ipAddress ?? '');
        if (ipAddress && !parseIp(ipAddress)) throw invalid(`${field}.ip_address`, `"${ipAddress}" is not an IP address`);
        const subnetId = String(f.subnetId || (ipAddress ? await subnetHolding(n.id, ipAddress) : ''));
        if (!subnets.some((s) => s.id === subnetId)) throw invalid(`${field}.subnet_id`, `no subnet ${subnetId || `holding ${ipAddress}`} on network ${n.id}`);
        return { subnetId, ipAddress };
      }));
    } else {
      const first = await firstV4(n.id);
      if (!first) throw bad('router', `${p}.network_id`, `No IPs available for external network ${n.id}`);
      wanted = [{ subnetId: first.id, ipAddress: '' }];
    }
    return { networkId: n.id, enableSnat: input.enableSnat ?? true, wanted };
  }

  async function currentGateway(r: RouterRecord): Promise<{ info: ExternalGatewayInfo; port: Port | undefined } | null> {
    if (!r.externalGatewayInfo) return null;
    const p = r.gatewayPortId ? await queries.getPort(r.gatewayPortId) : undefined;
    return { info: r.externalGatewayInfo, port: p && portOf(p) };
  }

  /** Neutron's RouterExternalGatewayInUseByFloatingIp. */
  async function gatewayNotNeeded(r: RouterRecord): Promise<void> {
    const users = await queries.listFloatingIps({ routerId: r.id, limit: 1 });
    if (users.length > 0) {
      throw refuse('FAILED_PRECONDITION', `Gateway cannot be updated for router ${r.id}, since a gateway to external network ${r.externalGatewayInfo?.networkId ?? ''} is required by one or more floating IPs.`, { state: 'in use' });
    }
  }

  const routerOut = async (id: string) => ({ router: routerView((await queries.getRouter(id))!) });

  rpc('CreateRouter', async (req, c, enforce) => {
    const input = (req.router ?? {}) as Req;
    const projectId = d.ownerOf(input, c);
    enforce({ projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('router', projectId, requestId);
    if (await queries.getRouter(id)) return routerOut(id);
    const router: Router = { id, projectId, name: String(input.name ?? ''), adminStateUp: req.adminStateUp ?? true, externalGatewayInfo: null };
    validateNetworkCommand({ type: 'CreateRouter', router });
    const gw = input.externalGatewayInfo ? await gatewayRequest(input.externalGatewayInfo, c, 'router.external_gateway_info') : null;
    await createRouter(d.saga(c, projectId, requestId), router, gw);
    return routerOut(id);
  });

  rpc('GetRouter', async (req, c, enforce) => {
    const r = await visibleRouter(required('id', req.id), c);
    enforce({ projectId: r.projectId });
    return { router: routerView(r) };
  });

  rpc(
    'ListRouters',
    async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listRouters({
        ...(c.isAdmin ? {} : { projectId: d.mustHaveProject(c) }),
        name: String(req.name ?? ''),
        externalNetworkId: String(req.externalNetworkId ?? ''),
        limit: size + 1,
        marker: String(req.pageToken ?? ''),
      });
      const { items, next } = page(rows, size);
      return { routers: items.map(routerView), nextPageToken: next };
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  rpc('UpdateRouter', async (req, c, enforce) => {
    const input = (req.router ?? {}) as Req;
    const r = await visibleRouter(required('router.id', input.id), c, 'router.id');
    enforce({ projectId: r.projectId });
    const updateMask = updateMaskOf(req);
    const fields = updateMask.filter((m) => m !== 'externalGatewayInfo');
    const gateway = updateMask.includes('externalGatewayInfo');
    const before: Router = { id: r.id, projectId: r.projectId, name: r.name, adminStateUp: r.adminStateUp, externalGatewayInfo: r.externalGatewayInfo };
    const command = { type: 'UpdateRouter', router: { ...before, ...Object.fromEntries(fields.map((m) => [m, input[m]])) }, updateMask: fields };
    if (fields.length > 0 || !gateway) validateNetworkCommand(command);
    const s = d.saga(c, r.projectId, requestIdOf(req));
    if (gateway) {
      const asked = input.externalGatewayInfo as Req | undefined;
      if (!asked?.networkId) {
        if (r.externalGatewayInfo) await gatewayNotNeeded(r);
        await clearRouterGateway(s, r.id, (await currentGateway(r))?.port);
      } else {
        const gw = await gatewayRequest(asked, c, 'router.external_gateway_info');
        if (r.externalGatewayInfo && r.externalGatewayInfo.networkId !== gw.networkId) await gatewayNotNeeded(r);
        await setRouterGateway(s, r, gw, await currentGateway(r));
      }
    }
    if (fields.length > 0) await writer.send('router', r.id, command, actorOf(c));
    return routerOut(r.id);
  });

  rpc('DeleteRouter', async (req, c, enforce) => {
    const r = await visibleRouter(required('id', req.id), c);
    enforce({ projectId: r.projectId });
    await deleteRouter(d.saga(c, r.projectId, requestIdOf(req)), r, (await currentGateway(r))?.port);
    return {};
  });

  /** The refusal the router's decider would give, asked of the read model before anything is taken. */
  function interfaceRefusal(r: RouterRecord, portId: string, subnets: RouterInterfaceSubnet[]): void {
    const no = routerRefusal({ router: null, interfaces: interfacesOf(r), gatewayPortId: r.gatewayPortId }, { type: 'AddRouterInterface', portId, subnets, meta: { aggregateId: r.id } as never });
    if (no) throw new ApiError(no);
  }

  const interfaceInfo = (r: RouterRecord, portId: string, networkId: string, subnetIds: string[]): Res => ({
    routerId: r.id, projectId: r.projectId, portId, networkId, subnetId: subnetIds[0] ?? '', subnetIds,
  });

  rpc('AddRouterInterface', async (req, c, enforce) => {
    const r = await visibleRouter(required('router_id', req.routerId), c, 'router_id');
    enforce({ projectId: r.projectId });
    if (req.subnetId && req.portId) throw bad('router', 'port_id', 'Cannot specify both subnet-id and port-id');
    if (!req.subnetId && !req.portId) throw bad('router', 'subnet_id', 'Either subnet_id or port_id must be specified');
    const requestId = requestIdOf(req);
    const s = d.saga(c, r.projectId, requestId);
    if (req.subnetId) {
      const sub = await d.visibleSubnet(String(req.subnetId), c, 'subnet_id');
      if (!sub.gatewayIp) throw bad('router', 'subnet_id', 'Subnet for router interface must have a gateway IP');
      // A retried request: its port is an interface of the router already.
      const retried = l3PortId('interface', r.id, requestId);
      if (r.interfaces.some((i) => i.portId === retried)) return interfaceInfo(r, retried, sub.networkId, [sub.id]);
      interfaceRefusal(r, 'new-interface', [{ subnetId: sub.id, cidr: sub.cidr }]);
      const port = await addRouterInterfaceBySubnet(s, r, { id: sub.id, networkId: sub.networkId, cidr: sub.cidr, gatewayIp: sub.gatewayIp });
      return interfaceInfo(r, port.id, sub.networkId, [sub.id]);
    }
    const p = await d.visiblePort(String(req.portId), c);
    if (p.deviceOwner || p.deviceId) {
      if (p.deviceId === r.id && r.interfaces.some((i) => i.portId === p.id)) return interfaceInfo(r, p.id, p.networkId, [...new Set(p.fixedIps.map((f) => f.subnetId))]);
      throw refuse('FAILED_PRECONDITION', `Unable to complete operation on port ${p.id} for network ${p.networkId}. Port already has an attached device ${p.deviceId || p.deviceOwner}.`, { state: 'in use', field: 'port_id' });
    }
    if (p.fixedIps.length === 0) throw bad('router', 'port_id', 'Router port must have at least one fixed IP');
    if (new Set(p.fixedIps.filter((f) => isV4(f.ipAddress)).map((f) => f.subnetId)).size > 1) throw bad('router', 'port_id', 'Cannot have multiple IPv4 subnets on router port');
    const subnets: RouterInterfaceSubnet[] = [];
    for (const subnetId of new Set(p.fixedIps.map((f) => f.subnetId))) {
      const sub = await queries.getSubnet(subnetId);
      if (sub) subnets.push({ subnetId, cidr: sub.cidr });
    }
    interfaceRefusal(r, p.id, subnets);
    await addRouterInterfaceByPort(s, r.id, portOf(p), subnets);
    return interfaceInfo(r, p.id, p.networkId, subnets.map((x) => x.subnetId));
  });

  rpc('RemoveRouterInterface', async (req, c, enforce) => {
    const r = await visibleRouter(required('router_id', req.routerId), c, 'router_id');
    enforce({ projectId: r.projectId });
    const portId = String(req.portId ?? '');
    const subnetId = String(req.subnetId ?? '');
    if (!portId && !subnetId) throw bad('router', 'subnet_id', 'Either subnet_id or port_id must be specified');
    // Neutron's RouterInterfaceInUseByFloatingIP: a floating IP NATs to an address behind this interface.
    const named = r.interfaces.filter((i) => (portId ? i.portId === portId : i.subnetId === subnetId));
    const portsOfInterface = new Set(named.map((i) => i.portId));
    const detached = r.interfaces.filter((i) => portsOfInterface.has(i.portId));
    for (const fip of await queries.listFloatingIps({ routerId: r.id })) {
      const a = parseIp(fip.fixedIpAddress);
      const behind = detached.find((i) => a && inCidr(parseCidr(i.cidr)!, a));
      if (behind) {
        throw refuse('FAILED_PRECONDITION', `Router interface for subnet ${behind.subnetId} on router ${r.id} cannot be deleted, as it is required by one or more floating IPs.`, { state: 'in use' });
      }
    }
    const s = d.saga(c, r.projectId, requestIdOf(req));
    const out = await removeRouterInterface(s, r.id, { portId, subnetId }, async (id) => {
      const p = await queries.getPort(id);
      return p && portOf(p);
    });
    const subnetIds = out.subnets.map((x) => x.subnetId);
    return interfaceInfo(r, out.portId, out.port?.networkId ?? '', subnetIds);
  });

  // ---- floating IPs --------------------------------------------------------------------------

  /**
   * The association of a floating IP of `networkId` with a port: its fixed IP (the one named, or
   * its only IPv4 one) and the router whose interface is on that subnet and gateway on the network.
   */
  async function association(networkId: string, input: Req, c: Caller, fipId: string): Promise<Pick<FloatingIp, 'portId' | 'fixedIpAddress' | 'routerId'> & { check: (address: string) => Promise<void> }> {
    const portId = String(input.portId ?? '');
    const p = await queries.getPort(portId);
    if (!p || !(c.isAdmin || p.projectId === callerProject(c))) throw notFound(`Port ${portId} could not be found.`, 'floating_ip.port_id');
    const asked = String(input.fixedIpAddress ?? '');
    let fixed: FixedIp | undefined;
    if (asked) {
      fixed = p.fixedIps.find((f) => f.ipAddress === canonicalIp(asked));
      if (!fixed) throw bad('floatingip', 'floating_ip.fixed_ip_address', `Port ${p.id} does not have fixed ip ${asked}`);
    } else {
      const v4 = p.fixedIps.filter((f) => isV4(f.ipAddress));
      if (v4.length === 0) throw bad('floatingip', 'floating_ip.port_id', `Cannot add floating IP to port ${p.id} that has no fixed IPv4 addresses`);
      if (v4.length > 1) throw bad('floatingip', 'floating_ip.fixed_ip_address', `Port ${p.id} has multiple fixed IPv4 addresses. Must provide a specific IPv4 address when assigning a floating IP`);
      fixed = v4[0];
    }
    const [routerId] = await queries.routersBetween(fixed.subnetId, networkId);
    if (!routerId) {
      throw notFound(`External network ${networkId} is not reachable from subnet ${fixed.subnetId}.  Therefore, cannot associate Port ${p.id} with a Floating IP.`, 'floating_ip.port_id');
    }
    const check = async (address: string) => {
      const taken = (await queries.listFloatingIps({ portId: p.id })).find((f) => f.id !== fipId && f.fixedIpAddress === fixed!.ipAddress && f.floatingNetworkId === networkId);
      if (taken) {
        throw refuse('ALREADY_EXISTS', `Cannot associate floating IP ${address} (${fipId}) with port ${p.id} using fixed IP ${fixed!.ipAddress}, as that fixed IP already has a floating IP on external network ${networkId}.`, { field: 'floating_ip.port_id' });
      }
    };
    return { portId: p.id, fixedIpAddress: fixed.ipAddress, routerId, check };
  }

  const fipOut = async (id: string) => ({ floatingIp: floatingIpView((await queries.getFloatingIp(id))!) });

  rpc('CreateFloatingIp', async (req, c, enforce) => {
    const input = (req.floatingIp ?? {}) as Req;
    const projectId = d.ownerOf(input, c);
    enforce({ projectId });
    const requestId = requestIdOf(req);
    const id = derivedId('floatingip', projectId, requestId);
    if (await queries.getFloatingIp(id)) return fipOut(id);
    const networkId = required('floating_ip.floating_network_id', input.floatingNetworkId);
    await externalNetwork(networkId, c, 'floating_ip.floating_network_id', 'floatingip', `Network ${networkId} is not a valid external network`);
    const address = String(input.floatingIpAddress ?? '');
    let wanted: FixedIp[];
    if (address) {
      if (!c.isAdmin) throw refuse('PERMISSION_DENIED', 'floating_ip.floating_ip_address: only an admin may choose the address', { field: 'floating_ip.floating_ip_address' });
      if (!parseIp(address)) throw invalid('floating_ip.floating_ip_address', `"${address}" is not an IP address`);
      const subnetId = await subnetHolding(networkId, address);
      if (!subnetId) throw invalid('floating_ip.floating_ip_address', `${address} is on no subnet of network ${networkId}`);
      wanted = [{ subnetId, ipAddress: address }];
    } else {
      const first = (await queries.subnetsOf(networkId)).find((s) => s.ipVersion === 4);
      if (!first) throw bad('floatingip', 'floating_ip.floating_network_id', `Network ${networkId} does not contain any IPv4 subnet`);
      wanted = [{ subnetId: first.id, ipAddress: '' }];
    }
    const linked = input.portId ? await association(networkId, input, c, id) : undefined;
    const fip: FloatingIp = {
      id, projectId, floatingNetworkId: networkId, floatingIpAddress: '', portId: linked?.portId ?? '', fixedIpAddress: linked?.fixedIpAddress ?? '',
      routerId: linked?.routerId ?? '', status: 'DOWN',
    };
    await createFloatingIp(d.saga(c, projectId, requestId), fip, wanted, linked?.check ?? (async () => undefined));
    return fipOut(id);
  });

  rpc('GetFloatingIp', async (req, c, enforce) => {
    const f = await visibleFloatingIp(required('id', req.id), c);
    enforce({ projectId: f.projectId });
    return { floatingIp: floatingIpView(f) };
  });

  rpc(
    'ListFloatingIps',
    async (req, c) => {
      const size = pageSize(req);
      const rows = await queries.listFloatingIps({
        ...(c.isAdmin ? {} : { projectId: d.mustHaveProject(c) }),
        portId: String(req.portId ?? ''),
        routerId: String(req.routerId ?? ''),
        floatingNetworkId: String(req.floatingNetworkId ?? ''),
        status: String(req.status ?? ''),
        floatingIpAddress: String(req.floatingIpAddress ?? ''),
        limit: size + 1,
        marker: String(req.pageToken ?? ''),
      });
      const { items, next } = page(rows, size);
      return { floatingIps: items.map(floatingIpView), nextPageToken: next };
    },
    (_req, c) => ({ projectId: callerProject(c) }),
  );

  rpc('UpdateFloatingIp', async (req, c, enforce) => {
    const input = (req.floatingIp ?? {}) as Req;
    const f = await visibleFloatingIp(required('floating_ip.id', input.id), c, 'floating_ip.id');
    enforce({ projectId: f.projectId });
    const updateMask = updateMaskOf(req);
    if (updateMask.length === 0) throw invalid('update_mask', 'name the fields to change (any of port_id, fixed_ip_address)');
    for (const m of updateMask) {
      if (m !== 'portId' && m !== 'fixedIpAddress') throw invalid('update_mask', `floating_ip field ${m.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`)} cannot be changed (port_id, fixed_ip_address)`);
    }
    const portId = updateMask.includes('portId') ? String(input.portId ?? '') : f.portId;
    let next: Pick<FloatingIp, 'portId' | 'fixedIpAddress' | 'routerId'> = { portId: '', fixedIpAddress: '', routerId: '' };
    if (portId) {
      const linked = await association(f.floatingNetworkId, { portId, fixedIpAddress: updateMask.includes('fixedIpAddress') ? input.fixedIpAddress : '' }, c, f.id);
      await linked.check(f.floatingIpAddress);
      next = { portId: linked.portId, fixedIpAddress: linked.fixedIpAddress, routerId: linked.routerId };
    }
    await writer.send('floating_ip', f.id, { type: 'UpdateFloatingIp', floatingIp: next }, actorOf(c));
    return fipOut(f.id);
  });

  rpc('DeleteFloatingIp', async (req, c, enforce) => {
    const f = await visibleFloatingIp(required('id', req.id), c);
    enforce({ projectId: f.projectId });
    const p = await queries.getPort(floatingIpPortId(f.id));
    await deleteFloatingIp(d.saga(c, f.projectId, requestIdOf(req)), f, p && portOf(p));
    return {};
  });
}
