// The all-in-one Strata process: the log (embedded by default), a decider worker per domain,
// until SIGINT/SIGTERM. Configuration: infra/config/config.ts (STRATA_LOG, STRATA_LOG_PATH,
// STRATA_STATE_DIR, STRATA_KAFKA_BROKERS, ...), listed in README.md.
import { domains } from '../domains/registry.js';
import { logConfigFromEnv, openLog } from './config/config.js';
import { DeciderWorker } from './runtime/decider-worker.js';

const config = logConfigFromEnv();
const log = openLog(config);
const partitions = Number(process.env.STRATA_PARTITIONS ?? (config.backend === 'embedded' ? 4 : 12));
const workers = domains.map(
  (d) =>
    new DeciderWorker({
      log,
      domain: d.name,
      aggregates: d.aggregates,
      topology: { partitions, replicationFactor: config.backend === 'kafka' ? config.replicationFactor : 1 },
      onError: (e) => console.error(`decider ${d.name}: ${e.message}`),
    }),
);
for (const w of workers) await w.start();

const where = config.backend === 'embedded' ? `embedded log at ${config.path}` : `Kafka at ${config.brokers.join(',')}`;
console.log(`strata: all-in-one up on the ${where}`);
console.log(
  domains.length > 0
    ? `strata: domains ${domains.map((d) => d.name).join(', ')} (${partitions} partitions each)`
    : 'strata: the runtime is up; no product domain is registered yet (domains/registry.ts)',
);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`strata: ${signal}, stopping`);
  for (const w of workers) await w.stop();
  await log.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
// Keep the process alive while workers poll (the embedded log uses timers only while waiting).
setInterval(() => undefined, 1 << 30);
