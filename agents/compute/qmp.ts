// A small QMP (QEMU Machine Protocol) client over a unix socket: reads the greeting, negotiates
// capabilities, runs commands one reply at a time in order (QMP answers in order; ids make sure),
// and emits the asynchronous events ('event' with {event, data, timestamp}, and the event's name).
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** A command QEMU refused: `class` and `desc` are QMP's. */
export class QmpError extends Error {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    readonly desc: string,
  ) {
    super(`QMP ${command}: ${qmpClass}: ${desc}`);
  }
}

/** The connection closed (QEMU quit or was killed) before a reply came. */
export class QmpClosedError extends Error {}

interface Pending {
  command: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class QmpClient extends EventEmitter {
  greeting: { QMP: { version: unknown; capabilities: unknown[] } } | undefined;
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private greeted: { resolve: () => void; reject: (e: Error) => void } | undefined;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(err));
    socket.on('close', () => this.shutdown(new QmpClosedError('QMP connection closed')));
  }

  /** Connects to the socket at `path`, waits for the greeting and leaves negotiation mode. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const socket = createConnection({ path });
    const client = new QmpClient(socket);
    const timer = setTimeout(() => socket.destroy(new Error(`QMP ${path}: no greeting within ${timeoutMs} ms`)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        client.greeted = { resolve, reject };
      });
      await client.execute('qmp_capabilities');
      return client;
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs `command`; resolves with its `return` value, rejects with a QmpError or QmpClosedError. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closed) return Promise.reject(new QmpClosedError(`QMP ${command}: connection closed`));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
    this.shutdown(new QmpClosedError('QMP connection closed'));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, any>;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (msg.QMP) {
      this.greeting = msg as QmpClient['greeting'];
      this.greeted?.resolve();
      this.greeted = undefined;
    } else if (typeof msg.event === 'string') {
      const ev: QmpEvent = { event: msg.event, data: msg.data, timestamp: msg.timestamp };
      this.emit('event', ev);
      this.emit(msg.event, ev);
    } else if ('return' in msg || 'error' in msg) {
      const id = msg.id === undefined ? this.pending.keys().next().value : String(msg.id);
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p || id === undefined) return;
      this.pending.delete(id);
      if ('error' in msg) p.reject(new QmpError(p.command, String(msg.error?.class), String(msg.error?.desc)));
      else p.resolve(msg.return);
    }
  }

  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.greeted?.reject(err);
    this.greeted = undefined;
    for (const p of this.pending.values()) {
      p.reject(err instanceof QmpClosedError ? new QmpClosedError(`QMP ${p.command}: ${err.message}`) : err);
    }
    this.pending.clear();
    this.emit('close');
  }
}
