// Server changes for WatchServers and WaitOperation, from the compute projection's onApplied
// hook: after each committed batch, the servers it touched are read once from the read model and
// handed to the watchers whose filter takes them, and whoever waits on one of those servers is
// woken. Nothing here polls, and nothing is kept but the watchers themselves.
import type { EventEnvelope } from '../../infra/envelope/envelope.js';
import type { ComputeQueries, Server } from '../../projections/compute/compute.queries.js';

export interface ServerWatcher {
  /** Whether this watcher wants the server (its project, or all). */
  accepts(server: Server): boolean;
  /** A changed server and the event types that changed it in this batch. */
  push(server: Server, events: string[]): void;
  /** The hub is closing: end the stream. */
  end(): void;
}

export class ServerWatch {
  private readonly watchers = new Set<ServerWatcher>();
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly queries: ComputeQueries) {}

  /** For ProjectionRunner.onApplied of the compute projection. */
  readonly onApplied = async (events: EventEnvelope[]): Promise<void> => {
    const touched = new Map<string, string[]>();
    for (const e of events) {
      if (e.aggregateType !== 'instance') continue;
      touched.set(e.aggregateId, [...(touched.get(e.aggregateId) ?? []), e.type]);
    }
    if (touched.size === 0) return;
    for (const id of touched.keys()) {
      const waiting = this.waiters.get(id);
      this.waiters.delete(id);
      for (const wake of waiting ?? []) wake();
    }
    if (this.watchers.size === 0) return;
    for (const [id, types] of touched) {
      const server = await this.queries.getServer(id, { includeDeleted: true });
      if (!server) continue;
      for (const w of this.watchers) if (w.accepts(server)) w.push(server, types);
    }
  };

  /** Adds a watcher; returns the function that removes it. */
  watch(watcher: ServerWatcher): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  get watching(): number {
    return this.watchers.size;
  }

  /**
   * Resolves at the next applied change of the server. Register before reading, so that no change
   * slips in between; cancel() when no longer waiting (a timeout won).
   */
  changed(serverId: string): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    const set = this.waiters.get(serverId) ?? new Set();
    set.add(wake);
    this.waiters.set(serverId, set);
    const cancel = () => {
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(serverId) === set) this.waiters.delete(serverId);
    };
    return { promise, cancel };
  }

  /** Ends every watch stream and wakes every waiter (the server is going down). */
  close(): void {
    for (const w of this.watchers) w.end();
    this.watchers.clear();
    for (const set of this.waiters.values()) for (const wake of set) wake();
    this.waiters.clear();
  }
}
