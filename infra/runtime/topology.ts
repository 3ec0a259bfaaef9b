// Topic names and layout of a domain. Commands, events and the decider changelog of a domain
// have the same partition count, so an aggregate's commands, events and state share partition p.
import type { Log, TopicSpec } from '../log/log.js';

export const REPLIES_TOPIC = 'strata.replies';

export interface DomainTopics {
  commands: string;
  events: string;
  changelog: string;
}

export const domainTopics = (domain: string): DomainTopics => ({
  commands: `strata.commands.${domain}`,
  events: `strata.events.${domain}`,
  changelog: `strata.changelog.${domain}`,
});

export interface TopologyOptions {
  partitions: number;
  replicationFactor: number;
  replyPartitions?: number;
}

export async function ensureDomainTopics(log: Log, domain: string, options: TopologyOptions): Promise<DomainTopics> {
  const t = domainTopics(domain);
  const rf = options.replicationFactor;
  const specs: TopicSpec[] = [
    { name: t.commands, partitions: options.partitions, replicationFactor: rf },
    { name: t.events, partitions: options.partitions, replicationFactor: rf },
    { name: t.changelog, partitions: options.partitions, replicationFactor: rf, compacted: true },
    { name: REPLIES_TOPIC, partitions: options.replyPartitions ?? options.partitions, replicationFactor: rf },
  ];
  await log.ensureTopics(specs);
  return t;
}
