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

/** JSON of a decoded payload: bytes as base64, so it is plain text and the same on every run. */
export const payloadJson = (payload: Record<string, unknown>): string =>
  JSON.stringify(payload, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      return Buffer.from((value as { data: number[] }).data).toString('base64');
    }
    return value;
  });
