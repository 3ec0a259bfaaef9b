// What a compute agent needs from a hypervisor. Every operation is idempotent (the agent may
// repeat one after a crash): spawning a guest that runs, or destroying one that is gone, succeeds.
// Drivers: `fake` (in process, for scale tests) and `qemu`.
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import type { InterfaceFixedIp } from '../../domains/compute/instance.interfaces.js';

/** A network interface of a guest (Nova's VIF): a NIC with the port's MAC, plugged into the integration bridge as the port. */
export interface GuestInterface {
  portId: string;
  networkId: string;
  macAddress: string;
  /** The port's addresses with their subnets' CIDR and gateway (what a guest configures). */
  fixedIps: InterfaceFixedIp[];
  /** The network's MTU (0: unknown). */
  mtu: number;
}

export interface GuestSpec {
  instanceId: string;
  name: string;
  flavor: FlavorRef;
  imageId: string;
  /** Its NICs, in order (absent: none). */
  interfaces?: GuestInterface[];
}

export interface ComputeDriver {
  readonly kind: string;
  /** Creates and starts the guest (boot, unshelve, arrival of a moved guest). */
  spawn(spec: GuestSpec): Promise<void>;
  /** Stops and removes the guest and its files. */
  destroy(instanceId: string): Promise<void>;
  powerOff(instanceId: string): Promise<void>;
  powerOn(instanceId: string): Promise<void>;
  reboot(instanceId: string, hard: boolean): Promise<void>;
  pause(instanceId: string): Promise<void>;
  unpause(instanceId: string): Promise<void>;
  suspend(instanceId: string): Promise<void>;
  resume(instanceId: string): Promise<void>;
  rescue(instanceId: string): Promise<void>;
  unrescue(instanceId: string): Promise<void>;
  /**
   * A move's destination: `live`, starts the guest waiting for its running state; `cold` (resize,
   * cold migration), waits for its disk and then starts it (stopped if it was). Says where the
   * source sends it: a URI the source's driver understands.
   */
  prepareIncoming(spec: GuestSpec, mode: 'live' | 'cold'): Promise<string>;
  /**
   * A move's source: sends the guest to `uri` (from the destination's prepareIncoming). Live: the
   * running guest, which then leaves this host (a guest no longer here has been sent). Cold: the
   * guest is powered off and its disk sent; it stays here until the resize is confirmed or reverted.
   */
  migrateTo(instanceId: string, uri: string): Promise<void>;
  /**
   * Adds a NIC to the guest (Nova's attach_interface): hot-plugged into a running (or paused)
   * guest, recorded for the next start of a stopped one. Idempotent: a NIC it has already succeeds.
   */
  attachInterface(instanceId: string, vif: GuestInterface): Promise<void>;
  /** Removes a NIC from the guest (hot-unplugged if it runs) and from its record; one it lacks succeeds. */
  detachInterface(instanceId: string, portId: string): Promise<void>;
  /** Captures the guest's disk as the image `imageId`. */
  snapshot(instanceId: string, imageId: string): Promise<void>;
  /** Nova's power_state of the guest (NOSTATE when the driver has no such guest). */
  powerState(instanceId: string): Promise<number>;
  /** The guests the driver runs or holds. */
  list(): Promise<string[]>;
  consoleOutput(instanceId: string, lines?: number): Promise<string>;
}
