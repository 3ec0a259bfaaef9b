// The compute conductor: the boot saga and the move saga as a process manager. It folds the
// compute events (ComputeFeed), asks the pure sagas for each server's next step, and carries it
// out with commands: schedule (the pure Scheduler over the folded hosts), claim on the chosen host
// (the host aggregate refuses an overcommit or an anti-affinity breach, so concurrent conductors
// can never overcommit), assign the host, reschedule a boot that timed out, fail one that ran out
// of hosts, and give back claims and quota that nothing needs any more. One step in flight per
// server; after a step it waits until its events are folded, so it never acts on a stale view.
// Command ids derive from the server's version, so a restarted conductor repeats a step under
// the same id and meets the original reply instead of doing it twice.
import type { InstanceView } from '../../domains/compute/compute.view.js';
import type { Message } from '../../domains/kernel/decider.js';
import { nextBootStep, settle, type BootStep } from '../../domains/compute/sagas/boot.saga.js';
import { nextMoveStep } from '../../domains/compute/sagas/move.saga.js';
import { nextNetworkStep, type NetworkStep } from '../../domains/compute/sagas/network.saga.js';
import { flavorDiskGb, type RequestSpec } from '../../domains/compute/scheduling/host-state.js';
import { Scheduler, type SchedulerOptions } from '../../domains/compute/scheduling/scheduler.js';
import { computeCodecFor } from '../codecs/compute.codec.js';
import type { Actor, Reply } from '../envelope/envelope.js';
import type { Log } from '../log/log.js';
import { CommandBus } from '../runtime/command-bus.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { ComputeFeed } from './compute.feed.js';
import { ServerNetworking } from './compute.network.js';

export const CONDUCTOR_ACTOR: Actor = { userId: 'strata-conductor', projectId: '', roles: ['admin', 'service'] };

export interface ConductorOptions {
  log: Log;
  topology: TopologyOptions;
  /** The compute domain's name (tests isolate themselves by it); default 'compute'. */
  domain?: string;
  /** Shared with agents in the same process; started here when absent. */
  feed?: ComputeFeed;
  /** Hosts a boot may fail on before ERROR (Nova's max_attempts). */
  maxAttempts?: number;
  /** From host assignment to ACTIVE; past it the boot is rescheduled. */
  bootTimeoutMs?: number;
  /** A host whose last heartbeat is older is down (Nova's service_down_time). */
  serviceDownMs?: number;
  /** How often servers still in a saga are looked at again (timeouts). */
  tickMs?: number;
  scheduler?: SchedulerOptions;
  /**
   * The network service the servers' ports live in (its domain name; tests isolate themselves by
   * it): the conductor follows its events and makes, binds and lets go of the ports of the
   * servers' interfaces. Absent: servers asking for interfaces wait (no network service).
   */
  network?: { domain?: string };
  now?: () => number;
  onError?: (error: Error) => void;
}

type Step = BootStep | { kind: 'leave-group'; groupId: string } | { kind: 'network'; step: Exclude<NetworkStep, { kind: 'wait' }> };

/** Rounds of claims all refused (the view raced other boots) before the boot fails. */
const CLAIM_ROUNDS = 5;

export class Conductor {
  private readonly inFlight = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly claimRounds = new Map<string, number>();
  private readonly scheduler: Scheduler;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private closed = false;
  private readonly now: () => number;
  readonly stats = { scheduled: 0, claimsRefused: 0, noValidHost: 0, rescheduled: 0, released: 0 };

  private constructor(
    private readonly o: ConductorOptions,
    readonly feed: ComputeFeed,
    private readonly ownFeed: boolean,
    private readonly bus: CommandBus,
    readonly networking: ServerNetworking | undefined,
  ) {
    this.scheduler = new Scheduler({ maxAttempts: o.maxAttempts ?? 3, ...o.scheduler });
    this.now = o.now ?? Date.now;
  }

  static async start(o: ConductorOptions): Promise<Conductor> {
    const feed = o.feed ?? (await ComputeFeed.start(o.log, o.topology, o.domain));
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const networking = o.network ? await ServerNetworking.start({ log: o.log, topology: o.topology, bus, domain: o.network.domain, now: o.now }) : undefined;
    const c = new Conductor(o, feed, !o.feed, bus, networking);
    feed.onChange((ids) => c.mark(ids));
    // A port changed: the server it belongs to may have a step to take (or to stop waiting for).
    networking?.feed.onChange((ids) => c.mark([...ids].map((id) => feed.view.portInstances.get(id)).filter((x): x is string => x !== undefined)));
    c.mark(feed.view.instances.keys());
    const tick = o.tickMs ?? 1000;
    c.timer = setInterval(() => c.mark(c.unsettled()), tick);
    c.timer.unref();
    return c;
  }

  private get maxAttempts() {
    return this.o.maxAttempts ?? 3;
  }

  /** Servers in a saga (an action running, or something still to give back). */
  private *unsettled(): Iterable<string> {
    for (const v of this.feed.view.instances.values()) {
      const deletedHolding = v.vm === 'deleted' && (v.claimHosts.length > 0 || v.quotaHeld);
      if (v.action !== null || deletedHolding || v.claimHosts.some((h) => h !== v.host)) yield v.instanceId;
      else if (this.networking && v.interfaces.length > 0 && nextNetworkStep(v, this.networking.port).kind !== 'wait') yield v.instanceId;
    }
  }

  private mark(ids: Iterable<string>): void {
    for (const id of ids) this.dirty.add(id);
    if (!this.draining) queueMicrotask(() => this.drain());
  }

  private drain(): void {
    if (this.closed) return;
    this.draining = true;
    for (const id of this.dirty) {
      if (this.inFlight.has(id)) continue;
      this.dirty.delete(id);
      const v = this.feed.view.instances.get(id);
      if (!v) continue;
      const step = this.stepFor(v);
      if (step.kind === 'wait') continue;
      this.inFlight.add(id);
      const before = this.fingerprint(v);
      this.run(v, step)
        .catch((e: Error) => this.closed || (this.o.onError ?? ((x) => console.error(`conductor: ${x.message}`)))(e))
        .finally(() => {
          this.inFlight.delete(id);
          // Nothing moved (a refusal, a stale view): the next tick looks again, not a busy loop.
          if (this.fingerprint(v) !== before) this.mark([id]);
        });
    }
    this.draining = false;
  }

  private fingerprint(v: InstanceView): string {
    const inGroup = this.feed.view.serverGroups.get(v.serverGroupId)?.members.has(v.instanceId) ?? false;
    const ports = this.networking ? v.interfaces.map((i) => JSON.stringify(this.networking!.port(i.portId) ?? null)).join(',') : '';
    return `${v.version}/${v.claimHosts.join(',')}/${v.quotaHeld}/${inGroup}/${ports}`;
  }

  private stepFor(v: InstanceView): Step {
    const o = { maxAttempts: this.maxAttempts, bootTimeoutMs: this.o.bootTimeoutMs ?? 120_000 };
    const step = v.action === 'create' ? nextBootStep(v, this.now(), o) : (nextMoveStep(v) ?? settle(v));
    if (step.kind === 'wait' && v.vm === 'deleted' && v.serverGroupId && this.feed.view.serverGroups.get(v.serverGroupId)?.members.has(v.instanceId)) {
      return { kind: 'leave-group', groupId: v.serverGroupId };
    }
    // The servers' ports: made and bound for a boot once its host is assigned, following the host, let go.
    if (step.kind === 'wait' && this.networking && v.interfaces.length > 0) {
      const network = nextNetworkStep(v, this.networking.port);
      if (network.kind !== 'wait') return { kind: 'network', step: network };
    }
    return step;
  }

  private async run(v: InstanceView, step: Step): Promise<void> {
    const id = v.instanceId;
    const key = `conductor/${id}/${v.version}`;
    switch (step.kind) {
      case 'network':
        return this.networking!.run(v, step.step, (instanceId, command, commandId) => this.send('instance', instanceId, command, commandId));
      case 'schedule':
        return this.schedule(v, step.ignoreHosts, key);
      case 'assign':
        return this.assign(v, step.host, key);
      case 'reschedule':
        this.stats.rescheduled++;
        await this.send('instance', id, { type: 'RescheduleInstance', reason: step.reason }, `${key}/reschedule`);
        return;
      case 'fail':
        await this.send('instance', id, { type: 'FailInstanceAction', action: v.action ?? 'create', code: 500, message: step.message }, `${key}/fail`);
        return;
      case 'release':
        this.stats.released++;
        await Promise.all([
          ...step.claimHosts.map((h) => this.send('host', h, { type: 'ReleaseResources', consumerId: id }, `${key}/release/${h}`)),
          ...(step.quota ? [this.send('quota', v.projectId, { type: 'ReleaseQuota', consumerId: id }, `conductor/${id}/release-quota`)] : []),
        ]);
        return;
      case 'leave-group':
        await this.send('server_group', step.groupId, { type: 'RemoveServerGroupMember', instanceId: id }, `conductor/${id}/leave-group`);
        return;
    }
  }

  private async schedule(v: InstanceView, ignoreHosts: readonly string[], key: string): Promise<void> {
    const view = this.feed.view;
    const flavor = v.newFlavor ?? v.flavor;
    if (!flavor) {
      await this.send('instance', v.instanceId, { type: 'FailInstanceAction', action: v.action ?? 'create', code: 500, message: 'the server has no flavor' }, `${key}/fail`);
      return;
    }
    const group = v.serverGroupId ? view.serverGroups.get(v.serverGroupId) : undefined;
    let members = 0;
    if (group) for (const m of group.members) if (m !== v.instanceId && (view.instances.get(m)?.claimHosts.length ?? 0) > 0) members++;
    const spec: RequestSpec = {
      instanceId: v.instanceId,
      projectId: v.projectId,
      flavor,
      availabilityZone: v.availabilityZone,
      serverGroup: group ? { id: group.id, policy: group.policy, maxServerPerHost: group.maxServerPerHost, members } : undefined,
      ignoreHosts,
    };
    const selection = this.scheduler.select(spec, view.schedulable(this.now(), this.o.serviceDownMs ?? 60_000));
    if ('noValidHost' in selection) {
      this.stats.noValidHost++;
      await this.send('instance', v.instanceId, { type: 'FailInstanceAction', action: v.action ?? 'create', code: 500, message: selection.noValidHost }, `${key}/fail`);
      return;
    }
    const refusals: string[] = [];
    const round = this.claimRounds.get(v.instanceId) ?? 0;
    for (const hostId of selection.hosts) {
      const host = view.host(hostId);
      const claim = { vcpus: flavor.vcpus, ramMb: flavor.ramMb, diskGb: flavorDiskGb(flavor), groupId: group?.id ?? '' };
      const held = host.claims.has(v.instanceId);
      if (!held) view.claim(host, v.instanceId, claim); // at once, so concurrent boots see it
      const reply = await this.trySend(
        'host',
        hostId,
        {
          type: 'ClaimResources', consumerId: v.instanceId, vcpus: claim.vcpus, ramMb: claim.ramMb, diskGb: claim.diskGb,
          groupId: group?.id ?? '', policy: group?.policy ?? '', maxServerPerHost: group?.maxServerPerHost ?? 1,
        },
        `${key}/${round}/claim/${hostId}`,
      );
      if (reply.kind === 'accepted') {
        this.claimRounds.delete(v.instanceId);
        this.stats.scheduled++;
        await this.feed.caughtUp(reply.position, reply.events.length);
        await this.assign(v, hostId, key);
        return;
      }
      if (!held) view.release(host, v.instanceId);
      this.stats.claimsRefused++;
      refusals.push(reply.rejection.message);
    }
    if (round + 1 >= CLAIM_ROUNDS) {
      this.claimRounds.delete(v.instanceId);
      await this.send(
        'instance', v.instanceId,
        { type: 'FailInstanceAction', action: v.action ?? 'create', code: 500, message: `No valid host was found. Every chosen host refused the claim: ${refusals.join('; ')}` },
        `${key}/fail`,
      );
      return;
    }
    this.claimRounds.set(v.instanceId, round + 1);
  }

  private async assign(v: InstanceView, host: string, key: string): Promise<void> {
    const az = this.feed.view.hosts.get(host)?.availabilityZone ?? '';
    await this.send('instance', v.instanceId, { type: 'AssignInstanceHost', host, node: host, availabilityZone: az }, `${key}/assign/${host}`);
  }

  private async trySend(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, commandId: string): Promise<Reply> {
    return this.bus.send({
      domain: this.feed.domain,
      aggregateType,
      aggregateId,
      type: command.type,
      payload: computeCodecFor(aggregateType).encodeCommand(command),
      actor: CONDUCTOR_ACTOR,
      commandId,
      issuedAtMs: this.now(),
    });
  }

  /** Sends and waits for the events to be folded; a refusal means the view was stale: look again. */
  private async send(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, commandId: string): Promise<void> {
    const reply = await this.trySend(aggregateType, aggregateId, command, commandId);
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.networking?.close();
    await this.bus.close();
    if (this.ownFeed) await this.feed.close();
  }
}
