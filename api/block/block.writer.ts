// The block domain's DomainWriter (api/domain.writer.ts): block commands, their replies, and the
// block read model's read-your-writes.
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { blockCodecFor } from '../../infra/codecs/block.codec.js';
import type { Position } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { DomainWriter } from '../domain.writer.js';

export class BlockWriter extends DomainWriter {
  constructor(bus: CommandBus, waitFor?: (position: Position) => Promise<void>, now: () => number = Date.now, domain: string = BLOCK_DOMAIN) {
    super(bus, blockCodecFor, domain, waitFor, now);
  }
}
