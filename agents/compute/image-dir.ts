// The compute host's images until the image service lands (issue 8): a directory where
// <id>/vmlinuz (+ <id>/initramfs.cpio.gz) is a kernel image and <id>.qcow2 a disk image. A kernel
// image's <id>/cmdline, when present, is its kernel command line instead of the default (Glance's
// os_command_line image property, which Nova's libvirt driver honours the same way).
// Snapshots of guests (create image, create backup) are written here too, each one whole into a
// temporary name and then renamed, so a crash never leaves a half image under a real id.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { GuestBoot } from './qemu.driver.js';

const execFileP = promisify(execFile);

export class ImageNotFoundError extends Error {}

const IMAGE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class ImageDirectory {
  constructor(
    readonly dir: string,
    /** The kernel command line of kernel images (their serial console is the guest's console). */
    readonly append = 'console=ttyS0 quiet panic=-1',
  ) {}

  private checked(imageId: string): string {
    if (!IMAGE_ID.test(imageId)) throw new ImageNotFoundError(`bad image id "${imageId}"`);
    return imageId;
  }

  /** How a guest of `imageId` boots. */
  resolve(imageId: string): GuestBoot {
    const id = this.checked(imageId);
    const kernel = join(this.dir, id, 'vmlinuz');
    if (existsSync(kernel)) {
      const initrd = join(this.dir, id, 'initramfs.cpio.gz');
      const disk = join(this.dir, id, 'disk.qcow2');
      const cmdline = join(this.dir, id, 'cmdline');
      return {
        kind: 'kernel',
        kernel,
        initrd: existsSync(initrd) ? initrd : undefined,
        append: existsSync(cmdline) ? readFileSync(cmdline, 'utf8').trim() : this.append,
        ...(existsSync(disk) ? { disk } : {}),
      };
    }
    const disk = join(this.dir, `${id}.qcow2`);
    if (existsSync(disk)) return { kind: 'disk', path: disk, format: 'qcow2' };
    throw new ImageNotFoundError(`image ${id} is not in ${this.dir} (neither ${id}/vmlinuz nor ${id}.qcow2)`);
  }

  /**
   * Stores a guest as the image `imageId`: its kernel and initrd for a kernel guest, and its disk
   * (the overlay flattened with its backing chain into one standalone qcow2) when it has one.
   */
  async save(imageId: string, boot: GuestBoot, diskPath: string | undefined): Promise<void> {
    const id = this.checked(imageId);
    await mkdir(this.dir, { recursive: true });
    if (boot.kind === 'disk') {
      if (!diskPath) throw new Error(`a disk image needs the guest's disk`);
      const target = join(this.dir, `${id}.qcow2`);
      // -U: the guest's QEMU holds the overlay's lock; the caller has paused the guest.
      await execFileP('qemu-img', ['convert', '-U', '-O', 'qcow2', diskPath, `${target}.tmp`]);
      await rename(`${target}.tmp`, target);
      return;
    }
    const target = join(this.dir, id);
    const tmp = `${target}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    await copyFile(boot.kernel, join(tmp, 'vmlinuz'));
    if (boot.initrd) await copyFile(boot.initrd, join(tmp, 'initramfs.cpio.gz'));
    if (boot.append !== undefined && boot.append !== this.append) await writeFile(join(tmp, 'cmdline'), `${boot.append}\n`);
    if (diskPath) await execFileP('qemu-img', ['convert', '-U', '-O', 'qcow2', diskPath, join(tmp, 'disk.qcow2')]);
    await rm(target, { recursive: true, force: true });
    await rename(tmp, target);
  }
}
