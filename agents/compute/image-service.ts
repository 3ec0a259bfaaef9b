// A compute host's images from the image service (Glance): an image the log says is active is
// downloaded from object storage into the host's cache (its MD5 checked against the image's
// checksum; written under a temporary name, then renamed), and booted as Nova's libvirt driver
// boots it: a disk image (qcow2, raw) as the guest's disk, and an AMI-style machine image whose
// kernel_id / ramdisk_id properties name a kernel (aki) and a ramdisk (ari) image as a direct
// kernel boot with the machine image as the disk and os_command_line as the kernel command line.
// A snapshot (create image, create backup) is uploaded as the image the API created for it
// (queued): StartImageUpload, the flattened disk streamed to object storage, CompleteImageUpload;
// if it fails the image is killed, as Nova deletes a failed snapshot.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Image } from '../../domains/image/image.types.js';
import { imageLocation, type ImageStore } from '../../infra/image/image-store.js';
import { ImageNotFoundError, type ImageDirectory } from './image-dir.js';
import type { GuestBoot } from './qemu.driver.js';

const execFileP = promisify(execFile);

/** Sends an image-domain command as the compute service (the image API's writer, or a bus of the agent's own). */
export type ImageCommands = (imageId: string, command: Record<string, unknown> & { type: string }) => Promise<void>;

export interface ImageServiceSourceOptions {
  /** Where downloaded images are kept (one file per image id). */
  cacheDir: string;
  /** The image records as the log has them (infra/sagas/image.feed.ts). */
  image: (id: string) => Image | undefined;
  store: ImageStore;
  commands: ImageCommands;
  /** The kernel command line of machine images without os_command_line. */
  append?: string;
}

export class ImageServiceSource {
  private readonly fetching = new Map<string, Promise<string>>();

  constructor(private readonly o: ImageServiceSourceOptions) {}

  /** Whether the image service has this image (in any status). */
  knows(id: string): boolean {
    return this.o.image(id) !== undefined;
  }

  private active(id: string, role: string): Image {
    const image = this.o.image(id);
    if (!image) throw new ImageNotFoundError(`${role} ${id} is not in the image service`);
    if (image.status !== 'active') throw new ImageNotFoundError(`${role} ${id} is ${image.status}, not active`);
    return image;
  }

  /** The image's data in the cache, downloaded once (concurrent boots share one download). */
  private fetch(image: Image): Promise<string> {
    const path = join(this.o.cacheDir, `${image.id}.${image.checksum}`);
    if (existsSync(path)) return Promise.resolve(path);
    let p = this.fetching.get(path);
    if (!p) {
      p = (async () => {
        await mkdir(this.o.cacheDir, { recursive: true });
        const tmp = `${path}.tmp`;
        const { body } = await this.o.store.read(imageLocation(image.id), { size: image.size, checksum: image.checksum });
        try {
          await pipeline(body, createWriteStream(tmp));
          // Durable before it is named: a crash must not leave a short file under a name the cache trusts.
          const fh = await open(tmp, 'r+');
          await fh.sync().finally(() => fh.close());
          await rename(tmp, path);
        } catch (e) {
          await rm(tmp, { force: true });
          throw e;
        }
        return path;
      })().finally(() => this.fetching.delete(path));
      this.fetching.set(path, p);
    }
    return p;
  }

  /** How a guest of this image boots. */
  async resolve(imageId: string): Promise<GuestBoot> {
    const image = this.active(imageId, 'image');
    if (['aki', 'ari'].includes(image.diskFormat)) throw new ImageNotFoundError(`image ${imageId} is a ${image.diskFormat} (a kernel or ramdisk): boot a machine image that names it as kernel_id / ramdisk_id`);
    const disk = await this.fetch(image);
    const kernelId = image.properties.kernel_id;
    if (!kernelId) {
      if (!['qcow2', 'raw', 'ami'].includes(image.diskFormat)) throw new ImageNotFoundError(`image ${imageId} has disk_format ${image.diskFormat}: this host boots qcow2, raw and AMI images`);
      return { kind: 'disk', path: disk, format: image.diskFormat === 'raw' ? 'raw' : 'qcow2' };
    }
    const kernel = await this.fetch(this.active(kernelId, 'kernel image'));
    const ramdiskId = image.properties.ramdisk_id;
    const initrd = ramdiskId ? await this.fetch(this.active(ramdiskId, 'ramdisk image')) : undefined;
    // An AMI machine image's data is its disk; a qcow2 one is checked by qemu-img when the overlay is made on it.
    return { kind: 'kernel', kernel, initrd, append: image.properties.os_command_line || this.o.append || 'console=ttyS0 quiet panic=-1', disk };
  }

  /** Uploads a guest's snapshot as the (queued) image `imageId`: its disk flattened to one qcow2. */
  async save(imageId: string, _boot: GuestBoot, diskPath: string | undefined): Promise<void> {
    const image = this.o.image(imageId);
    if (!image) throw new ImageNotFoundError(`snapshot image ${imageId} is not in the image service (the API creates it before the snapshot)`);
    if (image.status === 'active') return; // uploaded already (a retried action)
    try {
      if (!diskPath) throw new Error('the guest has no disk to snapshot');
      await mkdir(this.o.cacheDir, { recursive: true });
      const flat = join(this.o.cacheDir, `${imageId}.snapshot.tmp`);
      // -U: the guest's QEMU holds the overlay's lock; the driver has paused the guest.
      await execFileP('qemu-img', ['convert', '-U', '-O', 'qcow2', diskPath, flat]);
      try {
        if (image.status === 'saving') await this.o.commands(imageId, { type: 'FailImageUpload', reason: 'a new snapshot upload starts' });
        await this.o.commands(imageId, { type: 'StartImageUpload', location: imageLocation(imageId) });
        const stored = await this.o.store.write(imageId, createReadStream(flat, { highWaterMark: 1024 * 1024 }), 'qcow2');
        await this.o.commands(imageId, { type: 'CompleteImageUpload', ...stored });
        // The snapshot is in the cache already: a boot from it on this host need not download it.
        const cached = join(this.o.cacheDir, `${imageId}.${stored.checksum}`);
        if ((await stat(flat)).size === stored.size) await rename(flat, cached);
      } finally {
        await rm(flat, { force: true });
      }
    } catch (e) {
      await this.o.commands(imageId, { type: 'KillImage', reason: `snapshot failed: ${(e as Error).message}` }).catch(() => undefined);
      throw e;
    }
  }
}

/**
 * A host's images: the image service's when it has the id, else the host's image directory (images
 * placed there by hand, as before the image service; snapshots of servers booted from them). The
 * service is attached once the agent follows the image and object domains (agents/compute/main.ts).
 */
export class HostImages {
  service: ImageServiceSource | undefined;

  constructor(readonly directory: Pick<ImageDirectory, 'resolve' | 'save'>) {}

  resolve(imageId: string): GuestBoot | Promise<GuestBoot> {
    return this.service?.knows(imageId) ? this.service.resolve(imageId) : this.directory.resolve(imageId);
  }

  save(imageId: string, boot: GuestBoot, diskPath: string | undefined): Promise<void> {
    return this.service?.knows(imageId) ? this.service.save(imageId, boot, diskPath) : this.directory.save(imageId, boot, diskPath);
  }
}
