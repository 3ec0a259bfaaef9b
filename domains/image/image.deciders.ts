// The deciders of the image domain (Glance v2): one aggregate, the image (its id a uuid the API
// draws), with its members. The lifecycle machine states its own refusals (imageRefusal; see
// domains/kernel/aggregate.ts).
import { defineAggregate, whenLive, type DomainAggregate } from '../kernel/aggregate.js';
import { IMAGE_COMMANDS, IMAGE_EVENTS, imageMachine, imageRefusal, type ImageContext } from './image.machine.js';

export type ImageAggregate = DomainAggregate;

export const imageAggregates: ImageAggregate[] = [
  defineAggregate('image', imageMachine, IMAGE_COMMANDS, IMAGE_EVENTS, whenLive('CreateImage', (c: ImageContext, e) => imageRefusal(c, e)), { creation: 'CreateImage' }),
];

export const imageAggregate = (aggregateType: string): ImageAggregate => {
  const a = imageAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no image aggregate ${aggregateType}`);
  return a;
};
