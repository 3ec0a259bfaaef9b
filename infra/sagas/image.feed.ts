// The image domain folded from the log for the compute agents: each image's record (status,
// formats, checksum, where its data lives, its properties) as the image deciders fold it (their
// own evolve), so that a host boots exactly the image the API shows.
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { imageAggregates } from '../../domains/image/image.deciders.js';
import { IMAGE_DOMAIN, type Image } from '../../domains/image/image.types.js';
import { imageCodecFor, imageEventTypes } from '../codecs/image.codec.js';
import type { Log } from '../log/log.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { DomainFeed, decodeDomainEvent, type DecodedEvent, type FoldedView } from './domain.feed.js';

const decider = imageAggregates.find((a) => a.aggregateType === 'image')!.decider;

export class ImageView implements FoldedView<DecodedEvent> {
  private readonly states = new Map<string, MachineState>();

  apply(event: DecodedEvent): string | undefined {
    if (event.aggregateType !== 'image') return undefined;
    const { aggregateType: _t, aggregateId: _i, version: _v, occurredAtMs: _o, ...payload } = event;
    this.states.set(event.aggregateId, decider.evolve(this.states.get(event.aggregateId) ?? decider.initialState, payload as never) as MachineState);
    return event.aggregateId;
  }

  /** The image as the log has it (undefined: never created, or deleted). */
  image(id: string): Image | undefined {
    const s = this.states.get(id);
    if (!s || s.value === 'deleted' || s.value === 'absent') return undefined;
    return (s.context as { image: Image | null }).image ?? undefined;
  }
}

export type ImageFeed = DomainFeed<ImageView, DecodedEvent>;

/** Follows the image domain (default 'image') from the start of its log into a new view. */
export function followImages(o: { log: Log; topology: TopologyOptions; domain?: string }): Promise<ImageFeed> {
  return DomainFeed.follow(new ImageView(), {
    log: o.log,
    topology: o.topology,
    domain: o.domain ?? IMAGE_DOMAIN,
    folded: new Set(imageEventTypes),
    decode: (r) => decodeDomainEvent(r, imageCodecFor),
  });
}
