// The object agent's configuration, from the environment (listed in README.md). One agent per
// storage host; it serves the devices STRATA_OBJECT_DEVICES names.
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';
import type { ObjectDeviceConfig } from './object.agent.js';

export interface ObjectAgentConfig {
  domain: string;
  partitions: number;
  replyPartitions: number;
  devices: ObjectDeviceConfig[];
  /** The address the object servers listen on (and the ring names). */
  host: string;
  /** STRATA_OBJECT_REGISTER: put the devices in the ring (if absent) in this zone/region/weight. */
  register: { zone: number; region: number; weight: number } | undefined;
  replicateEveryMs: number;
  auditEveryMs: number;
  auditBytesPerSecond: number;
  reclaimAfterMs: number;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number above 0, got "${raw}"`);
  return n;
}

/** "id:root:port,..." (e.g. "1:/srv/node/d1:6201,2:/srv/node/d2:6202"). */
export function parseDevices(raw: string | undefined, host: string): ObjectDeviceConfig[] {
  const name = 'STRATA_OBJECT_DEVICES';
  if (!raw || raw.trim() === '') throw new Error(`${name} is required: id:root:port[,id:root:port...], e.g. "1:/srv/node/d1:6201"`);
  const devices: ObjectDeviceConfig[] = [];
  for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
    // The root may hold ':' itself: the id is before the first, the port after the last.
    const first = entry.indexOf(':');
    const last = entry.lastIndexOf(':');
    if (first <= 0 || last === first) throw new Error(`${name}: "${entry}" is not id:root:port`);
    const id = Number(entry.slice(0, first));
    const root = entry.slice(first + 1, last);
    const port = Number(entry.slice(last + 1));
    if (!Number.isInteger(id) || id < 1) throw new Error(`${name}: "${entry}": the device id must be an integer of at least 1`);
    if (!root) throw new Error(`${name}: "${entry}": the root directory is empty`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${name}: "${entry}": the port must be from 1 to 65535 (a fixed one: the ring names it)`);
    if (devices.some((d) => d.deviceId === id)) throw new Error(`${name}: device id ${id} appears twice`);
    if (devices.some((d) => d.port === port)) throw new Error(`${name}: port ${port} appears twice`);
    devices.push({ deviceId: id, root, port, host });
  }
  if (devices.length === 0) throw new Error(`${name} names no device`);
  return devices;
}

/** "zone[:region[:weight]]". */
export function parseRegister(raw: string | undefined): ObjectAgentConfig['register'] {
  if (raw === undefined || raw.trim() === '') return undefined;
  const name = 'STRATA_OBJECT_REGISTER';
  const [zone, region = '1', weight = '100', ...extra] = raw.trim().split(':');
  if (extra.length > 0) throw new Error(`${name} must be zone[:region[:weight]], got "${raw}"`);
  const z = Number(zone);
  const r = Number(region);
  const w = Number(weight);
  if (!Number.isInteger(z) || z < 0) throw new Error(`${name}: the zone must be an integer of at least 0, got "${zone}"`);
  if (!Number.isInteger(r) || r < 1) throw new Error(`${name}: the region must be an integer of at least 1, got "${region}"`);
  if (!Number.isFinite(w) || w < 0) throw new Error(`${name}: the weight must be a number of at least 0, got "${weight}"`);
  return { zone: z, region: r, weight: w };
}

export function objectAgentConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ObjectAgentConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  const partitions = positive(env, 'STRATA_PARTITIONS', backend === 'embedded' ? 4 : 12);
  if (!Number.isInteger(partitions)) throw new Error(`STRATA_PARTITIONS must be an integer, got "${env.STRATA_PARTITIONS}"`);
  const host = (env.STRATA_OBJECT_HOST ?? '127.0.0.1').trim();
  if (!/^[A-Za-z0-9.\-]+$/.test(host)) throw new Error(`STRATA_OBJECT_HOST must be an IPv4 address or host name, got "${host}"`);
  return {
    domain: env.STRATA_OBJECT_DOMAIN || OBJECT_DOMAIN,
    partitions,
    replyPartitions: positive(env, 'STRATA_REPLY_PARTITIONS', partitions),
    devices: parseDevices(env.STRATA_OBJECT_DEVICES, host),
    host,
    register: parseRegister(env.STRATA_OBJECT_REGISTER),
    replicateEveryMs: positive(env, 'STRATA_OBJECT_REPLICATE_S', 10) * 1000,
    auditEveryMs: positive(env, 'STRATA_OBJECT_AUDIT_S', 300) * 1000,
    auditBytesPerSecond: env.STRATA_OBJECT_AUDIT_BYTES_PER_S === '0' ? 0 : positive(env, 'STRATA_OBJECT_AUDIT_BYTES_PER_S', 20 * 1024 * 1024),
    reclaimAfterMs: positive(env, 'STRATA_OBJECT_RECLAIM_S', 3600) * 1000,
  };
}
