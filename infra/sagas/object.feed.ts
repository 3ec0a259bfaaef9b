// The object domain folded from the log for whoever acts on it: the proxy (the ring), each object
// server's replicator (which versions its partitions must hold) and the image service. Objects
// are indexed by partition, so a replicator pass over a partition costs that partition's objects.
import { decodeAssignment, type Ring, type RingDevice } from '../../domains/object/ring.js';
import { OBJECT_DOMAIN, objectId, type ObjectVersion } from '../../domains/object/object.types.js';
import { objectCodecFor, objectEventTypes } from '../codecs/object.codec.js';
import type { Log } from '../log/log.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { DomainFeed, decodeDomainEvent, type DecodedEvent, type FoldedView } from './domain.feed.js';

/** What the log says a name should be: a live version, or a tombstone at `timestamp`. */
export interface RecordedObject {
  id: string;
  account: string;
  container: string;
  name: string;
  partition: number;
  timestamp: string;
  version: ObjectVersion | undefined;
}

export class ObjectView implements FoldedView<DecodedEvent> {
  private current: Ring | undefined;
  /** The builder's devices (added but maybe not yet in the assignment). */
  private builder: RingDevice[] = [];
  private readonly objects = new Map<string, RecordedObject>();
  private readonly byPartition = new Map<number, Set<string>>();
  private partPower = 0;

  apply(event: DecodedEvent): string | undefined {
    switch (event.type) {
      case 'RingCreated':
        this.partPower = event.partPower;
        return 'ring';
      case 'RingDeviceAdded':
        this.builder = [...this.builder, event.device];
        return 'ring';
      case 'RingDeviceRemoved':
        this.builder = this.builder.filter((d) => d.id !== event.deviceId);
        return 'ring';
      case 'RingDeviceWeightSet':
        this.builder = this.builder.map((d) => (d.id === event.deviceId ? { ...d, weight: event.weight } : d));
        return 'ring';
      case 'RingDeviceAddressSet': {
        const moved = (d: RingDevice) => (d.id === event.deviceId ? { ...d, host: event.host } : d);
        this.builder = this.builder.map(moved);
        if (this.current) this.current = { ...this.current, devices: this.current.devices.map(moved) };
        return 'ring';
      }
      case 'RingRebalanced':
        this.partPower = event.partPower;
        this.current = {
          partPower: event.partPower,
          replicas: event.replicas,
          devices: event.devices,
          assignment: decodeAssignment(event.assignment, event.replicas, event.partPower),
          version: event.ringVersion,
        };
        return 'ring';
      case 'ObjectRecorded':
      case 'ObjectMetadataUpdated': {
        const v = event.object as ObjectVersion;
        this.set({ id: event.aggregateId, account: v.account, container: v.container, name: v.name, partition: v.partition, timestamp: v.timestamp, version: v });
        return event.aggregateId;
      }
      case 'ObjectDeleted': {
        const v = event.object as ObjectVersion;
        this.set({ id: event.aggregateId, account: v.account, container: v.container, name: v.name, partition: v.partition, timestamp: event.timestamp, version: undefined });
        return event.aggregateId;
      }
    }
    return undefined;
  }

  private set(r: RecordedObject): void {
    this.objects.set(r.id, r);
    let ids = this.byPartition.get(r.partition);
    if (!ids) this.byPartition.set(r.partition, (ids = new Set()));
    ids.add(r.id);
  }

  ring(): Ring | undefined {
    return this.current;
  }

  builderDevices(): RingDevice[] {
    return this.builder;
  }

  recorded(account: string, container: string, name: string): RecordedObject | undefined {
    return this.objects.get(objectId(account, container, name));
  }

  /** Every name the log knows in a partition (live versions and tombstones). */
  inPartition(partition: number): RecordedObject[] {
    return [...(this.byPartition.get(partition) ?? [])].map((id) => this.objects.get(id)!);
  }

  partitionsWithObjects(): number[] {
    return [...this.byPartition.keys()];
  }
}

export type ObjectFeed = DomainFeed<ObjectView, DecodedEvent>;

const FOLDED = new Set(objectEventTypes);

/** Follows the object domain (default 'object') from the start of its log into a new view. */
export function followObjects(o: { log: Log; topology: TopologyOptions; domain?: string }): Promise<ObjectFeed> {
  return DomainFeed.follow(new ObjectView(), {
    log: o.log,
    topology: o.topology,
    domain: o.domain ?? OBJECT_DOMAIN,
    folded: FOLDED,
    decode: (r) => decodeDomainEvent(r, objectCodecFor),
  });
}
