// A SubscriptionService in a process of its own, so that a test can watch this process's memory
// alone while another process produces events. Environment: the log's (test/support/backends.ts
// env), STRATA_DOMAIN, STRATA_PARTITIONS, STRATA_SUBSCRIBE_STALL_MS. Prints "ready <port>", then
// "mem <rss> <heapUsed> <active streams> <open calls> <live>" every 100 ms.
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { noOwners, startRig } from './subscription-rig.js';

const config = logConfigFromEnv();
const log = openLog(config);
const rig = await startRig(
  log,
  process.env.STRATA_DOMAIN!,
  { partitions: Number(process.env.STRATA_PARTITIONS ?? 4), replicationFactor: config.backend === 'kafka' ? config.replicationFactor : 1, replyPartitions: 4 },
  { owners: noOwners, heartbeatMs: 500, closeGraceMs: Number(process.env.STRATA_SUBSCRIBE_GRACE_MS ?? 60_000) },
);
process.stdout.write(`ready ${rig.server.port}\n`);
// With --expose-gc, every 10th sample follows a collection (live = 1): what is live, not GC lag.
const gc = (globalThis as { gc?: () => void }).gc;
let tick = 0;
setInterval(() => {
  const live = gc !== undefined && tick++ % 10 === 0;
  if (live) gc!();
  const m = process.memoryUsage();
  process.stdout.write(`mem ${m.rss} ${m.heapUsed} ${rig.service.active} ${rig.service.calls} ${live ? 1 : 0}\n`);
}, 100);
process.on('SIGTERM', () => {
  void (async () => {
    await rig.close();
    await log.close();
    process.exit(0);
  })();
});
