// The block conductor: the consequences that cross block aggregates (and the compute domain),
// carried out as a level-triggered process manager over the folded views. Storage hosts report
// only on what they worked on; the conductor then
//   - gives back the quota of a deleted volume, snapshot or backup,
//   - takes a deleted snapshot off its volume's list (so the volume may be deleted),
//   - ends a volume's backing-up once its backup is stored or failed,
//   - detaches the volumes of a deleted server (the compute agent unplugs them, or reports them
//     detached when the guest is gone), and deletes those attached with delete_on_termination
//     once they are free.
// Each step's command id derives from what it is about, so a restarted conductor that repeats a
// step meets the original reply instead of doing it twice.
import type { Message } from '../../domains/kernel/decider.js';
import { blockCodecFor } from '../codecs/block.codec.js';
import type { Actor, Reply } from '../envelope/envelope.js';
import type { Log } from '../log/log.js';
import { CommandBus } from '../runtime/command-bus.js';
import { SerialPasses } from '../runtime/serial-passes.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { followBlock, type BlockFeed } from './block.feed.js';
import type { ComputeFeed } from './compute.feed.js';

export const BLOCK_CONDUCTOR_ACTOR: Actor = { userId: 'strata-block-conductor', projectId: '', roles: ['admin', 'service'] };

export interface BlockConductorOptions {
  log: Log;
  topology: TopologyOptions;
  /** The block domain's name; default 'block'. */
  domain?: string;
  /** The servers (to detach the volumes of deleted ones); absent: they are not followed. */
  compute?: ComputeFeed;
  /** Shared with agents in the same process; started here when absent. */
  feed?: BlockFeed;
  /** How often everything is looked at again (a step refused or lost is retried). */
  tickMs?: number;
  /** The clock that stamps its commands (issuedAtMs); default Date.now. */
  now?: () => number;
  onError?: (error: Error) => void;
}

interface Step {
  key: string;
  aggregateType: string;
  aggregateId: string;
  command: Message & Record<string, unknown>;
}

export class BlockConductor {
  private readonly inFlight = new Set<string>();
  /** Volumes to delete once free: attached with delete_on_termination to a server now deleted. */
  private readonly deleteWhenFree = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: SerialPasses;
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  readonly stats = { steps: 0, refused: 0 };

  private constructor(
    private readonly o: BlockConductorOptions,
    readonly feed: BlockFeed,
    private readonly ownFeed: boolean,
    private readonly bus: CommandBus,
  ) {
    // A pass starts the steps owed and goes on; a step's end asks for another pass.
    this.passes = new SerialPasses(async () => {
      for (const step of this.steps()) {
        if (this.inFlight.has(step.key) || this.closing) continue;
        // A refused or failed step waits for the timer: no busy retry.
        const p = this.run(step).then((ok) => (ok ? this.kick() : undefined));
        this.running.add(p);
        void p.finally(() => this.running.delete(p));
      }
    }, (e) => o.onError?.(e));
  }

  static async start(o: BlockConductorOptions): Promise<BlockConductor> {
    const feed = o.feed ?? (await followBlock({ log: o.log, topology: o.topology, domain: o.domain }));
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const c = new BlockConductor(o, feed, !o.feed, bus);
    feed.onChange(() => c.kick());
    o.compute?.onChange(() => c.kick());
    c.timer = setInterval(() => c.kick(), o.tickMs ?? 5_000);
    c.timer.unref();
    c.kick();
    return c;
  }

  private kick(): void {
    this.passes.kick();
  }

  /** What the views say is owed. */
  steps(): Step[] {
    const view = this.feed.view;
    const out: Step[] = [];
    const release = (projectId: string, consumerId: string) => {
      if (view.quotaHolders(projectId).has(consumerId)) {
        out.push({ key: `release/${consumerId}`, aggregateType: 'block_quota', aggregateId: projectId, command: { type: 'ReleaseBlockQuota', consumerId } });
      }
    };
    for (const v of view.volumes()) {
      if (v.status === 'deleted') release(v.volume.projectId, v.id);
      if (v.status === 'backing-up' && v.operationId) {
        const b = view.backup(v.operationId);
        if (b && b.status !== 'creating') out.push({ key: `end-backup/${v.id}/${b.id}`, aggregateType: 'volume', aggregateId: v.id, command: { type: 'EndVolumeBackup', backupId: b.id } });
      }
      for (const snapshotId of v.snapshotIds) {
        const s = view.snapshot(snapshotId);
        if (s?.status === 'deleted') out.push({ key: `unlist/${v.id}/${snapshotId}`, aggregateType: 'volume', aggregateId: v.id, command: { type: 'RemoveVolumeSnapshot', snapshotId } });
      }
      if (this.o.compute) {
        const instances = this.o.compute.view.instances;
        for (const a of v.attachments) {
          const server = instances.get(a.serverId);
          if (server && server.vm !== 'deleted') continue;
          if (a.deleteOnTermination) this.deleteWhenFree.add(v.id);
          if (a.status === 'attached') out.push({ key: `detach/${a.id}`, aggregateType: 'volume', aggregateId: v.id, command: { type: 'BeginDetaching', attachmentId: a.id } });
          else if (a.status === 'reserved' || a.status === 'attaching') out.push({ key: `cancel/${a.id}`, aggregateType: 'volume', aggregateId: v.id, command: { type: 'DeleteAttachment', attachmentId: a.id } });
        }
      }
      if (this.deleteWhenFree.has(v.id) && v.attachments.length === 0) {
        if (v.status === 'available' || v.status === 'error') out.push({ key: `delete-on-termination/${v.id}`, aggregateType: 'volume', aggregateId: v.id, command: { type: 'DeleteVolume', cascade: false, force: false } });
        if (v.status === 'deleting' || v.status === 'deleted') this.deleteWhenFree.delete(v.id);
      }
    }
    for (const s of view.snapshots()) if (s.status === 'deleted') release(s.snapshot.projectId, s.id);
    for (const b of view.backups()) if (b.status === 'deleted') release(b.backup.projectId, b.id);
    return out;
  }

  private async run(step: Step): Promise<boolean> {
    this.inFlight.add(step.key);
    try {
      const reply: Reply = await this.bus.send({
        domain: this.o.domain ?? 'block',
        aggregateType: step.aggregateType,
        aggregateId: step.aggregateId,
        type: step.command.type,
        payload: blockCodecFor(step.aggregateType).encodeCommand(step.command),
        actor: BLOCK_CONDUCTOR_ACTOR,
        commandId: `block-conductor/${step.key}`,
        correlationId: `block-conductor/${step.key}`,
        issuedAtMs: (this.o.now ?? Date.now)(),
      });
      this.stats.steps++;
      if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
      else this.stats.refused++;
      return reply.kind === 'accepted';
    } catch (e) {
      this.o.onError?.(e as Error);
      return false;
    } finally {
      this.inFlight.delete(step.key);
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    await this.passes.close();
    await Promise.all([...this.running]);
    await this.bus.close();
    if (this.ownFeed) await this.feed.close();
  }
}
