// Field rules of image commands, shared by the API (before it sends), the codec (for any other
// sender) and the deciders (which refuse what the rules refuse): Glance v2's request rules
// restated on the commands. A broken rule throws InvalidArgumentError naming the field by its
// proto path ("image.disk_format", "member_project_id"). Rules the state decides (the status, the
// image's visibility for members, protected) are the machine's.
import { InvalidArgumentError, type Rejection } from '../kernel/rejection.js';
import {
  CONTAINER_FORMATS,
  DISK_FORMATS,
  IMAGE_PROPERTY_QUOTA,
  IMAGE_TAG_QUOTA,
  IMAGE_VISIBILITIES,
  MEMBER_STATUSES,
  OS_HASH_ALGO,
  RESERVED_PROPERTIES,
} from './image.types.js';
import { REASON_WIRE_MAX } from '../kernel/reason.js';
export { clipReason, REASON_MAX } from '../kernel/reason.js';

type Fields = Record<string, any>;

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MD5 = /^[0-9a-f]{32}$/;
const SHA512 = /^[0-9a-f]{128}$/;
/** "<account>/<container>/<object>": the object name may hold slashes. */
const LOCATION = /^[^/]+\/[^/]+\/.+$/;
/** Glance's limit on names, tags and property keys. */
const TEXT_MAX = 255;
/** A property value (Glance keeps them as text; its schema allows 65535 characters). */
const VALUE_MAX = 65_535;
/** Swift: account 256 + container 256 + object 1024 bytes, and the slashes. */
const LOCATION_MAX = 1538;
const INT32_MAX = 2_147_483_647;

function text(field: string, value: unknown, max: number, required: boolean): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (required && s.trim() === '') throw new InvalidArgumentError(field, 'is required');
  if (s.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters, got ${s.length}`);
  if (CONTROL.test(s)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

function reason(field: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (s.length > REASON_WIRE_MAX) throw new InvalidArgumentError(field, `must be at most ${REASON_WIRE_MAX} characters, got ${s.length}`);
}

function int(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `must be an integer, got ${String(value)}`);
  if (value < min || value > max) throw new InvalidArgumentError(field, `must be from ${min} to ${max}, got ${value}`);
}

function bool(field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidArgumentError(field, 'must be true or false');
}

function oneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(value as string)) throw new InvalidArgumentError(field, `must be one of ${allowed.map((a) => a || "''").join(', ')}, got "${String(value)}"`);
}

function present(field: string, value: unknown): asserts value is Fields {
  if (value === undefined || value === null || typeof value !== 'object') throw new InvalidArgumentError(field, 'is required');
}

function unset(field: string, value: unknown, what: string): void {
  if (value !== undefined && value !== null && value !== '' && value !== 0) throw new InvalidArgumentError(field, `is set by ${what}, not given`);
}

function tags(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a list of strings');
  if (value.length > IMAGE_TAG_QUOTA) throw new InvalidArgumentError(field, `at most ${IMAGE_TAG_QUOTA} tags, got ${value.length}`);
  value.forEach((t, i) => text(`${field}[${i}]`, t, TEXT_MAX, true));
}

/** Glance's properties: keys 1..255 characters, not a core attribute's name; at most 128 of them. */
function properties(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a map of strings');
  const entries = Object.entries(value as Fields);
  if (entries.length > IMAGE_PROPERTY_QUOTA) throw new InvalidArgumentError(field, `at most ${IMAGE_PROPERTY_QUOTA} properties, got ${entries.length}`);
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > TEXT_MAX) throw new InvalidArgumentError(field, `keys must be 1 to ${TEXT_MAX} characters, got "${k.slice(0, 40)}"`);
    if (CONTROL.test(k)) throw new InvalidArgumentError(field, 'keys must not contain control characters');
    if ((RESERVED_PROPERTIES as readonly string[]).includes(k)) throw new InvalidArgumentError(`${field}.${k}`, `"${k}" is reserved (a core attribute of an image)`);
    text(`${field}.${k}`, v, VALUE_MAX, false);
  }
}

function location(field: string, value: unknown): void {
  text(field, value, LOCATION_MAX, true);
  if (!LOCATION.test(value as string)) throw new InvalidArgumentError(field, `"${String(value).slice(0, 80)}" is not an object path <account>/<container>/<object>`);
}

const memberProject = (field: string, value: unknown) => text(field, value, TEXT_MAX, true);

const IMAGE_RULES: Record<string, (v: unknown, p: string) => void> = {
  id: (v, p) => {
    text(`${p}.id`, v, 36, true);
    if (!UUID.test(v as string)) throw new InvalidArgumentError(`${p}.id`, `"${String(v)}" is not a uuid`);
  },
  name: (v, p) => text(`${p}.name`, v, TEXT_MAX, false),
  owner: (v, p) => text(`${p}.owner`, v, TEXT_MAX, true),
  status: (v, p) => {
    if (v !== undefined && v !== '' && v !== 'queued') throw new InvalidArgumentError(`${p}.status`, `is the image's lifecycle, not given (got "${String(v)}")`);
  },
  // '' = Glance's default, shared.
  visibility: (v, p) => oneOf(`${p}.visibility`, v ?? '', ['', ...IMAGE_VISIBILITIES]),
  diskFormat: (v, p) => oneOf(`${p}.disk_format`, v ?? '', ['', ...DISK_FORMATS]),
  containerFormat: (v, p) => oneOf(`${p}.container_format`, v ?? '', ['', ...CONTAINER_FORMATS]),
  minDisk: (v, p) => int(`${p}.min_disk`, v ?? 0, 0, INT32_MAX),
  minRam: (v, p) => int(`${p}.min_ram`, v ?? 0, 0, INT32_MAX),
  protected: (v, p) => bool(`${p}.protected`, v),
  osHidden: (v, p) => bool(`${p}.os_hidden`, v),
  tags: (v, p) => tags(`${p}.tags`, v),
  properties: (v, p) => properties(`${p}.properties`, v),
  size: (v, p) => unset(`${p}.size`, v, 'the upload'),
  virtualSize: (v, p) => unset(`${p}.virtual_size`, v, 'the upload'),
  checksum: (v, p) => unset(`${p}.checksum`, v, 'the upload'),
  osHashAlgo: (v, p) => unset(`${p}.os_hash_algo`, v, 'the upload'),
  osHashValue: (v, p) => unset(`${p}.os_hash_value`, v, 'the upload'),
  location: (v, p) => unset(`${p}.location`, v, 'the upload'),
  createdAtMs: () => undefined,
  updatedAtMs: () => undefined,
};

/** What UpdateImage may change (disk_format and container_format only while queued: the machine's rule). */
export const IMAGE_MUTABLE = ['name', 'visibility', 'minDisk', 'minRam', 'protected', 'osHidden', 'tags', 'properties', 'diskFormat', 'containerFormat'] as const;
/** The fields UpdateImage may change only while the image is queued (Glance: 403 otherwise). */
export const IMAGE_MUTABLE_WHILE_QUEUED = ['diskFormat', 'containerFormat'] as const;

function mask(kind: string, mutable: readonly string[], known: readonly string[], m: unknown): string[] {
  const names = mutable.map(snake).join(', ');
  if (!Array.isArray(m) || m.length === 0) throw new InvalidArgumentError('update_mask', `name the fields to change (any of ${names})`);
  for (const path of m as string[]) {
    if (!known.includes(path)) throw new InvalidArgumentError('update_mask', `${kind} has no field ${snake(String(path))}`);
    if (!mutable.includes(path)) throw new InvalidArgumentError(`${kind}.${snake(path)}`, `cannot be changed (an image's changeable fields: ${names})`);
  }
  return m as string[];
}

const COMMAND_RULES: Record<string, (c: Fields) => void> = {
  CreateImage: (c) => {
    present('image', c.image);
    for (const [f, rule] of Object.entries(IMAGE_RULES)) rule(c.image[f], 'image');
  },
  UpdateImage: (c) => {
    present('image', c.image);
    for (const f of mask('image', IMAGE_MUTABLE, Object.keys(IMAGE_RULES), c.updateMask)) {
      // An update names a visibility; '' (the default) is for creation only.
      if (f === 'visibility') oneOf('image.visibility', c.image.visibility, IMAGE_VISIBILITIES);
      else IMAGE_RULES[f](c.image[f], 'image');
    }
  },
  StartImageUpload: (c) => location('location', c.location),
  CompleteImageUpload: (c) => {
    int('size', c.size, 0);
    int('virtual_size', c.virtualSize, 0);
    if (typeof c.checksum !== 'string' || !MD5.test(c.checksum)) throw new InvalidArgumentError('checksum', `must be an md5 in lower-case hex (32 characters), got "${String(c.checksum).slice(0, 80)}"`);
    oneOf('os_hash_algo', c.osHashAlgo, [OS_HASH_ALGO]);
    if (typeof c.osHashValue !== 'string' || !SHA512.test(c.osHashValue)) throw new InvalidArgumentError('os_hash_value', `must be a sha512 in lower-case hex (128 characters), got "${String(c.osHashValue).slice(0, 80)}"`);
    location('location', c.location);
  },
  FailImageUpload: (c) => reason('reason', c.reason),
  KillImage: (c) => reason('reason', c.reason),
  AddImageMember: (c) => memberProject('member_project_id', c.memberProjectId),
  UpdateImageMember: (c) => {
    memberProject('member_project_id', c.memberProjectId);
    oneOf('status', c.status, MEMBER_STATUSES);
  },
  RemoveImageMember: (c) => memberProject('member_project_id', c.memberProjectId),
};

/** Every field rule of one image command; throws InvalidArgumentError naming the field. */
export function validateImageCommand(command: { type: string } & Fields): void {
  COMMAND_RULES[command.type]?.(command);
}

/** The same rules as a rejection, for the deciders (undefined: the command passes). */
export function imageFieldProblem(command: { type: string } & Fields): Rejection | undefined {
  try {
    validateImageCommand(command);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidArgumentError) return { code: 'INVALID_ARGUMENT', field: e.field, message: e.message };
    throw e;
  }
}
