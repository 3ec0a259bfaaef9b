// The subscription cursor: where a subscriber stands in every events topic it follows, as the next
// offset of each partition. Per-partition offsets make a resume exact (nothing missed, nothing
// twice) however the partitions interleaved on the first stream. On the wire it is opaque:
// "v1." + base64url(JSON {topic: [next offset per partition]}).
import { invalid } from '../errors.js';

const PREFIX = 'v1.';
/** Far more than any cloud's topics and partitions need; a bound on what a request can make us parse. */
const MAX_CURSOR_CHARS = 64 * 1024;
const MAX_PARTITIONS = 4096;
const TOPIC = /^strata\.events\.[a-z0-9][a-z0-9_-]*$/;

/** topic -> next offset per partition. */
export type Offsets = Map<string, number[]>;

export function encodeCursor(offsets: Offsets): string {
  const sorted = Object.fromEntries([...offsets.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return PREFIX + Buffer.from(JSON.stringify(sorted)).toString('base64url');
}

/** The offsets a cursor holds; INVALID_ARGUMENT naming cursor when it is not one of ours. */
export function decodeCursor(cursor: string): Offsets {
  const bad = (why: string) => invalid('cursor', `is not a valid resume cursor (${why}); pass one a Subscribe stream returned`);
  if (cursor.length > MAX_CURSOR_CHARS) throw bad(`longer than ${MAX_CURSOR_CHARS} characters`);
  if (!cursor.startsWith(PREFIX)) throw bad(`it must start with "${PREFIX}"`);
  const body = cursor.slice(PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(body)) throw bad('not base64url');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw bad('not JSON inside');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw bad('not an object of topics');
  const offsets: Offsets = new Map();
  for (const [topic, list] of Object.entries(parsed as Record<string, unknown>)) {
    if (!TOPIC.test(topic)) throw bad(`"${topic.slice(0, 80)}" is not an events topic`);
    if (!Array.isArray(list) || list.length > MAX_PARTITIONS) throw bad(`${topic}: not a list of offsets`);
    if (!list.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)) throw bad(`${topic}: offsets must be integers >= 0`);
    offsets.set(topic, list as number[]);
  }
  return offsets;
}
