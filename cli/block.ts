// The block storage commands of the strata CLI (VolumeService, proto/strata/block/v1): volume,
// volume-type, snapshot, backup and storage-host, plus the server's volumes (strata server add
// volume | remove volume | volume list, hooked into cli/compute.ts) and the block quotas (strata
// quota, cli/compute.ts). Flags follow the openstack client's (--size, --type, --snapshot,
// --source, --property K=V, --bootable/--non-bootable). Operations on volumes run on their storage
// host after the RPC returns: --wait polls the resource until its status settles (or it is gone,
// for a delete) and fails, naming the status and its reason, when it lands in an error status.
import { done, EXIT_CODES, helpOrUsage, int, need, parse, properties, str, UsageError, type Context, type Options } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const BLOCK_COMMANDS = ['volume', 'volume-type', 'snapshot', 'backup', 'storage-host'];

export const BLOCK_HELP = `  volume create|list|show|set|delete|extend|retype|reset-state
  volume-type create|list|show|set|delete
  snapshot create|list|show|set|delete
  backup create|list|show|delete|restore
  server add volume|remove volume|volume list   (strata server --help)
  storage-host list`;

/** The server's volume lines of `strata server --help` (cli/compute.ts shows them with the rest). */
export const SERVER_VOLUME_USAGE = `       strata server add volume SERVER VOLUME [--delete-on-termination] [--wait] [--timeout S] [--request-id R]
       strata server remove volume SERVER VOLUME [--wait] [--timeout S]
       strata server volume list SERVER`;

const SERVER_VOLUME_HELP = `Usage: ${SERVER_VOLUME_USAGE.trimStart()}
add volume attaches a volume of yours (id or name) to a server: the guest gets it as a new disk
(/dev/vdb, ...); --wait waits until the attachment is attached. remove volume detaches it: --wait
waits until the attachment is gone. --wait gives up after --timeout seconds (default 600).`;

// ---- helpers ----------------------------------------------------------------------------------

/** Boolean pairs (--bootable/--non-bootable): true, false, or undefined when neither is given. */
function pair(values: Obj, on: string, off: string): boolean | undefined {
  if (values[on] && values[off]) throw new UsageError(`--${on} and --${off} exclude each other`);
  return values[on] ? true : values[off] ? false : undefined;
}

/** Says what a set can change when none of its flags is given (before any call to the cloud). */
function wants(values: Obj, flags: string[], usage: string): void {
  if (flags.some((f) => values[f] !== undefined)) return;
  throw new UsageError(`nothing to change: ${flags.slice(0, -1).map((f) => `--${f}`).join(', ')} or --${flags[flags.length - 1]}\n\n${usage}`);
}

/** An update: the fields given (undefined: not given) and the update mask naming them (snake case). */
function masked(fields: Record<string, unknown>): { value: Obj; paths: string[] } {
  const given = Object.entries(fields).filter(([, v]) => v !== undefined);
  return { value: Object.fromEntries(given), paths: given.map(([k]) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) };
}

/** Refuses arguments a verb does not take (`volume create big`: the name is --name). */
function noMore(positionals: string[], usage: string, after = 0): void {
  const extra = positionals.slice(after);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}\n\n${usage}`);
}

/** A positive size in GiB from --flag. */
function gib(flag: string, v: unknown): number | undefined {
  const n = int(flag, v);
  if (n !== undefined && n < 1) throw new UsageError(`--${flag} takes a size in GiB of at least 1, got "${String(v)}"`);
  return n;
}

const PAGE: Options = { 'page-size': { type: 'string' }, 'page-token': { type: 'string' } };
const paging = (values: Obj) => ({ pageSize: int('page-size', values['page-size']) ?? 0, pageToken: str(values['page-token']) ?? '' });

/** parse() with --wait and --timeout S (default 600), the timeout checked before anything is called. */
function parseWaiting(argv: string[], options: Options, usage: string) {
  const parsed = parse(argv, { ...options, wait: { type: 'boolean' }, timeout: { type: 'string' } }, usage);
  return { ...parsed, timeoutS: int('timeout', parsed.values.timeout) ?? 600 };
}

/** A list as a table, or as JSON under its field with the next page token. */
function printList(ctx: Context, res: Obj, field: string, jsonField: string, rows: Obj[], columns: string[]): void {
  if (ctx.output === 'json') return print(ctx.output, { [jsonField]: res[field], next_page_token: res.nextPageToken ?? '' });
  print(ctx.output, rows, columns);
  if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
}

const time = (ms: unknown) => (Number(ms) > 0 ? new Date(Number(ms)).toISOString() : '');
const kvText = (m: Obj | undefined) =>
  Object.entries(m ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

/** The same call, with NOT_FOUND as undefined (a deleted resource, for the waits of deletes). */
async function orGone(call: Promise<Obj>, field: string): Promise<Obj | undefined> {
  try {
    return (await call)[field] as Obj;
  } catch (e) {
    if ((e as { code?: number }).code === 5) return undefined;
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `get` until `settled` says so or timeoutS runs out (250 ms at first, then up to 2 s
 * apart); returns the last value read and whether it settled.
 */
async function poll(get: () => Promise<Obj | undefined>, settled: (v: Obj | undefined) => boolean, timeoutS: number): Promise<{ value: Obj | undefined; settled: boolean }> {
  const deadline = Date.now() + timeoutS * 1000;
  let delay = 250;
  for (;;) {
    const value = await get();
    if (settled(value)) return { value, settled: true };
    if (Date.now() >= deadline) return { value, settled: false };
    await sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(2000, delay * 1.5);
  }
}

const isError = (status: unknown) => typeof status === 'string' && status.startsWith('error');
/** Where a volume rests: nothing runs on its host for it any more. */
const VOLUME_SETTLED = new Set(['available', 'in-use']);

/**
 * The outcome of a wait, for people: nothing when it reached what it waited for; otherwise a line
 * on stderr (the status it landed in and why, or how long it waited) and exit code 1.
 */
function outcome(what: string, id: string, r: { value: Obj | undefined; settled: boolean }, timeoutS: number, show: string): number {
  const v = r.value;
  if (!r.settled) {
    console.error(`strata: ${what} ${id} is still ${v ? v.status : 'not there'} after ${timeoutS} s: see ${show}`);
    return EXIT_CODES.error;
  }
  if (v && isError(v.status)) {
    console.error(`strata: ${what} ${id} went to status ${v.status}${v.statusReason ? `: ${v.statusReason}` : ''}`);
    return EXIT_CODES.error;
  }
  return EXIT_CODES.ok;
}

/** Waits for a volume to settle (available, in-use or an error status); `also` adds a condition (extend: the new size). */
async function waitVolume(ctx: Context, id: string, timeoutS: number, also: (v: Obj) => boolean = () => true) {
  return poll(
    () => orGone(ctx.client().call('GetVolume', { id }), 'volume'),
    (v) => v !== undefined && (isError(v.status) || (VOLUME_SETTLED.has(v.status) && also(v))),
    timeoutS,
  );
}

/** Waits until GET says NOT_FOUND (a delete done) or the resource lands in an error status (error_deleting). */
async function waitGone(ctx: Context, rpc: string, field: string, id: string, timeoutS: number) {
  return poll(() => orGone(ctx.client().call(rpc, { id }), field), (v) => v === undefined || isError(v.status), timeoutS);
}

/** A delete's outcome: gone (said like any delete), or why not. */
function deleted(ctx: Context, what: string, id: string, wait: { value: Obj | undefined; settled: boolean } | undefined, timeoutS: number, show: string): number {
  if (wait) {
    const code = outcome(what, id, wait, timeoutS, show);
    if (code !== EXIT_CODES.ok) return code;
    done(ctx, `${what} ${id} deleted`, { deleted: id });
  } else done(ctx, `${what} ${id} is being deleted`, { deleting: id });
  return EXIT_CODES.ok;
}

// ---- names ------------------------------------------------------------------------------------

/** A volume's id from its id or its name (the caller's project); the name must be unique. */
async function volumeId(ctx: Context, nameOrId: string): Promise<string> {
  const named = (await ctx.client().call('ListVolumes', { name: nameOrId, pageSize: 1000 })).volumes as Obj[];
  if (named.length > 1) throw new UsageError(`more than one volume is named ${nameOrId}: give its id (${named.map((r) => r.id).join(', ')})`);
  return named[0]?.id ?? nameOrId;
}

/** A snapshot's or backup's id from its id or its name; the name must be unique. */
async function resolveNamed(ctx: Context, rpc: string, field: string, what: string, nameOrId: string): Promise<string> {
  const rows = (await ctx.client().call(rpc, { pageSize: 1000 }))[field] as Obj[];
  if (rows.some((r) => r.id === nameOrId)) return nameOrId;
  const named = rows.filter((r) => r.name === nameOrId);
  if (named.length > 1) throw new UsageError(`more than one ${what} is named ${nameOrId}: give its id (${named.map((r) => r.id).join(', ')})`);
  return named[0]?.id ?? nameOrId;
}
const snapshotId = (ctx: Context, v: string) => resolveNamed(ctx, 'ListSnapshots', 'snapshots', 'snapshot', v);
const backupId = (ctx: Context, v: string) => resolveNamed(ctx, 'ListBackups', 'backups', 'backup', v);

/** A volume type by id or name (GetVolumeType takes either). */
const getType = async (ctx: Context, nameOrId: string): Promise<Obj> => (await ctx.client().call('GetVolumeType', { id: nameOrId })).volumeType;

// ---- volumes ----------------------------------------------------------------------------------

const attachmentLine = (a: Obj) => `${a.serverId}${a.device ? ` ${a.device}` : ''} (${a.status}${a.deleteOnTermination ? ', deleted with the server' : ''})`;

const VOLUME_COLUMNS = ['id', 'name', 'status', 'size', 'type', 'bootable', 'attached_to'];
const volumeRow = (v: Obj) => ({
  id: v.id,
  name: v.name,
  status: v.status,
  size: v.sizeGb,
  type: v.volumeTypeName || v.volumeTypeId,
  bootable: v.bootable,
  attached_to: ((v.attachments ?? []) as Obj[]).map((a) => `${a.serverId}${a.device ? ` on ${a.device}` : ''}`).join(', '),
});

const volumeDetail = (v: Obj) => ({
  id: v.id,
  name: v.name,
  description: v.description,
  status: v.status,
  ...(v.statusReason ? { status_reason: v.statusReason } : {}),
  size_gb: v.sizeGb,
  volume_type: v.volumeTypeName ? `${v.volumeTypeName} (${v.volumeTypeId})` : v.volumeTypeId,
  availability_zone: v.availabilityZone,
  bootable: v.bootable,
  multiattach: v.multiattach,
  attach_status: v.attachStatus,
  attachments: ((v.attachments ?? []) as Obj[]).map(attachmentLine),
  properties: kvText(v.metadata),
  ...(v.snapshotId ? { snapshot_id: v.snapshotId } : {}),
  ...(v.sourceVolid ? { source_volid: v.sourceVolid } : {}),
  ...(v.backupId ? { backup_id: v.backupId } : {}),
  ...(v.imageId ? { image_id: v.imageId } : {}),
  ...(v.hostId ? { host: v.hostId } : {}),
  project: v.projectId,
  user: v.userId,
  created: time(v.createdAtMs),
});

const showVolume = (ctx: Context, v: Obj) => print(ctx.output, ctx.output === 'json' ? v : volumeDetail(v));

export const VOLUME_USAGE = `Usage: strata volume create --size GIB [--name N] [--description D] [--type TYPE] [--availability-zone Z]
           [--snapshot SNAPSHOT | --source VOLUME | --backup BACKUP | --image IMAGE_ID] [--property K=V]... [--bootable]
           [--project ID] [--request-id R] [--wait] [--timeout S]
       strata volume list [--all-projects] [--status S] [--name N] [--page-size N] [--page-token T]
       strata volume show VOLUME
       strata volume set VOLUME [--name N] [--description D] [--property K=V]... [--no-property] [--bootable|--non-bootable]
       strata volume delete VOLUME [--cascade] [--force] [--wait] [--timeout S]
       strata volume extend VOLUME --size GIB [--request-id R] [--wait] [--timeout S]
       strata volume retype VOLUME --type TYPE
       strata volume reset-state VOLUME --state STATUS
       strata volume upload-to-image VOLUME --name N [--disk-format raw|qcow2] [--force] [--request-id R] [--wait] [--timeout S]
VOLUME is an id or a name (of your project). A volume is made blank or from one source: a snapshot,
another volume (--source), a backup or an image (--image: an image of the image service, active and
usable by your project, or one of the storage host's image directory); with a snapshot, volume,
backup or image-service image, --size may be left out (the source's size; an image's virtual size
or min_disk, rounded up to GiB). --type is a volume type's id or name (default: the type named
__DEFAULT__, if there is one). The volume starts in status creating and its storage host makes it:
--wait waits until it is available (or in-use, or error), and exits 1 naming the status and its
reason on error; it gives up after --timeout seconds (default 600).
set: --property adds to the properties it has (--no-property first drops them all).
delete: status available, error, error_restoring or error_extending, not attached; --cascade deletes
its snapshots too; --force (admins) skips the status check. --wait waits until the volume is gone.
extend: grows it to --size GiB (available or in-use); --wait waits until it has the new size.
retype: changes its type within its backend (available or in-use).
reset-state (admins): sets its status as it is recorded, for an operator's repair (Cinder's os-reset_status).
upload-to-image: makes a new image (--name; --disk-format raw, the default, or qcow2; container bare)
of the volume's data (Cinder's os-volume_upload_image): the volume must be available, or in-use with
--force; it is uploading until its storage host has uploaded it, then back to its status. Prints the
image id; --wait waits until the upload ended and exits 1 naming the reason if it failed.
An operation its status does not allow exits 8 naming the status; a quota exits 10 naming it.`;

async function volumeCommand(ctx: Context, argv: string[]): Promise<number> {
  const usage = VOLUME_USAGE;
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': {
      const { values, positionals, timeoutS } = parseWaiting(
        rest,
        {
          size: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, type: { type: 'string' }, 'availability-zone': { type: 'string' },
          snapshot: { type: 'string' }, source: { type: 'string' }, backup: { type: 'string' }, image: { type: 'string' }, property: { type: 'string', multiple: true },
          bootable: { type: 'boolean' }, project: { type: 'string' }, 'request-id': { type: 'string' },
        },
        usage,
      );
      noMore(positionals, usage);
      const sources = ['snapshot', 'source', 'backup', 'image'].filter((f) => str(values[f]) !== undefined);
      if (sources.length > 1) throw new UsageError(`--${sources[0]} and --${sources[1]} exclude each other: a volume has at most one source\n\n${usage}`);
      const size = gib('size', values.size);
      if (size === undefined && !['snapshot', 'source', 'backup', 'image'].includes(sources[0])) throw new UsageError(`--size is required (GiB), unless the volume is made from --snapshot, --source, --backup or --image\n\n${usage}`);
      const res = await ctx.client().call('CreateVolume', {
        sizeGb: size ?? 0,
        name: str(values.name) ?? '',
        description: str(values.description) ?? '',
        volumeType: str(values.type) ?? '',
        availabilityZone: str(values['availability-zone']) ?? '',
        snapshotId: str(values.snapshot) ? await snapshotId(ctx, str(values.snapshot)!) : '',
        sourceVolid: str(values.source) ? await volumeId(ctx, str(values.source)!) : '',
        backupId: str(values.backup) ? await backupId(ctx, str(values.backup)!) : '',
        imageId: str(values.image) ?? '',
        metadata: properties(values.property),
        bootable: Boolean(values.bootable),
        projectId: str(values.project) ?? '',
        requestId: str(values['request-id']) ?? '',
      });
      let volume = res.volume as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        const r = await waitVolume(ctx, volume.id, timeoutS);
        code = outcome('volume', volume.id, r, timeoutS, `strata volume show ${volume.id}`);
        volume = r.value ?? volume;
      }
      showVolume(ctx, volume);
      return code;
    }
    case 'list': {
      const { values, positionals } = parse(rest, { 'all-projects': { type: 'boolean' }, status: { type: 'string' }, name: { type: 'string' }, ...PAGE }, usage);
      noMore(positionals, usage);
      const res = await ctx.client().call('ListVolumes', { allProjects: Boolean(values['all-projects']), status: str(values.status) ?? '', name: str(values.name) ?? '', ...paging(values) });
      const columns = values['all-projects'] ? [...VOLUME_COLUMNS, 'project'] : VOLUME_COLUMNS;
      printList(ctx, res, 'volumes', 'volumes', (res.volumes as Obj[]).map((v) => ({ ...volumeRow(v), project: v.projectId })), columns);
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 1);
      showVolume(ctx, (await ctx.client().call('GetVolume', { id: await volumeId(ctx, need(positionals, 'volume', usage)) })).volume);
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(
        rest,
        {
          name: { type: 'string' }, description: { type: 'string' }, property: { type: 'string', multiple: true }, 'no-property': { type: 'boolean' },
          bootable: { type: 'boolean' }, 'non-bootable': { type: 'boolean' },
        },
        usage,
      );
      noMore(positionals, usage, 1);
      const volume = need(positionals, 'volume', usage);
      wants(values, ['name', 'description', 'property', 'no-property', 'bootable', 'non-bootable'], usage);
      const bootable = pair(values, 'bootable', 'non-bootable');
      const given = properties(values.property);
      const id = await volumeId(ctx, volume);
      const { value, paths } = masked({
        name: str(values.name),
        description: str(values.description),
        bootable,
        metadata: values.property || values['no-property'] ? { ...(values['no-property'] ? {} : (await ctx.client().call('GetVolume', { id })).volume.metadata), ...given } : undefined,
      });
      showVolume(ctx, (await ctx.client().call('UpdateVolume', { ...value, id, updateMask: { paths } })).volume);
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { values, positionals, timeoutS } = parseWaiting(rest, { cascade: { type: 'boolean' }, force: { type: 'boolean' } }, usage);
      noMore(positionals, usage, 1);
      const id = await volumeId(ctx, need(positionals, 'volume', usage));
      await ctx.client().call('DeleteVolume', { id, cascade: Boolean(values.cascade), force: Boolean(values.force) });
      const wait = values.wait ? await waitGone(ctx, 'GetVolume', 'volume', id, timeoutS) : undefined;
      return deleted(ctx, 'volume', id, wait, timeoutS, `strata volume show ${id}`);
    }
    case 'extend': {
      const { values, positionals, timeoutS } = parseWaiting(rest, { size: { type: 'string' }, 'request-id': { type: 'string' } }, usage);
      noMore(positionals, usage, 1);
      const size = gib('size', values.size);
      if (size === undefined) throw new UsageError(`--size is required: the new size in GiB\n\n${usage}`);
      const id = await volumeId(ctx, need(positionals, 'volume', usage));
      let volume = (await ctx.client().call('ExtendVolume', { id, newSizeGb: size, requestId: str(values['request-id']) ?? '' })).volume as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        const r = await waitVolume(ctx, id, timeoutS, (v) => v.sizeGb >= size);
        code = outcome('volume', id, r, timeoutS, `strata volume show ${id}`);
        volume = r.value ?? volume;
      }
      showVolume(ctx, volume);
      return code;
    }
    case 'retype': {
      const { values, positionals } = parse(rest, { type: { type: 'string' } }, usage);
      noMore(positionals, usage, 1);
      if (!str(values.type)) throw new UsageError(`--type is required: the new volume type's id or name\n\n${usage}`);
      const id = await volumeId(ctx, need(positionals, 'volume', usage));
      showVolume(ctx, (await ctx.client().call('RetypeVolume', { id, volumeType: str(values.type) })).volume);
      return EXIT_CODES.ok;
    }
    case 'reset-state': {
      const { values, positionals } = parse(rest, { state: { type: 'string' } }, usage);
      noMore(positionals, usage, 1);
      if (!str(values.state)) throw new UsageError(`--state is required: the status to record (available, error, ...)\n\n${usage}`);
      const id = await volumeId(ctx, need(positionals, 'volume', usage));
      showVolume(ctx, (await ctx.client().call('ResetVolumeStatus', { id, status: str(values.state) })).volume);
      return EXIT_CODES.ok;
    }
    case 'upload-to-image': {
      const { values, positionals, timeoutS } = parseWaiting(
        rest,
        { name: { type: 'string' }, 'disk-format': { type: 'string' }, force: { type: 'boolean' }, 'request-id': { type: 'string' } },
        usage,
      );
      noMore(positionals, usage, 1);
      if (!str(values.name)) throw new UsageError(`--name is required: the new image's name\n\n${usage}`);
      const diskFormat = str(values['disk-format']) ?? 'raw';
      if (!['raw', 'qcow2'].includes(diskFormat)) throw new UsageError(`--disk-format is raw or qcow2, got "${diskFormat}"\n\n${usage}`);
      const id = await volumeId(ctx, need(positionals, 'volume', usage));
      const res = await ctx.client().call('UploadVolumeToImage', {
        volumeId: id, imageName: str(values.name), diskFormat, containerFormat: 'bare', force: Boolean(values.force), requestId: str(values['request-id']) ?? '',
      });
      let volume = res.volume as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        const r = await poll(() => orGone(ctx.client().call('GetVolume', { id }), 'volume'), (v) => !v || v.status !== 'uploading', timeoutS);
        volume = r.value ?? volume;
        if (!r.settled) {
          console.error(`strata: volume ${id} is still uploading to image ${res.imageId} after ${timeoutS} s (see strata image show ${res.imageId})`);
          code = EXIT_CODES.error;
        } else if (volume.statusReason) {
          console.error(`strata: the upload of volume ${id} to image ${res.imageId} failed: ${volume.statusReason}`);
          code = EXIT_CODES.error;
        }
      }
      if (ctx.output === 'json') print(ctx.output, { imageId: res.imageId, volume });
      else console.log(`image ${res.imageId}: volume ${id} ${values.wait && code === EXIT_CODES.ok ? 'uploaded' : `is ${volume.status}`}`);
      return code;
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- volume types -----------------------------------------------------------------------------

const TYPE_COLUMNS = ['id', 'name', 'isPublic', 'backend', 'description', 'properties'];
const typeRow = (t: Obj) => ({ ...t, properties: kvText(t.extraSpecs) });

async function volumeTypeCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata volume-type create NAME [--description D] [--private] [--property K=V]... [--request-id R]
       strata volume-type list [--page-size N] [--page-token T]
       strata volume-type show TYPE
       strata volume-type set TYPE [--name N] [--description D] [--public|--private] [--property K=V]... [--no-property]
       strata volume-type delete TYPE
TYPE is an id or a name. Volume types are made and changed by admins; everyone sees the public
ones (admins: all). A type is public unless --private. Properties are Cinder's extra specs:
volume_backend_name=B sends its volumes to the storage hosts of backend B; multiattach="<is> True"
makes its volumes attachable to several servers. set: --property adds to the ones it has
(--no-property first drops them all). A type volumes use cannot be deleted (exit 8).`;
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(
        rest,
        { description: { type: 'string' }, private: { type: 'boolean' }, property: { type: 'string', multiple: true }, 'request-id': { type: 'string' } },
        usage,
      );
      noMore(positionals, usage, 1);
      const res = await ctx.client().call('CreateVolumeType', {
        name: need(positionals, 'volume type', usage),
        description: str(values.description) ?? '',
        isPublic: !values.private,
        extraSpecs: properties(values.property),
        requestId: str(values['request-id']) ?? '',
      });
      return print(ctx.output, res.volumeType);
    }
    case 'list': {
      const { values, positionals } = parse(rest, PAGE, usage);
      noMore(positionals, usage);
      const res = await ctx.client().call('ListVolumeTypes', paging(values));
      return printList(ctx, res, 'volumeTypes', 'volume_types', (res.volumeTypes as Obj[]).map(typeRow), TYPE_COLUMNS);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 1);
      return print(ctx.output, await getType(ctx, need(positionals, 'volume type', usage)));
    }
    case 'set': {
      const { values, positionals } = parse(
        rest,
        {
          name: { type: 'string' }, description: { type: 'string' }, public: { type: 'boolean' }, private: { type: 'boolean' },
          property: { type: 'string', multiple: true }, 'no-property': { type: 'boolean' },
        },
        usage,
      );
      noMore(positionals, usage, 1);
      const named = need(positionals, 'volume type', usage);
      wants(values, ['name', 'description', 'public', 'private', 'property', 'no-property'], usage);
      const isPublic = pair(values, 'public', 'private');
      const given = properties(values.property);
      const type = await getType(ctx, named);
      const { value, paths } = masked({
        name: str(values.name),
        description: str(values.description),
        isPublic,
        extraSpecs: values.property || values['no-property'] ? { ...(values['no-property'] ? {} : type.extraSpecs), ...given } : undefined,
      });
      return print(ctx.output, (await ctx.client().call('UpdateVolumeType', { ...value, id: type.id, updateMask: { paths } })).volumeType);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 1);
      const id = (await getType(ctx, need(positionals, 'volume type', usage))).id as string;
      await ctx.client().call('DeleteVolumeType', { id });
      return done(ctx, `volume type ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- snapshots --------------------------------------------------------------------------------

const SNAPSHOT_COLUMNS = ['id', 'name', 'volumeId', 'status', 'sizeGb'];
const snapshotDetail = (s: Obj) => ({
  id: s.id,
  name: s.name,
  description: s.description,
  volume_id: s.volumeId,
  status: s.status,
  size_gb: s.sizeGb,
  properties: kvText(s.metadata),
  project: s.projectId,
  created: time(s.createdAtMs),
});
const showSnapshot = (ctx: Context, s: Obj) => print(ctx.output, ctx.output === 'json' ? s : snapshotDetail(s));

async function snapshotCommand(ctx: Context, argv: string[]): Promise<number> {
  const usage = `Usage: strata snapshot create --volume VOLUME [--name N] [--description D] [--property K=V]... [--force] [--request-id R] [--wait] [--timeout S]
       strata snapshot list [--volume VOLUME] [--all-projects] [--page-size N] [--page-token T]
       strata snapshot show SNAPSHOT
       strata snapshot set SNAPSHOT [--name N] [--description D] [--property K=V]... [--no-property]
       strata snapshot delete SNAPSHOT [--force] [--wait] [--timeout S]
VOLUME and SNAPSHOT are ids or names. A snapshot of a volume (available or in-use; --force is
accepted for old scripts and not needed) is made on the volume's storage host: --wait waits until
it is available and exits 1 naming the status on error. delete: available or error (--force,
admins: whatever its status); --wait waits until it is gone. --wait gives up after --timeout
seconds (default 600). set: --property adds to the properties it has.`;
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'create': {
      const { values, positionals, timeoutS } = parseWaiting(
        rest,
        { volume: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, property: { type: 'string', multiple: true }, force: { type: 'boolean' }, 'request-id': { type: 'string' } },
        usage,
      );
      noMore(positionals, usage);
      if (!str(values.volume)) throw new UsageError(`--volume is required: the volume to snapshot\n\n${usage}`);
      const res = await ctx.client().call('CreateSnapshot', {
        volumeId: await volumeId(ctx, str(values.volume)!),
        name: str(values.name) ?? '',
        description: str(values.description) ?? '',
        metadata: properties(values.property),
        force: Boolean(values.force),
        requestId: str(values['request-id']) ?? '',
      });
      let snapshot = res.snapshot as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        const id = snapshot.id as string;
        const r = await poll(() => orGone(ctx.client().call('GetSnapshot', { id }), 'snapshot'), (s) => s !== undefined && (s.status === 'available' || isError(s.status)), timeoutS);
        code = outcome('snapshot', id, r, timeoutS, `strata snapshot show ${id}`);
        snapshot = r.value ?? snapshot;
      }
      showSnapshot(ctx, snapshot);
      return code;
    }
    case 'list': {
      const { values, positionals } = parse(rest, { volume: { type: 'string' }, 'all-projects': { type: 'boolean' }, ...PAGE }, usage);
      noMore(positionals, usage);
      const volume = str(values.volume) ? await volumeId(ctx, str(values.volume)!) : '';
      const res = await ctx.client().call('ListSnapshots', { volumeId: volume, allProjects: Boolean(values['all-projects']), ...paging(values) });
      printList(ctx, res, 'snapshots', 'snapshots', res.snapshots, SNAPSHOT_COLUMNS);
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 1);
      showSnapshot(ctx, (await ctx.client().call('GetSnapshot', { id: await snapshotId(ctx, need(positionals, 'snapshot', usage)) })).snapshot);
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(rest, { name: { type: 'string' }, description: { type: 'string' }, property: { type: 'string', multiple: true }, 'no-property': { type: 'boolean' } }, usage);
      noMore(positionals, usage, 1);
      const snapshot = need(positionals, 'snapshot', usage);
      wants(values, ['name', 'description', 'property', 'no-property'], usage);
      const given = properties(values.property);
      const id = await snapshotId(ctx, snapshot);
      const { value, paths } = masked({
        name: str(values.name),
        description: str(values.description),
        metadata: values.property || values['no-property'] ? { ...(values['no-property'] ? {} : (await ctx.client().call('GetSnapshot', { id })).snapshot.metadata), ...given } : undefined,
      });
      showSnapshot(ctx, (await ctx.client().call('UpdateSnapshot', { ...value, id, updateMask: { paths } })).snapshot);
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { values, positionals, timeoutS } = parseWaiting(rest, { force: { type: 'boolean' } }, usage);
      noMore(positionals, usage, 1);
      const id = await snapshotId(ctx, need(positionals, 'snapshot', usage));
      await ctx.client().call('DeleteSnapshot', { id, force: Boolean(values.force) });
      const wait = values.wait ? await waitGone(ctx, 'GetSnapshot', 'snapshot', id, timeoutS) : undefined;
      return deleted(ctx, 'snapshot', id, wait, timeoutS, `strata snapshot show ${id}`);
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- backups ----------------------------------------------------------------------------------

const BACKUP_COLUMNS = ['id', 'name', 'volumeId', 'status', 'sizeGb'];
const backupDetail = (b: Obj) => ({
  id: b.id,
  name: b.name,
  description: b.description,
  volume_id: b.volumeId,
  ...(b.snapshotId ? { snapshot_id: b.snapshotId } : {}),
  status: b.status,
  ...(b.statusReason ? { status_reason: b.statusReason } : {}),
  size_gb: b.sizeGb,
  size_bytes: b.sizeBytes,
  checksum: b.checksum ? `sha256:${b.checksum}` : '',
  project: b.projectId,
  created: time(b.createdAtMs),
});
const showBackup = (ctx: Context, b: Obj) => print(ctx.output, ctx.output === 'json' ? b : backupDetail(b));

async function backupCommand(ctx: Context, argv: string[]): Promise<number> {
  const usage = `Usage: strata backup create --volume VOLUME [--name N] [--description D] [--force] [--request-id R] [--wait] [--timeout S]
       strata backup list [--volume VOLUME] [--all-projects] [--page-size N] [--page-token T]
       strata backup show BACKUP
       strata backup delete BACKUP [--force] [--wait] [--timeout S]
       strata backup restore BACKUP [--volume VOLUME] [--name N] [--request-id R] [--wait] [--timeout S]
VOLUME and BACKUP are ids or names. A backup streams a volume's data, with its checksum, to the
backup store of its storage host: the volume must be available (in-use with --force, a
crash-consistent copy). --wait waits until the backup is available and exits 1 naming the status
and its reason on error. delete: available or error (--force, admins: whatever its status);
--wait waits until it is gone. restore writes the backup into --volume (an available volume of
yours, at least the backup's size) or into a new volume (named --name) on the backup's host;
--wait waits until that volume is available again. --wait gives up after --timeout seconds (default 600).`;
  const [verb, ...rest] = argv;
  const waitBackup = (id: string, timeoutS: number, settled: (b: Obj) => boolean) =>
    poll(() => orGone(ctx.client().call('GetBackup', { id }), 'backup'), (b) => b !== undefined && (isError(b.status) || settled(b)), timeoutS);
  switch (verb) {
    case 'create': {
      const { values, positionals, timeoutS } = parseWaiting(
        rest,
        { volume: { type: 'string' }, name: { type: 'string' }, description: { type: 'string' }, force: { type: 'boolean' }, 'request-id': { type: 'string' } },
        usage,
      );
      noMore(positionals, usage);
      if (!str(values.volume)) throw new UsageError(`--volume is required: the volume to back up\n\n${usage}`);
      const res = await ctx.client().call('CreateBackup', {
        volumeId: await volumeId(ctx, str(values.volume)!),
        name: str(values.name) ?? '',
        description: str(values.description) ?? '',
        force: Boolean(values.force),
        requestId: str(values['request-id']) ?? '',
      });
      let backup = res.backup as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        const r = await waitBackup(backup.id, timeoutS, (b) => b.status === 'available');
        code = outcome('backup', backup.id, r, timeoutS, `strata backup show ${backup.id}`);
        backup = r.value ?? backup;
      }
      showBackup(ctx, backup);
      return code;
    }
    case 'list': {
      const { values, positionals } = parse(rest, { volume: { type: 'string' }, 'all-projects': { type: 'boolean' }, ...PAGE }, usage);
      noMore(positionals, usage);
      const volume = str(values.volume) ? await volumeId(ctx, str(values.volume)!) : '';
      const res = await ctx.client().call('ListBackups', { volumeId: volume, allProjects: Boolean(values['all-projects']), ...paging(values) });
      printList(ctx, res, 'backups', 'backups', res.backups, BACKUP_COLUMNS);
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 1);
      showBackup(ctx, (await ctx.client().call('GetBackup', { id: await backupId(ctx, need(positionals, 'backup', usage)) })).backup);
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { values, positionals, timeoutS } = parseWaiting(rest, { force: { type: 'boolean' } }, usage);
      noMore(positionals, usage, 1);
      const id = await backupId(ctx, need(positionals, 'backup', usage));
      await ctx.client().call('DeleteBackup', { id, force: Boolean(values.force) });
      const wait = values.wait ? await waitGone(ctx, 'GetBackup', 'backup', id, timeoutS) : undefined;
      return deleted(ctx, 'backup', id, wait, timeoutS, `strata backup show ${id}`);
    }
    case 'restore': {
      const { values, positionals, timeoutS } = parseWaiting(rest, { volume: { type: 'string' }, name: { type: 'string' }, 'request-id': { type: 'string' } }, usage);
      noMore(positionals, usage, 1);
      const named = need(positionals, 'backup', usage);
      if (str(values.volume) && str(values.name)) throw new UsageError(`--volume and --name exclude each other: --name names the new volume made when no --volume is given\n\n${usage}`);
      const id = await backupId(ctx, named);
      const res = await ctx.client().call('RestoreBackup', {
        id,
        volumeId: str(values.volume) ? await volumeId(ctx, str(values.volume)!) : '',
        name: str(values.name) ?? '',
        requestId: str(values['request-id']) ?? '',
      });
      let { backup, volume } = res as Obj;
      let code: number = EXIT_CODES.ok;
      if (values.wait) {
        // The volume is restoring-backup until its host has written it, and the backup restoring meanwhile.
        const v = await waitVolume(ctx, volume.id, timeoutS);
        code = outcome('volume', volume.id, v, timeoutS, `strata volume show ${volume.id}`);
        volume = v.value ?? volume;
        if (code === EXIT_CODES.ok) {
          const b = await waitBackup(id, timeoutS, (x) => x.status !== 'restoring');
          code = outcome('backup', id, b, timeoutS, `strata backup show ${id}`);
          backup = b.value ?? backup;
        }
      }
      if (ctx.output === 'json') print(ctx.output, { backup, volume });
      else {
        console.log(`backup ${id} ${values.wait && code === EXIT_CODES.ok ? 'restored' : 'restoring'} into volume ${volume.id}`);
        print(ctx.output, volumeDetail(volume));
      }
      return code;
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- storage hosts ----------------------------------------------------------------------------

async function storageHostCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata storage-host list
The storage hosts (block agents) with their backend, availability zone and capacity in GiB: total,
free as the host reported it, and allocated to the volumes it holds (admins; Cinder's get-pools).`;
  const [verb, ...rest] = argv;
  if (verb !== 'list') helpOrUsage(verb, usage);
  const { positionals } = parse(rest, {}, usage);
  noMore(positionals, usage);
  const res = await ctx.client().call('ListStorageHosts', {});
  if (ctx.output === 'json') return print(ctx.output, { hosts: res.hosts });
  const rows = (res.hosts as Obj[]).map((h) => ({ host: h.hostId, backend: h.backend, zone: h.availabilityZone, total_gb: h.totalGb, free_gb: h.freeGb, allocated_gb: h.allocatedGb, volumes: h.volumes }));
  print(ctx.output, rows, ['host', 'backend', 'zone', 'total_gb', 'free_gb', 'allocated_gb', 'volumes']);
}

// ---- a server's volumes -----------------------------------------------------------------------

const ATTACHMENT_COLUMNS = ['id', 'volume', 'device', 'status', 'mode', 'delete_on_termination'];
const attachmentRow = (a: Obj) => ({ id: a.id, volume: a.volumeId, device: a.device, status: a.status, mode: a.mode, delete_on_termination: a.deleteOnTermination });

/** The attachment of a volume to a server, as ListServerVolumes has it now (undefined: none). */
async function attachmentOf(ctx: Context, serverId: string, volume: string): Promise<Obj | undefined> {
  return ((await ctx.client().call('ListServerVolumes', { serverId })).attachments as Obj[]).find((a) => a.volumeId === volume);
}

/**
 * strata server add volume SERVER VOLUME, remove volume SERVER VOLUME, volume list SERVER (Nova's
 * os-volume_attachments); `verb` is add, remove or volume. Returns the exit code.
 */
export async function serverVolumeCommand(ctx: Context, verb: string, argv: string[]): Promise<number> {
  const usage = SERVER_VOLUME_HELP;
  if (verb === 'volume') {
    const [what, ...rest] = argv;
    if (what !== 'list') helpOrUsage(what, usage);
    const { positionals } = parse(rest, {}, usage);
    noMore(positionals, usage, 1);
    const res = await ctx.client().call('ListServerVolumes', { serverId: need(positionals, 'server', usage) });
    if (ctx.output === 'json') print(ctx.output, { attachments: res.attachments });
    else print(ctx.output, (res.attachments as Obj[]).map(attachmentRow), ATTACHMENT_COLUMNS);
    return EXIT_CODES.ok;
  }
  const options: Options = verb === 'add' ? { 'delete-on-termination': { type: 'boolean' }, 'request-id': { type: 'string' } } : {};
  const { values, positionals, timeoutS } = parseWaiting(argv, options, usage);
  noMore(positionals, usage, 2);
  const serverId = need(positionals, 'server', usage);
  if (!positionals[1]) throw new UsageError(`name the volume\n\n${usage}`);
  const volume = await volumeId(ctx, positionals[1]);
  let attachment: Obj;
  let code: number = EXIT_CODES.ok;
  if (verb === 'add') {
    attachment = (await ctx.client().call('AttachVolume', { serverId, volumeId: volume, deleteOnTermination: Boolean(values['delete-on-termination']), requestId: str(values['request-id']) ?? '' })).attachment;
    if (values.wait) {
      const r = await poll(() => attachmentOf(ctx, serverId, volume), (a) => a === undefined || a.status === 'attached', timeoutS);
      if (!r.settled) {
        console.error(`strata: the attachment of volume ${volume} to server ${serverId} is still ${r.value?.status} after ${timeoutS} s: see strata server volume list ${serverId}`);
        code = EXIT_CODES.error;
      } else if (!r.value) {
        // The attachment was undone: the volume says why.
        const v = (await ctx.client().call('GetVolume', { id: volume })).volume as Obj;
        console.error(`strata: volume ${volume} was not attached to server ${serverId}: it is ${v.status}${v.statusReason ? `: ${v.statusReason}` : ''}`);
        code = EXIT_CODES.error;
      } else attachment = r.value;
    }
  } else {
    attachment = (await ctx.client().call('DetachVolume', { serverId, volumeId: volume })).attachment;
    if (values.wait) {
      const r = await poll(() => attachmentOf(ctx, serverId, volume), (a) => a === undefined, timeoutS);
      if (!r.settled) {
        console.error(`strata: the attachment of volume ${volume} to server ${serverId} is still ${r.value?.status} after ${timeoutS} s: see strata server volume list ${serverId}`);
        code = EXIT_CODES.error;
      } else attachment = { ...attachment, status: 'detached' };
    }
  }
  if (ctx.output === 'json') print(ctx.output, attachment);
  else console.log(`volume ${volume} ${verb === 'add' ? 'on' : 'off'} server ${serverId}: ${attachment.status}${attachment.device ? ` (${attachment.device})` : ''}`);
  return code;
}

// ---- block quotas (strata quota, cli/compute.ts) ----------------------------------------------

/** `openstack quota set`'s volume flags -> Cinder's quota names. */
export const BLOCK_QUOTA_FLAGS: Record<string, string> = {
  volumes: 'volumes',
  gigabytes: 'gigabytes',
  snapshots: 'snapshots',
  backups: 'backups',
  'backup-gigabytes': 'backup_gigabytes',
};

/** A project's block quotas (GetBlockQuota), or undefined from a cloud that has no block storage (UNIMPLEMENTED). */
export async function blockQuota(ctx: Context, projectId: string, limits?: Record<string, number>): Promise<Obj | undefined> {
  try {
    const res = limits && Object.keys(limits).length > 0 ? await ctx.client().call('SetBlockQuota', { projectId, limits }) : await ctx.client().call('GetBlockQuota', { projectId });
    return res.quota;
  } catch (e) {
    if ((e as { code?: number }).code === 12 && !(limits && Object.keys(limits).length > 0)) return undefined;
    throw e;
  }
}

/** Runs a block command; returns the exit code. */
export async function blockCommand(ctx: Context, command: string, argv: string[]): Promise<number> {
  switch (command) {
    case 'volume':
      return volumeCommand(ctx, argv);
    case 'volume-type':
      await volumeTypeCommand(ctx, argv);
      return EXIT_CODES.ok;
    case 'snapshot':
      return snapshotCommand(ctx, argv);
    case 'backup':
      return backupCommand(ctx, argv);
    case 'storage-host':
      await storageHostCommand(ctx, argv);
      return EXIT_CODES.ok;
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
