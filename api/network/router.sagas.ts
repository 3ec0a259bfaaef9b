// The routers' and floating IPs' multi-aggregate writes, as sagas with compensation like those of
// network.sagas.ts. The ports Neutron's L3 service makes for itself are ordinary ports, made and
// deleted through createPort / deletePort:
//
//   create router     = reserve quota (router) + CreateRouter (+ set gateway)
//   set gateway       = a port on the external network (network:router_gateway, no quota) +
//                       SetRouterGateway + delete the gateway port it replaced
//   clear gateway     = ClearRouterGateway + delete its port
//   delete router     = DeleteRouter (refused while it has interfaces) + delete its gateway port +
//                       ReleaseNetworkQuota
//   add interface     = by subnet: a port holding the subnet's gateway IP
//                       (network:router_interface) + AddRouterInterface (the router refuses a
//                       subnet twice or overlapping CIDRs: the port is deleted again);
//                       by port: AddRouterInterface + the port's device_owner and device_id
//   remove interface  = RemoveRouterInterface + delete its port
//   create floating IP = reserve quota (floatingip) + a port on the external network holding the
//                       address (network:floatingip, no quota) + CreateFloatingIp
//   delete floating IP = DeleteFloatingIp + delete its port + ReleaseNetworkQuota
import { createHash } from 'node:crypto';
import {
  FLOATING_IP_OWNER, ROUTER_GATEWAY_OWNER, ROUTER_INTERFACE_OWNER, type ExternalGatewayInfo, type FixedIp, type FloatingIp, type Port, type Router,
} from '../../domains/network/network.types.js';
import type { RouterInterfaceSubnet } from '../../domains/network/router.machine.js';
import { ApiError } from '../errors.js';
import { createPort, deletePort, step, type SagaContext } from './network.sagas.js';

/** A port id derived from what owns it and the request (a retry makes the same port). */
export const l3PortId = (kind: string, ownerId: string, requestId: string) => createHash('sha256').update(`strata/port/${kind}/${ownerId}/${requestId}`).digest('hex').slice(0, 32);

/** The port holding a floating IP's address: one per floating IP. */
export const floatingIpPortId = (floatingIpId: string) => l3PortId('floatingip', floatingIpId, '');

/** A port the L3 service owns: no security groups, no port security, no name. */
function l3Port(id: string, networkId: string, projectId: string, deviceOwner: string, deviceId: string): Port {
  return { id, networkId, projectId, name: '', macAddress: '', fixedIps: [], deviceOwner, deviceId, securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [], adminStateUp: true };
}

/** A gateway as asked: the external network, SNAT and the addresses wanted ('' = the next free one). */
export interface GatewayRequest {
  networkId: string;
  enableSnat: boolean;
  wanted: FixedIp[];
}

/** The gateway a router has now, with its port. */
export interface CurrentGateway {
  info: ExternalGatewayInfo;
  port: Port | undefined;
}

/**
 * Gives a router a gateway. SNAT alone changing keeps the port; another network (or other
 * addresses) makes a new port first and deletes the replaced one after.
 */
export async function setRouterGateway(s: SagaContext, router: Pick<Router, 'id' | 'projectId'>, gw: GatewayRequest, current: CurrentGateway | null): Promise<void> {
  const cmd = (name: string) => step(s, 'router', router.id, name);
  if (current?.port && current.info.networkId === gw.networkId && gw.wanted.every((w) => current.info.externalFixedIps.some((f) => f.subnetId === w.subnetId && (!w.ipAddress || w.ipAddress === f.ipAddress)))) {
    await s.writer.send('router', router.id, { type: 'SetRouterGateway', externalGatewayInfo: { ...current.info, enableSnat: gw.enableSnat }, portId: current.port.id }, s.actor, cmd('snat'));
    return;
  }
  const port = await createPort(s, l3Port(l3PortId('gateway', router.id, s.requestId), gw.networkId, router.projectId, ROUTER_GATEWAY_OWNER, router.id), gw.wanted, ROUTER_GATEWAY_OWNER, { countQuota: false });
  const info: ExternalGatewayInfo = { networkId: gw.networkId, enableSnat: gw.enableSnat, externalFixedIps: port.fixedIps };
  const reply = await s.writer.reply('router', router.id, { type: 'SetRouterGateway', externalGatewayInfo: info, portId: port.id }, s.actor, cmd('gateway'));
  if (reply.kind === 'rejected') {
    await deletePort(s, port, true);
    throw new ApiError(reply.rejection);
  }
  const [set] = s.writer.events('router', reply);
  if (current?.port && set?.replacedPortId === current.port.id) await deletePort(s, current.port, true);
}

/** Takes a router's gateway away and deletes its port. */
export async function clearRouterGateway(s: SagaContext, routerId: string, gatewayPort: Port | undefined): Promise<void> {
  const reply = await s.writer.send('router', routerId, { type: 'ClearRouterGateway' }, s.actor, step(s, 'router', routerId, 'clear-gateway'));
  const [cleared] = s.writer.events('router', reply);
  if (cleared && gatewayPort && cleared.portId === gatewayPort.id) await deletePort(s, gatewayPort, true);
}

/** Creates a router (with its gateway when asked); nothing is left when a step fails. */
export async function createRouter(s: SagaContext, router: Router, gw: GatewayRequest | null): Promise<void> {
  const cmd = (name: string) => step(s, 'router', router.id, name);
  const release = () => s.writer.reply('network_quota', s.projectId, { type: 'ReleaseNetworkQuota', consumerId: router.id }, s.actor, cmd('release'));
  await s.writer.send('network_quota', s.projectId, { type: 'ReserveNetworkQuota', consumerId: router.id, usage: { router: 1 } }, s.actor, cmd('reserve'));
  const created = await s.writer.reply('router', router.id, { type: 'CreateRouter', router: { ...router, externalGatewayInfo: null } }, s.actor, cmd('create'));
  if (created.kind === 'rejected') {
    await release();
    throw new ApiError(created.rejection);
  }
  if (!gw) return;
  try {
    await setRouterGateway(s, router, gw, null);
  } catch (e) {
    // Neutron creates the router with its gateway or not at all.
    await s.writer.reply('router', router.id, { type: 'DeleteRouter' }, s.actor, cmd('undo-create'));
    await release();
    throw e;
  }
}

/** Deletes a router (refused while it has interfaces), its gateway port, and gives back its quota. */
export async function deleteRouter(s: SagaContext, router: Pick<Router, 'id' | 'projectId'>, gatewayPort: Port | undefined): Promise<void> {
  const cmd = (name: string) => step(s, 'router', router.id, name);
  const reply = await s.writer.send('router', router.id, { type: 'DeleteRouter' }, s.actor, cmd('delete'));
  const [deleted] = s.writer.events('router', reply);
  if (gatewayPort && deleted?.gatewayPortId === gatewayPort.id) await deletePort(s, gatewayPort, true);
  await s.writer.send('network_quota', router.projectId, { type: 'ReleaseNetworkQuota', consumerId: router.id }, s.actor, cmd('release'));
}

/** Attaches a subnet: a port holding its gateway IP, then the router's record of it. */
export async function addRouterInterfaceBySubnet(s: SagaContext, router: Pick<Router, 'id' | 'projectId'>, subnet: { id: string; networkId: string; cidr: string; gatewayIp: string }): Promise<Port> {
  const made = await createPort(
    s,
    l3Port(l3PortId('interface', router.id, s.requestId), subnet.networkId, router.projectId, ROUTER_INTERFACE_OWNER, router.id),
    [{ subnetId: subnet.id, ipAddress: subnet.gatewayIp }],
    ROUTER_INTERFACE_OWNER,
  );
  const reply = await s.writer.reply('router', router.id, { type: 'AddRouterInterface', portId: made.id, subnets: [{ subnetId: subnet.id, cidr: subnet.cidr }] }, s.actor, step(s, 'router', router.id, `interface/${made.id}`));
  if (reply.kind === 'rejected') {
    await deletePort(s, made, true);
    throw new ApiError(reply.rejection);
  }
  return made;
}

/** Attaches an existing port: the router's record first (its refusals), then the port's device. */
export async function addRouterInterfaceByPort(s: SagaContext, routerId: string, port: Port, subnets: RouterInterfaceSubnet[]): Promise<void> {
  const cmd = (name: string) => step(s, 'router', routerId, `${name}/${port.id}`);
  await s.writer.send('router', routerId, { type: 'AddRouterInterface', portId: port.id, subnets }, s.actor, cmd('interface'));
  const owned = { ...port, deviceOwner: ROUTER_INTERFACE_OWNER, deviceId: routerId };
  const reply = await s.writer.reply('port', port.id, { type: 'UpdatePort', port: owned, updateMask: ['deviceOwner', 'deviceId'] }, s.actor, cmd('own'));
  if (reply.kind === 'rejected') {
    await s.writer.reply('router', routerId, { type: 'RemoveRouterInterface', portId: port.id }, s.actor, cmd('undo-interface'));
    throw new ApiError(reply.rejection);
  }
}

/** Detaches an interface (by port or subnet) and deletes its port; returns what was detached. */
export async function removeRouterInterface(
  s: SagaContext,
  routerId: string,
  named: { portId: string; subnetId: string },
  portOf: (id: string) => Promise<Port | undefined>,
): Promise<{ portId: string; subnets: RouterInterfaceSubnet[]; port: Port | undefined }> {
  const reply = await s.writer.send('router', routerId, { type: 'RemoveRouterInterface', ...named }, s.actor, step(s, 'router', routerId, `remove/${named.portId || named.subnetId}`));
  const [removed] = s.writer.events('router', reply);
  const port = await portOf(removed.portId);
  // Neutron deletes the interface's port, whether the router made it or was given it.
  if (port) await deletePort(s, port, true);
  return { portId: removed.portId, subnets: removed.subnets, port };
}

/**
 * Creates a floating IP: quota, the port holding its address, then the floating IP. `check` runs
 * once the address is known (the association's conflicts name it), before the floating IP exists.
 */
export async function createFloatingIp(s: SagaContext, fip: FloatingIp, wanted: FixedIp[], check: (address: string) => Promise<void>): Promise<FloatingIp> {
  const cmd = (name: string) => step(s, 'floatingip', fip.id, name);
  await s.writer.send('network_quota', s.projectId, { type: 'ReserveNetworkQuota', consumerId: fip.id, usage: { floatingip: 1 } }, s.actor, cmd('reserve'));
  let port: Port | undefined;
  try {
    port = await createPort(s, l3Port(floatingIpPortId(fip.id), fip.floatingNetworkId, fip.projectId, FLOATING_IP_OWNER, fip.id), wanted, FLOATING_IP_OWNER, { countQuota: false });
    const made = { ...fip, floatingIpAddress: port.fixedIps[0]?.ipAddress ?? '' };
    await check(made.floatingIpAddress);
    await s.writer.send('floating_ip', fip.id, { type: 'CreateFloatingIp', floatingIp: made }, s.actor, cmd('create'));
    return made;
  } catch (e) {
    if (port) await deletePort(s, port, true);
    await s.writer.reply('network_quota', s.projectId, { type: 'ReleaseNetworkQuota', consumerId: fip.id }, s.actor, cmd('release'));
    throw e;
  }
}

/** Deletes a floating IP, the port holding its address, and gives back its quota. */
export async function deleteFloatingIp(s: SagaContext, fip: Pick<FloatingIp, 'id' | 'projectId'>, port: Port | undefined): Promise<void> {
  const cmd = (name: string) => step(s, 'floatingip', fip.id, name);
  await s.writer.send('floating_ip', fip.id, { type: 'DeleteFloatingIp' }, s.actor, cmd('delete'));
  if (port) await deletePort(s, port, true);
  await s.writer.send('network_quota', fip.projectId, { type: 'ReleaseNetworkQuota', consumerId: fip.id }, s.actor, cmd('release'));
}

/** Neutron disassociates a deleted port's floating IPs. */
export async function disassociateFloatingIps(s: SagaContext, floatingIpIds: string[]): Promise<void> {
  for (const id of floatingIpIds) {
    const reply = await s.writer.reply('floating_ip', id, { type: 'UpdateFloatingIp', floatingIp: { portId: '', fixedIpAddress: '', routerId: '' } }, s.actor, step(s, 'floatingip', id, 'disassociate'));
    // One deleted meanwhile has nothing to disassociate.
    if (reply.kind === 'rejected' && reply.rejection.code !== 'NOT_FOUND') throw new ApiError(reply.rejection);
  }
}
