// A running runtime for tests and benchmarks: decider worker(s), a command bus, and helpers to
// send counter commands and read the events topic back.
import { randomUUID } from 'node:crypto';
import type { Reply } from '../../infra/envelope/envelope.js';
import { decodeEvent } from '../../infra/envelope/envelope.codec.js';
import type { EventEnvelope } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { domainTopics, ensureDomainTopics } from '../../infra/runtime/topology.js';
import { COUNTER, counterCodec } from '../conformance/counter.decider.js';
import type { CounterCommand } from '../conformance/counter.machine.js';
import type { TestLog } from './backends.js';
import { settledEndOffsets } from './wait.js';

export const actor = { userId: 'user-1', projectId: 'project-1', roles: ['member'] };

export class Harness {
  workers: DeciderWorker[] = [];
  bus!: CommandBus;

  constructor(readonly t: TestLog) {}

  get topics() {
    return domainTopics(this.t.domain);
  }

  async start(options: { workers?: number } = {}): Promise<this> {
    await ensureDomainTopics(this.t.log, this.t.domain, this.t.topology);
    for (let i = 0; i < (options.workers ?? 1); i++) await this.startWorker();
    this.bus = await CommandBus.connect({ log: this.t.log, timeoutMs: 60_000 });
    return this;
  }

  async startWorker(): Promise<DeciderWorker> {
    const { counterAggregate } = await import('../conformance/counter.decider.js');
    const w = new DeciderWorker({
      log: this.t.log,
      domain: this.t.domain,
      aggregates: [counterAggregate],
      topology: this.t.topology,
      onError: (e) => {
        if (process.env.STRATA_DEBUG) console.error('worker error', e);
      },
    });
    await w.start();
    this.workers.push(w);
    return w;
  }

  send(aggregateId: string, command: CounterCommand, options: { commandId?: string; expectedVersion?: number } = {}): Promise<Reply> {
    return this.bus.send({
      domain: this.t.domain,
      aggregateType: COUNTER,
      aggregateId,
      type: command.type,
      payload: counterCodec.encodeCommand(command),
      actor,
      commandId: options.commandId ?? randomUUID(),
      expectedVersion: options.expectedVersion,
    });
  }

  /** Every committed event of the domain, per partition in log order. */
  async events(): Promise<EventEnvelope[]> {
    const { log } = this.t;
    const ends = await settledEndOffsets(log, this.topics.events);
    const out: EventEnvelope[] = [];
    for (let p = 0; p < ends.length; p++) {
      for await (const batch of log.read(this.topics.events, p, 0, ends[p])) {
        for (const r of batch) out.push(decodeEvent(r.value));
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    await this.bus?.close();
    for (const w of this.workers) await w.stop();
    this.workers = [];
  }
}

export function expectAccepted(reply: Reply): Extract<Reply, { kind: 'accepted' }> {
  if (reply.kind !== 'accepted') {
    throw new Error(`expected accepted, got ${reply.rejection.code}: ${reply.rejection.message}`);
  }
  return reply;
}
