// The sha256 of a volume's guest-visible data: what a guest reading the disk from byte 0 to its end
// would see, independent of the file format (qcow2 and raw copies of the same data hash the same).
//
// qemu-img cannot write raw to a pipe (`convert -O raw x /dev/stdout` gives 0 bytes: its file
// driver wants a regular file it can resize), so the data is converted to a sparse raw temp file
// first and that file is streamed through the hash. The temp costs only the allocated data.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatFromName, imageInfo, run } from './qemu-img.js';

/**
 * Converts `source` (a file, or any qemu-img source such as `nbd://host:port/name`, read as `format`;
 * probed when neither given nor said by the file's name) to a raw file at `rawPath`.
 */
export async function convertToRaw(source: string, rawPath: string, format?: string): Promise<void> {
  const fmt = format ?? formatFromName(source) ?? (source.startsWith('nbd:') ? 'raw' : (await imageInfo(source)).format);
  // No -U (force-share): reading a qcow2 a storage daemon is writing could read stale metadata,
  // so a volume held open is refused ("Failed to get shared 'write' lock") rather than copied
  // wrong. Copies of exported volumes go through the daemon (VolumeStore.copyRaw, nbd-exports.ts).
  await run('qemu-img', ['convert', '-f', fmt, '-O', 'raw', source, rawPath]);
}

export interface VolumeChecksum {
  sha256: string;
  sizeBytes: number;
}

/** sha256 (hex) and size of the guest-visible data of the image at `source`. */
export async function volumeChecksum(source: string, format?: string): Promise<VolumeChecksum> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-checksum-'));
  try {
    const raw = join(dir, 'data.raw');
    await convertToRaw(source, raw, format);
    return await hashFile(raw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** sha256 (hex) and size of a file's bytes, streamed. */
export async function hashFile(path: string): Promise<VolumeChecksum> {
  const hash = createHash('sha256');
  let sizeBytes = 0;
  for await (const piece of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) {
    hash.update(piece as Buffer);
    sizeBytes += (piece as Buffer).length;
  }
  return { sha256: hash.digest('hex'), sizeBytes };
}
