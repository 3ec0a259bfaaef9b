// NBD exports of volumes, one export per attachment, served by qemu-storage-daemon on 127.0.0.1.
//
// One daemon per VOLUME, one NBD export per ATTACHMENT on it (multiattach = two exports of one
// node in one daemon). Why not one daemon per attachment: two processes each opening the same
// qcow2 read-write would each cache and rewrite its metadata (L1/L2 tables, refcounts); qcow2's
// locks refuse that, and `locking=off` would let them corrupt the image on their first
// allocations. In one daemon both exports go through the same qcow2 node, so the image stays
// consistent; keeping the *data* consistent between two writers is the guests' business (a
// cluster filesystem), as with Cinder multiattach. A read-only attachment is an export with
// writable=off on the same node (its NBD clients cannot open it for writing).
//
// Files under <stateDir>/exports/ (the state that lets a restarted agent adopt what runs):
//   volume-<volumeId>.json        the daemon: pid, port, QMP socket, volume file
//   volume-<volumeId>.qmp / .pid  its QMP monitor socket and pidfile
//   attachment-<attachmentId>.json  an attachment: its volume, export name, read-only or not
// An attachment record is written before its export is added and removed after it is deleted,
// so after a crash at any point a repeated export()/unexport() finishes the job. Daemons are
// started with --daemonize (their own session; they outlive the agent) and are found again by pid
// (checked against /proc/<pid>/cmdline, so a reused pid is not mistaken for one) and QMP socket.
//
// Online resize: an NBD export in QEMU 7.2 does not share the RESIZE permission (QMP block_resize
// on the exported node fails with "Permission conflict ... 'resize'"), and the NBD protocol has no
// way to tell a connected client the size changed anyway. So resize() deletes the volume's exports
// (dropping their clients), resizes the node through QMP (qemu-img cannot touch an image the
// daemon holds open), and adds the same exports again on the same port: a new client, or a
// client that reconnects (QEMU's NBD client with reconnect-delay), sees the new size.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { QmpClient } from '../compute/qmp.js';
import { run, type VolumeFormat } from './qemu-img.js';
import { findVolumeFile, VolumeNotFoundError, type OnlineVolumeOps } from './volume-store.js';

export interface NbdConnection {
  host: string;
  port: number;
  exportName: string;
}

export interface NbdExportsOptions {
  /** The VolumeStore's state directory (where volumes/ is); default: the same stateDir. */
  volumesDir?: string;
  /** How long a daemon may take to start or stop; default 15 s. */
  timeoutMs?: number;
  /** The address NBD servers bind to and clients are told; default 127.0.0.1 (this host only). */
  host?: string;
}

interface AttachmentRecord {
  attachmentId: string;
  volumeId: string;
  exportName: string;
  readOnly: boolean;
}

interface DaemonRecord {
  volumeId: string;
  pid: number;
  host: string;
  port: number;
  qmpPath: string;
  path: string;
  format: VolumeFormat;
}

/** The attachment is not exported (no live export to act on). */
export class ExportNotFoundError extends Error {}

const NODE = 'vol0';

export class NbdExports implements OnlineVolumeOps {
  readonly exportsDir: string;
  private readonly volumesDir: string;
  private readonly timeoutMs: number;
  private readonly host: string;
  /** One operation per volume at a time in this process (the QMP monitor serves one client). */
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    readonly stateDir: string,
    options: NbdExportsOptions = {},
  ) {
    this.exportsDir = join(stateDir, 'exports');
    this.volumesDir = options.volumesDir ?? stateDir;
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.host = options.host ?? '127.0.0.1';
  }

  /**
   * Exports volume `volumeId` for attachment `attachmentId` and returns where to connect.
   * Idempotent: a running export is adopted and its connection returned (after a daemon restart
   * the port can differ: report what this returns). Throws VolumeNotFoundError when the volume has
   * no file, and an Error when the attachment is recorded for another volume or the other mode.
   */
  async export(attachmentId: string, volumeId: string, options: { readOnly?: boolean } = {}): Promise<NbdConnection> {
    return this.withLock(volumeId, async () => {
      let rec = await this.readAttachment(attachmentId);
      if (rec && rec.volumeId !== volumeId) {
        throw new Error(`attachment ${attachmentId} exports volume ${rec.volumeId}, not ${volumeId}`);
      }
      if (rec && options.readOnly !== undefined && rec.readOnly !== options.readOnly) {
        throw new Error(`attachment ${attachmentId} is exported ${rec.readOnly ? 'read-only' : 'read-write'}; unexport it to change its mode`);
      }
      if (!rec) {
        rec = { attachmentId, volumeId, exportName: attachmentId, readOnly: options.readOnly ?? false };
        await this.writeJson(this.attachmentPath(attachmentId), rec);
      }
      const daemon = await this.ensureDaemon(volumeId);
      const r = rec;
      await this.qmp(daemon, async (q) => {
        if (!(await exportIds(q)).has(exportId(attachmentId))) await addExport(q, r);
      });
      return { host: daemon.host, port: daemon.port, exportName: rec.exportName };
    });
  }

  /** Where attachment `attachmentId` is served, if its export is live. */
  async connection(attachmentId: string): Promise<NbdConnection | undefined> {
    const rec = await this.readAttachment(attachmentId);
    if (!rec) return undefined;
    return this.withLock(rec.volumeId, async () => {
      const daemon = await this.liveDaemon(rec.volumeId);
      if (!daemon) return undefined;
      const live = await this.qmp(daemon, exportIds);
      return live.has(exportId(attachmentId)) ? { host: daemon.host, port: daemon.port, exportName: rec.exportName } : undefined;
    });
  }

  /**
   * Removes the attachment's export (dropping its clients); stops the volume's daemon when no
   * other attachment uses it, and waits for it to exit. Absent: no-op.
   */
  async unexport(attachmentId: string): Promise<void> {
    const rec = await this.readAttachment(attachmentId);
    if (!rec) return;
    await this.withLock(rec.volumeId, async () => {
      const daemon = await this.liveDaemon(rec.volumeId);
      if (daemon) {
        await this.qmp(daemon, async (q) => {
          if ((await exportIds(q)).has(exportId(attachmentId))) await deleteExport(q, exportId(attachmentId));
        });
        const others = (await this.attachments()).filter((a) => a.volumeId === rec.volumeId && a.attachmentId !== attachmentId);
        if (others.length === 0) await this.stopDaemon(daemon);
      }
      await rm(this.attachmentPath(attachmentId), { force: true });
    });
  }

  /** Ids of the attachments whose export is live now (including ones a previous agent started). */
  async list(): Promise<string[]> {
    const byVolume = new Map<string, AttachmentRecord[]>();
    for (const a of await this.attachments()) byVolume.set(a.volumeId, [...(byVolume.get(a.volumeId) ?? []), a]);
    const live: string[] = [];
    for (const [volumeId, recs] of byVolume) {
      await this.withLock(volumeId, async () => {
        const daemon = await this.liveDaemon(volumeId);
        if (!daemon) return;
        let ids: Set<string>;
        try {
          ids = await this.qmp(daemon, exportIds);
        } catch (err) {
          // A daemon dying right now refuses or resets its monitor: it serves nothing. Alive and
          // not answering is an error worth retrying.
          if (!(await isDaemon(daemon.pid, daemon.qmpPath))) return;
          throw err;
        }
        for (const a of recs) if (ids.has(exportId(a.attachmentId))) live.push(a.attachmentId);
      });
    }
    return live.sort();
  }

  /** Stops daemons no attachment record refers to (left by a crash inside unexport). Returns their volume ids. */
  async reap(): Promise<string[]> {
    const used = new Set((await this.attachments()).map((a) => a.volumeId));
    const reaped: string[] = [];
    for (const name of await readdir(this.exportsDir).catch(() => [] as string[])) {
      const m = /^volume-(.+)\.json$/.exec(name);
      if (!m || used.has(m[1])) continue;
      const volumeId = m[1];
      await this.withLock(volumeId, async () => {
        const daemon = await this.liveDaemon(volumeId);
        if (daemon) await this.stopDaemon(daemon);
        else await this.removeDaemonFiles(volumeId);
      });
      reaped.push(volumeId);
    }
    return reaped;
  }

  /** The running daemons (pid, port), for operators and for tests that must clean up. */
  async daemons(): Promise<{ volumeId: string; pid: number; port: number }[]> {
    const out: { volumeId: string; pid: number; port: number }[] = [];
    for (const name of await readdir(this.exportsDir).catch(() => [] as string[])) {
      const m = /^volume-(.+)\.json$/.exec(name);
      if (!m) continue;
      const d = await this.liveDaemon(m[1]);
      if (d) out.push({ volumeId: d.volumeId, pid: d.pid, port: d.port });
    }
    return out;
  }

  /** Grows the attachment's volume online (see the file comment). ExportNotFoundError when not exported. */
  async resize(attachmentId: string, newSizeBytes: number): Promise<void> {
    const rec = await this.readAttachment(attachmentId);
    if (!rec || !(await this.resizeVolume(rec.volumeId, newSizeBytes))) {
      throw new ExportNotFoundError(`attachment ${attachmentId} is not exported`);
    }
  }

  // --- OnlineVolumeOps, used by VolumeStore for volumes a daemon holds open ---

  async isExported(volumeId: string): Promise<boolean> {
    return (await this.liveDaemon(volumeId)) !== undefined;
  }

  async resizeVolume(volumeId: string, newSizeBytes: number): Promise<boolean> {
    return this.withLock(volumeId, async () => {
      const daemon = await this.liveDaemon(volumeId);
      if (!daemon) return false;
      await this.qmp(daemon, async (q) => {
        if ((await virtualSize(q)) >= newSizeBytes) return; // done already (volumes never shrink)
        const recs = (await this.attachments()).filter((a) => a.volumeId === volumeId);
        const live = await exportIds(q);
        for (const id of live) await deleteExport(q, id);
        await q.execute('block_resize', { 'node-name': NODE, size: newSizeBytes });
        // Re-add the exports that ran, and those recorded (a crash between delete and add above
        // leaves them recorded but absent: the repeated resize, or export(), brings them back).
        for (const a of recs) await addExport(q, a);
      });
      return true;
    });
  }

  /**
   * A point-in-time (crash-consistent) copy of the exported volume into a new image at
   * `targetPath`: blockdev-backup sync=full inside the daemon copies each cluster before a guest
   * write can change it, so the copy is the disk at the instant the job started.
   */
  async copyVolume(volumeId: string, targetPath: string, format: VolumeFormat): Promise<boolean> {
    return this.withLock(volumeId, async () => {
      const daemon = await this.liveDaemon(volumeId);
      if (!daemon) return false;
      await this.qmp(daemon, async (q) => {
        const size = await virtualSize(q);
        await run('qemu-img', ['create', '-q', '-f', format, targetPath, String(size)]);
        const tag = randomBytes(4).toString('hex');
        const node = `copy-${tag}`;
        const job = `job-${tag}`;
        await q.execute('blockdev-add', { driver: format, 'node-name': node, file: { driver: 'file', filename: targetPath } });
        try {
          const done = new Promise<void>((resolve, reject) => {
            const onCompleted = (ev: { data?: Record<string, unknown> }) => {
              if (ev.data?.['device'] !== job) return;
              q.off('BLOCK_JOB_COMPLETED', onCompleted);
              if (ev.data['error']) reject(new Error(`copy of volume ${volumeId}: ${String(ev.data['error'])}`));
              else resolve();
            };
            q.on('BLOCK_JOB_COMPLETED', onCompleted);
            q.once('close', () => reject(new Error(`copy of volume ${volumeId}: the daemon went away`)));
          });
          await q.execute('blockdev-backup', { 'job-id': job, device: NODE, target: node, sync: 'full' });
          await done;
        } finally {
          await q.execute('blockdev-del', { 'node-name': node }).catch(() => undefined);
        }
      });
      return true;
    });
  }

  // --- daemons ---

  private async ensureDaemon(volumeId: string): Promise<DaemonRecord> {
    const live = await this.liveDaemon(volumeId);
    if (live) return live;
    const file = await findVolumeFile(this.volumesDir, volumeId);
    if (!file) throw new VolumeNotFoundError(`volume ${volumeId} not found`);
    await mkdir(this.exportsDir, { recursive: true });
    // A daemon that started but whose record was never written (a crash in between): stop it.
    const stalePid = await readPid(this.pidPath(volumeId));
    if (stalePid && (await isDaemon(stalePid, this.qmpPath(volumeId)))) await killAndWait(stalePid, this.timeoutMs);
    await this.removeDaemonFiles(volumeId);

    const qmpPath = this.qmpPath(volumeId);
    if (Buffer.byteLength(qmpPath) > 107) throw new Error(`QMP socket path too long for a unix socket: ${qmpPath}`);
    let lastErr: Error | undefined;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = await freePort(this.host);
      try {
        await this.spawnDaemon(volumeId, file, port);
      } catch (err) {
        lastErr = err as Error;
        // Another process took the port between our probe and the daemon's bind: try another.
        if (/Address already in use/i.test(lastErr.message)) continue;
        throw err;
      }
      const pid = await readPid(this.pidPath(volumeId));
      if (!pid) throw new Error(`qemu-storage-daemon for volume ${volumeId} wrote no pidfile`);
      const rec: DaemonRecord = { volumeId, pid, host: this.host, port, qmpPath, path: file.path, format: file.format };
      await this.writeJson(this.daemonPath(volumeId), rec);
      return rec;
    }
    throw lastErr ?? new Error('no free port');
  }

  private spawnDaemon(volumeId: string, file: { path: string; format: VolumeFormat }, port: number): Promise<void> {
    const args = [
      '--blockdev', JSON.stringify({ driver: 'file', 'node-name': 'file0', filename: file.path }),
      '--blockdev', JSON.stringify({ driver: file.format, 'node-name': NODE, file: 'file0' }),
      '--nbd-server', `addr.type=inet,addr.host=${this.host},addr.port=${port}`,
      '--chardev', `socket,id=qmp0,path=${this.qmpPath(volumeId).replaceAll(',', ',,')},server=on,wait=off`,
      '--monitor', 'chardev=qmp0',
      '--pidfile', this.pidPath(volumeId),
      // The parent exits once the daemon is set up (NBD server listening, pidfile written); the
      // daemon runs in its own session, so it outlives the agent and its process group.
      '--daemonize',
    ];
    return new Promise((resolve, reject) => {
      const child = spawn('qemu-storage-daemon', args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`qemu-storage-daemon for volume ${volumeId}: not up within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        child.stderr.destroy();
        if (code === 0) resolve();
        else reject(new Error(`qemu-storage-daemon for volume ${volumeId} exited ${code}: ${stderr.trim()}`));
      });
      child.unref();
    });
  }

  /** The daemon serving `volumeId`, if its recorded pid is that daemon and alive. */
  private async liveDaemon(volumeId: string): Promise<DaemonRecord | undefined> {
    const rec = await readJson<DaemonRecord>(this.daemonPath(volumeId));
    if (!rec) return undefined;
    return (await isDaemon(rec.pid, rec.qmpPath)) ? rec : undefined;
  }

  private async stopDaemon(daemon: DaemonRecord): Promise<void> {
    await this.qmp(daemon, (q) => q.execute('quit')).catch(() => undefined); // it may close before replying
    await waitExit(daemon.pid, this.timeoutMs).catch(() => killAndWait(daemon.pid, this.timeoutMs));
    await this.removeDaemonFiles(daemon.volumeId);
  }

  private async removeDaemonFiles(volumeId: string): Promise<void> {
    await rm(this.daemonPath(volumeId), { force: true });
    await rm(this.qmpPath(volumeId), { force: true });
    await rm(this.pidPath(volumeId), { force: true });
  }

  private async qmp<T>(daemon: DaemonRecord, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    const q = await QmpClient.connect(daemon.qmpPath, this.timeoutMs);
    try {
      return await fn(q);
    } finally {
      q.close();
    }
  }

  // --- records ---

  private attachmentPath(attachmentId: string): string {
    return join(this.exportsDir, `attachment-${attachmentId}.json`);
  }
  private daemonPath(volumeId: string): string {
    return join(this.exportsDir, `volume-${volumeId}.json`);
  }
  private qmpPath(volumeId: string): string {
    return join(this.exportsDir, `volume-${volumeId}.qmp`);
  }
  private pidPath(volumeId: string): string {
    return join(this.exportsDir, `volume-${volumeId}.pid`);
  }

  private readAttachment(attachmentId: string): Promise<AttachmentRecord | undefined> {
    return readJson<AttachmentRecord>(this.attachmentPath(attachmentId));
  }

  private async attachments(): Promise<AttachmentRecord[]> {
    const out: AttachmentRecord[] = [];
    for (const name of await readdir(this.exportsDir).catch(() => [] as string[])) {
      if (!/^attachment-.+\.json$/.test(name)) continue;
      const rec = await readJson<AttachmentRecord>(join(this.exportsDir, name));
      if (rec) out.push(rec);
    }
    return out;
  }

  private async writeJson(path: string, value: unknown): Promise<void> {
    await mkdir(this.exportsDir, { recursive: true });
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify(value, null, 2));
    await rename(tmp, path);
  }

  private withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return next;
  }
}

function exportId(attachmentId: string): string {
  return `att-${attachmentId}`;
}

async function exportIds(q: QmpClient): Promise<Set<string>> {
  const list = await q.execute<{ id: string; 'shutting-down': boolean }[]>('query-block-exports');
  return new Set(list.filter((e) => !e['shutting-down']).map((e) => e.id));
}

async function addExport(q: QmpClient, a: AttachmentRecord): Promise<void> {
  await q.execute('block-export-add', {
    type: 'nbd',
    id: exportId(a.attachmentId),
    'node-name': NODE,
    name: a.exportName,
    writable: !a.readOnly,
  });
}

/** Deletes an export, dropping its clients, and waits until the daemon has let go of it. */
async function deleteExport(q: QmpClient, id: string): Promise<void> {
  await q.execute('block-export-del', { id, mode: 'hard' });
  for (let i = 0; i < 200; i++) {
    const list = await q.execute<{ id: string }[]>('query-block-exports');
    if (!list.some((e) => e.id === id)) return;
    await sleep(25);
  }
  throw new Error(`export ${id} still shutting down after 5 s`);
}

async function virtualSize(q: QmpClient): Promise<number> {
  const nodes = await q.execute<{ 'node-name': string; image: { 'virtual-size': number } }[]>('query-named-block-nodes', { flat: true });
  const node = nodes.find((n) => n['node-name'] === NODE);
  if (!node) throw new Error(`daemon has no node ${NODE}`);
  return node.image['virtual-size'];
}

/** A TCP port free on `host` now (bound with port 0, then released; callers retry on EADDRINUSE). */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether `pid` is a live (not zombie) qemu-storage-daemon using the QMP socket `qmpPath`. */
async function isDaemon(pid: number, qmpPath: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return cmdline[0].endsWith('qemu-storage-daemon') && cmdline.some((arg) => arg.includes(`path=${qmpPath.replaceAll(',', ',,')},`));
  } catch {
    return false;
  }
}

async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

async function waitExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (await alive(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not exit within ${timeoutMs} ms`);
    await sleep(25);
  }
}

async function killAndWait(pid: number, timeoutMs: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return; // gone already
  }
  await waitExit(pid, timeoutMs);
}

async function readPid(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
