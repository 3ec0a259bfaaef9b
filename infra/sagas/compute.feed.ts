// Follows the compute events topic from the start and folds it into a ComputeView, for the
// conductor and the host agents (one feed can serve both in one process): a DomainFeed, which
// knows how far the fold has got, so that no step is taken twice on a stale view.
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { ComputeView, type ComputeEvent } from '../../domains/compute/compute.view.js';
import { INTERFACE_EVENTS } from '../../domains/compute/instance.interfaces.js';
import { computeCodecFor } from '../codecs/compute.codec.js';
import type { Log, LogRecord } from '../log/log.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { DomainFeed, decodeDomainEvent } from './domain.feed.js';

/** The events the view folds; the others (flavors, key pairs, metadata) are skipped undecoded. */
const FOLDED = new Set([
  'InstanceCreated', 'InstanceActionStarted', 'InstanceTaskChanged', 'InstanceRescheduled', 'InstanceHostAssigned', 'InstanceActionCompleted',
  'InstanceActionFailed', 'InstancePowerStateObserved', 'InstanceMigrationTargetReady', ...INTERFACE_EVENTS,
  'HostRegistered', 'HostInventoryUpdated', 'HostHeartbeatRecorded', 'HostDisabled', 'HostEnabled', 'ResourcesClaimed', 'ResourcesReleased',
  'QuotaReserved', 'QuotaReleased',
  'ServerGroupCreated', 'ServerGroupMemberAdded', 'ServerGroupMemberRemoved', 'ServerGroupDeleted',
  'AggregateCreated', 'AggregateUpdated', 'AggregateHostAdded', 'AggregateHostRemoved', 'AggregateDeleted',
]);

/** A compute events record as the view and the audit fold it: the payload with where it came from. */
export function decodeComputeEvent(record: LogRecord): ComputeEvent {
  return decodeDomainEvent(record, computeCodecFor) as ComputeEvent;
}

export class ComputeFeed extends DomainFeed<ComputeView, ComputeEvent> {
  /**
   * Starts folding; resolves once the view holds everything the log held at the start. The domain
   * is 'compute' but for tests that share one Kafka cluster and isolate themselves by name.
   */
  static async start(log: Log, topology: TopologyOptions, domain = COMPUTE_DOMAIN): Promise<ComputeFeed> {
    const feed = new ComputeFeed(domain, new ComputeView(), FOLDED, decodeComputeEvent);
    await feed.begin(log, topology);
    return feed;
  }
}
