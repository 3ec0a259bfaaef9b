// Issue 2 acceptance f: one trace spans command send, decide and projection write; the trace
// context crosses the log in the envelope and the record headers.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionRunner } from '../infra/runtime/projection-runner.js';
import { SqliteStore } from '../infra/store/sqlite-store.js';
import { counterProjection } from './conformance/counter.projection.js';
import { BACKENDS, openTestLog, type TestLog } from './support/backends.js';
import { Harness, expectAccepted } from './support/harness.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

describe.each(BACKENDS)('tracing on the %s log', (backend) => {
  let t: TestLog;
  let h: Harness;
  beforeAll(async () => {
    t = await openTestLog(backend);
    h = await new Harness(t).start();
  });
  afterAll(async () => {
    await h.stop();
    await t.close();
  });

  it('links send -> decide -> project as parent and children of one trace', async () => {
    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'strata-trace-')), 'read.db'));
    const runner = new ProjectionRunner(t.log, store, counterProjection(h.topics.events));
    await runner.start();
    exporter.reset();
    const id = `c-${randomUUID()}`;
    const reply = expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'traced' }));
    await runner.waitFor(reply.position!);
    await runner.stop();
    await store.close();

    const spans = exporter.getFinishedSpans();
    const send = spans.find((s) => s.name === 'send counter.OpenCounter' && s.attributes['strata.aggregate_id'] === id);
    expect(send, 'send span').toBeDefined();
    const traceId = send!.spanContext().traceId;
    const decide = spans.find((s) => s.name === 'decide counter.OpenCounter' && s.spanContext().traceId === traceId);
    expect(decide, 'decide span in the same trace').toBeDefined();
    expect(decide!.parentSpanContext?.spanId).toBe(send!.spanContext().spanId);
    const project = spans.find((s) => s.name === 'project counters CounterOpened' && s.spanContext().traceId === traceId);
    expect(project, 'project span in the same trace').toBeDefined();
    expect(project!.parentSpanContext?.spanId).toBe(decide!.spanContext().spanId);
    // The event envelope carries the decide span's context.
    expect(reply.events[0].traceparent).toContain(decide!.spanContext().spanId);
  });
});
