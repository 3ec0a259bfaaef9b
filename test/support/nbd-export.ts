// A volume's NBD export for tests of the compute side (the storage host stands in): a
// qemu-storage-daemon serving one qcow2 file as one NBD export on 127.0.0.1 and a free port, with
// a QMP monitor for growing it. Stopped by its pid (others run qemu-storage-daemon on this machine).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { VolumeConnection } from '../../agents/compute/driver.js';
import { QmpClient } from '../../agents/compute/qmp.js';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

export interface NbdExport {
  connection: VolumeConnection;
  /** The qcow2 file behind the export. */
  file: string;
  pid: number;
  /**
   * Grows the volume to `sizeBytes`, as a storage host would: QEMU's NBD server fixes an export's
   * size when it makes it (and forbids resizing its node meanwhile), so the export goes (its
   * clients disconnected), the image grows, and the export comes back under the same name; new
   * connections read the new size.
   */
  resize(sizeBytes: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a qemu-storage-daemon exporting a new qcow2 of `sizeBytes` as `exportName`. */
export async function startNbdExport(sizeBytes: number, exportName = 'volume'): Promise<NbdExport> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-nbd-'));
  const file = join(dir, 'volume.qcow2');
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(sizeBytes)]);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort(); // another process may take it first: then try another
    try {
      await run('qemu-storage-daemon', [
        '--blockdev', `driver=file,node-name=file0,filename=${file.replace(/,/g, ',,')}`,
        '--blockdev', 'driver=qcow2,node-name=vol0,file=file0',
        '--nbd-server', `addr.type=inet,addr.host=127.0.0.1,addr.port=${port}`,
        '--export', `type=nbd,id=export0,node-name=vol0,name=${exportName},writable=on`,
        '--chardev', `socket,id=qmp,path=${join(dir, 'qmp.sock')},server=on,wait=off`,
        '--monitor', 'chardev=qmp',
        '--pidfile', join(dir, 'qsd.pid'),
        '--daemonize',
      ], { timeout: 15_000 });
    } catch (err) {
      lastError = err;
      continue;
    }
    const pid = Number((await readFile(join(dir, 'qsd.pid'), 'utf8')).trim());
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'));
    let generation = 0;
    return {
      connection: { host: '127.0.0.1', port, exportName },
      file,
      pid,
      async resize(size: number) {
        const id = `export${generation}`;
        await qmp.execute('block-export-del', { id, mode: 'hard' });
        for (let i = 0; ; i++) {
          const exports = await qmp.execute<{ id: string }[]>('query-block-exports');
          if (!exports.some((e) => e.id === id)) break;
          if (i > 100) throw new Error(`export ${id} of ${file} did not go away`);
          await sleep(50);
        }
        await qmp.execute('block_resize', { 'node-name': 'vol0', size });
        generation++;
        await qmp.execute('block-export-add', { type: 'nbd', id: `export${generation}`, 'node-name': 'vol0', name: exportName, writable: true });
      },
      async stop() {
        qmp.close();
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
        for (let i = 0; i < 100; i++) {
          try {
            process.kill(pid, 0);
          } catch {
            break;
          }
          await sleep(50);
        }
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`qemu-storage-daemon did not start: ${String((lastError as { stderr?: string })?.stderr ?? lastError)}`);
}
