// The image commands of the strata CLI (ImageService, proto/strata/image/v1): image create,
// upload, download, list, show, set, deactivate, reactivate, delete, and image member
// add|set|remove|list. Flags follow the openstack client's (--disk-format, --container-format,
// --file, --public/--private/--shared/--community, --protected/--unprotected, --property K=V,
// --tag). Data streams both ways: an upload reads the file as it goes (never whole in memory), a
// download writes a temporary file beside the target and renames it once the data is all there.
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { done, EXIT_CODES, helpOrUsage, int, parse, str, UsageError, type Context, type Options } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const IMAGE_COMMANDS = ['image'];

export const IMAGE_HELP = `  image create|upload|download|list|show|set|deactivate|reactivate|delete
  image member add|set|remove|list`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const USAGE = `Usage: strata image create [--name N] [--disk-format F] [--container-format F] [--file FILE]
                           [--public|--private|--shared|--community] [--min-disk GIB] [--min-ram MIB]
                           [--protected|--unprotected] [--hidden] [--tag T]... [--property K=V]...
                           [--id UUID] [--owner PROJECT] [--request-id R]
       strata image upload IMAGE --file FILE
       strata image download IMAGE --file FILE
       strata image list [--name N] [--status S] [--public|--private|--shared|--community] [--owner P]
                         [--member-status accepted|pending|rejected|all] [--hidden] [--page-size N] [--page-token T]
       strata image show IMAGE
       strata image set IMAGE [--name N] [--disk-format F] [--container-format F] [--public|--private|--shared|--community]
                        [--min-disk GIB] [--min-ram MIB] [--protected|--unprotected] [--hidden|--unhidden]
                        [--tag T]... (replaces the tags) [--property K=V]... (added to the properties)
       strata image deactivate IMAGE      (admins)
       strata image reactivate IMAGE      (admins)
       strata image delete IMAGE
       strata image member add IMAGE PROJECT
       strata image member set IMAGE PROJECT --status accepted|rejected|pending
       strata image member remove IMAGE PROJECT
       strata image member list IMAGE

IMAGE is an id or a name. An image is created queued; its data is uploaded once (it needs its
disk format, e.g. raw or qcow2, and container format, e.g. bare): create --file does both in one
go. The upload streams the file; the image is active after it, with its size, checksum (md5) and
os_hash_value (sha512). download writes the data to --file (a temporary file renamed once
complete). Visibility: shared (the default: the owner and the projects it adds as members, once
they accept with 'member set ... --status accepted'), private, community (anyone by id), public
(everyone; admins only). A protected image cannot be deleted. Deactivated images are downloaded
by admins only.`;

const MEMBER_USAGE = USAGE.split('\n').filter((l) => l.includes('image member')).join('\n');

/** KEY=VALUE options (--property) into a map. */
function properties(values: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (values as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--property takes KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function pair(values: Obj, on: string, off: string): boolean | undefined {
  if (values[on] && values[off]) throw new UsageError(`--${on} and --${off} exclude each other`);
  return values[on] ? true : values[off] ? false : undefined;
}

const VISIBILITIES = ['public', 'private', 'shared', 'community'];
function visibility(values: Obj): string | undefined {
  const given = VISIBILITIES.filter((v) => values[v]);
  if (given.length > 1) throw new UsageError(`--${given.join(' and --')} exclude each other`);
  return given[0];
}

const VISIBILITY_FLAGS: Options = Object.fromEntries(VISIBILITIES.map((v) => [v, { type: 'boolean' as const }]));
const FIELD_FLAGS: Options = {
  name: { type: 'string' },
  'disk-format': { type: 'string' },
  'container-format': { type: 'string' },
  'min-disk': { type: 'string' },
  'min-ram': { type: 'string' },
  protected: { type: 'boolean' },
  unprotected: { type: 'boolean' },
  hidden: { type: 'boolean' },
  tag: { type: 'string', multiple: true },
  property: { type: 'string', multiple: true },
  ...VISIBILITY_FLAGS,
};

/** The image fields the flags give (undefined: not given). */
const fieldsOf = (values: Obj): Obj => ({
  name: str(values.name),
  diskFormat: str(values['disk-format']),
  containerFormat: str(values['container-format']),
  visibility: visibility(values),
  minDisk: int('min-disk', values['min-disk']),
  minRam: int('min-ram', values['min-ram']),
  protected: pair(values, 'protected', 'unprotected'),
  osHidden: pair(values, 'hidden', 'unhidden'),
  tags: values.tag as string[] | undefined,
  properties: values.property ? properties(values.property) : undefined,
});

const defined = (o: Obj) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const time = (ms: unknown) => (Number(ms) > 0 ? new Date(Number(ms)).toISOString() : '');

const COLUMNS = ['id', 'name', 'status', 'visibility', 'disk_format', 'size'];
const row = (i: Obj) => ({ id: i.id, name: i.name, status: i.status, visibility: i.visibility, disk_format: i.diskFormat, size: i.size });
const detail = (i: Obj) => ({
  id: i.id, name: i.name, status: i.status, visibility: i.visibility, owner: i.owner, disk_format: i.diskFormat, container_format: i.containerFormat,
  size: i.size, virtual_size: i.virtualSize, checksum: i.checksum, os_hash_algo: i.osHashAlgo, os_hash_value: i.osHashValue, min_disk: i.minDisk,
  min_ram: i.minRam, protected: i.protected, os_hidden: i.osHidden, tags: i.tags, properties: Object.entries(i.properties ?? {}).map(([k, v]) => `${k}=${v}`).join(', '),
  created_at: time(i.createdAtMs), updated_at: time(i.updatedAtMs), ...(i.location ? { location: i.location } : {}),
});
const show = (ctx: Context, i: Obj) => print(ctx.output, ctx.output === 'json' ? i : detail(i));

/** An image id from an id or a name (a name must name one image the caller sees). */
async function imageId(ctx: Context, nameOrId: string): Promise<string> {
  if (UUID.test(nameOrId)) return nameOrId;
  const found = (await ctx.client().call('ListImages', { name: nameOrId, pageSize: 2 })).images as Obj[];
  if (found.length === 0) throw new UsageError(`no image named "${nameOrId}" (give its id, or see strata image list)`);
  if (found.length > 1) throw new UsageError(`more than one image is named "${nameOrId}": give its id`);
  return found[0].id;
}

function one(positionals: string[], what: string, count = 1): string[] {
  if (positionals.length < count) throw new UsageError(`name the ${what}\n\n${USAGE}`);
  if (positionals.length > count) throw new UsageError(`unexpected argument ${positionals[count]}\n\n${USAGE}`);
  return positionals;
}

/** Streams a file to UploadImage (read as it is sent); returns the image, active. */
async function uploadFile(ctx: Context, id: string, file: string): Promise<Obj> {
  let size: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new UsageError(`--file ${file} is not a file`);
    size = s.size;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--file ${file}: ${(e as Error).message}`);
  }
  const body = createReadStream(file, { highWaterMark: 256 * 1024 });
  try {
    return (await ctx.client().upload('UploadImage', { imageId: id, contentLength: size }, body)).image;
  } finally {
    body.destroy();
  }
}

async function downloadFile(ctx: Context, id: string, file: string): Promise<Obj> {
  const { header, body, cancel } = await ctx.client().download('DownloadImage', { id });
  const tmp = join(dirname(file), `.${basename(file)}.part-${process.pid}`);
  let written = 0;
  const counted = async function* () {
    for await (const c of body) {
      written += c.length;
      yield c;
    }
  };
  try {
    await pipeline(Readable.from(counted()), createWriteStream(tmp, { flags: 'wx' }));
    if (written !== Number(header.contentLength)) throw new Error(`the download ended after ${written} of ${header.contentLength} bytes`);
    await rename(tmp, file);
  } catch (e) {
    cancel();
    await rm(tmp, { force: true });
    throw e;
  }
  return { ...header.image, bytes: written, file };
}

async function memberCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'add':
    case 'remove': {
      const { positionals } = parse(rest, {}, MEMBER_USAGE);
      const [image, project] = one(positionals, 'image and the project', 2);
      const id = await imageId(ctx, image);
      if (verb === 'add') {
        const m = (await client.call('AddImageMember', { imageId: id, memberProjectId: project })).member;
        if (ctx.output === 'json') print(ctx.output, { imageId: id, ...m });
        else console.log(`image ${id} shared with project ${project} (${m.status}: the project accepts it with 'strata image member set ${id} ${project} --status accepted')`);
      } else {
        await client.call('RemoveImageMember', { imageId: id, memberProjectId: project });
        done(ctx, `image ${id} no longer shared with project ${project}`, { image_id: id, member_project_id: project, removed: true });
      }
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(rest, { status: { type: 'string' } }, MEMBER_USAGE);
      const [image, project] = one(positionals, 'image and the project', 2);
      const status = str(values.status);
      if (!status) throw new UsageError(`--status accepted|rejected|pending\n\n${MEMBER_USAGE}`);
      const id = await imageId(ctx, image);
      const m = (await client.call('UpdateImageMember', { imageId: id, memberProjectId: project, status })).member;
      done(ctx, `project ${project} ${m.status} image ${id}`, { imageId: id, ...m });
      return EXIT_CODES.ok;
    }
    case 'list': {
      const { positionals } = parse(rest, {}, MEMBER_USAGE);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      const members = (await client.call('ListImageMembers', { imageId: id })).members as Obj[];
      if (ctx.output === 'json') print(ctx.output, { members });
      else print(ctx.output, members.map((m) => ({ image_id: id, member_id: m.memberProjectId, status: m.status, updated_at: time(m.updatedAtMs) })), ['image_id', 'member_id', 'status', 'updated_at']);
      return EXIT_CODES.ok;
    }
    default:
      return helpOrUsage(verb, MEMBER_USAGE);
  }
}

export async function imageCommand(ctx: Context, _command: string, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'member') return memberCommand(ctx, rest);
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(rest, { ...FIELD_FLAGS, file: { type: 'string' }, id: { type: 'string' }, owner: { type: 'string' }, 'request-id': { type: 'string' } }, USAGE);
      one(positionals, '', 0);
      const file = str(values.file);
      const image = defined({ ...fieldsOf(values), id: str(values.id), owner: str(values.owner) });
      if (file && (!image.diskFormat || !image.containerFormat)) throw new UsageError(`--file needs --disk-format and --container-format (e.g. --disk-format qcow2 --container-format bare)\n\n${USAGE}`);
      if (file) await stat(file).catch((e: Error) => Promise.reject(new UsageError(`--file ${file}: ${e.message}`)));
      const created = (await ctx.client().call('CreateImage', { image, requestId: str(values['request-id']) ?? '' })).image;
      show(ctx, file ? await uploadFile(ctx, created.id, file) : created);
      return EXIT_CODES.ok;
    }
    case 'upload': {
      const { values, positionals } = parse(rest, { file: { type: 'string' } }, USAGE);
      const file = str(values.file);
      if (!file) throw new UsageError(`--file FILE: the data to upload\n\n${USAGE}`);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      show(ctx, await uploadFile(ctx, id, file));
      return EXIT_CODES.ok;
    }
    case 'download': {
      const { values, positionals } = parse(rest, { file: { type: 'string' } }, USAGE);
      const file = str(values.file);
      if (!file) throw new UsageError(`--file FILE: where to write the data\n\n${USAGE}`);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      const got = await downloadFile(ctx, id, file);
      done(ctx, `image ${id}: ${got.bytes} bytes written to ${file}`, { id, file, bytes: got.bytes, checksum: got.checksum, os_hash_value: got.osHashValue });
      return EXIT_CODES.ok;
    }
    case 'list': {
      const { values, positionals } = parse(rest, {
        name: { type: 'string' }, status: { type: 'string' }, owner: { type: 'string' }, 'member-status': { type: 'string' }, hidden: { type: 'boolean' },
        'page-size': { type: 'string' }, 'page-token': { type: 'string' }, ...VISIBILITY_FLAGS,
      }, USAGE);
      one(positionals, '', 0);
      const res = await ctx.client().call('ListImages', {
        name: str(values.name) ?? '', status: str(values.status) ?? '', visibility: visibility(values) ?? '', owner: str(values.owner) ?? '',
        memberStatus: str(values['member-status']) ?? '', osHidden: Boolean(values.hidden), pageSize: int('page-size', values['page-size']) ?? 0, pageToken: str(values['page-token']) ?? '',
      });
      if (ctx.output === 'json') print(ctx.output, { images: res.images, next_page_token: res.nextPageToken ?? '' });
      else {
        print(ctx.output, (res.images as Obj[]).map(row), COLUMNS);
        if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
      }
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, USAGE);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      show(ctx, (await ctx.client().call('GetImage', { id })).image);
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(rest, { ...FIELD_FLAGS, unhidden: { type: 'boolean' } }, USAGE);
      const ref = one(positionals, 'image')[0];
      const given = defined(fieldsOf(values));
      if (Object.keys(given).length === 0) throw new UsageError(`nothing to change: give at least one of --name, --public/--private/--shared/--community, --min-disk, --min-ram, --protected/--unprotected, --hidden/--unhidden, --tag, --property, --disk-format, --container-format\n\n${USAGE}`);
      const id = await imageId(ctx, ref);
      if (given.properties) {
        // --property adds to the image's properties (openstack image set does the same).
        const current = (await ctx.client().call('GetImage', { id })).image;
        given.properties = { ...(current.properties ?? {}), ...given.properties };
      }
      const paths = Object.keys(given).map(snake);
      show(ctx, (await ctx.client().call('UpdateImage', { image: { id, ...given }, updateMask: { paths } })).image);
      return EXIT_CODES.ok;
    }
    case 'deactivate':
    case 'reactivate': {
      const { positionals } = parse(rest, {}, USAGE);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      const image = (await ctx.client().call(verb === 'deactivate' ? 'DeactivateImage' : 'ReactivateImage', { id })).image;
      done(ctx, `image ${id} ${image.status}`, image);
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, USAGE);
      const id = await imageId(ctx, one(positionals, 'image')[0]);
      await ctx.client().call('DeleteImage', { id });
      done(ctx, `image ${id} deleted`, { deleted: id });
      return EXIT_CODES.ok;
    }
    default:
      return helpOrUsage(verb, USAGE);
  }
}
