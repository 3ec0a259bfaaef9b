// Issue 2, telemetry: command latency and projection lag are reported as OpenTelemetry metrics.
import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionRunner } from '../infra/runtime/projection-runner.js';
import { SqliteStore } from '../infra/store/sqlite-store.js';
import { counterProjection } from './conformance/counter.projection.js';
import { openTestLog, type TestLog } from './support/backends.js';
import { Harness, expectAccepted } from './support/harness.js';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const reader = new TestReader();
const provider = new MeterProvider({ readers: [reader] });

function find(result: ResourceMetrics, name: string) {
  return result.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
}

describe('runtime metrics', () => {
  let t: TestLog;
  let h: Harness;
  beforeAll(async () => {
    // Instruments bind to the global provider when created: register it first.
    metrics.setGlobalMeterProvider(provider);
    t = await openTestLog('embedded');
    h = await new Harness(t).start();
  });
  afterAll(async () => {
    await h.stop();
    await t.close();
    await provider.shutdown();
    metrics.disable();
  });

  it('reports command latency and projection lag', async () => {
    const ids = [...Array(5)].map(() => `c-${randomUUID()}`);
    for (const id of ids) expectAccepted(await h.send(id, { type: 'OpenCounter', name: id }));

    const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'strata-metrics-')), 'read.db'));
    const runner = new ProjectionRunner(t.log, store, counterProjection(h.topics.events));
    await runner.start();
    const last = expectAccepted(await h.send(ids[0], { type: 'IncrementCounter', amount: 1 }));
    await runner.waitFor(last.position!);
    for (let i = 0; i < 100 && (await runner.lag()) > 0; i++) await new Promise((r) => setTimeout(r, 20));

    const { resourceMetrics } = await reader.collect();
    const latency = find(resourceMetrics, 'strata.command.latency');
    expect(latency, 'strata.command.latency').toBeDefined();
    const histogram = latency!.dataPoints[0].value as { count: number; sum: number };
    expect(histogram.count).toBe(6);
    expect(histogram.sum).toBeGreaterThan(0);
    expect(find(resourceMetrics, 'strata.decider.commands')!.dataPoints.reduce((n, p) => n + (p.value as number), 0)).toBe(6);

    const lag = find(resourceMetrics, 'strata.projection.lag');
    expect(lag, 'strata.projection.lag').toBeDefined();
    expect(lag!.dataPoints[0].value).toBe(0);
    expect(lag!.dataPoints[0].attributes).toEqual({ projection: 'counters' });

    // Stop the projection, write more: the lag shows the unapplied events.
    await runner.stop();
    await runner.start();
    await runner.stop();
    expectAccepted(await h.send(ids[1], { type: 'IncrementCounter', amount: 1 }));
    expectAccepted(await h.send(ids[2], { type: 'IncrementCounter', amount: 1 }));
    expect(await runner.lag()).toBe(2);
    await store.close();
  });
});
