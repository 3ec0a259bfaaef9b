// The tests' and benchmarks' handle on the local Kafka cluster run by kafka.sh.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./kafka.sh', import.meta.url));

export const brokerAddress = (index: number) => `127.0.0.1:${19092 + index}`;

async function kafka(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { timeout: 300_000, maxBuffer: 4 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`kafka.sh ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

/** Starts a cluster of `nodes` brokers unless one of that size already runs (another size is replaced). */
export async function ensureKafka(options: { nodes: 1 | 3 } = { nodes: 1 }): Promise<{ brokers: string[] }> {
  await kafka('up', '--nodes', String(options.nodes));
  return { brokers: [...Array(options.nodes).keys()].map(brokerAddress) };
}

/** SIGKILLs node `index` (0-based). */
export async function killNode(index: number): Promise<void> {
  await kafka('kill-node', String(index));
}

/** Starts node `index` again on its data and waits until the whole cluster serves. */
export async function startNode(index: number): Promise<void> {
  await kafka('start-node', String(index));
}

export async function stopKafka(): Promise<void> {
  await kafka('down');
}
