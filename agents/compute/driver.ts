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

/** Where a volume's data is served: an NBD export of the storage host (one export per attachment). */
export interface VolumeConnection {
  host: string;
  port: number;
  exportName: string;
}

/** A block volume to attach to a guest (Nova's attach_volume with its connection_info). */
export interface VolumeAttachmentSpec {
  attachmentId: string;
  volumeId: string;
  connection: VolumeConnection;
  readOnly: boolean;
  /** The disk's serial the guest sees (/dev/disk/by-id/virtio-<serial>); Nova's: the volume id's first 20 characters (the default). */
  serial?: string;
}

/** An attached volume as the API reports it. */
export interface AttachedVolume {
  /** Nova's device name: '/dev/vdb', '/dev/vdc', ... the first one free when it was attached. */
  device: string;
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
  /**
   * Attaches a block volume (Nova's attach_volume): hot-plugged into a running (or paused) guest,
   * recorded for the next start of a stopped one, and kept across power cycles and agent restarts.
   * Idempotent: an attachment the guest has already returns the device it got then.
   */
  attachVolume(instanceId: string, attachment: VolumeAttachmentSpec): Promise<AttachedVolume>;
  /**
   * Detaches a volume: hot-unplugged from a running guest (which must let it go: a paused one
   * cannot) and forgotten. One the guest lacks succeeds.
   */
  detachVolume(instanceId: string, attachmentId: string): Promise<void>;
  /**
   * After the storage side grew the volume (its export now offers at least `newSizeBytes`): a
   * running guest sees the new size (Nova's extend_volume). A stopped guest sees it at its next
   * start; the call then only checks the attachment.
   */
  extendVolume(instanceId: string, attachmentId: string, newSizeBytes: number): Promise<void>;
  /** The attachment ids of the guest's volumes, in attach order. */
  listVolumes(instanceId: string): Promise<string[]>;
  /** Captures the guest's disk as the image `imageId`. */
  snapshot(instanceId: string, imageId: string): Promise<void>;
  /** Nova's power_state of the guest (NOSTATE when the driver has no such guest). */
  powerState(instanceId: string): Promise<number>;
  /** The guests the driver runs or holds. */
  list(): Promise<string[]>;
  consoleOutput(instanceId: string, lines?: number): Promise<string>;
}

/**
 * Nova's device name for a new volume: the first of /dev/vdb, /dev/vdc, ... not in `taken` (vda is
 * the root disk's). The guest's kernel names disks by its own order; the name is what the API says.
 */
export function nextVolumeDevice(taken: readonly string[]): string {
  const used = new Set(taken);
  for (let n = 1; ; n++) {
    let name = '';
    for (let k = n; k >= 0; k = Math.floor(k / 26) - 1) name = String.fromCharCode(97 + (k % 26)) + name;
    if (!used.has(`/dev/vd${name}`)) return `/dev/vd${name}`;
  }
}
