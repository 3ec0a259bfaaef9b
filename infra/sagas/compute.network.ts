// The conductor's hand on the network service (Nova's network API calls from the conductor and the
// compute manager): it follows the network events (NetworkView through a DomainFeed) to know each
// port's binding and device, and carries out the network saga's steps
// (domains/compute/sagas/network.saga.ts) with network commands:
//
//   allocate  a port the server makes goes through the NetworkService's own port saga
//             (api/network/network.sagas.ts createPort: quota, a MAC registered on the network,
//             fixed IPs from the subnets' IPAM), with device_owner compute:<zone>, device_id the
//             server and the project's default security group; a port the user gave is claimed
//             (UpdatePort device_id, device_owner). Then BindPort to the host, then the server
//             records the allocation (MAC, addresses with their subnets' CIDR and gateway, MTU).
//   bind      BindPort to the server's host (a move, a reschedule, an unshelve); unbind: UnbindPort.
//   release   deletePort (the port saga's delete: addresses, MAC and quota given back) for a port
//             the server made; for a port the user gave, UpdatePort clearing device_id and
//             device_owner, then UnbindPort. Then, for a detached interface, RemoveInstanceInterface.
//
// Every network command waits until this view has folded it (the writer's waitFor), so the next
// step is decided on what the network log says. Command ids derive from the server, the port and
// the request that asked for the interface: a conductor that restarted repeats a step under the
// same ids and meets the original replies. A refusal of the network service (no address left, the
// port quota, a port taken meanwhile) fails the boot (Nova: "Build of instance X aborted: Failed to
// allocate the network(s)") or the attach.
import { createPort, defaultGroupId, defaultSubnet, deletePort, makeDefaultGroup, type SagaContext } from '../../api/network/network.sagas.js';
import { NetworkWriter } from '../../api/network/network.writer.js';
import { ApiError } from '../../api/errors.js';
import type { InstanceView } from '../../domains/compute/compute.view.js';
import { computeDeviceOwner, type InstanceInterface, type InterfaceFixedIp } from '../../domains/compute/instance.interfaces.js';
import type { NetworkStep, PortFacts } from '../../domains/compute/sagas/network.saga.js';
import type { Message } from '../../domains/kernel/decider.js';
import { inCidr, parseCidr } from '../../domains/network/ip.js';
import { defaultMtu, type FixedIp, type Port } from '../../domains/network/network.types.js';
import { NetworkView, type NetworkEvent } from '../../domains/network/network.view.js';
import type { Actor } from '../envelope/envelope.js';
import type { Log } from '../log/log.js';
import type { CommandBus } from '../runtime/command-bus.js';
import type { TopologyOptions } from '../runtime/topology.js';
import type { DomainFeed } from './domain.feed.js';
import { followNetwork } from './network.feed.js';


/** What the conductor asks of the compute side: send a server command (waiting until the compute view folded it). */
export type SendInstanceCommand = (instanceId: string, command: Message & Record<string, unknown>, commandId: string) => Promise<void>;

/** A refusal of the network service: the boot or the attach fails with it (not retried). */
class NetworkRefusal extends Error {}

export class ServerNetworking {
  private constructor(
    readonly feed: DomainFeed<NetworkView, NetworkEvent>,
    private readonly writer: NetworkWriter,
  ) {}

  static async start(o: { log: Log; topology: TopologyOptions; bus: CommandBus; domain?: string; now?: () => number }): Promise<ServerNetworking> {
    const feed = await followNetwork(o);
    const writer = new NetworkWriter(o.bus, (position) => feed.reached(position.partition, position.offset), o.now, feed.domain);
    return new ServerNetworking(feed, writer);
  }

  get view(): NetworkView {
    return this.feed.view;
  }

  /** The network log's word on a port, for the pure saga. */
  port = (portId: string): PortFacts | undefined => {
    const p = this.feed.view.ports.get(portId);
    return p && { hostId: p.hostId, deviceId: p.port.deviceId };
  };

  /** The conductor: the server's project in the port's records, the service's rights to bind. */
  private actor(v: InstanceView): Actor {
    return { userId: 'strata-conductor', projectId: v.projectId, roles: ['admin', 'service'] };
  }

  /** Carries out one step; a refusal of the network service fails the boot or the attach. */
  async run(v: InstanceView, step: Exclude<NetworkStep, { kind: 'wait' }>, send: SendInstanceCommand): Promise<void> {
    const key = `conductor/${v.instanceId}/${v.version}`;
    switch (step.kind) {
      case 'allocate':
        try {
          if (v.action === 'create' && v.task === 'scheduling') await send(v.instanceId, { type: 'AdvanceInstanceTask', taskState: 'networking' }, `${key}/networking`);
          const allocation = await this.allocate(v, step.iface, step.host);
          await send(v.instanceId, { type: 'RecordInterfaceAllocation', portId: step.iface.portId, ...allocation }, `${key}/allocated/${step.iface.portId}`);
        } catch (e) {
          const refusal = e instanceof ApiError ? e.rejection.message : e instanceof NetworkRefusal ? e.message : undefined;
          if (refusal === undefined) throw e;
          if (v.action === 'create') {
            const message = `Build of instance ${v.instanceId} aborted: Failed to allocate the network(s), not rescheduling: ${refusal}`;
            await send(v.instanceId, { type: 'FailInstanceAction', action: 'create', code: 500, message }, `${key}/network-failed`);
          } else {
            await send(v.instanceId, { type: 'FailInstanceInterface', portId: step.iface.portId, message: refusal }, `${key}/attach-failed/${step.iface.portId}`);
          }
        }
        return;
      case 'bind':
        await this.command(v, 'BindPort', step.portId, { hostId: step.host }, `${key}/bind/${step.portId}/${step.host}`);
        return;
      case 'unbind':
        await this.command(v, 'UnbindPort', step.portId, {}, `${key}/unbind/${step.portId}`);
        return;
      case 'release':
        await this.release(v, step.iface);
        if (step.forget) await send(v.instanceId, { type: 'RemoveInstanceInterface', portId: step.iface.portId }, `${key}/removed/${step.iface.portId}`);
        return;
    }
  }

  private async command(v: InstanceView, type: string, portId: string, fields: Record<string, unknown>, commandId: string): Promise<void> {
    await this.writer.send('port', portId, { type, ...fields }, this.actor(v), { commandId });
  }

  /** The port saga's context of one interface: its ids derive from the server and the request. */
  private saga(v: InstanceView, i: InstanceInterface, what: string): SagaContext {
    return { writer: this.writer, actor: this.actor(v), projectId: v.projectId, requestId: `server-${v.instanceId}-${what}-${i.requestId || 'boot'}` };
  }

  private async allocate(v: InstanceView, i: InstanceInterface, host: string): Promise<{ macAddress: string; fixedIps: InterfaceFixedIp[]; mtu: number }> {
    const view = this.feed.view;
    const owner = computeDeviceOwner(v.availabilityZone);
    let port = view.ports.get(i.portId);
    if (!port) {
      if (i.preserveOnDelete) throw new NetworkRefusal(`Port ${i.portId} could not be found.`);
      const network = view.networks.get(i.networkId);
      if (!network) throw new NetworkRefusal(`Network ${i.networkId} could not be found.`);
      const subnets = [...view.subnets.values()].filter((s) => s.networkId === network.id);
      let wanted: FixedIp[];
      if (i.requestedIp) {
        const a = parseCidr(`${i.requestedIp}/${i.requestedIp.includes(':') ? 128 : 32}`);
        const subnet = subnets.find((s) => a && inCidr(parseCidr(s.cidr)!, { version: a.version, value: a.network }));
        if (!subnet) throw new NetworkRefusal(`Fixed IP ${i.requestedIp} is on no subnet of network ${network.id}`);
        wanted = [{ subnetId: subnet.id, ipAddress: i.requestedIp }];
      } else {
        // As the NetworkService's CreatePort: one address of the network's first IPv4 subnet.
        const first = defaultSubnet(subnets);
        wanted = first ? [{ subnetId: first.id, ipAddress: '' }] : [];
      }
      const made: Port = {
        id: i.portId, networkId: network.id, projectId: v.projectId, name: '', macAddress: '', fixedIps: [], deviceOwner: owner, deviceId: v.instanceId,
        securityGroups: [await this.defaultGroup(v)], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
      };
      await createPort(this.saga(v, i, 'port'), made, wanted, owner);
      port = view.ports.get(i.portId);
      if (!port) throw new Error(`port ${i.portId} was made but is not in the conductor's network view`);
    } else if (port.port.deviceId !== v.instanceId || port.port.deviceOwner !== owner) {
      if (port.port.deviceId && port.port.deviceId !== v.instanceId) throw new NetworkRefusal(`Port ${i.portId} is still in use.`);
      await this.writer.send(
        'port', i.portId,
        { type: 'UpdatePort', port: { ...port.port, deviceId: v.instanceId, deviceOwner: owner }, updateMask: ['deviceId', 'deviceOwner'] },
        this.actor(v),
        { commandId: `conductor/${v.instanceId}/claim/${i.portId}/${i.requestId || 'boot'}` },
      );
    }
    if (port.hostId !== host) await this.command(v, 'BindPort', i.portId, { hostId: host }, `conductor/${v.instanceId}/${v.version}/bind/${i.portId}/${host}`);
    const now = view.ports.get(i.portId)!.port;
    const network = view.networks.get(now.networkId);
    return {
      macAddress: now.macAddress,
      fixedIps: now.fixedIps.map((f) => {
        const s = view.subnets.get(f.subnetId);
        return { subnetId: f.subnetId, ipAddress: f.ipAddress, cidr: s?.cidr ?? '', gatewayIp: s?.gatewayIp ?? '' };
      }),
      mtu: network ? network.mtu || defaultMtu(network.networkType) : 0,
    };
  }

  /** Deletes the port the server made; frees (device cleared, unbound) the port the user gave. */
  private async release(v: InstanceView, i: InstanceInterface): Promise<void> {
    const p = this.feed.view.ports.get(i.portId);
    if (!p) return;
    if (!i.preserveOnDelete) {
      await deletePort(this.saga(v, i, 'release'), p.port);
      return;
    }
    if (p.port.deviceId !== v.instanceId) return;
    const key = `conductor/${v.instanceId}/free/${i.portId}/${i.requestId || 'boot'}`;
    await this.writer.send('port', i.portId, { type: 'UpdatePort', port: { ...p.port, deviceId: '', deviceOwner: '' }, updateMask: ['deviceId', 'deviceOwner'] }, this.actor(v), {
      commandId: `${key}/update`,
    });
    if (this.feed.view.ports.get(i.portId)?.hostId) await this.command(v, 'UnbindPort', i.portId, {}, `${key}/unbind`);
  }

  /**
   * The project's default security group, for the ports the server makes (Nova asks Neutron for
   * "default"): made here, as the NetworkService makes it, when the project never met the network
   * API (one command id for both: whoever comes first makes it).
   */
  private async defaultGroup(v: InstanceView): Promise<string> {
    const id = defaultGroupId(v.projectId);
    if (this.feed.view.securityGroups.has(id)) return id;
    return makeDefaultGroup(this.writer, v.projectId, this.actor(v));
  }

  async close(): Promise<void> {
    await this.feed.close();
  }
}
