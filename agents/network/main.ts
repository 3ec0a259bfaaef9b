// A network agent process: `npm run agent:network`. It joins the cloud through the log alone (the
// same STRATA_LOG settings as the cloud), makes sure its host's Open vSwitch and integration
// bridge exist, registers its tunnel address, and wires what the log binds to its host until
// SIGINT/SIGTERM. Configuration: agents/network/config.ts, README.md.
import { mkdirSync } from 'node:fs';
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { ensureOvs } from '../../infra/ovs/launcher.js';
import { networkAgentConfigFromEnv } from './config.js';
import { NetworkAgent } from './network.agent.js';
import { Ovs } from './ovs.js';

const logConfig = logConfigFromEnv();
const config = networkAgentConfigFromEnv();
mkdirSync(config.stateDir, { recursive: true });
const ovs = new Ovs(await ensureOvs({ dir: config.ovsDir }));
await ovs.createBridge(config.bridge);
const log = openLog(logConfig);
const agent = await NetworkAgent.start({
  log,
  topology: { partitions: config.partitions, replyPartitions: config.replyPartitions, replicationFactor: logConfig.backend === 'kafka' ? logConfig.replicationFactor : 1 },
  domain: config.domain,
  hostId: config.hostId,
  ovs,
  bridge: config.bridge,
  tunnelIp: config.tunnelIp,
  l3: config.l3 || undefined,
  dhcp: config.dhcp ? { stateDir: config.stateDir } : undefined,
  resyncMs: config.resyncMs,
  onError: (e) => process.stderr.write(`network agent: ${e.message}\n`),
});
const roles = [config.l3 && 'routers', config.dhcp && 'DHCP'].filter(Boolean).join(' and ');
console.log(`strata network agent: host ${config.hostId}, bridge ${config.bridge} on the OVS in ${config.ovsDir}${config.tunnelIp ? `, tunnels from ${config.tunnelIp}` : ', no tunnels'}${roles ? `, runs ${roles}` : ''}`);
console.log('ready');

const stop = async () => {
  await agent.close();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
