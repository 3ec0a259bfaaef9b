// Bit-rot detection for one device, as Swift's object-auditor: a pass reads every name's current
// .data end to end, checks the trailer, every chunk digest and the whole body's md5 against the
// etag, and quarantines what fails. A quarantined replica is gone from head/read/listPartition/
// partitionHash, so the replicator sees it missing here and copies a good replica back.
//
// Reads are rate-limited (bytesPerSecond over the whole pass) so an audit does not starve the
// object server of disk bandwidth. Tombstones have no body and are not audited.
import type { DataFileRef, ReplicaMeta, ReplicaStore } from './replica-store.js';

export interface AuditorOptions {
  store: ReplicaStore;
  /** Read rate limit for a pass; unlimited when absent or 0. */
  bytesPerSecond?: number;
  /** Told of every replica the pass quarantines. */
  onQuarantined?: (partition: number, meta: ReplicaMeta, reason: string) => void;
}

export interface AuditResult {
  /** Replicas read to the end or to their first fault. */
  checked: number;
  /**
   * Replicas quarantined by this pass. When the trailer itself is unreadable the name is unknown:
   * `meta` then has empty account/container/object, the .data's timestamp, and the reason says so.
   */
  quarantined: Array<{ partition: number; meta: ReplicaMeta; reason: string }>;
}

export class Auditor {
  private running?: Promise<AuditResult>;

  constructor(private readonly options: AuditorOptions) {}

  /** One pass over every .data file. A pass asked for while one runs gets that one's result. */
  pass(): Promise<AuditResult> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<AuditResult> {
    const { store, bytesPerSecond, onQuarantined } = this.options;
    const result: AuditResult = { checked: 0, quarantined: [] };
    const started = Date.now();
    let bytes = 0;
    // Sleep until the pass's average rate is back at the limit.
    const throttle = bytesPerSecond
      ? async (n: number) => {
          bytes += n;
          const wait = started + (bytes / bytesPerSecond) * 1000 - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      : undefined;

    for await (const ref of store.dataFiles()) {
      const verdict = await store.verifyDataFile(ref, throttle);
      if (!verdict) continue; // replaced or removed since listed
      result.checked++;
      if (!verdict.problem) continue;
      // Only if that file is still current: a newer write since is not the bad one.
      if (!(await store.quarantineFile(ref.partition, ref.hash, ref.file, `audit: ${verdict.problem}`))) continue;
      const meta = verdict.meta ?? unnamed(ref);
      const reason = verdict.meta ? verdict.problem : `${verdict.problem} (name unknown: ${ref.hash}/${ref.file})`;
      result.quarantined.push({ partition: ref.partition, meta, reason });
      onQuarantined?.(ref.partition, meta, reason);
    }
    return result;
  }
}

function unnamed(ref: DataFileRef): ReplicaMeta {
  return {
    account: '',
    container: '',
    object: '',
    timestamp: ref.file.slice(0, ref.file.lastIndexOf('.')),
    etag: '',
    size: 0,
    contentType: '',
    metadata: {},
    deleted: false,
  };
}
