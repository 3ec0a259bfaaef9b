// The compute host's part of block volumes (Nova's attach/detach/extend_volume), a level-triggered
// reconciler beside the compute agent: it folds the block domain (BlockFeed) and the servers
// (ComputeFeed), and for each attachment whose server is on one of its hosts
//   attaching with a connection (the storage host exported it) -> plug it into the guest, report
//                                                                 CompleteAttachment with the device
//   detaching                       -> unplug it (nothing to do when the guest is gone), report detached
//   attached, the volume grown      -> have the guest see the new size
// and it unplugs volumes a guest holds that no attachment names any more. Driver operations are
// idempotent, and a report the decider refuses (the state moved on) is harmless, so a restart
// anywhere converges.
import type { Message } from '../../domains/kernel/decider.js';
import { blockCodecFor } from '../../infra/codecs/block.codec.js';
import type { Actor } from '../../infra/envelope/envelope.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { SerialPasses } from '../../infra/runtime/serial-passes.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import { followBlock, type BlockFeed } from '../../infra/sagas/block.feed.js';
import type { ComputeFeed } from '../../infra/sagas/compute.feed.js';
import type { ComputeDriver } from './driver.js';

const GiB = 1024 ** 3;
/** A guest in these states has its disks plugged or recorded; others (deleted, shelved_offloaded, error) do not. */
const HAS_GUEST = new Set(['active', 'paused', 'stopped', 'suspended', 'rescued', 'resized']);

export interface VolumeAttachmentsOptions {
  log: Log;
  topology: TopologyOptions;
  hosts: { hostId: string; driver: ComputeDriver }[];
  compute: ComputeFeed;
  /** Shared with others in the same process; started here when absent. */
  feed?: BlockFeed;
  /** The block domain's name; default 'block'. */
  domain?: string;
  resyncMs?: number;
  onError?: (error: Error) => void;
}

export class VolumeAttachments {
  private readonly inFlight = new Set<string>();
  /** attachment id -> the size (GiB) the guest was last given. */
  private readonly sizes = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly passes: SerialPasses;
  private readonly running = new Set<Promise<void>>();
  private closing = false;
  /** The next pass also looks for volumes guests hold that nothing names (set by the timer and at start). */
  private sweepDue = true;
  readonly stats = { attached: 0, detached: 0, extended: 0, failures: 0 };

  private constructor(
    private readonly o: VolumeAttachmentsOptions,
    readonly feed: BlockFeed,
    private readonly ownFeed: boolean,
    private readonly bus: CommandBus,
  ) {
    this.passes = new SerialPasses(async () => {
      const sweep = this.sweepDue;
      this.sweepDue = false;
      await this.reconcile(sweep);
    }, (e) => o.onError?.(e));
  }

  static async start(o: VolumeAttachmentsOptions): Promise<VolumeAttachments> {
    const feed = o.feed ?? (await followBlock({ log: o.log, topology: o.topology, domain: o.domain }));
    const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
    const v = new VolumeAttachments(o, feed, !o.feed, bus);
    feed.onChange(() => v.kick());
    o.compute.onChange(() => v.kick());
    v.timer = setInterval(() => {
      v.sweepDue = true;
      v.kick();
    }, o.resyncMs ?? 5_000);
    v.timer.unref();
    v.kick();
    return v;
  }

  private kick(): void {
    this.passes.kick();
  }

  private async report(hostId: string, volumeId: string, command: Message & Record<string, unknown>, key: string): Promise<void> {
    const commandId = `compute-volumes/${hostId}/${volumeId}/${key}`;
    const actor: Actor = { userId: `strata-compute-agent/${hostId}`, projectId: '', roles: ['admin', 'service'] };
    const reply = await this.bus.send({
      domain: this.o.domain ?? 'block',
      aggregateType: 'volume',
      aggregateId: volumeId,
      type: command.type,
      payload: blockCodecFor('volume').encodeCommand(command),
      actor,
      commandId,
      correlationId: commandId,
      issuedAtMs: Date.now(),
    });
    if (reply.kind === 'accepted') await this.feed.caughtUp(reply.position, reply.events.length);
  }

  /** Starts `work` unless work of its key runs; a pass does not wait for it (a detach may take a minute), and its end asks for another pass. */
  private once(key: string, work: () => Promise<void>): void {
    if (this.inFlight.has(key) || this.closing) return;
    // A failed one waits for the resync timer: no busy retry.
    const p = this.runWork(key, work).then((ok) => (ok ? this.kick() : undefined));
    this.running.add(p);
    void p.finally(() => this.running.delete(p));
  }

  private async runWork(key: string, work: () => Promise<void>): Promise<boolean> {
    this.inFlight.add(key);
    try {
      await work();
      return true;
    } catch (e) {
      this.stats.failures++;
      this.o.onError?.(new Error(`volume attachments: ${key}: ${(e as Error).message}`));
      return false;
    } finally {
      this.inFlight.delete(key);
    }
  }

  /**
   * One pass over the attachments of this process's hosts; with `sweep` (the periodic pass) also
   * over their guests, for volumes no attachment names any more. Costs the attachments, not the
   * servers: a feed change among thousands of fake hosts stays cheap.
   */
  private async reconcile(sweep: boolean): Promise<void> {
    const instances = this.o.compute.view.instances;
    const drivers = new Map(this.o.hosts.map((h) => [h.hostId, h.driver]));
    /** server -> the attachments its guest may hold. */
    const named = new Map<string, Set<string>>();
    for (const volume of this.feed.view.volumes()) {
      for (const a of volume.attachments) {
        const hostId = a.hostId;
        const driver = drivers.get(hostId);
        if (!driver) continue;
        const server = instances.get(a.serverId);
        const here = Boolean(server && server.host === hostId && HAS_GUEST.has(server.vm));
        if (here) named.set(a.serverId, (named.get(a.serverId) ?? new Set<string>()).add(a.id));
        const key = `${a.serverId}/${a.id}`;
        if (a.status === 'attaching' && a.connection?.host && here) {
          this.once(key, async () => {
            let device = '';
            try {
              ({ device } = await driver.attachVolume(a.serverId, {
                attachmentId: a.id, volumeId: volume.id, connection: a.connection, readOnly: a.mode === 'ro', serial: volume.id.slice(0, 20),
              }));
            } catch (e) {
              await this.report(hostId, volume.id, { type: 'ReportAttachmentFailed', attachmentId: a.id, reason: (e as Error).message.slice(0, 250) }, `failed/${a.id}`);
              throw e;
            }
            this.sizes.set(a.id, volume.volume.sizeGb);
            this.stats.attached++;
            await this.report(hostId, volume.id, { type: 'CompleteAttachment', attachmentId: a.id, device }, `complete/${a.id}`);
          });
        } else if (a.status === 'detaching') {
          this.once(key, async () => {
            // A guest that is gone (deleted, never here) has nothing to unplug.
            if (here) await driver.detachVolume(a.serverId, a.id);
            this.sizes.delete(a.id);
            this.stats.detached++;
            await this.report(hostId, volume.id, { type: 'ReportAttachmentDetached', attachmentId: a.id }, `detached/${a.id}`);
          });
        } else if (a.status === 'attached' && here && volume.status === 'in-use') {
          // First sight (this agent restarted): the driver's extend is idempotent, so make sure.
          const had = this.sizes.get(a.id);
          if (had === undefined || volume.volume.sizeGb > had) {
            this.once(key, async () => {
              await driver.extendVolume(a.serverId, a.id, volume.volume.sizeGb * GiB);
              this.sizes.set(a.id, volume.volume.sizeGb);
              this.stats.extended++;
            });
          }
        }
      }
    }
    if (sweep) {
      // Volumes a guest of these hosts holds that no attachment names any more.
      for (const [instanceId, server] of instances) {
        const driver = drivers.get(server.host);
        if (!driver || !HAS_GUEST.has(server.vm)) continue;
        const wanted = named.get(instanceId) ?? new Set<string>();
        const held = await driver.listVolumes(instanceId).catch(() => [] as string[]);
        for (const attachmentId of held) {
          if (!wanted.has(attachmentId)) this.once(`${instanceId}/${attachmentId}`, () => driver.detachVolume(instanceId, attachmentId));
        }
      }
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
