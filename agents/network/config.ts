// The network agent's configuration, from the environment (listed in README.md). One agent per
// host: the same host id as the host's compute agent, since ports are bound to that id.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { parseIp } from '../../domains/network/ip.js';

export interface NetworkAgentConfig {
  domain: string;
  partitions: number;
  replyPartitions: number;
  hostId: string;
  /** The private Open vSwitch's state directory (infra/ovs/ovs.sh), started if it is not running. */
  ovsDir: string;
  bridge: string;
  /** Where this host's VXLAN tunnels end; undefined: no tunnels (one host). */
  tunnelIp: string | undefined;
  l3: boolean;
  dhcp: boolean;
  stateDir: string;
  resyncMs: number;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new Error(`${name} must be 1 or 0 (true or false), got "${env[name]}"`);
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number above 0, got "${raw}"`);
  return n;
}

export function networkAgentConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NetworkAgentConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  const bridge = (env.STRATA_NETWORK_BRIDGE ?? 'br-int').trim();
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new Error(`STRATA_NETWORK_BRIDGE must be a bridge name (at most 15 letters, digits, _ . -), got "${bridge}"`);
  const tunnelIp = env.STRATA_NETWORK_TUNNEL_IP?.trim() || undefined;
  if (tunnelIp !== undefined && !parseIp(tunnelIp)) throw new Error(`STRATA_NETWORK_TUNNEL_IP must be an IPv4 or IPv6 address, got "${tunnelIp}"`);
  const partitions = positive(env, 'STRATA_PARTITIONS', backend === 'embedded' ? 4 : 12);
  if (!Number.isInteger(partitions)) throw new Error(`STRATA_PARTITIONS must be an integer, got "${env.STRATA_PARTITIONS}"`);
  const replyPartitions = positive(env, 'STRATA_REPLY_PARTITIONS', partitions);
  return {
    domain: env.STRATA_NETWORK_DOMAIN || NETWORK_DOMAIN,
    partitions,
    replyPartitions,
    hostId: env.STRATA_AGENT_HOST_ID || hostname(),
    ovsDir: env.STRATA_OVS_DIR || '/tmp/strata-ovs',
    bridge,
    tunnelIp,
    l3: flag(env, 'STRATA_NETWORK_L3', false),
    dhcp: flag(env, 'STRATA_NETWORK_DHCP', true),
    stateDir: env.STRATA_NETWORK_STATE_DIR || join(env.STRATA_STATE_DIR ?? '.strata', 'network'),
    resyncMs: positive(env, 'STRATA_NETWORK_RESYNC_S', 2) * 1000,
  };
}
