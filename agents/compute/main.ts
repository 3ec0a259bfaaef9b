// A compute agent process: `npm run agent:compute`. It joins the cloud through the log alone
// (the same STRATA_LOG settings as the cloud), registers its host(s), and runs what the log
// places there until SIGINT/SIGTERM. Configuration: agents/compute/config.ts, README.md.
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { agentConfigFromEnv } from './config.js';
import { ComputeAgents } from './compute.agent.js';
import { connectImageService, type ImageServiceClient } from '../../infra/image/image-service-client.js';
import { ImageServiceSource } from './image-service.js';

const logConfig = logConfigFromEnv();
const config = agentConfigFromEnv();
const log = openLog(logConfig);
const topology = { partitions: config.partitions, replyPartitions: config.replyPartitions, replicationFactor: logConfig.backend === 'kafka' ? logConfig.replicationFactor : 1 };

// A qemu host boots images of the image service: it follows the image domain (the records) and the
// object domain (the ring that says where their data is). Failing that it boots from its image
// directory only, and says so.
let imageService: ImageServiceClient | undefined;
if (config.images) {
  try {
    imageService = await connectImageService({
      log,
      topology,
      actor: { userId: `compute-${config.hosts[0].hostId}`, projectId: '', roles: ['service'] },
      imageDomain: process.env.STRATA_IMAGE_DOMAIN || undefined,
      objectDomain: process.env.STRATA_OBJECT_DOMAIN || undefined,
    });
    config.images.service = new ImageServiceSource({ cacheDir: config.imageCacheDir, ...imageService });
  } catch (e) {
    process.stderr.write(`compute agent: cannot follow the image service (${(e as Error).message}); images come from the image directory only\n`);
  }
}
const agents = await ComputeAgents.start({
  log,
  topology,
  domain: config.domain,
  hosts: config.hosts,
  heartbeatMs: config.heartbeatMs,
  syncMs: config.syncMs,
  listen: config.listen,
  advertise: config.advertise,
  // The servers' volumes: the block domain of the same cloud (STRATA_BLOCK_DOMAIN for isolated tests).
  block: { domain: process.env.STRATA_BLOCK_DOMAIN || undefined },
  onError: (e) => process.stderr.write(`compute agent: ${e.message}\n`),
});
const ids = config.hosts.map((h) => h.hostId);
console.log(`strata compute agent: ${config.driver} driver, ${ids.length === 1 ? `host ${ids[0]}` : `${ids.length} hosts ${ids[0]} .. ${ids[ids.length - 1]}`}`);
console.log(agents.endpoint ? `console service (ComputeAgentService) at ${agents.endpoint}` : 'no console service (STRATA_AGENT_LISTEN=none)');
if (config.images) console.log(imageService ? `images from the image service (cache ${config.imageCacheDir}), else the image directory` : 'images from the image directory only');
console.log('ready');

const stop = async () => {
  await agents.close();
  await imageService?.close();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
