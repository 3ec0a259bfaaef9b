// What the block API asks of the image service (Cinder asks Glance): whether an image a volume is
// made from exists, is usable by the caller's project and is active, with its sizes; and, for an
// upload of a volume to an image (os-volume_upload_image), creating the queued image it goes to
// and killing it when the upload cannot start. The all-in-one cloud gives the image API's read
// models and writer (imageServiceForBlock); without it volumes come from image directories only.
import type { ImageApi } from '../image/image.api.js';
import { imageUsableBy } from '../../domains/image/image.types.js';
import { refuse } from '../errors.js';
import type { Caller } from '../policy/policy.js';
import { actorOf, callerProject } from '../request.js';

export interface BlockImage {
  id: string;
  name: string;
  status: string;
  diskFormat: string;
  containerFormat: string;
  /** Bytes of the data; 0 until active. */
  size: number;
  /** Bytes of the virtual disk; 0 when unknown. */
  virtualSize: number;
  /** GiB a disk made from it needs. */
  minDisk: number;
  checksum: string;
}

export interface NewImage {
  id: string;
  owner: string;
  name: string;
  diskFormat: 'raw' | 'qcow2';
  containerFormat: 'bare';
  minDisk: number;
  properties: Record<string, string>;
}

export interface BlockImages {
  /** The image if the image service has it (undefined: it does not); NOT_FOUND if the caller's project may not use it. */
  usable(imageId: string, c: Caller): Promise<BlockImage | undefined>;
  /** Creates the queued image an upload goes to (a retry that finds it is fine). */
  create(image: NewImage, c: Caller): Promise<void>;
  /** Kills an image whose upload did not start (queued -> killed); gone or past queued is fine. */
  kill(imageId: string, reason: string, c: Caller): Promise<void>;
}

/** The image service of this process, as the block API needs it (the image API may start after the block API). */
export function imageServiceForBlock(api: () => ImageApi | undefined): BlockImages {
  const need = () => {
    const a = api();
    if (!a) throw refuse('UNAVAILABLE', 'the image service is not running');
    return a;
  };
  return {
    async usable(imageId, c) {
      const a = api();
      const image = await a?.queries.getImage(imageId);
      if (!a || !image || image.status === 'deleted') return undefined;
      if (!imageUsableBy(image, await a.queries.members(imageId), callerProject(c), c.isAdmin)) throw refuse('NOT_FOUND', `Image ${imageId} could not be found.`, { field: 'image_id' });
      return {
        id: image.id, name: image.name, status: image.status, diskFormat: image.diskFormat, containerFormat: image.containerFormat, size: image.size,
        virtualSize: image.virtualSize, minDisk: image.minDisk, checksum: image.checksum,
      };
    },
    async create(image, c) {
      const reply = await need().writer.reply('image', image.id, { type: 'CreateImage', image: { ...image, visibility: 'private' } }, actorOf(c));
      if (reply.kind === 'rejected' && reply.rejection.code !== 'ALREADY_EXISTS') throw refuse(reply.rejection.code, reply.rejection.message, reply.rejection);
    },
    async kill(imageId, reason, c) {
      await need().writer.reply('image', imageId, { type: 'KillImage', reason }, actorOf(c));
    },
  };
}
