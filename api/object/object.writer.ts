// The object domain's DomainWriter (api/domain.writer.ts): object commands, their replies, and
// the object read model's read-your-writes.
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';
import { objectCodecFor } from '../../infra/codecs/object.codec.js';
import type { Position } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { DomainWriter } from '../domain.writer.js';

export class ObjectWriter extends DomainWriter {
  constructor(bus: CommandBus, waitFor?: (position: Position) => Promise<void>, now: () => number = Date.now, domain: string = OBJECT_DOMAIN) {
    super(bus, objectCodecFor, domain, waitFor, now);
  }
}
