// The network domain's DomainWriter (api/domain.writer.ts): network commands, their replies, and
// the network read model's read-your-writes.
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import type { Position } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { DomainWriter } from '../domain.writer.js';

export class NetworkWriter extends DomainWriter {
  constructor(bus: CommandBus, waitFor?: (position: Position) => Promise<void>, now: () => number = Date.now, domain: string = NETWORK_DOMAIN) {
    super(bus, networkCodecFor, domain, waitFor, now);
  }
}
