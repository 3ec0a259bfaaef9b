// Where an event of any hosted domain is read: the domain of an events topic, the payload of an
// envelope decoded by its domain's codec, and that payload as JSON (the audit trail's "what
// changed", the subscriptions' payload_json). One decoding for every reader of all domains.
import { hostedDomains, type HostedDomain } from '../domains.js';
import type { EventEnvelope } from '../envelope/envelope.js';
import { domainTopics } from '../runtime/topology.js';

const byTopic = new Map(hostedDomains.map((d) => [domainTopics(d.name).events, d]));

/** The events topics of the hosted domains (all of them, or those named). */
export const eventsTopics = (domains: readonly string[] = hostedDomains.map((d) => d.name)): string[] => domains.map((d) => domainTopics(d).events);

/** The hosted domain whose events a topic holds; undefined for any other topic. */
export const domainOfTopic = (topic: string): HostedDomain | undefined => byTopic.get(topic);

/** The event's payload decoded by its domain's codec (without the `type` key the codec adds). */
export function payloadOf(domain: HostedDomain, event: EventEnvelope): Record<string, unknown> {
  const { type: _type, ...payload } = domain.codecFor(event.aggregateType).decodeEvent(event.type, event.payload) as unknown as Record<string, unknown>;
  return payload;
}

/**
 * Deterministic JSON of a decoded payload: keys sorted at every level, bytes as base64, 64-bit
 * integers as numbers (the codecs decode them so), undefined left out. The same text on every run,
 * for the audit trail and the subscriptions alike.
 */
export function payloadJson(value: unknown): string {
  return JSON.stringify(normalize(value));
}

function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    if (typeof (value as { toNumber?: unknown }).toNumber === 'function') return (value as { toNumber(): number }).toNumber();
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = normalize(v);
    }
    return out;
  }
  if (typeof value === 'bigint') return Number(value);
  return value;
}
