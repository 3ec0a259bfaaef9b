// Exits 0 when a Kafka client connected to the given brokers sees `want` live brokers and the
// controller answers (used by kafka.sh to wait until the cluster serves).
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const [brokers, want] = process.argv.slice(2);
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING, connectionTimeout: 1000, retry: { retries: 0 } });
const admin = kafka.admin();
const timer = setTimeout(() => process.exit(1), 5000);
try {
  await admin.connect();
  const { brokers: seen, controller } = await admin.describeCluster();
  await admin.disconnect();
  clearTimeout(timer);
  process.exit(seen.length >= Number(want) && controller !== null && controller !== undefined ? 0 : 1);
} catch {
  process.exit(1);
}
