// The request/reply channel: sends command envelopes into a domain's commands topic and waits
// for the decider's reply on the replies topic, matched by command id. A timeout does not mean
// the command failed: send it again with the same command id to learn its outcome.
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type { Actor, CommandEnvelope, Reply } from '../envelope/envelope.js';
import { decodeReply, encodeCommand } from '../envelope/envelope.codec.js';
import type { Log, LogRecord, Subscription } from '../log/log.js';
import { partitionForKey } from '../log/partitioner.js';
import { meter, traceHeaders, tracer } from '../telemetry/telemetry.js';
import { HEADER_COMMAND_ID, HEADER_REPLY_TO } from './partition-decider.js';
import { REPLIES_TOPIC, domainTopics } from './topology.js';

export class CommandTimeoutError extends Error {
  constructor(
    readonly commandId: string,
    timeoutMs: number,
  ) {
    super(`no reply to command ${commandId} within ${timeoutMs} ms; resend it with the same command id to learn its outcome`);
    this.name = 'CommandTimeoutError';
  }
}

export interface CommandRequest {
  domain: string;
  aggregateType: string;
  aggregateId: string;
  type: string;
  payload: Uint8Array;
  actor: Actor;
  /** The idempotency key (an API request_id); a new one is drawn when absent. */
  commandId?: string;
  correlationId?: string;
  causationId?: string;
  expectedVersion?: number;
  /** The command's time (the decider's only clock); default: now. The API passes its own clock. */
  issuedAtMs?: number;
}

export interface CommandBusOptions {
  log: Log;
  /** Identifies this client's reply stream; unique per process. */
  clientId?: string;
  timeoutMs?: number;
}

interface Waiter {
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
}

export class CommandBus {
  readonly clientId: string;
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly partitions = new Map<string, number>();
  private subscription: Subscription | undefined;
  private readonly latency = meter().createHistogram('strata.command.latency', {
    description: 'Time from sending a command to receiving its reply',
    unit: 'ms',
  });

  private constructor(private readonly options: CommandBusOptions) {
    this.clientId = options.clientId ?? `client-${randomUUID()}`;
  }

  static async connect(options: CommandBusOptions): Promise<CommandBus> {
    const bus = new CommandBus(options);
    const replyPartitions = await options.log.partitionCount(REPLIES_TOPIC);
    bus.subscription = await options.log.tail({
      topics: [REPLIES_TOPIC],
      partitions: [partitionForKey(bus.clientId, replyPartitions)],
      from: 'latest',
      onBatch: async (records) => bus.onReplies(records),
    });
    return bus;
  }

  private onReplies(records: LogRecord[]): void {
    for (const r of records) {
      if (r.key !== this.clientId) continue;
      const commandId = r.headers[HEADER_COMMAND_ID];
      const waiters = commandId ? this.waiters.get(commandId) : undefined;
      if (!waiters) continue; // a reply to a request that already timed out
      this.waiters.delete(commandId);
      let reply: Reply;
      try {
        reply = decodeReply(r.value);
      } catch (e) {
        for (const w of waiters) w.reject(e as Error);
        continue;
      }
      for (const w of waiters) w.resolve(reply);
    }
  }

  /** Sends a command and resolves with its reply (accepted or rejected). */
  async send(request: CommandRequest, options: { timeoutMs?: number } = {}): Promise<Reply> {
    const commandId = request.commandId ?? randomUUID();
    const span = tracer().startSpan(`send ${request.aggregateType}.${request.type}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        'strata.command_id': commandId,
        'strata.aggregate_type': request.aggregateType,
        'strata.aggregate_id': request.aggregateId,
      },
    });
    const ctx = trace.setSpan(context.active(), span);
    const headers = traceHeaders(ctx);
    const envelope: CommandEnvelope = {
      commandId,
      aggregateType: request.aggregateType,
      aggregateId: request.aggregateId,
      expectedVersion: request.expectedVersion ?? 0,
      type: request.type,
      payload: request.payload,
      actor: request.actor,
      causationId: request.causationId ?? '',
      correlationId: request.correlationId ?? commandId,
      traceparent: headers.traceparent,
      tracestate: headers.tracestate,
      issuedAtMs: request.issuedAtMs ?? Date.now(),
      replyTo: this.clientId,
    };
    try {
      const reply = await this.sendEnvelope(request.domain, envelope, encodeCommand(envelope), options.timeoutMs);
      if (reply.kind === 'rejected') {
        span.setStatus({ code: SpanStatusCode.ERROR, message: reply.rejection.message });
      }
      return reply;
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
      throw e;
    } finally {
      span.end();
    }
  }

  /**
   * Sends already-encoded envelope bytes (retries of a stored envelope; tests of malformed input).
   * The reply is matched by `envelope.commandId`, which also travels as a log header.
   */
  async sendEnvelope(
    domain: string,
    envelope: Pick<CommandEnvelope, 'commandId' | 'aggregateId'>,
    bytes: Uint8Array,
    timeoutMs = this.options.timeoutMs ?? 30_000,
  ): Promise<Reply> {
    const topic = domainTopics(domain).commands;
    let partitions = this.partitions.get(topic);
    if (partitions === undefined) {
      partitions = await this.options.log.partitionCount(topic);
      this.partitions.set(topic, partitions);
    }
    const started = performance.now();
    const reply = new Promise<Reply>((resolve, reject) => {
      const list = this.waiters.get(envelope.commandId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(envelope.commandId, list);
    });
    // close() may reject it while the append is still under way, before the race below listens.
    reply.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.waiters.delete(envelope.commandId);
        reject(new CommandTimeoutError(envelope.commandId, timeoutMs));
      }, timeoutMs);
    });
    try {
      await this.options.log.append([
        {
          topic,
          partition: partitionForKey(envelope.aggregateId, partitions),
          key: envelope.aggregateId,
          value: bytes,
          headers: { [HEADER_COMMAND_ID]: envelope.commandId, [HEADER_REPLY_TO]: this.clientId },
        },
      ]);
      const result = await Promise.race([reply, timeout]);
      this.latency.record(performance.now() - started, { domain });
      return result;
    } catch (e) {
      this.waiters.delete(envelope.commandId);
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.subscription?.close();
    for (const [id, list] of this.waiters) {
      for (const w of list) w.reject(new Error(`command bus closed before the reply to ${id}`));
    }
    this.waiters.clear();
  }
}
