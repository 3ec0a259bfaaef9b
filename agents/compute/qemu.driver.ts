// The qemu compute driver: one qemu-system-x86_64 process per guest, controlled over QMP (a unix
// socket per guest). Each guest has a directory <stateDir>/<instanceId>/ holding guest.json (what
// it was spawned from, so power on needs no spec), qmp.sock, qemu.pid, console.log (the serial
// port, appended to across reboots and power cycles), disk.qcow2 (an overlay on the image, for
// disk images) and, while suspended, state (the saved machine). The process's existence is the
// guest's power: quit = power off, launch again = power on; the directory is the guest.
//
// Accelerator: `kvm`, `tcg`, or `auto` (the default): probe once whether KVM really runs a guest
// (on some machines /dev/kvm opens but guests stop with "KVM internal error"), TCG otherwise.
//
// Network interfaces (the server's ports): one tap device per port, named as Nova and os-vif name
// them ("tap" + the first 11 characters of the port id), created (persistent) and plugged into the
// integration bridge as a plain port with external_ids iface-id (the port id: the network agent
// wires it), attached-mac, iface-status and vm-uuid, before QEMU starts; QEMU opens it
// (-netdev tap,ifname=...,script=no,downscript=no) behind a virtio-net-pci NIC with the port's MAC.
// With the userspace datapath (datapath_type=netdev) the tap must be a plain port (OVS reads it
// through AF_PACKET): as type=tap, OVS creates and holds the tap itself and QEMU cannot open it
// ("Device or resource busy"). The taps exist while QEMU runs: a guest that stops (power off,
// suspend, a move away, delete) has them unplugged and removed; a restarted agent leaves the taps
// of the guests it adopts alone. Attach and detach interface hot-plug a NIC over QMP (netdev_add +
// device_add, device_del + netdev_del) and keep guest.json's list for the next start. Kernel
// images get each port's IPv4 address on their command line in dracut's `ip=` form (the guest's
// static network configuration, as Nova's injected network template gives it to a guest).
//
// Block volumes (Cinder's, served by the storage host as NBD exports, one per attachment): each is
// two block nodes, an `nbd` protocol node (the connection) under a `raw` format node, behind a
// virtio-blk-pci device whose serial is the volume id's first 20 characters (the guest's
// /dev/disk/by-id/virtio-<serial>, as Nova sets it). Attach hot-plugs them (blockdev-add twice,
// device_add), detach unplugs them (device_del, the guest lets the device go, blockdev-del), and
// guest.json keeps the list so a relaunch (power on, resume, reboot of a stopped guest) has them on
// its command line. Extend: QEMU's NBD client cannot grow a node ("Cannot grow NBD nodes"), but a
// new connection reads the export's new size: a new nbd node, the raw node reopened onto it
// (blockdev-reopen), block_resize of the raw node (virtio-blk tells the guest its new capacity),
// and the old nbd node deleted. Node names are short (QEMU allows 31 characters): a hash of the
// attachment id; the nbd nodes of an attachment are numbered, a new one per extend.
//
// The guest's second serial port (ttyS1) is a unix socket, <guest dir>/shell.sock: the test image
// runs a shell there with strata.shell=ttyS1 (agents/compute/guest-shell.ts talks to it).
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { Ovs } from '../network/ovs.js';
import { nextVolumeDevice, type AttachedVolume, type ComputeDriver, type GuestInterface, type GuestSpec, type VolumeAttachmentSpec } from './driver.js';
import type { ImageDirectory } from './image-dir.js';
import { QmpClient, QmpClosedError, QmpError } from './qmp.js';

const execFileP = promisify(execFile);

/** How a guest boots: a kernel (and initrd) given to QEMU directly, or a disk image under a qcow2 overlay. */
export type GuestBoot =
  | { kind: 'kernel'; kernel: string; initrd?: string; append?: string; disk?: string }
  | { kind: 'disk'; path: string; format?: 'qcow2' | 'raw' };

export type Accelerator = 'auto' | 'kvm' | 'tcg';

export interface QemuDriverOptions {
  /** Directory of the guests' directories. */
  stateDir: string;
  /** Maps an image id to how its guests boot (default: `images`). */
  resolveImage?: (imageId: string) => GuestBoot | Promise<GuestBoot>;
  /** Where snapshots (create image, create backup) go, and images come from when resolveImage is absent: a directory, or the image service. */
  images?: Pick<ImageDirectory, 'save'> & { resolve(imageId: string): GuestBoot | Promise<GuestBoot> };
  /** The QEMU binary (default qemu-system-x86_64). */
  qemuBinary?: string;
  accelerator?: Accelerator;
  /** For `auto`: the guest the KVM probe boots (e.g. the test image with its marker); firmware only without it. */
  kvmProbe?: Omit<KvmProbeOptions, 'qemu'>;
  /** At most this many bytes of console.log are read for console output, and kept at each (re)launch (default 1 MiB). */
  consoleLogBytes?: number;
  /** How long a graceful quit may take before SIGKILL (default 5 s). */
  quitTimeoutMs?: number;
  /** The address a live migration's destination listens on, reachable from other hosts (default 127.0.0.1). */
  migrationAddress?: string;
  /**
   * Where guests' NICs are plugged: the integration bridge of this host's Open vSwitch (the one
   * the network agent wires). Absent: a guest with interfaces cannot start.
   */
  network?: { ovs: Ovs; bridge: string };
  /** Kernel images: pass the ports' IPv4 addresses on the kernel command line (dracut's ip=); default true. */
  kernelNetworkArgs?: boolean;
}

/** The tap device of a port, as Nova (os-vif) names it: "tap" + the first 11 characters of the port id. */
export const tapName = (portId: string) => `tap${portId.slice(0, 11)}`;
const netdevId = (portId: string) => `hostnet-${portId}`;
const nicId = (portId: string) => `net-${portId}`;

/** A dotted IPv4 netmask of a prefix length. */
const netmask = (prefix: number) => [24, 16, 8, 0].map((shift) => ((prefix >= 32 ? 0xffffffff : ~(0xffffffff >>> prefix)) >>> shift) & 0xff).join('.');

/**
 * The kernel command line's network configuration of a guest's NICs, in dracut's form
 * `ip=<address>::<gateway>:<netmask>:<hostname>:<interface>:none:<mtu>:<mac>` (one per NIC with an
 * IPv4 address; the interface name is a hint, the MAC finds it).
 */
export function kernelNetworkArgs(interfaces: readonly GuestInterface[]): string[] {
  const out: string[] = [];
  interfaces.forEach((vif, n) => {
    const v4 = vif.fixedIps.find((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f.ipAddress));
    if (!v4) return;
    const prefix = Number(v4.cidr.split('/')[1] ?? 32);
    out.push(`ip=${v4.ipAddress}::${v4.gatewayIp}:${netmask(prefix)}::eth${n}:none:${vif.mtu || ''}:${vif.macAddress}`);
  });
  return out;
}

/** A volume attached to a guest, as guest.json keeps it. */
interface GuestVolume extends VolumeAttachmentSpec {
  /** Nova's device name ('/dev/vdb', ...). */
  device: string;
}

interface GuestFile {
  spec: GuestSpec;
  boot: GuestBoot;
  /** Its block volumes, in attach order (absent: none). */
  volumes?: GuestVolume[];
}

// A volume's QEMU names. Node names are at most 31 characters: a hash of the attachment id.
const volumeHash = (attachmentId: string) => createHash('sha256').update(attachmentId).digest('hex').slice(0, 16);
const volumeFormatNode = (attachmentId: string) => `vf-${volumeHash(attachmentId)}`;
/** The attachment's nbd nodes: vn-<hash>-<n>, a new n per extend (n = 0 at attach and at each launch). */
const volumeNbdPrefix = (attachmentId: string) => `vn-${volumeHash(attachmentId)}-`;
const volumeDeviceId = (attachmentId: string) => {
  if (!/^[A-Za-z0-9._-]+$/.test(attachmentId)) throw new QemuDriverError(`bad volume attachment id "${attachmentId}"`);
  return `vol-${attachmentId}`;
};
/** The serial the guest sees: at most 20 characters (virtio-blk's limit; Nova's volume id prefix). */
const volumeSerial = (v: VolumeAttachmentSpec) => (v.serial ?? v.volumeId).slice(0, 20);

function nbdNodeOptions(v: VolumeAttachmentSpec, nodeName: string): Record<string, unknown> {
  return {
    driver: 'nbd',
    'node-name': nodeName,
    server: { type: 'inet', host: v.connection.host, port: String(v.connection.port) },
    export: v.connection.exportName,
    'read-only': v.readOnly,
    // A storage host that drops the connection (a restart, an export made again) gets this long
    // to come back before the guest's I/O fails.
    'reconnect-delay': 10,
  };
}

const rawNodeOptions = (v: VolumeAttachmentSpec, file: string): Record<string, unknown> => ({
  driver: 'raw',
  'node-name': volumeFormatNode(v.attachmentId),
  file,
  'read-only': v.readOnly,
});

const volumeDeviceOptions = (v: VolumeAttachmentSpec): Record<string, unknown> => ({
  driver: 'virtio-blk-pci',
  id: volumeDeviceId(v.attachmentId),
  drive: volumeFormatNode(v.attachmentId),
  serial: volumeSerial(v),
});

export class QemuDriverError extends Error {}

/** The boot of the test image built by scripts/build-test-image.sh into `dir`. */
export function testImageBoot(dir: string): Extract<GuestBoot, { kind: 'kernel' }> {
  return { kind: 'kernel', kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initramfs.cpio.gz'), append: 'console=ttyS0 quiet panic=-1 strata.shell=ttyS1' };
}

/** Whether `pid` is a live process (a zombie, dead but not reaped, is not). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const s = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Awaits a QMP command, taking an error whose description matches `ok` as success (idempotent hotplug). */
async function tolerate(p: Promise<unknown>, ok: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof Error && ok.test(err.message))) throw err;
  }
}

// query-status → Nova's power state.
function powerFromStatus(status: string): number {
  switch (status) {
    case 'running':
      return POWER_STATES.RUNNING;
    case 'internal-error':
    case 'guest-panicked':
    case 'io-error':
      return POWER_STATES.CRASHED;
    case 'shutdown':
      return POWER_STATES.SHUTDOWN;
    default: // paused, prelaunch, suspended (guest S3), inmigrate, postmigrate, save-vm, restore-vm, debug, ...
      return POWER_STATES.PAUSED;
  }
}

export class QemuDriver implements ComputeDriver {
  readonly kind = 'qemu';
  private readonly qemu: string;
  private readonly consoleLogBytes: number;
  private readonly quitTimeoutMs: number;
  private readonly qmps = new Map<string, QmpClient>();
  /** Cold moves this host waits for: their disk receivers. */
  private readonly receivers = new Map<string, { uri: string; close(): void }>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private accel: Promise<'kvm' | 'tcg'> | undefined;

  constructor(private readonly o: QemuDriverOptions) {
    this.qemu = o.qemuBinary ?? 'qemu-system-x86_64';
    this.consoleLogBytes = o.consoleLogBytes ?? 1024 * 1024;
    this.quitTimeoutMs = o.quitTimeoutMs ?? 5000;
  }

  private resolve(imageId: string): GuestBoot | Promise<GuestBoot> {
    if (this.o.resolveImage) return this.o.resolveImage(imageId);
    if (this.o.images) return this.o.images.resolve(imageId);
    throw new QemuDriverError('the qemu driver has neither resolveImage nor an image directory');
  }

  /** The base disk a guest's overlay sits on: a disk image's, or a kernel image's optional disk. */
  private baseDisk(boot: GuestBoot): { path: string; format?: string } | undefined {
    return boot.kind === 'disk' ? boot : boot.disk ? { path: boot.disk, format: 'qcow2' } : undefined;
  }

  /** The accelerator guests get: the configured one, or for `auto` the result of one probe. */
  accelerator(): Promise<'kvm' | 'tcg'> {
    const want = this.o.accelerator ?? 'auto';
    if (want !== 'auto') return Promise.resolve(want);
    this.accel ??= probeKvm({ ...this.o.kvmProbe, qemu: this.qemu }).then((ok) => (ok ? 'kvm' : 'tcg'));
    return this.accel;
  }

  private dir(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(id)) throw new QemuDriverError(`bad instance id "${id}"`);
    return join(this.o.stateDir, id);
  }

  // Operations on one guest run one at a time.
  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.locks.set(id, tail);
    void tail.then(() => {
      if (this.locks.get(id) === tail) this.locks.delete(id);
    });
    return next;
  }

  private async exists(path: string): Promise<boolean> {
    try {
      await access(path);
      return true;
    } catch {
      return false;
    }
  }

  /** The pid of the guest's live QEMU process, if any (checked against its command line: pids get reused). */
  async pid(id: string): Promise<number | undefined> {
    const dir = this.dir(id);
    let pid: number;
    try {
      pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
    } catch {
      return undefined;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !(await processAlive(pid))) return undefined;
    try {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmdline.split('\0').includes(join(dir, 'qemu.pid'))) return undefined;
    } catch {
      return undefined;
    }
    return pid;
  }

  private async qmp(id: string): Promise<QmpClient> {
    const existing = this.qmps.get(id);
    if (existing && !existing.isClosed) return existing;
    const client = await QmpClient.connect(join(this.dir(id), 'qmp.sock'));
    client.on('close', () => {
      if (this.qmps.get(id) === client) this.qmps.delete(id);
    });
    this.qmps.set(id, client);
    return client;
  }

  private async running(id: string): Promise<QmpClient> {
    if ((await this.pid(id)) === undefined) throw new QemuDriverError(`instance ${id} is not running`);
    return this.qmp(id);
  }

  /** Runs a QMP command on a running guest (device hotplug and the like go through here). */
  execute<T = unknown>(id: string, command: string, args?: Record<string, unknown>): Promise<T> {
    return this.serial(id, async () => (await this.running(id)).execute<T>(command, args));
  }

  private async readGuest(id: string): Promise<GuestFile> {
    try {
      return JSON.parse(await readFile(join(this.dir(id), 'guest.json'), 'utf8')) as GuestFile;
    } catch {
      throw new QemuDriverError(`instance ${id} is not on this host`);
    }
  }

  spawn(spec: GuestSpec): Promise<void> {
    return this.serial(spec.instanceId, async () => {
      const id = spec.instanceId;
      const dir = this.dir(id);
      if ((await this.pid(id)) !== undefined) {
        const q = await this.qmp(id);
        const { status } = await q.execute<{ status: string }>('query-status');
        if (status !== 'running') await q.execute('cont');
        return;
      }
      await mkdir(dir, { recursive: true });
      let guest: GuestFile;
      if (await this.exists(join(dir, 'guest.json'))) {
        guest = await this.readGuest(id);
      } else {
        guest = { spec, boot: await this.resolve(spec.imageId) };
        const base = this.baseDisk(guest.boot);
        if (base) await this.createOverlay(dir, base, spec.flavor.diskGb);
        await writeFile(join(dir, 'guest.json.tmp'), JSON.stringify(guest, null, 2));
        await rename(join(dir, 'guest.json.tmp'), join(dir, 'guest.json'));
      }
      await rm(join(dir, 'state'), { force: true }); // a spawn boots afresh; resume and power on restore
      await this.launch(id, guest);
    });
  }

  private async createOverlay(dir: string, boot: { path: string; format?: string }, diskGb: number, name = 'disk.qcow2'): Promise<void> {
    const overlay = join(dir, name);
    if (await this.exists(overlay)) return;
    const format = boot.format ?? 'qcow2';
    await execFileP('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', boot.path, '-F', format, `${overlay}.tmp`]);
    const info = JSON.parse((await execFileP('qemu-img', ['info', '--output=json', `${overlay}.tmp`])).stdout) as { 'virtual-size': number };
    const want = diskGb * 1024 ** 3;
    if (want > info['virtual-size']) await execFileP('qemu-img', ['resize', '-q', `${overlay}.tmp`, String(want)]);
    await rename(`${overlay}.tmp`, overlay);
  }

  /** Starts QEMU for a guest whose directory is ready; resolves once QMP answers. */
  private async launch(id: string, guest: GuestFile, incoming = false): Promise<void> {
    const dir = this.dir(id);
    const sock = join(dir, 'qmp.sock');
    // shell.sock is the longer of the two names.
    if (Buffer.byteLength(this.shellSocket(id)) > 107) throw new QemuDriverError(`guest socket path too long for a unix socket: ${this.shellSocket(id)}`);
    await rm(sock, { force: true });
    await rm(this.shellSocket(id), { force: true });
    await rm(join(dir, 'qemu.pid'), { force: true });
    await this.trimConsole(join(dir, 'console.log'));
    const accel = await this.accelerator();
    const { flavor } = guest.spec;
    const args = [
      '-name', `${guest.spec.name.replace(/,/g, ',,')},process=strata-${id}`,
      '-nodefaults', '-no-user-config',
      '-accel', accel,
      ...(accel === 'kvm' ? ['-cpu', 'host'] : []),
      '-m', String(Math.max(16, flavor.ramMb)),
      '-smp', String(Math.max(1, flavor.vcpus)),
      '-display', 'none',
      '-chardev', `file,id=console,path=${join(dir, 'console.log').replace(/,/g, ',,')},append=on`,
      '-serial', 'chardev:console',
      '-chardev', `socket,id=shell,path=${this.shellSocket(id).replace(/,/g, ',,')},server=on,wait=off`,
      '-serial', 'chardev:shell',
      '-qmp', `unix:${sock.replace(/,/g, ',,')},server=on,wait=off`,
      '-pidfile', join(dir, 'qemu.pid'),
      '-daemonize',
    ];
    const vifs = guest.spec.interfaces ?? [];
    for (const vif of vifs) {
      await this.plugTap(id, vif);
      args.push('-netdev', `tap,id=${netdevId(vif.portId)},ifname=${tapName(vif.portId)},script=no,downscript=no`, '-device', this.nicArgs(vif));
    }
    if (guest.boot.kind === 'kernel') {
      args.push('-kernel', guest.boot.kernel);
      if (guest.boot.initrd) args.push('-initrd', guest.boot.initrd);
      const append = [guest.boot.append ?? '', ...(this.o.kernelNetworkArgs === false ? [] : kernelNetworkArgs(vifs))].filter(Boolean).join(' ');
      if (append) args.push('-append', append);
    }
    // Rescued: the image boots afresh (a disk image from a new overlay, rescue.qcow2) with the
    // instance's own disk attached after it, as Nova's rescue does.
    const drive = (file: string) => ['-drive', `file=${join(dir, file).replace(/,/g, ',,')},format=qcow2,if=virtio`];
    if (guest.boot.kind === 'disk' && (await this.exists(join(dir, 'rescue')))) args.push(...drive('rescue.qcow2'));
    if (this.baseDisk(guest.boot)) args.push(...drive('disk.qcow2'));
    for (const v of guest.volumes ?? []) {
      // A new connection per launch: it reads the export's size as it is now (an extend while off).
      args.push(
        '-blockdev', JSON.stringify(nbdNodeOptions(v, `${volumeNbdPrefix(v.attachmentId)}0`)),
        '-blockdev', JSON.stringify(rawNodeOptions(v, `${volumeNbdPrefix(v.attachmentId)}0`)),
        '-device', JSON.stringify(volumeDeviceOptions(v)),
      );
    }
    if (incoming) args.push('-incoming', 'defer');
    try {
      // With -daemonize the first process exits once QEMU is set up (pidfile written, QMP listening).
      await execFileP(this.qemu, args, { timeout: 30_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new QemuDriverError(`qemu for ${id} failed to start: ${(e.stderr || e.message).trim()}`);
    }
    await this.qmp(id);
  }

  private async trimConsole(path: string): Promise<void> {
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch {
      return;
    }
    if (size <= this.consoleLogBytes) return;
    const keep = await this.tail(path, Math.floor(this.consoleLogBytes / 2));
    await writeFile(`${path}.tmp`, keep);
    await rename(`${path}.tmp`, path);
  }

  private async tail(path: string, bytes: number): Promise<Buffer> {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const len = Math.min(size, bytes);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, size - len);
      if (len < size) {
        const nl = buf.indexOf(10);
        return nl >= 0 ? buf.subarray(nl + 1) : buf;
      }
      return buf;
    } finally {
      await fh.close();
    }
  }

  /**
   * The NIC of a port: virtio-net with the port's MAC. Checksum offload is off both ways: the
   * userspace datapath reads the tap through AF_PACKET and does not complete the partial
   * checksums a guest would leave to the host (ICMP would pass, TCP and UDP would not).
   */
  private nicArgs(vif: GuestInterface): string {
    return `virtio-net-pci,netdev=${netdevId(vif.portId)},id=${nicId(vif.portId)},mac=${vif.macAddress},csum=off,guest_csum=off`;
  }

  private bridge(id: string): { ovs: Ovs; bridge: string } {
    if (!this.o.network) throw new QemuDriverError(`instance ${id} has network interfaces but this host has no integration bridge (STRATA_AGENT_OVS_BRIDGE)`);
    return this.o.network;
  }

  /** Creates the port's tap (persistent, up) and plugs it into the integration bridge as the port. Idempotent. */
  private async plugTap(id: string, vif: GuestInterface): Promise<void> {
    const { ovs, bridge } = this.bridge(id);
    const tap = tapName(vif.portId);
    if (!(await this.exists(`/sys/class/net/${tap}`))) {
      try {
        await execFileP('ip', ['tuntap', 'add', 'dev', tap, 'mode', 'tap']);
      } catch (err) {
        if (!(await this.exists(`/sys/class/net/${tap}`))) throw new QemuDriverError(`cannot create tap ${tap} for port ${vif.portId}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
      }
    }
    if (vif.mtu > 0) await execFileP('ip', ['link', 'set', 'dev', tap, 'mtu', String(vif.mtu)]);
    await execFileP('ip', ['link', 'set', 'dev', tap, 'up']);
    await ovs.addPort(bridge, tap, { externalIds: { 'iface-id': vif.portId, 'iface-status': 'active', 'attached-mac': vif.macAddress, 'vm-uuid': id } });
  }

  /** Takes the port's tap out of the bridge and removes it. Idempotent. */
  private async unplugTap(portId: string): Promise<void> {
    if (!this.o.network) return;
    const tap = tapName(portId);
    await this.o.network.ovs.deletePort(this.o.network.bridge, tap);
    if (await this.exists(`/sys/class/net/${tap}`)) {
      await execFileP('ip', ['link', 'del', 'dev', tap]).catch(async (err) => {
        if (await this.exists(`/sys/class/net/${tap}`)) throw new QemuDriverError(`cannot remove tap ${tap}: ${((err as { stderr?: string }).stderr ?? String(err)).trim()}`);
      });
    }
  }

  /** The taps of a guest that no longer runs here (stopped, gone, moved away). */
  private async unplugAll(id: string): Promise<void> {
    let guest: GuestFile;
    try {
      guest = JSON.parse(await readFile(join(this.dir(id), 'guest.json'), 'utf8')) as GuestFile;
    } catch {
      return;
    }
    for (const vif of guest.spec.interfaces ?? []) await this.unplugTap(vif.portId);
  }

  private async writeGuest(id: string, guest: GuestFile): Promise<void> {
    const dir = this.dir(id);
    await writeFile(join(dir, 'guest.json.tmp'), JSON.stringify(guest, null, 2));
    await rename(join(dir, 'guest.json.tmp'), join(dir, 'guest.json'));
  }

  /** Hot-plugs the port's NIC into a running (or paused) guest; records it for the next start of one that is off. */
  attachInterface(id: string, vif: GuestInterface): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if (await this.exists(join(this.dir(id), 'state'))) throw new QemuDriverError(`instance ${id} is suspended: its saved machine must come back with the devices it had`);
      const list = guest.spec.interfaces ?? [];
      const at = list.findIndex((i) => i.portId === vif.portId);
      guest.spec = { ...guest.spec, interfaces: at >= 0 ? list.map((i, n) => (n === at ? vif : i)) : [...list, vif] };
      if ((await this.pid(id)) !== undefined) {
        await this.plugTap(id, vif);
        const q = await this.qmp(id);
        await tolerate(q.execute('netdev_add', { type: 'tap', id: netdevId(vif.portId), ifname: tapName(vif.portId), script: 'no', downscript: 'no' }), /Duplicate|already/i);
        await tolerate(
          q.execute('device_add', { driver: 'virtio-net-pci', id: nicId(vif.portId), netdev: netdevId(vif.portId), mac: vif.macAddress, csum: false, guest_csum: false }),
          /Duplicate|already/i,
        );
      }
      await this.writeGuest(id, guest);
    });
  }

  /**
   * Hot-unplugs the port's NIC (device_del, then waits until the guest has let the device go, then
   * netdev_del) and removes its tap; a guest that is off only forgets it. A paused guest cannot
   * let the device go until it runs: that detach fails, naming it.
   */
  detachInterface(id: string, portId: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if (await this.exists(join(this.dir(id), 'state'))) throw new QemuDriverError(`instance ${id} is suspended: its saved machine must come back with the devices it had`);
      if ((await this.pid(id)) !== undefined) {
        const q = await this.qmp(id);
        const present = async () => ((await q.execute<{ name: string }[]>('qom-list', { path: '/machine/peripheral' })) ?? []).some((p) => p.name === nicId(portId));
        if (await present()) {
          const { status } = await q.execute<{ status: string }>('query-status');
          if (status !== 'running') throw new QemuDriverError(`instance ${id} is ${status}: the guest must run to let its NIC go`);
          await tolerate(q.execute('device_del', { id: nicId(portId) }), /not found/i);
          const deadline = Date.now() + 30_000;
          while (await present()) {
            if (Date.now() > deadline) throw new QemuDriverError(`the guest of instance ${id} did not let the NIC of port ${portId} go within 30 s`);
            await sleep(100);
          }
        }
        await tolerate(q.execute('netdev_del', { id: netdevId(portId) }), /not found/i);
      }
      await this.unplugTap(portId);
      guest.spec = { ...guest.spec, interfaces: (guest.spec.interfaces ?? []).filter((i) => i.portId !== portId) };
      await this.writeGuest(id, guest);
    });
  }

  /** The unix socket of the guest's second serial port (ttyS1): the test image's shell with strata.shell=ttyS1. */
  shellSocket(id: string): string {
    return join(this.dir(id), 'shell.sock');
  }

  /** The guest's block nodes by name (with their virtual size). */
  private async blockNodes(q: QmpClient): Promise<Map<string, { size: number }>> {
    const nodes = await q.execute<{ 'node-name'?: string; image?: { 'virtual-size'?: number } }[]>('query-named-block-nodes', { flat: true });
    return new Map(nodes.filter((n) => n['node-name']).map((n) => [n['node-name']!, { size: n.image?.['virtual-size'] ?? 0 }]));
  }

  private async deviceIds(q: QmpClient): Promise<Set<string>> {
    return new Set(((await q.execute<{ name: string }[]>('qom-list', { path: '/machine/peripheral' })) ?? []).map((p) => p.name));
  }

  /** Plugs a recorded volume into the running guest: whatever of its nodes and device is missing (idempotent). */
  private async plugVolume(q: QmpClient, v: GuestVolume): Promise<void> {
    const nodes = await this.blockNodes(q);
    const format = volumeFormatNode(v.attachmentId);
    if (!nodes.has(format)) {
      const nbd = `${volumeNbdPrefix(v.attachmentId)}0`;
      if (!nodes.has(nbd)) {
        try {
          await q.execute('blockdev-add', nbdNodeOptions(v, nbd));
        } catch (err) {
          throw new QemuDriverError(`cannot connect volume ${v.volumeId} (nbd://${v.connection.host}:${v.connection.port}/${v.connection.exportName}): ${(err as Error).message}`);
        }
      }
      await q.execute('blockdev-add', rawNodeOptions(v, nbd));
    }
    if (!(await this.deviceIds(q)).has(volumeDeviceId(v.attachmentId))) {
      await tolerate(q.execute('device_add', volumeDeviceOptions(v)), /Duplicate|already/i);
    }
  }

  /**
   * Attaches the volume: recorded in guest.json with Nova's next free device name, and hot-plugged
   * into a running (or paused) guest. The same attachment again returns its device (and plugs what
   * is missing, e.g. after a crash between the record and the plug).
   */
  attachVolume(id: string, attachment: VolumeAttachmentSpec): Promise<AttachedVolume> {
    return this.serial(id, async () => {
      volumeDeviceId(attachment.attachmentId); // checks the id
      const guest = await this.readGuest(id);
      if (await this.exists(join(this.dir(id), 'state'))) throw new QemuDriverError(`instance ${id} is suspended: its saved machine must come back with the devices it had`);
      const list = guest.volumes ?? [];
      let v = list.find((x) => x.attachmentId === attachment.attachmentId);
      if (!v) {
        v = { ...attachment, serial: volumeSerial(attachment), device: nextVolumeDevice(list.map((x) => x.device)) };
        // Recorded first: a crash after the plug still finds it to detach; a failed plug takes it back out.
        guest.volumes = [...list, v];
        await this.writeGuest(id, guest);
        if ((await this.pid(id)) !== undefined) {
          try {
            await this.plugVolume(await this.qmp(id), v);
          } catch (err) {
            await this.unplugVolume(id, v.attachmentId).catch(() => undefined);
            guest.volumes = list;
            await this.writeGuest(id, guest);
            throw err;
          }
        }
        return { device: v.device };
      }
      if ((await this.pid(id)) !== undefined) await this.plugVolume(await this.qmp(id), v);
      return { device: v.device };
    });
  }

  /**
   * Takes the attachment's device and nodes out of a running guest: device_del, then waits until
   * the guest has let the disk go (the device leaves /machine/peripheral), then blockdev-del of the
   * raw node and of every nbd node of the attachment. A paused guest cannot let it go: that fails.
   */
  private async unplugVolume(id: string, attachmentId: string): Promise<void> {
    if ((await this.pid(id)) === undefined) return;
    const q = await this.qmp(id);
    const dev = volumeDeviceId(attachmentId);
    if ((await this.deviceIds(q)).has(dev)) {
      const { status } = await q.execute<{ status: string }>('query-status');
      if (status !== 'running') throw new QemuDriverError(`instance ${id} is ${status}: the guest must run to let its disk go`);
      await tolerate(q.execute('device_del', { id: dev }), /not found/i);
      const deadline = Date.now() + 60_000;
      let asked = Date.now();
      while ((await this.deviceIds(q)).has(dev)) {
        if (Date.now() > deadline) throw new QemuDriverError(`the guest of instance ${id} did not let the disk of attachment ${attachmentId} go within 60 s`);
        // A guest still booting misses the ACPI eject request: ask again now and then (QEMU may
        // refuse a repeat while one is pending; that is fine).
        if (Date.now() - asked > 5000) {
          await q.execute('device_del', { id: dev }).catch(() => undefined);
          asked = Date.now();
        }
        await sleep(100);
      }
    }
    const nodes = await this.blockNodes(q);
    if (nodes.has(volumeFormatNode(attachmentId))) await this.deleteNode(q, volumeFormatNode(attachmentId));
    for (const name of nodes.keys()) {
      if (name.startsWith(volumeNbdPrefix(attachmentId))) await this.deleteNode(q, name);
    }
  }

  /**
   * blockdev-del, once nothing uses the node: the device leaves /machine/peripheral a moment
   * before it lets go of its drive ("is in use"), so that is retried for a while. Gone already: done.
   */
  private async deleteNode(q: QmpClient, name: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await q.execute('blockdev-del', { 'node-name': name });
        return;
      } catch (err) {
        if (err instanceof QmpError && /not found|cannot find/i.test(err.desc)) return;
        if (!(err instanceof QmpError && /in use/i.test(err.desc)) || Date.now() > deadline) throw err;
      }
      await sleep(100);
    }
  }

  /** Hot-unplugs the volume from a running guest and forgets it; a guest that is off only forgets it. */
  detachVolume(id: string, attachmentId: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if (await this.exists(join(this.dir(id), 'state'))) throw new QemuDriverError(`instance ${id} is suspended: its saved machine must come back with the devices it had`);
      await this.unplugVolume(id, attachmentId);
      if (!(guest.volumes ?? []).some((v) => v.attachmentId === attachmentId)) return;
      guest.volumes = (guest.volumes ?? []).filter((v) => v.attachmentId !== attachmentId);
      await this.writeGuest(id, guest);
    });
  }

  /**
   * Shows a running guest the volume's new size: a new nbd node (a new connection reads the
   * export's size now), the raw node reopened onto it, block_resize of the raw node to that size
   * (virtio-blk tells the guest), the older nbd nodes deleted. The export must offer at least
   * `newSizeBytes`; a disk already that big is left alone. A guest that is off reads the size at
   * its next start. A suspended guest's saved machine keeps its old size until it resumes and is extended again.
   */
  extendVolume(id: string, attachmentId: string, newSizeBytes: number): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      const v = (guest.volumes ?? []).find((x) => x.attachmentId === attachmentId);
      if (!v) throw new QemuDriverError(`instance ${id} has no volume attachment ${attachmentId}`);
      if ((await this.pid(id)) === undefined) return;
      const q = await this.qmp(id);
      let nodes = await this.blockNodes(q);
      const format = volumeFormatNode(attachmentId);
      if (!nodes.has(format)) {
        await this.plugVolume(q, v); // a fresh connection has the new size already
        nodes = await this.blockNodes(q);
      }
      if ((nodes.get(format)?.size ?? 0) >= newSizeBytes) return;
      const prefix = volumeNbdPrefix(attachmentId);
      const old = [...nodes.keys()].filter((n) => n.startsWith(prefix));
      const next = `${prefix}${Math.max(-1, ...old.map((n) => Number(n.slice(prefix.length)) || 0)) + 1}`;
      try {
        await q.execute('blockdev-add', nbdNodeOptions(v, next));
      } catch (err) {
        throw new QemuDriverError(`extend of volume ${v.volumeId} on ${id}: cannot connect to its export again: ${(err as Error).message}`);
      }
      const offered = (await this.blockNodes(q)).get(next)?.size ?? 0;
      if (offered < newSizeBytes) {
        await tolerate(q.execute('blockdev-del', { 'node-name': next }), /not found/i);
        throw new QemuDriverError(`extend of volume ${v.volumeId} on ${id}: its export offers ${offered} bytes, not the ${newSizeBytes} asked for (has the storage host grown it?)`);
      }
      await q.execute('blockdev-reopen', { options: [rawNodeOptions(v, next)] });
      await q.execute('block_resize', { 'node-name': format, size: offered });
      for (const n of old) await this.deleteNode(q, n);
    });
  }

  /** The attachment ids of the guest's volumes, in attach order. */
  async listVolumes(id: string): Promise<string[]> {
    return ((await this.readGuest(id)).volumes ?? []).map((v) => v.attachmentId);
  }

  /** Stops the guest's process: `quit` over QMP, SIGKILL when that fails or takes too long; then its taps go. */
  private async stopProcess(id: string): Promise<void> {
    await this.stopQemu(id);
    await this.unplugAll(id);
  }

  private async stopQemu(id: string): Promise<void> {
    const pid = await this.pid(id);
    if (pid === undefined) return;
    try {
      const q = await this.qmp(id);
      await Promise.race([q.execute('quit'), sleep(this.quitTimeoutMs)]);
    } catch {
      // QEMU closing the socket before its reply is the normal end; anything else ends in SIGKILL below.
    }
    const deadline = Date.now() + this.quitTimeoutMs;
    while (Date.now() < deadline && (await processAlive(pid))) await sleep(25);
    if (await processAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      const end = Date.now() + 5000;
      while (Date.now() < end && (await processAlive(pid))) await sleep(25);
    }
    this.qmps.get(id)?.close();
    this.qmps.delete(id);
  }

  destroy(id: string): Promise<void> {
    this.receivers.get(id)?.close();
    this.receivers.delete(id);
    return this.serial(id, async () => {
      await this.stopProcess(id);
      await rm(this.dir(id), { recursive: true, force: true });
    });
  }

  powerOff(id: string): Promise<void> {
    return this.serial(id, async () => {
      await this.readGuest(id);
      await this.stopProcess(id);
    });
  }

  powerOn(id: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if ((await this.pid(id)) !== undefined) return;
      if (await this.exists(join(this.dir(id), 'state'))) return this.restore(id, guest);
      await this.launch(id, guest);
    });
  }

  /** system_reset (soft and hard alike: the guest gets no ACPI request first); starts a guest that is off. */
  reboot(id: string, _hard: boolean): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if ((await this.pid(id)) === undefined) {
        await rm(join(this.dir(id), 'state'), { force: true });
        return this.launch(id, guest);
      }
      const q = await this.qmp(id);
      await q.execute('system_reset');
      const { status } = await q.execute<{ status: string }>('query-status');
      if (status !== 'running') await q.execute('cont');
    });
  }

  pause(id: string): Promise<void> {
    return this.serial(id, async () => {
      await (await this.running(id)).execute('stop');
    });
  }

  unpause(id: string): Promise<void> {
    return this.serial(id, async () => {
      await (await this.running(id)).execute('cont');
    });
  }

  /** Like libvirt's managed save: the machine's state goes to <dir>/state and the process ends. */
  suspend(id: string): Promise<void> {
    return this.serial(id, async () => {
      const dir = this.dir(id);
      if ((await this.pid(id)) === undefined) {
        if (await this.exists(join(dir, 'state'))) return;
        throw new QemuDriverError(`instance ${id} is not running`);
      }
      const q = await this.qmp(id);
      await q.execute('stop');
      const tmp = join(dir, 'state.tmp');
      await q.execute('migrate', { uri: `exec:cat > '${tmp.replace(/'/g, `'\\''`)}'` });
      await this.waitMigration(q, id);
      await rename(tmp, join(dir, 'state'));
      await this.stopProcess(id);
    });
  }

  resume(id: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      if ((await this.pid(id)) !== undefined) {
        await (await this.qmp(id)).execute('cont');
        return;
      }
      if (!(await this.exists(join(this.dir(id), 'state')))) return this.launch(id, guest);
      await this.restore(id, guest);
    });
  }

  private async restore(id: string, guest: GuestFile): Promise<void> {
    const state = join(this.dir(id), 'state');
    await this.launch(id, guest, true);
    const q = await this.qmp(id);
    await q.execute('migrate-incoming', { uri: `exec:cat '${state.replace(/'/g, `'\\''`)}'` });
    await this.waitMigration(q, id);
    await q.execute('cont');
    await rm(state, { force: true });
  }

  private async waitMigration(q: QmpClient, id: string): Promise<void> {
    const deadline = Date.now() + 120_000;
    for (;;) {
      const info = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
      if (info.status === 'completed') return;
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new QemuDriverError(`migration of ${id} (a move, save or restore) failed: ${info['error-desc'] ?? info.status}`);
      }
      if (info.status === undefined) {
        // An incoming migration that finished leaves query-migrate empty; the run state tells.
        const { status } = await q.execute<{ status: string }>('query-status');
        if (status !== 'inmigrate') return;
      }
      if (Date.now() > deadline) throw new QemuDriverError(`migration of ${id} (a move, save or restore) timed out`);
      await sleep(50);
    }
  }

  /**
   * QEMU waiting for the guest's state (-incoming defer), listening on a free port of
   * migrationAddress; the URI is kept in the guest's directory so that asking again (an agent that
   * restarted) gives the same answer while QEMU still waits.
   */
  prepareIncoming(spec: GuestSpec, mode: 'live' | 'cold' = 'live'): Promise<string> {
    if (mode === 'cold') return this.serial(spec.instanceId, () => this.receiveDisk(spec));
    return this.serial(spec.instanceId, async () => {
      const id = spec.instanceId;
      const dir = this.dir(id);
      const uriFile = join(dir, 'incoming.uri');
      if ((await this.pid(id)) !== undefined) {
        const stored = await readFile(uriFile, 'utf8').catch(() => '');
        if (stored) return stored;
        throw new QemuDriverError(`instance ${id} already runs on this host`);
      }
      await rm(dir, { recursive: true, force: true }); // what a failed earlier try left
      await mkdir(dir, { recursive: true });
      const guest: GuestFile = { spec, boot: await this.resolve(spec.imageId) };
      const base = this.baseDisk(guest.boot);
      if (base) await this.createOverlay(dir, base, spec.flavor.diskGb);
      await writeFile(join(dir, 'guest.json'), JSON.stringify(guest, null, 2));
      await this.launch(id, guest, true);
      const q = await this.qmp(id);
      await q.execute('migrate-incoming', { uri: `tcp:${this.o.migrationAddress ?? '127.0.0.1'}:0` });
      const info = await q.execute<{ 'socket-address'?: { host: string; port: string }[] }>('query-migrate');
      const at = info['socket-address']?.[0];
      if (!at) throw new QemuDriverError(`qemu for ${id} did not say where it listens for the migration`);
      const uri = `tcp:${at.host}:${at.port}`;
      await writeFile(uriFile, uri);
      return uri;
    });
  }

  /**
   * Cold move, destination: a one-shot TCP receiver (on migrationAddress) for the guest's disk
   * overlay; once it has the disk it rebases it on this host's copy of the image, grows it to the
   * new flavor, starts the guest if it ran on the source, and answers "ok".
   * Wire format: one JSON line {instanceId, diskBytes, running}, then diskBytes bytes.
   */
  private async receiveDisk(spec: GuestSpec): Promise<string> {
    const id = spec.instanceId;
    const existing = this.receivers.get(id);
    if (existing) return existing.uri;
    const dir = this.dir(id);
    if ((await this.pid(id)) !== undefined) throw new QemuDriverError(`instance ${id} already runs on this host`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    const guest: GuestFile = { spec, boot: await this.resolve(spec.imageId) };
    await writeFile(join(dir, 'guest.json'), JSON.stringify(guest, null, 2));
    const server = createServer({ allowHalfOpen: true }, (socket) => {
      server.close();
      this.receivers.delete(id);
      void this.serial(id, () => this.acceptDisk(socket, guest)).then(
        () => socket.end('ok\n'),
        (e: Error) => socket.end(`error: ${e.message.replace(/\n/g, ' ')}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.o.migrationAddress ?? '127.0.0.1', () => resolve());
    });
    const { address, port } = server.address() as AddressInfo;
    const uri = `strata-disk:${address}:${port}`;
    this.receivers.set(id, { uri, close: () => server.close() });
    return uri;
  }

  private async acceptDisk(socket: Socket, guest: GuestFile): Promise<void> {
    const id = guest.spec.instanceId;
    const dir = this.dir(id);
    const part = join(dir, 'disk.qcow2.part');
    const out = await open(part, 'w');
    let header: { instanceId: string; diskBytes: number; running: boolean } | undefined;
    let pending = Buffer.alloc(0);
    let written = 0;
    try {
      // Not destroyed at the end of the loop: the answer goes back on this socket.
      for await (const chunk of socket.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
        let data = chunk;
        if (!header) {
          pending = Buffer.concat([pending, chunk]);
          const nl = pending.indexOf(10);
          if (nl < 0) continue;
          header = JSON.parse(pending.subarray(0, nl).toString('utf8')) as typeof header;
          if (header!.instanceId !== id) throw new QemuDriverError(`expected the disk of ${id}, got ${header!.instanceId}`);
          data = pending.subarray(nl + 1);
        }
        if (data.length > 0) {
          await out.write(data);
          written += data.length;
        }
      }
      await out.sync();
    } finally {
      await out.close();
    }
    if (!header) throw new QemuDriverError(`the source of ${id} sent nothing`);
    if (written !== header.diskBytes) throw new QemuDriverError(`disk of ${id}: received ${written} of ${header.diskBytes} bytes`);
    const base = this.baseDisk(guest.boot);
    if (header.diskBytes > 0 && base) {
      // The overlay names the source's copy of the image: point it at this host's (same content).
      await execFileP('qemu-img', ['rebase', '-u', '-b', base.path, '-F', base.format ?? 'qcow2', part]);
      const info = JSON.parse((await execFileP('qemu-img', ['info', '--output=json', part])).stdout) as { 'virtual-size': number };
      const want = guest.spec.flavor.diskGb * 1024 ** 3;
      if (want > info['virtual-size']) await execFileP('qemu-img', ['resize', '-q', part, String(want)]);
      await rename(part, join(dir, 'disk.qcow2'));
    } else {
      await rm(part, { force: true });
      if (base) await this.createOverlay(dir, base, guest.spec.flavor.diskGb);
    }
    if (header.running) await this.launch(id, guest);
  }

  /** Cold move, source: power off, then send the disk overlay to the destination's receiver. */
  private async sendDisk(id: string, uri: string): Promise<void> {
    const m = /^strata-disk:(.+):(\d+)$/.exec(uri);
    if (!m) throw new QemuDriverError(`not a disk transfer address: ${uri}`);
    const running = (await this.pid(id)) !== undefined;
    await this.stopProcess(id);
    const overlay = join(this.dir(id), 'disk.qcow2');
    const diskBytes = (await this.exists(overlay)) ? (await stat(overlay)).size : 0;
    const socket = connect({ host: m[1]!, port: Number(m[2]) });
    const answer = new Promise<string>((resolve, reject) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString('utf8')));
      socket.on('end', () => resolve(text.trim()));
      socket.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.write(`${JSON.stringify({ instanceId: id, diskBytes, running })}\n`);
    if (diskBytes > 0) {
      const file = await open(overlay, 'r');
      try {
        for await (const chunk of file.createReadStream()) {
          if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
        }
      } finally {
        await file.close().catch(() => undefined);
      }
    }
    socket.end();
    const reply = await answer;
    if (reply !== 'ok') throw new QemuDriverError(`the destination of ${id} did not take it: ${reply || 'no answer'}`);
  }

  /**
   * Live (tcp: URI): QEMU's own migration, with the disk's overlay for disk guests, then the guest
   * leaves this host. Cold (strata-disk: URI): sendDisk; the guest stays here, off, for a revert.
   */
  migrateTo(id: string, uri: string): Promise<void> {
    if (uri.startsWith('strata-disk:')) {
      return this.serial(id, async () => {
        await this.readGuest(id);
        await this.sendDisk(id, uri);
      });
    }
    return this.serial(id, async () => {
      const dir = this.dir(id);
      if (!(await this.exists(join(dir, 'guest.json')))) return; // sent earlier, then removed
      if ((await this.pid(id)) === undefined) throw new QemuDriverError(`instance ${id} is not running`);
      const guest = await this.readGuest(id);
      const q = await this.qmp(id);
      const { status } = await q.execute<{ status?: string }>('query-migrate');
      // An agent that restarted mid-migration finds QEMU still sending, or done: it waits, or not.
      if (status !== 'active' && status !== 'setup' && status !== 'completed') {
        await q.execute('migrate', this.baseDisk(guest.boot) ? { uri, blk: true, inc: true } : { uri });
      }
      await this.waitMigration(q, id);
      await this.stopProcess(id);
      await rm(dir, { recursive: true, force: true });
    });
  }

  /** Boots the instance's image afresh with the instance's disk attached (the `rescue` file marks it). */
  rescue(id: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      const dir = this.dir(id);
      await this.stopProcess(id);
      await rm(join(dir, 'state'), { force: true });
      if (guest.boot.kind === 'disk') {
        await rm(join(dir, 'rescue.qcow2'), { force: true });
        await this.createOverlay(dir, guest.boot, 0, 'rescue.qcow2');
      }
      await writeFile(join(dir, 'rescue'), '');
      await this.launch(id, guest);
    });
  }

  /** Back to the instance's own boot, from its disk as the rescue left it. */
  unrescue(id: string): Promise<void> {
    return this.serial(id, async () => {
      const guest = await this.readGuest(id);
      const dir = this.dir(id);
      await this.stopProcess(id);
      await rm(join(dir, 'rescue'), { force: true });
      await rm(join(dir, 'rescue.qcow2'), { force: true });
      await this.launch(id, guest);
    });
  }

  /**
   * The guest as a new image in the image directory: its kernel (and initrd) and its disk flattened.
   * A running guest is paused meanwhile (QEMU flushes its disk when it stops), as Nova's cold snapshot.
   */
  snapshot(id: string, imageId: string): Promise<void> {
    return this.serial(id, async () => {
      if (!this.o.images) throw new QemuDriverError(`snapshot of ${id}: the qemu driver has no image directory to write it to`);
      const guest = await this.readGuest(id);
      const overlay = join(this.dir(id), 'disk.qcow2');
      const disk = (await this.exists(overlay)) ? overlay : undefined;
      let paused = false;
      if (disk && (await this.pid(id)) !== undefined) {
        const q = await this.qmp(id);
        if ((await q.execute<{ status: string }>('query-status')).status === 'running') {
          await q.execute('stop');
          paused = true;
        }
      }
      try {
        await this.o.images.save(imageId, guest.boot, disk);
      } finally {
        if (paused) await (await this.qmp(id)).execute('cont');
      }
    });
  }

  async powerState(id: string): Promise<number> {
    const dir = this.dir(id);
    if ((await this.pid(id)) !== undefined) {
      try {
        const { status } = await (await this.qmp(id)).execute<{ status: string }>('query-status');
        return powerFromStatus(status);
      } catch (err) {
        if (!(err instanceof QmpClosedError) && (await this.pid(id)) !== undefined) throw err;
      }
    }
    if (await this.exists(join(dir, 'state'))) return POWER_STATES.SUSPENDED;
    if (await this.exists(join(dir, 'guest.json'))) return POWER_STATES.SHUTDOWN;
    return POWER_STATES.NOSTATE;
  }

  async list(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.o.stateDir);
    } catch {
      return [];
    }
    const out: string[] = [];
    for (const n of names) if (await this.exists(join(this.o.stateDir, n, 'guest.json'))) out.push(n);
    return out.sort();
  }

  async consoleOutput(id: string, lines?: number): Promise<string> {
    const dir = this.dir(id);
    if (!(await this.exists(join(dir, 'guest.json')))) throw new QemuDriverError(`instance ${id} is not on this host`);
    let text: string;
    try {
      text = (await this.tail(join(dir, 'console.log'), this.consoleLogBytes)).toString('utf8');
    } catch {
      return '';
    }
    const all = text.replace(/\r/g, '').split('\n');
    if (all[all.length - 1] === '') all.pop();
    return (lines ? all.slice(-lines) : all).join('\n');
  }

  /** Closes the QMP connections (guests keep running: they belong to the host, not to this process). */
  close(): void {
    for (const r of this.receivers.values()) r.close();
    this.receivers.clear();
    for (const q of this.qmps.values()) q.close();
    this.qmps.clear();
  }
}

/** The newest readable /boot/vmlinuz-* (undefined: none). */
async function hostKernel(): Promise<string | undefined> {
  const names = await readdir('/boot').catch(() => [] as string[]);
  const kernels = names.filter((n) => n.startsWith('vmlinuz-')).sort().reverse();
  for (const k of kernels) {
    try {
      await access(join('/boot', k), fsConstants.R_OK);
      return join('/boot', k);
    } catch {
      /* not readable by this user */
    }
  }
  return undefined;
}

export interface KvmProbeOptions {
  qemu?: string;
  /** A kernel guest to boot under KVM; KVM passes when `marker` shows on its serial console in time. Without it the host's kernel (/boot/vmlinuz-*) is booted to its banner, or if there is none only the firmware runs. */
  boot?: Extract<GuestBoot, { kind: 'kernel' }>;
  marker?: string;
  /** How long the probe guest gets (default 1.5 s with firmware only, 10 s for the host's kernel, 20 s with a boot). */
  timeoutMs?: number;
}

/**
 * Whether KVM really runs a guest, the way the driver would start it (-accel kvm -cpu host): a tiny
 * machine runs under KVM and must still be running (firmware only) or print `marker` (with `boot`).
 * Here /dev/kvm opens but such a guest aborts ("failed to set MSR") or stops with "KVM internal error".
 */
export async function probeKvm(o: KvmProbeOptions = {}): Promise<boolean> {
  // The firmware alone can run where a kernel cannot (here SeaBIOS runs under KVM but a Linux guest
  // never prints a line): without a guest to boot, the host's own kernel is booted until it prints
  // its banner (it panics after, without a root: that is fine).
  if (!o.boot) {
    const kernel = await hostKernel();
    if (kernel) return probeKvm({ ...o, boot: { kind: 'kernel', kernel, append: 'console=ttyS0 panic=-1' }, marker: 'Linux version', timeoutMs: o.timeoutMs ?? 10_000 });
  }
  const qemu = o.qemu ?? 'qemu-system-x86_64';
  try {
    await access('/dev/kvm', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    return false;
  }
  const dir = await mkdtemp(join(tmpdir(), 'strata-kvm-probe-'));
  const sock = join(dir, 'qmp.sock');
  const pidfile = join(dir, 'qemu.pid');
  const consoleLog = join(dir, 'console.log');
  let pid: number | undefined;
  try {
    const args = [
      '-nodefaults', '-no-user-config', '-accel', 'kvm', '-cpu', 'host', '-m', o.boot ? '256' : '32', '-display', 'none',
      '-chardev', `file,id=console,path=${consoleLog}`, '-serial', 'chardev:console',
      '-qmp', `unix:${sock},server=on,wait=off`, '-pidfile', pidfile, '-daemonize',
    ];
    if (o.boot) {
      args.push('-kernel', o.boot.kernel);
      if (o.boot.initrd) args.push('-initrd', o.boot.initrd);
      if (o.boot.append) args.push('-append', o.boot.append);
    }
    await execFileP(qemu, args, { timeout: 15_000 });
    pid = Number((await readFile(pidfile, 'utf8')).trim());
    const deadline = Date.now() + (o.timeoutMs ?? (o.boot ? 20_000 : 1500));
    if (o.boot && o.marker) {
      for (;;) {
        if (!(await processAlive(pid))) return false;
        const out = await readFile(consoleLog, 'utf8').catch(() => '');
        if (out.includes(o.marker)) break;
        if (Date.now() > deadline) return false;
        await sleep(100);
      }
    } else {
      await sleep(Math.max(0, deadline - Date.now()));
    }
    if (!(await processAlive(pid))) return false;
    const q = await QmpClient.connect(sock, 5000);
    try {
      const { status } = await q.execute<{ status: string }>('query-status');
      return status === 'running';
    } finally {
      q.close();
    }
  } catch {
    return false;
  } finally {
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await rm(dir, { recursive: true, force: true });
  }
}
