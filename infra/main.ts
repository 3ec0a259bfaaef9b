// The all-in-one Strata process: the log (embedded by default), the read-model store (SQLite by
// default), the decider workers and the identity, compute, network, block, object and image APIs on one gRPC server with TLS,
// until SIGINT/SIGTERM.
// Configuration: infra/config/config.ts, listed in README.md. With STRATA_BOOTSTRAP_PASSWORD
// set, the first start also runs the bootstrap (as `strata bootstrap` does).
import { join } from 'node:path';
import { bootstrap } from '../api/identity/bootstrap.js';
import { ensureTlsMaterial } from '../api/grpc/tls.js';
import { DEFAULT_SEGMENT_RANGES } from '../api/network/network.sagas.js';
import { startCloud } from './cloud.js';
import { apiConfigFromEnv, logConfigFromEnv, openLog, openStore, storeConfigFromEnv } from './config/config.js';
import { hostedDomains } from './domains.js';
import { meteringPolicyFrom } from '../domains/metering/usage.js';
import { agentConfigFromEnv } from '../agents/compute/config.js';

const logConfig = logConfigFromEnv();
const storeConfig = storeConfigFromEnv();
const api = apiConfigFromEnv();
const log = openLog(logConfig);
const store = await openStore(storeConfig);
// STRATA_COMPUTE_FAKE_HOSTS=N: N fake-driver hosts in this process, so servers boot with no agent to set up.
const fakeHosts = Number(process.env.STRATA_COMPUTE_FAKE_HOSTS ?? 0);
if (!Number.isInteger(fakeHosts) || fakeHosts < 0) throw new Error(`STRATA_COMPUTE_FAKE_HOSTS must be a whole number, got "${process.env.STRATA_COMPUTE_FAKE_HOSTS}"`);
const fakeConfig = fakeHosts > 0 ? agentConfigFromEnv({ ...process.env, STRATA_AGENT_HOSTS: String(fakeHosts), STRATA_AGENT_HOST_ID: process.env.STRATA_AGENT_HOST_ID || 'fake' }) : undefined;
const computeHosts = fakeConfig?.hosts;
// STRATA_NETWORK_VNI_RANGE=MIN:MAX: the VXLAN ids tenant networks get (Neutron's vni_ranges).
const vniRange = (process.env.STRATA_NETWORK_VNI_RANGE || '1:65535').split(':').map(Number);
if (vniRange.length !== 2 || !vniRange.every((n) => Number.isInteger(n) && n >= 1 && n <= 16_777_215) || vniRange[0] > vniRange[1]) {
  throw new Error(`STRATA_NETWORK_VNI_RANGE must be MIN:MAX within 1:16777215, got "${process.env.STRATA_NETWORK_VNI_RANGE}"`);
}
// STRATA_BLOCK_LOCAL=1 (the default): a storage host in this process keeping volume files under
// <state dir>/block, so volumes work with no agent to set up (0: storage hosts join with `npm run agent:block`).
const blockLocal = (process.env.STRATA_BLOCK_LOCAL ?? '1').trim();
if (!['0', '1'].includes(blockLocal)) throw new Error(`STRATA_BLOCK_LOCAL must be 1 or 0, got "${process.env.STRATA_BLOCK_LOCAL}"`);
const blockHosts = blockLocal === '1'
  ? [{ hostId: process.env.STRATA_BLOCK_HOST_ID || 'local', backend: process.env.STRATA_BLOCK_BACKEND || 'local', availabilityZone: 'nova', stateDir: join(api.stateDir, 'block'), imageDir: process.env.STRATA_IMAGE_DIR || undefined }]
  : [];
// STRATA_OBJECT_LOCAL=N (default 3): N object storage devices in this process under <state dir>/object,
// one zone each, in the ring with 3 replicas (0: object servers join with `npm run agent:object`).
// STRATA_OBJECT_PORT_BASE: their object servers listen on BASE+1.. (default 0: any free port; the
// ring follows a device to its new port without moving its partitions).
const objectLocal = Number(process.env.STRATA_OBJECT_LOCAL ?? 3);
if (!Number.isInteger(objectLocal) || objectLocal < 0 || objectLocal > 16) throw new Error(`STRATA_OBJECT_LOCAL must be a whole number 0..16, got "${process.env.STRATA_OBJECT_LOCAL}"`);
const objectPortBase = Number(process.env.STRATA_OBJECT_PORT_BASE ?? 0);
if (!Number.isInteger(objectPortBase) || objectPortBase < 0 || objectPortBase > 65_000) throw new Error(`STRATA_OBJECT_PORT_BASE must be a port number, got "${process.env.STRATA_OBJECT_PORT_BASE}"`);
const objectDevices = Array.from({ length: objectLocal }, (_, i) => ({ deviceId: i + 1, root: join(api.stateDir, 'object', `d${i + 1}`), port: objectPortBase ? objectPortBase + i + 1 : 0, zone: i + 1 }));
const objectReplicas = Math.min(3, Math.max(1, objectLocal));
const tls = api.insecure ? ('insecure' as const) : await ensureTlsMaterial(join(api.stateDir, 'tls'), api.tlsHosts);
const cloud = await startCloud({
  log,
  store,
  topology: { partitions: api.partitions, replicationFactor: logConfig.backend === 'kafka' ? logConfig.replicationFactor : 1 },
  stateDir: api.stateDir,
  tls,
  host: api.host,
  port: api.port,
  identity: { tokenTtlMs: api.tokenTtlMs, lockoutAttempts: api.lockoutAttempts, lockoutDurationMs: api.lockoutDurationMs },
  network: { segmentRanges: { ...DEFAULT_SEGMENT_RANGES, vxlan: { min: vniRange[0], max: vniRange[1] } } },
  computeHosts,
  computeAgentListen: fakeConfig?.listen,
  blockHosts,
  objectDevices,
  objectRing: { replicas: objectReplicas },
  // STRATA_METERING_BILL=stopped,shelved: usage metering bills those states too (default: running states only).
  metering: meteringPolicyFrom(process.env.STRATA_METERING_BILL ?? ''),
});
const scheme = tls === 'insecure' ? 'grpc' : 'grpcs';
const url = `${scheme}://${api.host}:${cloud.identity.port}`;

const where = logConfig.backend === 'embedded' ? `embedded log at ${logConfig.path}` : `Kafka at ${logConfig.brokers.join(',')}`;
console.log(`strata: all-in-one up on the ${where}; read models in ${storeConfig.kind === 'sqlite' ? storeConfig.path : 'PostgreSQL'}`);
console.log(`strata: domains ${hostedDomains.map((d) => d.name).join(', ')} (${api.partitions} partitions each)`);
console.log(`strata: identity API at ${url}${tls === 'insecure' ? ' (no TLS)' : `, CA certificate ${tls.caCertPath}`}`);
console.log(`strata: network API at ${url} (the same server); tenant networks take VXLAN ids from ${vniRange.join(':')}`);
console.log(`strata: compute API at ${url} (the same server); conductor running; ${computeHosts ? `${computeHosts.length} fake compute host(s) in this process` : 'compute hosts join with `npm run agent:compute`'}`);
console.log(`strata: block API at ${url} (the same server); ${blockHosts.length ? `storage host ${blockHosts[0].hostId} in this process, volumes in ${blockHosts[0].stateDir}` : 'storage hosts join with `npm run agent:block`'}`);

console.log(`strata: object and image APIs at ${url} (the same server); ${objectDevices.length ? `${objectDevices.length} object device(s) in this process under ${join(api.stateDir, 'object')}, ${objectReplicas} replica(s)` : 'object servers join with `npm run agent:object`'}`);

if (process.env.STRATA_BOOTSTRAP_PASSWORD) {
  const result = await bootstrap(cloud.identity.writer, { adminPassword: process.env.STRATA_BOOTSTRAP_PASSWORD, identityUrl: url });
  console.log(`strata: bootstrapped: admin user ${result.adminUserId}, admin project ${result.adminProjectId}`);
}

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`strata: ${signal}, stopping`);
  await cloud.close();
  await store.close();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
