// The image service as a host agent process reaches it: through the log alone. It follows the
// image domain (the records: status, checksum, properties) and the object domain (the ring that
// says where an image's data is), reads and writes the data on the object servers itself, and
// sends image-domain commands (the upload of a snapshot or a volume) as its own actor.
import { ImageWriter } from '../../api/image/image.writer.js';
import { ObjectWriter } from '../../api/object/object.writer.js';
import type { Image } from '../../domains/image/image.types.js';
import type { Actor } from '../envelope/envelope.js';
import type { Log } from '../log/log.js';
import { ObjectProxy } from '../object/object-proxy.js';
import { CommandBus } from '../runtime/command-bus.js';
import type { TopologyOptions } from '../runtime/topology.js';
import { followImages } from '../sagas/image.feed.js';
import { followObjects } from '../sagas/object.feed.js';
import { ImageStore } from './image-store.js';

export interface ImageServiceClient {
  image(id: string): Image | undefined;
  store: ImageStore;
  commands(imageId: string, command: Record<string, unknown> & { type: string }): Promise<void>;
  close(): Promise<void>;
}

export async function connectImageService(o: { log: Log; topology: TopologyOptions; actor: Actor; imageDomain?: string; objectDomain?: string }): Promise<ImageServiceClient> {
  const images = await followImages({ log: o.log, topology: o.topology, domain: o.imageDomain });
  const objects = await followObjects({ log: o.log, topology: o.topology, domain: o.objectDomain }).catch(async (e) => {
    await images.close();
    throw e;
  });
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const proxy = new ObjectProxy({ ring: () => objects.view.ring() });
  const imageWriter = new ImageWriter(bus, undefined, Date.now, o.imageDomain);
  const store = new ImageStore({ proxy, objects: new ObjectWriter(bus, undefined, Date.now, o.objectDomain) });
  return {
    image: (id) => images.view.image(id),
    store,
    commands: async (imageId, command) => void (await imageWriter.send('image', imageId, command, o.actor)),
    async close() {
      proxy.close();
      await images.close();
      await objects.close();
      await bus.close();
    },
  };
}
