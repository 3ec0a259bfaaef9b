// Small helpers around the qemu tools the block agent drives: run a tool and surface its stderr,
// read `qemu-img info`, decide an image's format, make a temp name, and commit a file by rename.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export type VolumeFormat = 'qcow2' | 'raw';

/** A qemu tool exited non-zero; `stderr` is what it said. */
export class QemuToolError extends Error {
  constructor(
    readonly tool: string,
    readonly args: readonly string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${tool} ${args.join(' ')}: exit ${code}: ${stderr.trim()}`);
  }
}

/** Runs `tool args`, resolves with stdout; rejects with a QemuToolError on a non-zero exit. */
export function run(tool: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new QemuToolError(tool, args, code, err))));
  });
}

export interface ImageInfo {
  format: string;
  virtualSizeBytes: number;
  actualBytes: number;
}

/**
 * `qemu-img info` of `path`. `-U` (force-share) so that a volume a storage daemon holds open can
 * still be measured: the numbers can lag the daemon's cached metadata, which is fine for sizes.
 * `format` given skips probing (probing a raw image a guest wrote is unsafe: it may look like qcow2).
 */
export async function imageInfo(path: string, format?: string): Promise<ImageInfo> {
  const args = ['info', '-U', '--output=json', ...(format ? ['-f', format] : []), path];
  const info = JSON.parse(await run('qemu-img', args)) as Record<string, unknown>;
  return {
    format: String(info['format']),
    virtualSizeBytes: Number(info['virtual-size']),
    actualBytes: Number(info['actual-size'] ?? 0),
  };
}

/** The format a file's name says (.qcow2, .raw/.img), or undefined when its name does not say. */
export function formatFromName(path: string): VolumeFormat | undefined {
  if (path.endsWith('.qcow2')) return 'qcow2';
  if (path.endsWith('.raw') || path.endsWith('.img')) return 'raw';
  return undefined;
}

/**
 * A temp name beside `finalPath`: `.tmp-<name>-<pid>-<random>` in the same directory (so the
 * rename that commits it is atomic, and a reconcile report finds it after a crash).
 */
export function tempPathFor(finalPath: string, suffix = ''): string {
  return join(dirname(finalPath), `.tmp-${basename(finalPath)}-${process.pid}-${randomBytes(4).toString('hex')}${suffix}`);
}

/** Flushes `tmp` to disk, then renames it to `finalPath` (a crash leaves either or neither, never half). */
export async function commitFile(tmp: string, finalPath: string): Promise<void> {
  const fh = await open(tmp, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, finalPath);
  // The rename itself is durable once the directory is synced.
  const dir = await open(dirname(finalPath), 'r');
  try {
    await dir.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename still happened.
  } finally {
    await dir.close();
  }
}

export const GiB = 1024 ** 3;
