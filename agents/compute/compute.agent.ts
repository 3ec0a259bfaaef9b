// The compute agent: a level-triggered reconciler per host. It folds the compute events
// (ComputeFeed), asks hostDuty() what it owes each server placed on its host, does it with its
// driver, and reports the outcome as commands: the boot finished, the spawn failed (the conductor
// reschedules), the action completed or failed, the power state it observes. It registers the
// host's inventory, beats its heart, and destroys guests the log no longer places on it.
// One process can run many hosts (the fake driver's scale tests): they share one feed and bus.
// Command ids are keyed on host, server and action version, so a restarted agent repeating a
// report meets the original reply; driver operations are idempotent.
import { randomUUID } from 'node:crypto';
import type { InstanceView } from '../../domains/compute/compute.view.js';
import { guestInterfaces } from '../../domains/compute/instance.interfaces.js';
import { POWER_STATES } from '../../domains/compute/instance.states.js';
import type { Message } from '../../domains/kernel/decider.js';
import { TWO_HOST_MOVES, hostDuty, type HostDuty } from '../../domains/compute/sagas/host-duty.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import { ComputeFeed } from '../../infra/sagas/compute.feed.js';
import { startConsoleServer, type ConsoleServer } from './console.server.js';
import type { ComputeDriver, GuestInterface, GuestSpec } from './driver.js';
import type { BlockFeed } from '../../infra/sagas/block.feed.js';
import { VolumeAttachments } from './volume-attachments.js';

export interface InventoryConfig {
  total: number;
  reserved?: number;
  allocationRatio?: number;
}

export interface HostConfig {
  hostId: string;
  availabilityZone: string;
  inventory: { vcpus: InventoryConfig; ramMb: InventoryConfig; diskGb: InventoryConfig };
  driver: ComputeDriver;
}

export interface ComputeAgentOptions {
  log: Log;
  topology: TopologyOptions;
  hosts: HostConfig[];
  /** The compute domain's name (tests isolate themselves by it); default 'compute'. */
  domain?: string;
  /** Shared with a conductor in the same process; started here when absent. */
  feed?: ComputeFeed;
  /** Heartbeat period (Nova's report_interval, 10 s). */
  heartbeatMs?: number;
  /** Power-state sync and orphan sweep period. */
  syncMs?: number;
  /** A spawn still running after this long is reported as task_state spawning (default 100 ms). */
  progressAfterMs?: number;
  now?: () => number;
  onError?: (error: Error) => void;
  /**
   * Serve ComputeAgentService (console output) on this "host:port" (port 0: any free one) and
   * register it as the hosts' endpoint. Absent: no server, hosts registered without an endpoint
   * (the API then shows the control plane's record instead of the console).
   */
  listen?: string;
  /** The endpoint registered when it differs from the listen address (NAT, a wildcard address). */
  advertise?: string;
  /**
   * Block volumes of the servers (agents/compute/volume-attachments.ts): follow this block domain
   * (a feed shared in the process, or its name) and plug, unplug and grow their volumes. Absent: no volumes.
   */
  block?: { feed?: BlockFeed; domain?: string };
}

interface HostAgent {
  config: HostConfig;
  actor: Actor;
  alive: boolean;
  inFlight: Set<string>;
}

/** The image a shelve writes and an unshelve boots (Nova's "<name>-shelved" snapshot). */
export const shelvedImageId = (instanceId: string) => `${instanceId}-shelved`;

/** A server's interface as its driver plugs it. */
const vifOf = (i: { portId: string; networkId: string; macAddress: string; fixedIps: GuestInterface['fixedIps']; mtu: number }): GuestInterface => ({
  portId: i.portId, networkId: i.networkId, macAddress: i.macAddress, fixedIps: i.fixedIps, mtu: i.mtu,
});

/** Guests with no power of their own: nothing to compare with the hypervisor. */
const NOT_SYNCED = new Set(['building', 'deleted', 'shelved_offloaded', 'soft-delete', 'error']);

export class ComputeAgents {
  private readonly hosts = new Map<string, HostAgent>();
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private console: ConsoleServer | undefined;
  /** The servers' block volumes, when the agent follows a block domain. */
  volumes: VolumeAttachments | undefined;
  private readonly now: () => number;
  readonly stats = { spawned: 0, spawnFailures: 0, actions: 0, actionFailures: 0, powerReports: 0, orphansDestroyed: 0 };

  private constructor(
    private readonly o: ComputeAgentOptions,
    readonly feed: ComputeFeed,
    private readonly ownFeed: boolean,
    private readonly bus: CommandBus,
  ) {
    this.now = o.now ?? Date.now;
  }

  static async start(o: ComputeAgentOptions): Promise<ComputeAgents> {
    const feed = o.feed ?? (await ComputeFeed.start(o.log, o.topology, o.domain));
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const agents = new ComputeAgents(o, feed, !o.feed, bus);
    if (o.listen !== undefined) {
      agents.console = await startConsoleServer({
        listen: o.listen,
        advertise: o.advertise,
        locate: (id) => {
          const h = agents.hosts.get(agents.feed.view.instances.get(id)?.host ?? '');
          return h?.alive ? { hostId: h.config.hostId, driver: h.config.driver } : undefined;
        },
      });
    }
    for (const config of o.hosts) {
      agents.hosts.set(config.hostId, {
        config,
        actor: { userId: `strata-compute-agent/${config.hostId}`, projectId: '', roles: ['admin', 'service'] },
        alive: true,
        inFlight: new Set(),
      });
    }
    await Promise.all([...agents.hosts.values()].map((h) => agents.register(h)));
    await agents.heartbeat();
    feed.onChange((ids) => {
      for (const id of ids) agents.consider(id);
    });
    agents.sweep(false);
    agents.timers.push(setInterval(() => void agents.heartbeat(), o.heartbeatMs ?? 10_000));
    agents.timers.push(setInterval(() => void agents.sweep(true), o.syncMs ?? 30_000));
    for (const t of agents.timers) t.unref();
    if (o.block) {
      // The servers keep running without their volume part when the block domain cannot be
      // followed (its topics made with another partition count): said loudly, not fatal.
      agents.volumes = await VolumeAttachments.start({
        log: o.log, topology: o.topology, compute: feed, feed: o.block.feed, domain: o.block.domain,
        hosts: o.hosts.map((h) => ({ hostId: h.hostId, driver: h.driver })), onError: (e) => agents.fail(e),
      }).catch((e: Error) => {
        agents.fail(new Error(`block volumes disabled on this agent: cannot follow the block domain: ${e.message}`));
        return undefined;
      });
    }
    return agents;
  }

  /** Where this agent serves ComputeAgentService, as registered for its hosts ('' when it does not). */
  get endpoint(): string {
    return this.console?.endpoint ?? '';
  }

  private fail(e: Error): void {
    if (this.closed) return;
    (this.o.onError ?? ((x) => console.error(`compute agent: ${x.message}`)))(e);
  }

  private async register(h: HostAgent): Promise<void> {
    const inv = h.config.inventory;
    const full = (i: InventoryConfig) => ({ total: i.total, reserved: i.reserved ?? 0, allocationRatio: i.allocationRatio ?? 1 });
    await this.send(h, h.config.hostId, 'host', {
      type: 'RegisterHost',
      inventory: { vcpus: full(inv.vcpus), ramMb: full(inv.ramMb), diskGb: full(inv.diskGb) },
      availabilityZone: h.config.availabilityZone,
      endpoint: this.endpoint,
    }, `agent/${h.config.hostId}/register/${randomUUID()}`, true);
  }

  private async heartbeat(): Promise<void> {
    await Promise.all(
      [...this.hosts.values()].filter((h) => h.alive).map((h) =>
        this.send(h, h.config.hostId, 'host', { type: 'RecordHostHeartbeat' }, `agent/${h.config.hostId}/heartbeat/${randomUUID()}`, true).catch((e) => this.fail(e)),
      ),
    );
  }

  /** Simulates the agent of one host dying: no more heartbeats, reports or driver calls. */
  kill(hostId: string): void {
    const h = this.hosts.get(hostId);
    if (h) h.alive = false;
  }

  private consider(id: string): void {
    const v = this.feed.view.instances.get(id);
    if (!v) return;
    const h = this.hosts.get(v.host);
    if (h) this.evaluate(h, v);
    // A move's source has its part too (sending the guest).
    const source = this.moveSource(v);
    if (source) this.evaluate(source, v);
  }

  /** The host agent of a two-host move's source, when it runs here. */
  private moveSource(v: InstanceView): HostAgent | undefined {
    return v.action !== null && TWO_HOST_MOVES[v.action] && v.sourceHost && v.sourceHost !== v.host ? this.hosts.get(v.sourceHost) : undefined;
  }

  private evaluate(h: HostAgent, v: InstanceView): void {
    if (this.closed || !h.alive || h.inFlight.has(v.instanceId)) return;
    const duty = hostDuty(v, h.config.hostId);
    if (duty.kind === 'none') return;
    h.inFlight.add(v.instanceId);
    const before = v.version;
    this.perform(h, v, duty)
      .catch((e: Error) => this.fail(e))
      .finally(() => {
        h.inFlight.delete(v.instanceId);
        if (v.version !== before) this.consider(v.instanceId);
      });
  }

  private spec(v: InstanceView, flavor = v.flavor): GuestSpec {
    // Unshelve boots the snapshot the shelve took (the guest's disk as it was).
    const imageId = v.action === 'unshelve' ? shelvedImageId(v.instanceId) : v.actionImageId || v.imageId;
    return { instanceId: v.instanceId, name: v.name, flavor: flavor!, imageId, interfaces: guestInterfaces(v.interfaces).map(vifOf) };
  }

  private async perform(h: HostAgent, v: InstanceView, duty: HostDuty): Promise<void> {
    const id = v.instanceId;
    const driver = h.config.driver;
    if (duty.kind === 'plug' || duty.kind === 'unplug') return this.plugging(h, v, duty);
    const action = v.action!;
    const key = `agent/${h.config.hostId}/${id}/${v.actionVersion}/${v.failedHosts.length}`;
    if (duty.kind === 'spawn') {
      // task_state "spawning" is reported once the spawn has taken longer than progressAfterMs:
      // a boot that is done sooner goes straight to ACTIVE, one command fewer on the log.
      let progress: Promise<unknown> | undefined;
      const timer =
        action === 'create' && (v.task === 'scheduling' || v.task === 'networking')
          ? setTimeout(() => {
              progress = this.send(h, id, 'instance', { type: 'AdvanceInstanceTask', taskState: 'spawning' }, `${key}/spawning`).catch((e) => this.fail(e));
            }, this.o.progressAfterMs ?? 100)
          : undefined;
      try {
        await driver.spawn(this.spec(v));
      } catch (e) {
        clearTimeout(timer);
        await progress;
        this.stats.spawnFailures++;
        const reason = `spawn on host ${h.config.hostId} failed: ${(e as Error).message}`;
        if (action === 'create') await this.send(h, id, 'instance', { type: 'RescheduleInstance', reason }, `${key}/spawn-failed`);
        else await this.send(h, id, 'instance', { type: 'FailInstanceAction', action, code: 500, message: reason }, `${key}/failed`);
        return;
      }
      clearTimeout(timer);
      await progress;
      this.stats.spawned++;
      await this.send(h, id, 'instance', { type: 'CompleteInstanceAction', action }, `${key}/complete`);
      return;
    }
    if (duty.kind === 'listen' || duty.kind === 'send') {
      try {
        if (duty.kind === 'listen') {
          const uri = await driver.prepareIncoming(this.spec(v, v.newFlavor ?? v.flavor), duty.mode);
          await this.send(h, id, 'instance', { type: 'ReportMigrationTarget', action, uri }, `${key}/target`);
          return;
        }
        await driver.migrateTo(id, duty.uri);
      } catch (e) {
        this.stats.actionFailures++;
        await this.send(h, id, 'instance', { type: 'FailInstanceAction', action, code: 500, message: `${action} on host ${h.config.hostId} failed: ${(e as Error).message}` }, `${key}/failed`);
        return;
      }
      this.stats.actions++;
      await this.send(h, id, 'instance', { type: 'CompleteInstanceAction', action }, `${key}/complete`);
      return;
    }
    try {
      if (duty.kind === 'receive') {
        await driver.spawn(this.spec(v, v.newFlavor ?? v.flavor));
        // Evacuate rebuilds a stopped server; a revert goes back to the state before the resize.
        if (action === 'evacuate' || (action === 'revertResize' && v.resultVm === 'stopped')) await driver.powerOff(id);
      } else {
        await this.act(driver, v);
      }
    } catch (e) {
      this.stats.actionFailures++;
      await this.send(h, id, 'instance', { type: 'FailInstanceAction', action, code: 500, message: `${action} on host ${h.config.hostId} failed: ${(e as Error).message}` }, `${key}/failed`);
      return;
    }
    this.stats.actions++;
    await this.send(h, id, 'instance', { type: 'CompleteInstanceAction', action }, `${key}/complete`);
  }

  /**
   * Attach or detach interface on a guest of this host, between actions: the NIC is hot-plugged
   * (or unplugged), or recorded for a guest that is off. Keyed on the port and the request, so a
   * restarted agent repeating it meets the original reply (and the driver finds the NIC done).
   */
  private async plugging(h: HostAgent, v: InstanceView, duty: { kind: 'plug' | 'unplug'; portId: string }): Promise<void> {
    const id = v.instanceId;
    const iface = v.interfaces.find((i) => i.portId === duty.portId)!;
    const key = `agent/${h.config.hostId}/${id}/interface/${duty.portId}/${iface.requestId || 'boot'}/${v.version}`;
    try {
      if (duty.kind === 'plug') await h.config.driver.attachInterface(id, vifOf(iface));
      else await h.config.driver.detachInterface(id, duty.portId);
    } catch (e) {
      this.stats.actionFailures++;
      const what = duty.kind === 'plug' ? 'attach' : 'detach';
      await this.send(h, id, 'instance', { type: 'FailInstanceInterface', portId: duty.portId, message: `${what} of port ${duty.portId} on host ${h.config.hostId} failed: ${(e as Error).message}` }, `${key}/failed`);
      return;
    }
    this.stats.actions++;
    await this.send(h, id, 'instance', { type: duty.kind === 'plug' ? 'ReportInterfacePlugged' : 'ReportInterfaceUnplugged', portId: duty.portId }, `${key}/${duty.kind}ged`);
  }

  /** A plain action on a guest of this host, as driver calls. */
  private async act(d: ComputeDriver, v: InstanceView): Promise<void> {
    const id = v.instanceId;
    switch (v.action) {
      case 'delete':
        return v.startTask === 'soft-deleting' ? d.powerOff(id) : d.destroy(id);
      case 'forceDelete':
      case 'shelveOffload':
        return d.destroy(id);
      case 'restore':
      case 'start':
        return d.powerOn(id);
      case 'stop':
        return d.powerOff(id);
      case 'reboot':
        return d.reboot(id, v.startTask === 'rebooting_hard');
      case 'rebuild':
        await d.destroy(id);
        await d.spawn(this.spec(v));
        if (v.vm === 'stopped') await d.powerOff(id);
        return;
      case 'pause':
        return d.pause(id);
      case 'unpause':
        return d.unpause(id);
      case 'suspend':
        return d.suspend(id);
      case 'resume':
        return d.resume(id);
      case 'rescue':
        return d.rescue(id);
      case 'unrescue':
        return d.unrescue(id);
      case 'shelve':
        // As Nova: a snapshot keeps the disk, so that offloading may drop the guest from the host.
        await d.powerOff(id);
        await d.snapshot(id, shelvedImageId(id));
        if (v.offload) await d.destroy(id);
        return;
      case 'unshelve':
        return d.powerOn(id);
      case 'createImage':
      case 'createBackup':
        return d.snapshot(id, v.actionImageId);
      case 'changePassword':
        return;
      default:
        throw new Error(`the agent does not know how to ${v.action}`);
    }
  }

  /**
   * Level-triggered pass over every server of these hosts: duties not done (a report that timed
   * out), power states that drifted from what the log says, guests the log no longer places here.
   */
  private async sweep(sync: boolean): Promise<void> {
    const view = this.feed.view;
    // One pass over the servers: the duties, and (when syncing) the servers placed on each host.
    const placed = new Map<string, InstanceView[]>();
    for (const v of view.instances.values()) {
      const source = this.moveSource(v);
      if (source) this.evaluate(source, v);
      const h = this.hosts.get(v.host);
      if (!h) continue;
      this.evaluate(h, v);
      if (sync) placed.set(v.host, [...(placed.get(v.host) ?? []), v]);
    }
    if (!sync) return;
    for (const h of this.hosts.values()) {
      if (!h.alive || this.closed) continue;
      const d = h.config.driver;
      for (const id of await d.list()) {
        const v = view.instances.get(id);
        const here = v && v.host === h.config.hostId && v.vm !== 'deleted';
        // A resized server's old guest stays on its source until the resize is confirmed or reverted.
        const keptForRevert = v && v.vm === 'resized' && v.sourceHost === h.config.hostId;
        if (!here && !keptForRevert && (!v || v.action === null)) {
          await d.destroy(id);
          this.stats.orphansDestroyed++;
          continue;
        }
        if (!here || v.action !== null || h.inFlight.has(id) || NOT_SYNCED.has(v.vm)) continue;
        const power = await d.powerState(id);
        if (power !== v.powerState) {
          this.stats.powerReports++;
          await this.send(h, id, 'instance', { type: 'ReportPowerState', powerState: power }, `agent/${h.config.hostId}/${id}/${v.version}/power/${power}`);
        }
      }
      // Guests the log runs here that the hypervisor lost: report them shut down.
      for (const v of placed.get(h.config.hostId) ?? []) {
        if (v.action !== null || NOT_SYNCED.has(v.vm) || h.inFlight.has(v.instanceId)) continue;
        if (v.powerState !== POWER_STATES.SHUTDOWN && (await d.powerState(v.instanceId)) === POWER_STATES.NOSTATE) {
          this.stats.powerReports++;
          await this.send(h, v.instanceId, 'instance', { type: 'ReportPowerState', powerState: POWER_STATES.SHUTDOWN }, `agent/${h.config.hostId}/${v.instanceId}/${v.version}/power/lost`);
        }
      }
    }
  }

  private async send(h: HostAgent, aggregateId: string, aggregateType: string, command: Message & Record<string, unknown>, commandId: string, quiet = false): Promise<Reply | undefined> {
    if (!h.alive || this.closed) return undefined;
    const reply = await this.bus.send({
      domain: this.feed.domain,
      aggregateType,
      aggregateId,
      type: command.type,
      payload: computeCodecFor(aggregateType).encodeCommand(command),
      actor: h.actor,
      commandId,
      issuedAtMs: this.now(),
    });
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
    else if (!quiet && reply.rejection.code !== 'FAILED_PRECONDITION') this.fail(new Error(`${command.type} for ${aggregateId}: ${reply.rejection.message}`));
    return reply;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    await this.volumes?.close();
    await this.console?.close();
    await this.bus.close();
    if (this.ownFeed) await this.feed.close();
  }
}
