// Sends a domain's commands and waits for their replies and, when the API hosts the domain's
// projection, for the read model to show their events (read-your-writes). A rejection is thrown
// as ApiError with the decider's code, message, field and state. The caller's request_id travels
// as the correlation id (compute's instance actions log keys each action by it).
import { randomUUID } from 'node:crypto';
import type { Message } from '../domains/kernel/decider.js';
import type { Actor, Position, Reply } from '../infra/envelope/envelope.js';
import type { CommandBus } from '../infra/runtime/command-bus.js';
import { ApiError } from './errors.js';

export type Accepted = Extract<Reply, { kind: 'accepted' }>;

export interface SendOptions {
  /** The idempotency key of this command (derived from the request_id); default: random. */
  commandId?: string;
  /** The request it belongs to (the request_id); default: the command id. */
  correlationId?: string;
  /** Wait for the read model (default true when the writer was given a waitFor). */
  awaitReadModel?: boolean;
}

/** A domain codec's part the writer needs, per aggregate type. */
export type CodecFor = (aggregateType: string) => {
  encodeCommand(command: Message & Record<string, unknown>): Uint8Array;
  decodeEvent(type: string, payload: Uint8Array): unknown;
};

export class DomainWriter {
  constructor(
    private readonly bus: CommandBus,
    private readonly codecFor: CodecFor,
    /** The domain's name; tests that share one Kafka cluster isolate themselves by it. */
    private readonly domain: string,
    /** Resolves once the read model reflects the given position (absent: do not wait). */
    private readonly waitFor?: (position: Position) => Promise<void>,
    /** The API's clock: the deciders' only clock. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Sends one command; returns the accepted reply or throws the rejection as ApiError. */
  async send(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, actor: Actor, options: SendOptions = {}): Promise<Accepted> {
    const reply = await this.reply(aggregateType, aggregateId, command, actor, options);
    if (reply.kind === 'rejected') throw new ApiError(reply.rejection);
    return reply;
  }

  /** Sends one command and returns its reply, accepted or rejected, without throwing a rejection. */
  async reply(aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, actor: Actor, options: SendOptions = {}): Promise<Reply> {
    const payload = this.codecFor(aggregateType).encodeCommand(command);
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
    const codec = this.codecFor(aggregateType);
    return reply.events.map((e) => codec.decodeEvent(e.type, e.payload) as Message & Record<string, any>);
  }
}
