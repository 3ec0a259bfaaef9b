// Invariant 7 through the API: the span of an RPC is the root of one trace that continues
// through the command it sends, the decider and the projection.
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestCloud, type TestCloud } from './cloud.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

describe('tracing through the identity API', () => {
  let t: TestCloud;
  beforeAll(async () => {
    trace.setGlobalTracerProvider(provider);
    t = await startTestCloud();
  }, 120_000);
  afterAll(async () => {
    await t?.close();
    await provider.shutdown();
    trace.disable();
  });

  it('links the CreateProject call to the send, the decision and the projection of its command', async () => {
    const admin = t.client(await t.adminToken());
    exporter.reset();
    await admin.call('CreateProject', { project: { name: 'traced', domainId: 'default' } });
    const spans = exporter.getFinishedSpans();
    const rpc = spans.find((s) => s.name === 'strata.identity.v1.IdentityService/CreateProject')!;
    expect(rpc).toBeDefined();
    const traceId = rpc.spanContext().traceId;
    const inTrace = spans.filter((s) => s.spanContext().traceId === traceId);
    const send = inTrace.find((s) => s.name === 'send project.CreateProject')!;
    expect(send.parentSpanContext?.spanId).toBe(rpc.spanContext().spanId);
    const decide = inTrace.find((s) => s.name.startsWith('decide') && s.parentSpanContext?.spanId === send.spanContext().spanId);
    expect(decide).toBeDefined();
    expect(inTrace.some((s) => s.name === 'project identity ProjectCreated')).toBe(true);
  });
});
