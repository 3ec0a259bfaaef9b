// The compute domain's DomainWriter (api/domain.writer.ts): compute commands, their replies, and
// the compute read model's read-your-writes.
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import type { Position } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { DomainWriter } from '../domain.writer.js';

export type { Accepted, SendOptions } from '../domain.writer.js';

export class ComputeWriter extends DomainWriter {
  constructor(bus: CommandBus, waitFor?: (position: Position) => Promise<void>, now: () => number = Date.now, domain: string = COMPUTE_DOMAIN) {
    super(bus, computeCodecFor, domain, waitFor, now);
  }
}
