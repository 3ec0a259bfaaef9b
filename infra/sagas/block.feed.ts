// The block domain folded from the log for whoever acts on it: each storage host's block agent,
// the compute agents (the attachments of their servers) and the block conductor. The view keeps
// every aggregate's state as the block deciders fold it (their own evolve), so an agent sees a
// volume's status, host, attachments and snapshots exactly as the decider that judges its
// reports will: one statement of the rules, no second fold to drift from it.
import type { Attachment, Backup, Snapshot, Volume } from '../../domains/block/block.types.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { blockAggregates } from '../../domains/block/block.deciders.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { blockCodecFor } from '../codecs/block.codec.js';
import type { Log } from '../log/log.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { DomainFeed, decodeDomainEvent, type DecodedEvent, type FoldedView } from './domain.feed.js';

export interface VolumeState {
  id: string;
  status: string;
  previousStatus: string;
  volume: Volume;
  hostId: string;
  attachments: Attachment[];
  snapshotIds: string[];
  /** The backup being taken or restored, or the image uploaded to (uploading); '' otherwise. */
  operationId: string;
  /** The size the last VolumeExtending asked for (GiB; 0: none). */
  extendingToGb: number;
}

export interface SnapshotState {
  id: string;
  status: string;
  snapshot: Snapshot;
  hostId: string;
}

export interface BackupState {
  id: string;
  status: string;
  backup: Backup;
  hostId: string;
  checksum: string;
  sizeBytes: number;
  restoreVolumeId: string;
}

export interface QuotaState {
  reservations: Record<string, Record<string, number>>;
}

const byType = new Map(blockAggregates.map((a) => [a.aggregateType, a]));
const FOLDED = new Set(blockAggregates.flatMap((a) => a.eventTypes));

const statusOf = (s: MachineState) => (typeof s.value === 'string' ? s.value : JSON.stringify(s.value));

export class BlockView implements FoldedView<DecodedEvent> {
  /** aggregate type -> id -> the decider's state. */
  private readonly states = new Map<string, Map<string, MachineState>>();

  apply(event: DecodedEvent): string | undefined {
    const a = byType.get(event.aggregateType);
    if (!a) return undefined;
    let of = this.states.get(a.aggregateType);
    if (!of) this.states.set(a.aggregateType, (of = new Map()));
    const before = of.get(event.aggregateId) ?? a.decider.initialState;
    const { aggregateType: _t, aggregateId: _i, version: _v, occurredAtMs: _o, ...payload } = event;
    of.set(event.aggregateId, a.decider.evolve(before, payload as never));
    if (event.type === 'VolumeExtending') this.extending.set(event.aggregateId, Number(event.newSizeGb));
    return `${a.aggregateType}/${event.aggregateId}`;
  }

  // What the events said that the deciders need not keep.
  private readonly extending = new Map<string, number>();

  private all(type: string): [string, MachineState][] {
    return [...(this.states.get(type) ?? new Map<string, MachineState>()).entries()];
  }

  private volumeOf(id: string, s: MachineState): VolumeState {
    const c = s.context as Record<string, any>;
    return {
      id, status: statusOf(s), previousStatus: c.previousStatus ?? '', volume: c.volume, hostId: c.hostId ?? '', attachments: c.attachments ?? [],
      snapshotIds: c.snapshotIds ?? [], operationId: c.operationId ?? '', extendingToGb: this.extending.get(id) ?? 0,
    };
  }

  volume(id: string): VolumeState | undefined {
    const s = this.states.get('volume')?.get(id);
    return s && s.context.volume ? this.volumeOf(id, s) : undefined;
  }

  volumes(): VolumeState[] {
    return this.all('volume').filter(([, s]) => s.context.volume).map(([id, s]) => this.volumeOf(id, s));
  }

  snapshot(id: string): SnapshotState | undefined {
    const s = this.states.get('snapshot')?.get(id);
    const c = s?.context as Record<string, any> | undefined;
    return s && c?.snapshot ? { id, status: statusOf(s), snapshot: c.snapshot, hostId: c.hostId ?? '' } : undefined;
  }

  snapshots(): SnapshotState[] {
    return this.all('snapshot').map(([id]) => this.snapshot(id)!).filter(Boolean);
  }

  backup(id: string): BackupState | undefined {
    const s = this.states.get('backup')?.get(id);
    const c = s?.context as Record<string, any> | undefined;
    return s && c?.backup
      ? { id, status: statusOf(s), backup: c.backup, hostId: c.hostId ?? '', checksum: c.checksum ?? '', sizeBytes: c.sizeBytes ?? 0, restoreVolumeId: c.restoreVolumeId ?? '' }
      : undefined;
  }

  backups(): BackupState[] {
    return this.all('backup').map(([id]) => this.backup(id)!).filter(Boolean);
  }

  /** The consumers holding a project's block quota. */
  quotaHolders(projectId: string): Set<string> {
    const c = this.states.get('block_quota')?.get(projectId)?.context as QuotaState | undefined;
    return new Set(Object.keys(c?.reservations ?? {}));
  }
}

export type BlockFeed = DomainFeed<BlockView, DecodedEvent>;

/** Follows the block domain (default 'block') from the start of its log into a new view. */
export function followBlock(o: { log: Log; topology: TopologyOptions; domain?: string }): Promise<BlockFeed> {
  return DomainFeed.follow(new BlockView(), {
    log: o.log,
    topology: o.topology,
    domain: o.domain ?? BLOCK_DOMAIN,
    folded: FOLDED,
    decode: (r) => decodeDomainEvent(r, blockCodecFor),
  });
}
