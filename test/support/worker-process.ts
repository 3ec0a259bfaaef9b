// A decider worker in its own process, for tests that kill it (SIGKILL) and start it again.
// Environment: STRATA_LOG (+ STRATA_LOG_PATH | STRATA_KAFKA_BROKERS), STRATA_DOMAIN, STRATA_PARTITIONS,
// STRATA_AGGREGATES (counter, the default, or compute).
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { computeDefinitions } from '../../infra/codecs/compute.codec.js';
import { counterAggregate } from '../conformance/counter.decider.js';

const config = logConfigFromEnv();
const log = openLog(config);
const worker = new DeciderWorker({
  log,
  domain: process.env.STRATA_DOMAIN!,
  aggregates: process.env.STRATA_AGGREGATES === 'compute' ? computeDefinitions : [counterAggregate],
  topology: {
    partitions: Number(process.env.STRATA_PARTITIONS ?? 4),
    replicationFactor: config.backend === 'kafka' ? config.replicationFactor : 1,
    replyPartitions: 4,
  },
  onError: (e) => process.stderr.write(`worker error: ${e.stack ?? e.message}\n`),
});
await worker.start();
process.stdout.write('ready\n');
const stop = async () => {
  await worker.stop();
  await log.close();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
