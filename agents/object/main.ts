// An object agent process: `npm run agent:object`. It joins the cloud through the log alone (the
// same STRATA_LOG settings as the cloud): it follows the object domain (the ring and the recorded
// versions) and runs, for each device of STRATA_OBJECT_DEVICES, an object server on its fixed port,
// a replicator and an auditor (agents/object/object.agent.ts). It writes to the log only its reports
// of quarantined replicas and, with STRATA_OBJECT_REGISTER, its devices' entries in the ring's
// builder (if absent; the operator rebalances). Stops on SIGINT/SIGTERM.
// Configuration: agents/object/config.ts, README.md.
import { ObjectWriter } from '../../api/object/object.writer.js';
import { DEFAULT_RING } from '../../domains/object/object.types.js';
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { followObjects } from '../../infra/sagas/object.feed.js';
import { objectAgentConfigFromEnv } from './config.js';
import { ObjectAgent } from './object.agent.js';

let logConfig;
let config;
try {
  logConfig = logConfigFromEnv();
  config = objectAgentConfigFromEnv();
} catch (e) {
  console.error(`strata object agent: ${(e as Error).message}`);
  process.exit(2);
}
const log = openLog(logConfig);
const topology = { partitions: config.partitions, replyPartitions: config.replyPartitions, replicationFactor: logConfig.backend === 'kafka' ? logConfig.replicationFactor : 1 };
const feed = await followObjects({ log, topology, domain: config.domain });
const bus = await CommandBus.connect({ log, timeoutMs: 20_000 });
const writer = new ObjectWriter(bus, undefined, Date.now, config.domain);
const service = { userId: 'strata-object-agent', projectId: '', roles: ['service'] };
const onError = (e: Error) => process.stderr.write(`object agent: ${e.message}\n`);

const agent = await ObjectAgent.start({
  devices: config.devices,
  feed,
  replicateEveryMs: config.replicateEveryMs,
  auditEveryMs: config.auditEveryMs,
  auditBytesPerSecond: config.auditBytesPerSecond,
  reclaimAfterMs: config.reclaimAfterMs,
  report: async (id, command) => {
    const reply = await writer.reply('object', id, command, service);
    if (reply.kind === 'rejected') onError(new Error(`the quarantine report of ${id} was refused: ${reply.rejection.message}`));
  },
  onError,
});

console.log(`strata object agent: ${agent.devices.length} device(s), log ${logConfig.backend}, domain ${config.domain}`);
for (const d of agent.devices) console.log(`device ${d.deviceId}: ${config.devices.find((c) => c.deviceId === d.deviceId)!.root} served at ${d.address}`);

if (config.register) {
  // The devices this agent serves go into the ring's builder unless they are there already.
  const admin = { userId: 'strata-object-agent', projectId: '', roles: ['admin'] };
  const builder = feed.view.builderDevices();
  for (const d of agent.devices) {
    const known = builder.find((b) => b.id === d.deviceId);
    if (known) {
      if (known.host !== d.address) console.log(`device ${d.deviceId}: in the ring as ${known.host}, not ${d.address}: left as it is (strata ring remove-device / add-device to change it)`);
      else console.log(`device ${d.deviceId}: already in the ring`);
      continue;
    }
    const device = { id: d.deviceId, region: config.register.region, zone: config.register.zone, host: d.address, device: `d${d.deviceId}`, weight: config.register.weight };
    const reply = await writer.reply('object_ring', DEFAULT_RING, { type: 'AddRingDevice', device }, admin);
    if (reply.kind === 'rejected') onError(new Error(`device ${d.deviceId}: AddRingDevice refused: ${reply.rejection.message}`));
    else {
      await feed.caughtUp(reply.position, reply.events.length);
      console.log(`device ${d.deviceId}: added to the ring (zone ${device.zone}, region ${device.region}, weight ${device.weight}); run strata ring rebalance to give it partitions`);
    }
  }
}
console.log('ready');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await agent.close();
  await bus.close();
  await feed.close();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
