// The network domain folded into a NetworkView from the log, for whoever acts on it: each host's
// network agent, and the conductor that gives servers their ports. One fold, one set of events.
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { NETWORK_VIEW_EVENTS, NetworkView, type NetworkEvent } from '../../domains/network/network.view.js';
import { networkCodecFor } from '../codecs/network.codec.js';
import type { Log } from '../log/log.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { DomainFeed, decodeDomainEvent } from './domain.feed.js';

export type NetworkFeed = DomainFeed<NetworkView, NetworkEvent>;

/** Follows the network domain (default 'network') from the start of its log into a new view. */
export function followNetwork(o: { log: Log; topology: TopologyOptions; domain?: string }): Promise<NetworkFeed> {
  return DomainFeed.follow(new NetworkView(), {
    log: o.log,
    topology: o.topology,
    domain: o.domain ?? NETWORK_DOMAIN,
    folded: new Set(NETWORK_VIEW_EVENTS),
    decode: (r) => decodeDomainEvent(r, networkCodecFor) as NetworkEvent,
  });
}
