// A server's network interfaces (Nova's VIFs): one per port, with the port's MAC and addresses as
// the network service gave them, and where it stands between the conductor, which makes or claims
// and binds the port, and the host's agent, which plugs it into the guest:
//
//   requested  the server asked for it (at boot, or AttachInterface): the port is to be made (a
//              network given) or claimed (a port given), and bound to the server's host
//   allocated  the port is ready and bound: the host's agent plugs it (a boot's spawn takes every
//              allocated interface at once, an attach hot-plugs it into a running guest)
//   attached   plugged into the guest
//   detaching  DetachInterface: the host's agent unplugs it
//   detached   unplugged (or its attach failed): the conductor deletes the port Nova made, or
//              unbinds and frees the port the user gave (preserve_on_delete), then removes it
//
// Pure: the instance machine and the conductor's view fold the same events with applyInterfaceEvent.

export const INTERFACE_STATES = ['requested', 'allocated', 'attached', 'detaching', 'detached'] as const;
export type InterfaceState = (typeof INTERFACE_STATES)[number];

/** An address of an interface, with what the guest needs to configure it (Nova's network_info subnet). */
export interface InterfaceFixedIp {
  subnetId: string;
  ipAddress: string;
  /** The subnet's CIDR ("10.0.0.0/24"). */
  cidr: string;
  /** The subnet's gateway ('' none). */
  gatewayIp: string;
}

export interface InstanceInterface {
  portId: string;
  networkId: string;
  /** The address asked for ('' any; only for a port the server makes). */
  requestedIp: string;
  /** The port was the user's: unbound and kept when the server lets it go (Nova's preserve_on_delete); else deleted. */
  preserveOnDelete: boolean;
  /** '' until allocated. */
  macAddress: string;
  fixedIps: InterfaceFixedIp[];
  /** The network's MTU (0 until allocated). */
  mtu: number;
  state: InterfaceState;
  /** The request attaching or detaching it (the operation's name); '' for a boot's interfaces. */
  requestId: string;
  /** Why its attach or detach failed; '' otherwise. */
  fault: string;
}

/** An interface as a request makes it (CreateServer's networks, AttachInterface). */
export function requestedInterface(i: { portId: string; networkId: string; requestedIp?: string; preserveOnDelete: boolean; requestId?: string }): InstanceInterface {
  return {
    portId: i.portId,
    networkId: i.networkId,
    requestedIp: i.requestedIp ?? '',
    preserveOnDelete: i.preserveOnDelete,
    macAddress: '',
    fixedIps: [],
    mtu: 0,
    state: 'requested',
    requestId: i.requestId ?? '',
    fault: '',
  };
}

/** The interfaces a guest runs with: those whose port is ready and not on its way out. */
export const guestInterfaces = (all: readonly InstanceInterface[]) => all.filter((i) => i.state === 'allocated' || i.state === 'attached');

/** Nova's device_owner of the ports it makes: compute:<availability zone>. */
export const computeDeviceOwner = (availabilityZone: string) => `compute:${availabilityZone || 'nova'}`;

export const INTERFACE_EVENTS = [
  'InstanceInterfaceRequested', 'InstanceInterfaceAllocated', 'InstanceInterfacePlugged', 'InstanceInterfaceDetaching',
  'InstanceInterfaceUnplugged', 'InstanceInterfaceFailed', 'InstanceInterfaceRemoved',
] as const;

type Ev = { type: string } & Record<string, any>;

const update = (all: readonly InstanceInterface[], portId: string, change: (i: InstanceInterface) => InstanceInterface) =>
  all.map((i) => (i.portId === portId ? change(i) : i));

/**
 * The interfaces after an event. InstanceActionCompleted of a boot: the spawn plugged every
 * allocated interface. Other events leave them as they are.
 */
export function applyInterfaceEvent(all: readonly InstanceInterface[], e: Ev): InstanceInterface[] {
  switch (e.type) {
    case 'InstanceInterfaceRequested':
      return [...all.filter((i) => i.portId !== e.interface.portId), e.interface as InstanceInterface];
    case 'InstanceInterfaceAllocated':
      return update(all, e.portId, (i) => ({ ...i, state: 'allocated', macAddress: e.macAddress, fixedIps: e.fixedIps ?? [], mtu: Number(e.mtu ?? 0) }));
    case 'InstanceInterfacePlugged':
      return update(all, e.portId, (i) => ({ ...i, state: 'attached', fault: '' }));
    case 'InstanceInterfaceDetaching':
      return update(all, e.portId, (i) => ({ ...i, state: 'detaching', requestId: e.requestId ?? '', fault: '' }));
    case 'InstanceInterfaceUnplugged':
      return update(all, e.portId, (i) => ({ ...i, state: 'detached' }));
    case 'InstanceInterfaceFailed':
      // An attach that failed is let go (its port released); a detach that failed stays attached.
      return update(all, e.portId, (i) => ({ ...i, state: i.state === 'detaching' ? 'attached' : 'detached', fault: e.message ?? '' }));
    case 'InstanceInterfaceRemoved':
      return all.filter((i) => i.portId !== e.portId);
    case 'InstanceActionCompleted':
      return e.action === 'create' ? all.map((i) => (i.state === 'allocated' ? { ...i, state: 'attached' } : i)) : [...all];
    default:
      return [...all];
  }
}
