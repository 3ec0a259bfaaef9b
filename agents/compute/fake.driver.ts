// The fake hypervisor: guests are entries in a map, spawning takes a configurable time and fails
// at a configurable rate (or on demand), so thousands of hosts fit in one process for scale and
// fault tests. It keeps Nova's power states so the agent's reports are the real ones.
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import { nextVolumeDevice } from './driver.js';
import type { AttachedVolume, ComputeDriver, GuestInterface, GuestSpec, VolumeAttachmentSpec } from './driver.js';

export interface FakeDriverOptions {
  /** Time a spawn takes (ms). */
  spawnMs?: number;
  /** Share of spawns that fail, 0..1. */
  failureRate?: number;
  /** Decides, per spawn, that it fails (overrides failureRate when it returns a value). */
  failSpawn?: (spec: GuestSpec) => boolean | undefined;
  random?: () => number;
}

interface FakeGuest {
  spec: GuestSpec;
  power: number;
  rescued: boolean;
  console: string[];
  /** Attached volumes by attachment id, in attach order, with the device name and the size an extend last set. */
  volumes?: Map<string, { spec: VolumeAttachmentSpec; device: string; sizeBytes?: number }>;
}

export class FakeDriverError extends Error {}

export class FakeDriver implements ComputeDriver {
  readonly kind = 'fake';
  readonly guests = new Map<string, FakeGuest>();
  readonly snapshots = new Map<string, string>();

  constructor(
    readonly hostId: string,
    private readonly o: FakeDriverOptions = {},
  ) {}

  private guest(id: string): FakeGuest {
    const g = this.guests.get(id);
    if (!g) throw new FakeDriverError(`instance ${id} is not on host ${this.hostId}`);
    return g;
  }

  async spawn(spec: GuestSpec): Promise<void> {
    const existing = this.guests.get(spec.instanceId);
    if (existing && existing.power === POWER_STATES.RUNNING) return;
    if ((this.o.spawnMs ?? 0) > 0) await new Promise((r) => setTimeout(r, this.o.spawnMs));
    const fails = this.o.failSpawn?.(spec) ?? (this.o.random ?? Math.random)() < (this.o.failureRate ?? 0);
    if (fails) throw new FakeDriverError(`fake driver on ${this.hostId} failed to spawn ${spec.instanceId}`);
    this.guests.set(spec.instanceId, { spec, power: POWER_STATES.RUNNING, rescued: false, console: [`booted ${spec.name} on ${this.hostId}`] });
  }

  /**
   * A live move's destination boots the guest at once (fake hosts share no memory); a cold one
   * waits for the source's migrateTo, which hands over the guest off or running, as it was.
   * Fake hosts exchange guests through this process's registry of receivers.
   */
  async prepareIncoming(spec: GuestSpec, mode: 'live' | 'cold'): Promise<string> {
    const uri = `fake-${mode}:${this.hostId}/${spec.instanceId}`;
    if (mode === 'live') await this.spawn(spec);
    else FakeDriver.receivers.set(uri, { driver: this, spec });
    return uri;
  }

  private static readonly receivers = new Map<string, { driver: FakeDriver; spec: GuestSpec }>();

  async migrateTo(id: string, uri: string): Promise<void> {
    if (!uri.startsWith('fake-cold:')) {
      this.guests.delete(id);
      return;
    }
    const receiver = FakeDriver.receivers.get(uri);
    if (!receiver) throw new FakeDriverError(`no fake host in this process waits at ${uri}`);
    const running = this.guests.get(id)?.power === POWER_STATES.RUNNING;
    if (this.guests.has(id)) this.set(id, POWER_STATES.SHUTDOWN, 'powered off to move');
    receiver.driver.guests.set(id, { spec: receiver.spec, power: running ? POWER_STATES.RUNNING : POWER_STATES.SHUTDOWN, rescued: false, console: [`moved here from ${this.hostId}`] });
    FakeDriver.receivers.delete(uri);
  }

  async destroy(id: string): Promise<void> {
    this.guests.delete(id);
  }

  private set(id: string, power: number, line: string): void {
    const g = this.guest(id);
    g.power = power;
    g.console.push(line);
  }

  async powerOff(id: string) { this.set(id, POWER_STATES.SHUTDOWN, 'power off'); }
  async powerOn(id: string) { this.set(id, POWER_STATES.RUNNING, 'power on'); }
  async reboot(id: string, hard: boolean) { this.set(id, POWER_STATES.RUNNING, hard ? 'hard reboot' : 'reboot'); }
  async pause(id: string) { this.set(id, POWER_STATES.PAUSED, 'paused'); }
  async unpause(id: string) { this.set(id, POWER_STATES.RUNNING, 'unpaused'); }
  async suspend(id: string) { this.set(id, POWER_STATES.SUSPENDED, 'suspended'); }
  async resume(id: string) { this.set(id, POWER_STATES.RUNNING, 'resumed'); }
  async rescue(id: string) { this.guest(id).rescued = true; this.set(id, POWER_STATES.RUNNING, 'rescue'); }
  async unrescue(id: string) { this.guest(id).rescued = false; this.set(id, POWER_STATES.RUNNING, 'unrescue'); }

  /** Records the NIC in the guest's spec (no device: the fake has no network). */
  async attachInterface(id: string, vif: GuestInterface): Promise<void> {
    const g = this.guest(id);
    const others = (g.spec.interfaces ?? []).filter((i) => i.portId !== vif.portId);
    g.spec = { ...g.spec, interfaces: [...others, vif] };
    g.console.push(`attached interface ${vif.portId} (${vif.macAddress})`);
  }

  async detachInterface(id: string, portId: string): Promise<void> {
    const g = this.guest(id);
    g.spec = { ...g.spec, interfaces: (g.spec.interfaces ?? []).filter((i) => i.portId !== portId) };
    g.console.push(`detached interface ${portId}`);
  }

  /** The port ids of the guest's NICs. */
  interfaces(id: string): string[] {
    return (this.guests.get(id)?.spec.interfaces ?? []).map((i) => i.portId);
  }

  /** Records the volume with Nova's next free device name (vdb, vdc, ...); no disk: the fake has no guest. */
  async attachVolume(id: string, attachment: VolumeAttachmentSpec): Promise<AttachedVolume> {
    const g = this.guest(id);
    g.volumes ??= new Map();
    const have = g.volumes.get(attachment.attachmentId);
    if (have) return { device: have.device };
    const device = nextVolumeDevice([...g.volumes.values()].map((v) => v.device));
    g.volumes.set(attachment.attachmentId, { spec: attachment, device });
    g.console.push(`attached volume ${attachment.volumeId} as ${device}`);
    return { device };
  }

  async detachVolume(id: string, attachmentId: string): Promise<void> {
    const g = this.guest(id);
    if (g.volumes?.delete(attachmentId)) g.console.push(`detached volume attachment ${attachmentId}`);
  }

  async extendVolume(id: string, attachmentId: string, newSizeBytes: number): Promise<void> {
    const v = this.guest(id).volumes?.get(attachmentId);
    if (!v) throw new FakeDriverError(`instance ${id} has no volume attachment ${attachmentId}`);
    v.sizeBytes = Math.max(v.sizeBytes ?? 0, newSizeBytes);
  }

  async listVolumes(id: string): Promise<string[]> {
    return [...(this.guest(id).volumes?.keys() ?? [])];
  }

  async snapshot(id: string, imageId: string): Promise<void> {
    this.guest(id);
    this.snapshots.set(imageId, id);
  }

  async powerState(id: string): Promise<number> {
    return this.guests.get(id)?.power ?? POWER_STATES.NOSTATE;
  }

  async list(): Promise<string[]> {
    return [...this.guests.keys()];
  }

  async consoleOutput(id: string, lines?: number): Promise<string> {
    const out = this.guest(id).console;
    return (lines ? out.slice(-lines) : out).join('\n');
  }

  /** Simulates a guest that died under the agent (the hypervisor's view changes, not the log's). */
  crash(id: string): void {
    this.guest(id).power = POWER_STATES.SHUTDOWN;
  }
}
