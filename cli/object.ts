// The object storage commands of the strata CLI (ObjectService, proto/strata/object/v1): Swift's
// account, containers and objects, and the ring (admin). Bodies stream: an upload reads its file
// with a read stream (never whole), hashing it as it goes, and checks the ETag the cloud returns
// against that MD5; a download writes to a temporary name beside the target, checks size and MD5
// (simple objects) and renames it into place. Files larger than --segment-size go as segments into
// CONTAINER_segments plus a static large object manifest (Swift's SLO: no object above 5 GiB).
// Every command takes --account AUTH_x to act on another project's account (ACL'd containers).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve, sep } from 'node:path';
import { done, EXIT_CODES, helpOrUsage, int, need, parse, str, UsageError, type Context, type Options } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const OBJECT_COMMANDS = ['container', 'object', 'ring', 'account'];

export const OBJECT_HELP = `  account show
  container create|list|show|set|delete
  object upload|download|list|show|set|delete
  ring show|add-device|remove-device|set-weight|rebalance   (admin)`;

const GiB = 1024 * 1024 * 1024;
/** Swift's largest object: anything bigger must be segmented. */
const MAX_OBJECT = 5 * GiB;
/** ListObjects / ListContainers page (the API's maximum). */
const PAGE = 10_000;

const ACCOUNT: Options = { account: { type: 'string' } };
const ACCOUNT_USAGE = '  --account AUTH_x   act on another account (its containers\' ACLs must let you); default: your project\'s';

const time = (ms: unknown) => (Number(ms) > 0 ? new Date(Number(ms)).toISOString() : '');
const accountOf = (values: Obj) => str(values.account) ?? '';

/** KEY=VALUE options into a map (keys lower-case, as Swift's metadata). */
function meta(values: unknown, flag = '--meta'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (values as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i).toLowerCase()] = kv.slice(i + 1);
  }
  return out;
}

/** Repeatable and comma-separated list options (--read-acl a --read-acl b,c). */
const list = (values: unknown): string[] | undefined =>
  values === undefined ? undefined : (values as string[]).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);

function nonNegative(flag: string, v: unknown): number | undefined {
  const n = int(flag, v);
  if (n !== undefined && n < 0) throw new UsageError(`--${flag} takes an integer of at least 0, got "${String(v)}"`);
  return n;
}

function noMore(positionals: string[], usage: string, after: number): void {
  const extra = positionals.slice(after);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${extra[0]}\n\n${usage}`);
}

const kvText = (m: Obj | undefined) =>
  Object.entries(m ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

// ---- account ----------------------------------------------------------------------------------

const ACCOUNT_HELP = `Usage: strata account show [--account AUTH_x]

The account's containers, objects and bytes (the listing's figures: they lag writes slightly, as in Swift).`;

async function accountCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'show') helpOrUsage(verb, ACCOUNT_HELP);
  const { values, positionals } = parse(rest, ACCOUNT, ACCOUNT_HELP);
  noMore(positionals, ACCOUNT_HELP, 0);
  const a = await ctx.client().call('GetAccount', { account: accountOf(values) });
  print(ctx.output, { account: a.account, container_count: Number(a.containerCount), object_count: Number(a.objectCount), bytes_used: Number(a.bytesUsed) });
  return EXIT_CODES.ok;
}

// ---- containers -------------------------------------------------------------------------------

export const CONTAINER_USAGE = `Usage: strata container create NAME [--read-acl ACL]... [--write-acl ACL]... [--meta K=V]... [--quota-bytes N] [--quota-count N]
       strata container list [--prefix P] [--marker M] [--end-marker M] [--limit N]
       strata container show NAME
       strata container set NAME [--read-acl ACL]... [--write-acl ACL]... [--meta K=V]... [--quota-bytes N] [--quota-count N]
       strata container delete NAME

--read-acl / --write-acl are repeatable or comma lists: ".r:*" (anyone may read), "PROJECT:*",
"PROJECT:USER", "*:USER" (Swift's X-Container-Read / X-Container-Write; ".r:*" only for reading).
--meta K=V sets X-Container-Meta-K; --quota-bytes / --quota-count are Swift's container quotas
(0 = none). set changes only the settings given (--meta adds to the metadata; --meta K= removes K).
delete refuses a container that still holds objects (exit 8, naming the count).
${ACCOUNT_USAGE}`;

const SETTINGS: Options = {
  'read-acl': { type: 'string', multiple: true },
  'write-acl': { type: 'string', multiple: true },
  meta: { type: 'string', multiple: true },
  'quota-bytes': { type: 'string' },
  'quota-count': { type: 'string' },
};

function containerRow(d: Obj): Obj {
  const c = d.container ?? {};
  return {
    account: c.account,
    name: c.name,
    object_count: Number(d.objectCount ?? 0),
    bytes_used: Number(d.bytesUsed ?? 0),
    read_acl: c.readAcl ?? [],
    write_acl: c.writeAcl ?? [],
    metadata: kvText(c.metadata),
    quota_bytes: Number(c.quotaBytes ?? 0),
    quota_count: Number(c.quotaCount ?? 0),
    created: time(c.createdAtMs),
  };
}

const printContainer = (ctx: Context, d: Obj, extra: Obj = {}) => print(ctx.output, ctx.output === 'json' ? { ...d, ...extra } : { ...containerRow(d), ...extra });

async function containerCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const usage = CONTAINER_USAGE;
  const client = () => ctx.client();
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(rest, { ...ACCOUNT, ...SETTINGS }, usage);
      const name = need(positionals, 'container', usage);
      noMore(positionals, usage, 1);
      const container = {
        account: accountOf(values),
        name,
        metadata: meta(values.meta),
        readAcl: list(values['read-acl']) ?? [],
        writeAcl: list(values['write-acl']) ?? [],
        quotaBytes: nonNegative('quota-bytes', values['quota-bytes']) ?? 0,
        quotaCount: nonNegative('quota-count', values['quota-count']) ?? 0,
      };
      const res = await client().call('CreateContainer', { container });
      printContainer(ctx, res.container, { created: Boolean(res.created) });
      return EXIT_CODES.ok;
    }
    case 'list': {
      const { values, positionals } = parse(rest, { ...ACCOUNT, prefix: { type: 'string' }, marker: { type: 'string' }, 'end-marker': { type: 'string' }, limit: { type: 'string' } }, usage);
      noMore(positionals, usage, 0);
      const limit = nonNegative('limit', values.limit) ?? 0;
      const res = await client().call('ListContainers', { account: accountOf(values), prefix: str(values.prefix) ?? '', marker: str(values.marker) ?? '', endMarker: str(values['end-marker']) ?? '', limit });
      const rows = (res.containers ?? []).map((c: Obj) => ({ name: c.name, count: Number(c.count), bytes: Number(c.bytes), last_modified: time(c.lastModifiedMs) }));
      if (ctx.output === 'json') print(ctx.output, { containers: rows });
      else print(ctx.output, rows, ['name', 'count', 'bytes', 'last_modified']);
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { values, positionals } = parse(rest, ACCOUNT, usage);
      const name = need(positionals, 'container', usage);
      noMore(positionals, usage, 1);
      printContainer(ctx, (await client().call('GetContainer', { account: accountOf(values), name })).container);
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(rest, { ...ACCOUNT, ...SETTINGS }, usage);
      const name = need(positionals, 'container', usage);
      noMore(positionals, usage, 1);
      const flags = Object.keys(SETTINGS);
      if (!flags.some((f) => values[f] !== undefined)) throw new UsageError(`nothing to change: ${flags.map((f) => `--${f}`).join(', ')}\n\n${usage}`);
      const account = accountOf(values);
      const container: Obj = { account, name };
      const mask: string[] = [];
      if (values.meta !== undefined) {
        // Swift's POST adds to the metadata; an empty value removes the key.
        const current = (await client().call('GetContainer', { account, name })).container.container.metadata ?? {};
        const merged: Record<string, string> = { ...current, ...meta(values.meta) };
        for (const [k, v] of Object.entries(merged)) if (v === '') delete merged[k];
        container.metadata = merged;
        mask.push('metadata');
      }
      if (values['read-acl'] !== undefined) (container.readAcl = list(values['read-acl'])), mask.push('read_acl');
      if (values['write-acl'] !== undefined) (container.writeAcl = list(values['write-acl'])), mask.push('write_acl');
      if (values['quota-bytes'] !== undefined) (container.quotaBytes = nonNegative('quota-bytes', values['quota-bytes'])), mask.push('quota_bytes');
      if (values['quota-count'] !== undefined) (container.quotaCount = nonNegative('quota-count', values['quota-count'])), mask.push('quota_count');
      printContainer(ctx, (await client().call('UpdateContainer', { container, updateMask: mask })).container);
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, ACCOUNT, usage);
      const name = need(positionals, 'container', usage);
      noMore(positionals, usage, 1);
      await client().call('DeleteContainer', { account: accountOf(values), name });
      done(ctx, `container ${name} deleted`, { deleted: name });
      return EXIT_CODES.ok;
    }
    default:
      return helpOrUsage(verb, usage);
  }
}

// ---- objects ----------------------------------------------------------------------------------

export const OBJECT_USAGE = `Usage: strata object upload CONTAINER PATH... [--name NAME] [--segment-size BYTES] [--content-type T] [--meta K=V]...
       strata object download CONTAINER NAME [--file F]     (F "-" = standard output; default: ./NAME)
       strata object download CONTAINER --dir D [--prefix P]
       strata object list CONTAINER [--prefix P] [--delimiter D] [--marker M] [--end-marker M] [--limit N] [--reverse]
       strata object show CONTAINER NAME
       strata object set CONTAINER NAME [--meta K=V]... [--content-type T]
       strata object delete CONTAINER NAME...

upload: a file is streamed from disk as object NAME (default: its file name); a directory uploads
every file under it as "DIR/sub/file" (DIR = the directory's name, or --name). A file larger than
--segment-size (default 1073741824 = 1 GiB; at most 5 GiB, Swift's largest object) goes as segments
into CONTAINER_segments plus a static large object manifest. The ETag the cloud returns is checked
against the MD5 computed while reading; a mismatch fails the command. Prints name, etag and size.
download: one object to a file (written under a temporary name, then renamed), or with --dir every
object (under --prefix) into a directory tree; the size, and the MD5 of simple objects, are checked
while writing. set replaces the object's metadata (Swift's POST) with the --meta given.
${ACCOUNT_USAGE}`;

const TYPES: Record<string, string> = {
  '.txt': 'text/plain', '.html': 'text/html', '.json': 'application/json', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png',
  '.gif': 'image/gif', '.pdf': 'application/pdf', '.gz': 'application/gzip', '.tar': 'application/x-tar', '.iso': 'application/x-iso9660-image',
  '.qcow2': 'application/octet-stream', '.csv': 'text/csv', '.xml': 'application/xml', '.js': 'text/javascript', '.css': 'text/css',
};
const contentTypeOf = (path: string) => TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';

/** A file's bytes [start, end) as a read stream, hashed as they pass. */
function hashedFile(path: string, start: number, end: number) {
  const hash = createHash('md5');
  let bytes = 0;
  async function* body(): AsyncGenerator<Uint8Array> {
    if (end <= start) return;
    for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: 256 * 1024 })) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { body: body(), result: () => ({ md5: hash.digest('hex'), bytes }) };
}

/** Every file under dir (sorted, recursively), as [absolute path, path relative to dir with '/']. */
async function walk(dir: string): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const visit = async (d: string) => {
    const entries = (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isFile()) out.push([p, relative(dir, p).split(sep).join('/')]);
    }
  };
  await visit(dir);
  return out;
}

const cleanEtag = (e: unknown) => String(e ?? '').replace(/"/g, '');

interface UploadOptions {
  account: string;
  container: string;
  segmentSize: number;
  contentType?: string;
  metadata: Record<string, string>;
}

async function putOne(ctx: Context, o: UploadOptions, path: string, name: string, size: number): Promise<Obj> {
  const client = ctx.client();
  const contentType = o.contentType ?? contentTypeOf(path);
  if (size <= o.segmentSize) {
    const file = hashedFile(path, 0, size);
    const res = await client.upload('PutObject', { account: o.account, container: o.container, name, contentType, metadata: o.metadata, contentLength: size }, file.body);
    const { md5, bytes } = file.result();
    if (bytes !== size) throw new Error(`${path} changed while it was read: ${bytes} bytes read, ${size} expected`);
    if (cleanEtag(res.etag) !== md5) throw new Error(`ETag mismatch for ${o.container}/${name}: the cloud stored ${cleanEtag(res.etag)}, the file's MD5 is ${md5}`);
    return { name, etag: cleanEtag(res.etag), size: Number(res.size), segments: 0 };
  }
  // A static large object: segments in CONTAINER_segments, then the manifest.
  const segContainer = `${o.container}_segments`;
  await client.call('CreateContainer', { container: { account: o.account, name: segContainer } });
  const stamp = (Date.now() / 1000).toFixed(5);
  const segments: { path: string; etag: string; size: number }[] = [];
  for (let start = 0, i = 0; start < size; start += o.segmentSize, i++) {
    const end = Math.min(size, start + o.segmentSize);
    const segName = `${name}/slo/${stamp}/${size}/${o.segmentSize}/${String(i).padStart(8, '0')}`;
    const file = hashedFile(path, start, end);
    const res = await client.upload('PutObject', { account: o.account, container: segContainer, name: segName, contentType: 'application/octet-stream', contentLength: end - start }, file.body);
    const { md5, bytes } = file.result();
    if (bytes !== end - start) throw new Error(`${path} changed while it was read: segment ${i} has ${bytes} bytes, ${end - start} expected`);
    if (cleanEtag(res.etag) !== md5) throw new Error(`ETag mismatch for segment ${segContainer}/${segName}: the cloud stored ${cleanEtag(res.etag)}, the file's MD5 is ${md5}`);
    segments.push({ path: `${segContainer}/${segName}`, etag: md5, size: bytes });
  }
  const res = await client.call('PutManifest', { account: o.account, container: o.container, name, contentType, metadata: o.metadata, segments });
  const expected = createHash('md5').update(segments.map((s) => s.etag).join('')).digest('hex');
  if (cleanEtag(res.etag) !== expected) throw new Error(`ETag mismatch for the manifest ${o.container}/${name}: the cloud says ${cleanEtag(res.etag)}, the segments' MD5s give ${expected}`);
  if (Number(res.size) !== size) throw new Error(`size mismatch for the manifest ${o.container}/${name}: the cloud says ${res.size}, the file has ${size}`);
  return { name, etag: cleanEtag(res.etag), size: Number(res.size), segments: segments.length };
}

async function upload(ctx: Context, argv: string[]): Promise<number> {
  const usage = OBJECT_USAGE;
  const { values, positionals } = parse(argv, { ...ACCOUNT, name: { type: 'string' }, 'segment-size': { type: 'string' }, 'content-type': { type: 'string' }, meta: { type: 'string', multiple: true } }, usage);
  const container = need(positionals, 'container', usage);
  const paths = positionals.slice(1);
  if (paths.length === 0) throw new UsageError(`name a file or directory to upload\n\n${usage}`);
  const segmentSize = int('segment-size', values['segment-size']) ?? GiB;
  if (segmentSize < 1 || segmentSize > MAX_OBJECT) throw new UsageError(`--segment-size takes a size in bytes from 1 to ${MAX_OBJECT} (5 GiB, Swift's largest object), got "${String(values['segment-size'])}"`);
  const name = str(values.name);
  if (name !== undefined && paths.length > 1) throw new UsageError(`--name names one upload: give one PATH with it\n\n${usage}`);
  const o: UploadOptions = { account: accountOf(values), container, segmentSize, contentType: str(values['content-type']), metadata: meta(values.meta) };
  // Everything is checked before anything is sent.
  const work: [string, string, number][] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new UsageError(`no such file or directory: ${p}`);
    if (s.isDirectory()) {
      const prefix = (name ?? basename(resolve(p))).replace(/\/+$/, '');
      for (const [abs, rel] of await walk(p)) work.push([abs, prefix ? `${prefix}/${rel}` : rel, (await stat(abs)).size]);
    } else if (s.isFile()) work.push([p, name ?? basename(p), s.size]);
    else throw new UsageError(`not a file or directory: ${p}`);
  }
  const rows: Obj[] = [];
  for (const [path, objectName, size] of work) rows.push(await putOne(ctx, o, path, objectName, size));
  if (ctx.output === 'json') print(ctx.output, { objects: rows });
  else print(ctx.output, rows, ['name', 'etag', 'size', 'segments']);
  return EXIT_CODES.ok;
}

/** Streams one object into `target` ("-": stdout) via a temporary file; checks size and MD5. */
async function fetchTo(ctx: Context, account: string, container: string, name: string, target: string): Promise<Obj> {
  const { header, body, cancel } = await ctx.client().download('GetObject', { account, container, name });
  const hash = createHash('md5');
  let bytes = 0;
  const toStdout = target === '-';
  const tmp = toStdout ? '' : join(dirname(target), `.${basename(target)}.strata-${process.pid}-${Date.now()}.tmp`);
  try {
    if (!toStdout) await mkdir(dirname(target), { recursive: true });
    const out: NodeJS.WritableStream = toStdout ? process.stdout : createWriteStream(tmp, { flags: 'wx' });
    const failed = new Promise<never>((_, reject) => out.once('error', reject));
    failed.catch(() => undefined);
    for await (const chunk of body) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!out.write(chunk)) await Promise.race([new Promise((r) => out.once('drain', r)), failed]);
    }
    if (!toStdout) await Promise.race([new Promise<void>((r) => out.end(() => r())), failed]);
    const size = Number(header.size);
    if (bytes !== size) throw new Error(`size mismatch for ${container}/${name}: ${bytes} bytes received, the object has ${size}`);
    const md5 = hash.digest('hex');
    if (!header.largeObject && md5 !== cleanEtag(header.etag)) throw new Error(`MD5 mismatch for ${container}/${name}: received ${md5}, ETag ${cleanEtag(header.etag)}`);
    if (!toStdout) await rename(tmp, target);
    return { name, file: toStdout ? '-' : target, size: bytes, etag: cleanEtag(header.etag), md5 };
  } catch (e) {
    cancel();
    if (!toStdout) await rm(tmp, { force: true });
    throw e;
  }
}

/** Every object of a container (under prefix), paging through the listing. */
async function allObjects(ctx: Context, account: string, container: string, prefix: string): Promise<Obj[]> {
  const out: Obj[] = [];
  let marker = '';
  for (;;) {
    const res = await ctx.client().call('ListObjects', { account, container, prefix, marker, limit: PAGE });
    const page = (res.objects ?? []) as Obj[];
    out.push(...page.filter((o) => !o.subdir));
    if (page.length < PAGE) return out;
    marker = page[page.length - 1].name;
  }
}

/** A safe place for an object under dir: no absolute names, no "..". */
function under(dir: string, name: string): string {
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) throw new Error(`object name "${name}" cannot be a file under ${dir}`);
  return join(dir, ...parts);
}

async function download(ctx: Context, argv: string[]): Promise<number> {
  const usage = OBJECT_USAGE;
  const { values, positionals } = parse(argv, { ...ACCOUNT, file: { type: 'string' }, dir: { type: 'string' }, prefix: { type: 'string' } }, usage);
  const container = need(positionals, 'container', usage);
  noMore(positionals, usage, 2);
  const account = accountOf(values);
  const name = positionals[1];
  const file = str(values.file);
  const dir = str(values.dir);
  if (file !== undefined && dir !== undefined) throw new UsageError('--file and --dir exclude each other');
  if (name !== undefined) {
    if (dir !== undefined) throw new UsageError(`--dir downloads a whole container (with --prefix): drop NAME, or use --file\n\n${usage}`);
    if (values.prefix !== undefined) throw new UsageError('--prefix goes with --dir, not with NAME');
    const row = await fetchTo(ctx, account, container, name, file ?? under('.', name));
    if (file !== '-') print(ctx.output, row);
    return EXIT_CODES.ok;
  }
  if (dir === undefined) throw new UsageError(`name the object, or give --dir D to download the container\n\n${usage}`);
  const rows: Obj[] = [];
  for (const o of await allObjects(ctx, account, container, str(values.prefix) ?? '')) {
    if (String(o.name).endsWith('/') && Number(o.bytes) === 0) {
      await mkdir(under(dir, o.name), { recursive: true }); // a pseudo-directory marker
      continue;
    }
    const row = await fetchTo(ctx, account, container, o.name, under(dir, o.name));
    rows.push({ name: row.name, file: row.file, size: row.size });
  }
  if (ctx.output === 'json') print(ctx.output, { objects: rows });
  else print(ctx.output, rows, ['name', 'file', 'size']);
  return EXIT_CODES.ok;
}

const objectRow = (h: Obj) => ({
  account: h.account,
  container: h.container,
  name: h.name,
  etag: cleanEtag(h.etag),
  size: Number(h.size),
  content_type: h.contentType,
  metadata: kvText(h.metadata),
  last_modified: time(h.lastModifiedMs),
  timestamp: h.timestamp,
  large_object: Boolean(h.largeObject),
});

async function objectCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const usage = OBJECT_USAGE;
  switch (verb) {
    case 'upload':
      return upload(ctx, rest);
    case 'download':
      return download(ctx, rest);
    case 'list': {
      const { values, positionals } = parse(
        rest,
        { ...ACCOUNT, prefix: { type: 'string' }, delimiter: { type: 'string' }, marker: { type: 'string' }, 'end-marker': { type: 'string' }, limit: { type: 'string' }, reverse: { type: 'boolean' } },
        usage,
      );
      const container = need(positionals, 'container', usage);
      noMore(positionals, usage, 1);
      const res = await ctx.client().call('ListObjects', {
        account: accountOf(values), container, prefix: str(values.prefix) ?? '', delimiter: str(values.delimiter) ?? '', marker: str(values.marker) ?? '',
        endMarker: str(values['end-marker']) ?? '', limit: nonNegative('limit', values.limit) ?? 0, reverse: Boolean(values.reverse),
      });
      const rows = ((res.objects ?? []) as Obj[]).map((o) =>
        o.subdir ? { name: '', subdir: o.subdir } : { name: o.name, bytes: Number(o.bytes), hash: o.hash, content_type: o.contentType, last_modified: time(o.lastModifiedMs) },
      );
      if (ctx.output === 'json') print(ctx.output, { objects: rows });
      else print(ctx.output, rows.map((r) => (r.subdir ? { name: r.subdir, bytes: '', hash: '', content_type: '(subdir)', last_modified: '' } : r)), ['name', 'bytes', 'hash', 'content_type', 'last_modified']);
      return EXIT_CODES.ok;
    }
    case 'show': {
      const { values, positionals } = parse(rest, ACCOUNT, usage);
      const container = need(positionals, 'container', usage);
      const name = need(positionals.slice(1), 'object', usage);
      noMore(positionals, usage, 2);
      const h = (await ctx.client().call('HeadObject', { account: accountOf(values), container, name })).object;
      print(ctx.output, ctx.output === 'json' ? h : objectRow(h));
      return EXIT_CODES.ok;
    }
    case 'set': {
      const { values, positionals } = parse(rest, { ...ACCOUNT, meta: { type: 'string', multiple: true }, 'content-type': { type: 'string' } }, usage);
      const container = need(positionals, 'container', usage);
      const name = need(positionals.slice(1), 'object', usage);
      noMore(positionals, usage, 2);
      if (values.meta === undefined && values['content-type'] === undefined) throw new UsageError(`nothing to change: --meta or --content-type\n\n${usage}`);
      const account = accountOf(values);
      // Swift's POST replaces the metadata: without --meta, keep what is there.
      const metadata = values.meta !== undefined ? meta(values.meta) : ((await ctx.client().call('HeadObject', { account, container, name })).object.metadata ?? {});
      const h = (await ctx.client().call('UpdateObjectMetadata', { account, container, name, metadata, contentType: str(values['content-type']) ?? '' })).object;
      print(ctx.output, ctx.output === 'json' ? h : objectRow(h));
      return EXIT_CODES.ok;
    }
    case 'delete': {
      const { values, positionals } = parse(rest, ACCOUNT, usage);
      const container = need(positionals, 'container', usage);
      const names = positionals.slice(1);
      if (names.length === 0) throw new UsageError(`name the object(s)\n\n${usage}`);
      for (const name of names) {
        await ctx.client().call('DeleteObject', { account: accountOf(values), container, name });
        if (ctx.output !== 'json') console.log(`object ${container}/${name} deleted`);
      }
      if (ctx.output === 'json') print(ctx.output, { deleted: names });
      return EXIT_CODES.ok;
    }
    default:
      return helpOrUsage(verb, usage);
  }
}

// ---- the ring ---------------------------------------------------------------------------------

export const RING_USAGE = `Usage: strata ring show
       strata ring add-device --id N --zone Z [--region R] --host ADDR:PORT --device NAME [--weight W]
       strata ring remove-device ID
       strata ring set-weight ID W
       strata ring rebalance

The ring places each object's replicas on devices (admin only). add-device, remove-device and
set-weight change the builder; the assignment changes at the next rebalance, which moves as few
partitions as it can (a device with weight 0 drains). --region defaults to 1, --weight to 100;
device ids are never reused. show lists each device's partitions, whether it is pending (in the
builder but not yet in the assignment, or the other way round) and whether its object server is up.`;

function printRing(ctx: Context, ring: Obj): void {
  if (ctx.output === 'json') return print(ctx.output, ring);
  console.log(`version ${ring.version ?? 0}  part_power ${ring.partPower ?? 0}  replicas ${ring.replicas ?? 0}  last_moved ${ring.lastMoved ?? 0}`);
  const rows = ((ring.devices ?? []) as Obj[]).map((d) => ({
    id: d.device?.id, region: d.device?.region, zone: d.device?.zone, host: d.device?.host, device: d.device?.device, weight: d.device?.weight,
    partitions: d.partitions ?? 0, pending: Boolean(d.pending), up: Boolean(d.up),
  }));
  print(ctx.output, rows, ['id', 'region', 'zone', 'host', 'device', 'weight', 'partitions', 'pending', 'up']);
}

function number(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || String(v).trim() === '') throw new UsageError(`${flag} takes a number of at least 0, got "${String(v)}"`);
  return n;
}

async function ringCommand(ctx: Context, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  const usage = RING_USAGE;
  const client = () => ctx.client();
  switch (verb) {
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 0);
      printRing(ctx, (await client().call('GetRing', {})).ring);
      return EXIT_CODES.ok;
    }
    case 'add-device': {
      const { values, positionals } = parse(rest, { id: { type: 'string' }, zone: { type: 'string' }, region: { type: 'string' }, host: { type: 'string' }, device: { type: 'string' }, weight: { type: 'string' } }, usage);
      noMore(positionals, usage, 0);
      for (const f of ['id', 'zone', 'host', 'device']) if (values[f] === undefined) throw new UsageError(`--${f} is required\n\n${usage}`);
      const id = int('id', values.id)!;
      if (id < 1) throw new UsageError(`--id takes an integer of at least 1, got "${String(values.id)}"`);
      const host = str(values.host)!;
      if (!/^[^\s:]+:\d{1,5}$/.test(host)) throw new UsageError(`--host takes ADDR:PORT, got "${host}"`);
      const device = { id, zone: int('zone', values.zone), region: int('region', values.region) ?? 1, host, device: str(values.device), weight: number('--weight', values.weight) ?? 100 };
      printRing(ctx, (await client().call('AddRingDevice', { device })).ring);
      return EXIT_CODES.ok;
    }
    case 'remove-device': {
      const { positionals } = parse(rest, {}, usage);
      const id = int('id', need(positionals, 'device id', usage))!;
      noMore(positionals, usage, 1);
      printRing(ctx, (await client().call('RemoveRingDevice', { deviceId: id })).ring);
      return EXIT_CODES.ok;
    }
    case 'set-weight': {
      const { positionals } = parse(rest, {}, usage);
      const id = int('id', need(positionals, 'device id', usage))!;
      if (positionals[1] === undefined) throw new UsageError(`give the weight: strata ring set-weight ID W\n\n${usage}`);
      noMore(positionals, usage, 2);
      printRing(ctx, (await client().call('SetRingDeviceWeight', { deviceId: id, weight: number('the weight', positionals[1]) })).ring);
      return EXIT_CODES.ok;
    }
    case 'rebalance': {
      const { positionals } = parse(rest, {}, usage);
      noMore(positionals, usage, 0);
      printRing(ctx, (await client().call('RebalanceRing', {})).ring);
      return EXIT_CODES.ok;
    }
    default:
      return helpOrUsage(verb, usage);
  }
}

/** Runs an object storage command; returns the exit code. */
export async function objectStorageCommand(ctx: Context, command: string, argv: string[]): Promise<number> {
  switch (command) {
    case 'account':
      return accountCommand(ctx, argv);
    case 'container':
      return containerCommand(ctx, argv);
    case 'object':
      return objectCommand(ctx, argv);
    case 'ring':
      return ringCommand(ctx, argv);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
