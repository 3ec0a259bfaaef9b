// Sends network commands and waits for their replies and for the network read model to show their
// events (read-your-writes), as ComputeWriter does for compute. A rejection is thrown as ApiError
// with the decider's code, message, field and state.
import { randomUUID } from 'node:crypto';
import type { Message } from '../../domains/kernel/decider.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import type { Actor, Position, Reply } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { ApiError } from '../errors.js';
import type { Accepted, SendOptions } from '../compute/compute.writer.js';

export class NetworkWriter {
  constructor(
    private readonly bus: CommandBus,
    private readonly waitFor?: (position: Position) => Promise<void>,
    private readonly now: () => number = Date.now,
    private readonly domain: string = NETWORK_DOMAIN,
  ) {}

  async send(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, actor: Actor, options: SendOptions = {}): Promise<Accepted> {
    const reply = await this.reply(aggregateType, aggregateId, command, actor, options);
    if (reply.kind === 'rejected') throw new ApiError(reply.rejection);
    return reply;
  }

  async reply(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, actor: Actor, options: SendOptions = {}): Promise<Reply> {
    const payload = networkCodecFor(aggregateType).encodeCommand(command);
    const commandId = options.commandId || randomUUID();
    const reply = await this.bus.send({
      domain: this.domain,
      aggregateType,
      aggregateId,
      type: command.type,
      payload,
      actor,
      commandId,
      correlationId: options.correlationId || commandId,
      issuedAtMs: this.now(),
    });
    if (reply.kind === 'accepted' && reply.position && reply.events.length > 0 && this.waitFor && options.awaitReadModel !== false) {
      await this.waitFor({ ...reply.position, offset: reply.position.offset + reply.events.length - 1 });
    }
    return reply;
  }

  /** The events of an accepted reply, decoded. */
  events(aggregateType: string, reply: Accepted): (Message & Record<string, any>)[] {
    const codec = networkCodecFor(aggregateType);
    return reply.events.map((e) => codec.decodeEvent(e.type, e.payload) as Message & Record<string, any>);
  }
}
