// The image domain's DomainWriter (api/domain.writer.ts): image commands, their replies, and the
// image read model's read-your-writes.
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import { imageCodecFor } from '../../infra/codecs/image.codec.js';
import type { Position } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { DomainWriter } from '../domain.writer.js';

export class ImageWriter extends DomainWriter {
  constructor(bus: CommandBus, waitFor?: (position: Position) => Promise<void>, now: () => number = Date.now, domain: string = IMAGE_DOMAIN) {
    super(bus, imageCodecFor, domain, waitFor, now);
  }
}
