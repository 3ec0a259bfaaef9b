// A block agent process: `npm run agent:block`. It joins the cloud through the log alone (the
// same STRATA_LOG settings as the cloud), registers its storage host (backend, zone, capacity),
// and keeps the volumes, snapshots, backups and NBD exports the log gives it until SIGINT/SIGTERM.
// Its NBD export daemons outlive it (a restarted agent adopts them): attached guests keep their disks.
// Configuration: agents/block/config.ts, README.md.
import { mkdirSync } from 'node:fs';
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { BlockAgent } from './block.agent.js';
import { connectImageService, type ImageServiceClient } from '../../infra/image/image-service-client.js';
import { blockAgentConfigFromEnv } from './config.js';

const logConfig = logConfigFromEnv();
const config = blockAgentConfigFromEnv();
mkdirSync(config.stateDir, { recursive: true });
const log = openLog(logConfig);
const topology = { partitions: config.partitions, replyPartitions: config.replyPartitions, replicationFactor: logConfig.backend === 'kafka' ? logConfig.replicationFactor : 1 };
// Volumes from images and uploads of volumes go through the image service (the image and object
// domains of the log); failing to follow them leaves the image directory only, said loudly.
let images: ImageServiceClient | undefined;
try {
  images = await connectImageService({
    log,
    topology,
    actor: { userId: `block-${config.hostId}`, projectId: '', roles: ['service'] },
    imageDomain: process.env.STRATA_IMAGE_DOMAIN || undefined,
    objectDomain: process.env.STRATA_OBJECT_DOMAIN || undefined,
  });
} catch (e) {
  process.stderr.write(`block agent: cannot follow the image service (${(e as Error).message}); volumes from images use STRATA_IMAGE_DIR only\n`);
}
const agent = await BlockAgent.start({
  log,
  topology,
  images,
  domain: config.domain,
  hostId: config.hostId,
  backend: config.backend,
  availabilityZone: config.availabilityZone,
  stateDir: config.stateDir,
  totalGb: config.totalGb,
  imageDir: config.imageDir,
  resyncMs: config.resyncMs,
  onError: (e) => process.stderr.write(`block agent: ${e.message}\n`),
});
const report = await agent.reconcileReport();
console.log(`strata block agent: host ${config.hostId}, backend ${config.backend}, zone ${config.availabilityZone}, files in ${config.stateDir}`);
console.log(`reconcile: ${report.orphanVolumes.length} orphan volume file(s), ${report.orphanSnapshots.length} orphan snapshot file(s), ${report.missingVolumes.length} missing volume file(s)`);
console.log('ready');

const stop = async () => {
  await agent.close();
  await images?.close();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
