// OpenTelemetry glue. Trace context travels in envelopes and log headers as W3C traceparent,
// so one trace spans the API call, the decider, the projection and the agent.
import { context, metrics, trace, type Context, type Span, SpanKind } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const propagator = new W3CTraceContextPropagator();

export const tracer = () => trace.getTracer('strata');
export const meter = () => metrics.getMeter('strata');
export { SpanKind };

export interface TraceHeaders {
  traceparent: string;
  tracestate: string;
}

/** The W3C headers of a context (the active one by default); empty strings when not sampled/absent. */
export function traceHeaders(ctx: Context = context.active()): TraceHeaders {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, { set: (c, k, v) => (c[k] = v) });
  return { traceparent: carrier.traceparent ?? '', tracestate: carrier.tracestate ?? '' };
}

export function contextFrom(headers: Partial<TraceHeaders>): Context {
  if (!headers.traceparent) return context.active();
  return propagator.extract(context.active(), headers, {
    get: (c, k) => (c as Record<string, string | undefined>)[k],
    keys: (c) => Object.keys(c),
  });
}

export function spanHeaders(span: Span): TraceHeaders {
  return traceHeaders(trace.setSpan(context.active(), span));
}

let asyncContext = false;

/**
 * Makes the active context follow async calls, so that the span of an API call is the parent of
 * the commands its handler sends. Once per process; a context manager set before stays.
 */
export function enableAsyncContext(): void {
  if (asyncContext) return;
  asyncContext = true;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
}
