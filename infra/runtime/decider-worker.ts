// A decider worker: a member of the domain's decider group. The group hands it partitions of
// the commands topic; for each it runs a PartitionDecider (single writer, fenced). Start as many
// workers as you like: partitions spread over them, and a dead worker's partitions move.
import type { AggregateDefinition } from '../../domains/kernel/decider.js';
import { FencedError, type Log, type LogRecord, type Subscription } from '../log/log.js';
import { meter } from '../telemetry/telemetry.js';
import { PartitionDecider } from './partition-decider.js';
import { ensureDomainTopics, type TopologyOptions } from './topology.js';

export interface DeciderWorkerOptions {
  log: Log;
  domain: string;
  aggregates: AggregateDefinition[];
  topology: TopologyOptions;
  onError?: (error: Error) => void;
}

export class DeciderWorker {
  private readonly owners = new Map<number, PartitionDecider>();
  /** Totals over every partition this worker opened: how much restoring cost. */
  readonly restored = { changelogRecords: 0, eventsFolded: 0 };
  private subscription: Subscription | undefined;
  private readonly commandsDecided = meter().createCounter('strata.decider.commands', {
    description: 'Commands decided and committed',
  });

  constructor(private readonly options: DeciderWorkerOptions) {}

  get groupId(): string {
    return `strata.decider.${this.options.domain}`;
  }

  async start(): Promise<void> {
    const { log, domain, topology } = this.options;
    const topics = await ensureDomainTopics(log, domain, topology);
    const aggregates = new Map(this.options.aggregates.map((a) => [a.decider.aggregateType, a]));
    const replyPartitions = await log.partitionCount('strata.replies');
    const ownerFor = async (partition: number) => {
      let owner = this.owners.get(partition);
      if (!owner) {
        owner = new PartitionDecider({
          log,
          topics,
          groupId: this.groupId,
          partition,
          aggregates,
          replyPartitions,
          onCommitted: (n) => this.commandsDecided.add(n, { domain, partition }),
        });
        await owner.open();
        this.restored.changelogRecords += owner.restored.changelogRecords;
        this.restored.eventsFolded += owner.restored.eventsFolded;
        this.owners.set(partition, owner);
      }
      return owner;
    };
    this.subscription = await log.joinGroup({
      groupId: this.groupId,
      topic: topics.commands,
      onAssigned: async (partition) => {
        await ownerFor(partition);
      },
      onRevoked: async (partition) => {
        const owner = this.owners.get(partition);
        this.owners.delete(partition);
        await owner?.close();
      },
      onBatch: async (partition: number, records: LogRecord[]) => {
        const owner = await ownerFor(partition);
        try {
          await owner.process(records);
        } catch (e) {
          // The outcome of a failed commit is unknown to us: drop the in-memory state so the
          // next batch restores it from the changelog (and re-reads from the committed offset).
          this.owners.delete(partition);
          await owner.close().catch(() => undefined);
          if (!(e instanceof FencedError)) this.options.onError?.(e as Error);
          throw e;
        }
      },
      onError: this.options.onError,
    });
  }

  /** Partitions this worker currently owns. */
  get partitions(): number[] {
    return [...this.owners.keys()].sort((a, b) => a - b);
  }

  async stop(): Promise<void> {
    await this.subscription?.close();
    this.subscription = undefined;
    for (const owner of this.owners.values()) await owner.close();
    this.owners.clear();
  }
}
