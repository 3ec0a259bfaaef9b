// The usage read model's projection runner in a process of its own, so that a test can SIGKILL it
// mid-stream. Environment: the log's (STRATA_LOG_PATH for the embedded log), STRATA_USAGE_STORE
// (the SQLite read-model file). Prints "ready" once started; SIGTERM stops it cleanly.
import { logConfigFromEnv, openLog } from '../../infra/config/config.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';
import { usageProjection } from '../../projections/metering/usage.projection.js';

const log = openLog(logConfigFromEnv());
const store = new SqliteStore(process.env.STRATA_USAGE_STORE!);
const runner = new ProjectionRunner(log, store, usageProjection());
await runner.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void (async () => {
    await runner.stop();
    await store.close();
    await log.close();
    process.exit(0);
  })();
});
