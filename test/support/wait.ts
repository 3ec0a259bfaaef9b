// Waiting helpers for tests that watch asynchronous work.
import type { Log } from '../../infra/log/log.js';

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * End offsets once they stop moving. Kafka writes a transaction's commit markers just after the
 * commit returns, so the last stable offset can trail it for a few ms.
 */
export async function settledEndOffsets(log: Log, topic: string): Promise<number[]> {
  let ends = await log.endOffsets(topic);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, log.backend === 'kafka' ? 100 : 0));
    const again = await log.endOffsets(topic);
    if (again.every((o, p) => o === ends[p])) break;
    ends = again;
  }
  return ends;
}
