// Field rules of object commands, shared by the API (before it sends), the codec (for any other
// sender) and the deciders: Swift's constraints (names, metadata sizes, ACL forms) restated on the
// commands. A broken rule throws InvalidArgumentError naming the field by its proto path.
import { InvalidArgumentError, type Rejection } from '../kernel/rejection.js';
import { LIMITS, TIMESTAMP } from './object.types.js';

type Fields = Record<string, any>;

const utf8Length = (s: string) => {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
};

const fail = (field: string, message: string): never => {
  throw new InvalidArgumentError(field, message);
};

export function checkContainerName(name: unknown, field = 'container.name'): void {
  if (typeof name !== 'string' || name.length === 0) fail(field, 'is required');
  const n = name as string;
  if (utf8Length(n) > LIMITS.containerName) fail(field, `is longer than ${LIMITS.containerName} bytes`);
  if (n.includes('/')) fail(field, "may not contain '/'");
  if (n.includes('\u0000')) fail(field, 'may not contain NUL');
}

export function checkObjectName(name: unknown, field = 'object.name'): void {
  if (typeof name !== 'string' || name.length === 0) fail(field, 'is required');
  const n = name as string;
  if (utf8Length(n) > LIMITS.objectName) fail(field, `is longer than ${LIMITS.objectName} bytes`);
  if (n.includes('\u0000')) fail(field, 'may not contain NUL');
}

/** Swift's metadata constraints: name <= 128 bytes, value <= 256, <= 90 items, <= 4096 bytes in all. */
export function checkMetadata(metadata: Record<string, string> | undefined, field: string): void {
  const entries = Object.entries(metadata ?? {});
  if (entries.length > LIMITS.metaCount) fail(field, `has ${entries.length} items (at most ${LIMITS.metaCount})`);
  let overall = 0;
  for (const [k, v] of entries) {
    if (k.length === 0) fail(field, 'has an empty name');
    if (!/^[A-Za-z0-9_-]+$/.test(k)) fail(`${field}.${k}`, 'names are letters, digits, - and _');
    if (utf8Length(k) > LIMITS.metaName) fail(`${field}.${k}`, `name is longer than ${LIMITS.metaName} bytes`);
    if (utf8Length(String(v)) > LIMITS.metaValue) fail(`${field}.${k}`, `value is longer than ${LIMITS.metaValue} bytes`);
    if (/[\r\n\u0000]/.test(String(v))) fail(`${field}.${k}`, 'value may not contain CR, LF or NUL');
    overall += utf8Length(k) + utf8Length(String(v));
  }
  if (overall > LIMITS.metaOverall) fail(field, `is ${overall} bytes (at most ${LIMITS.metaOverall})`);
}

/** ACL entries: ".r:*" (read only), "<project>:*", "<project>:<user>", "*:<user>". */
export function checkAcl(acl: readonly string[] | undefined, field: string, write: boolean): void {
  for (const [i, entry] of (acl ?? []).entries()) {
    if (entry === '.r:*') {
      if (write) fail(`${field}[${i}]`, '".r:*" grants reading only; it is not a write ACL');
      continue;
    }
    if (!/^[^:\s]+:[^:\s]+$/.test(entry) || entry === '*:*') fail(`${field}[${i}]`, `"${entry}" is not ".r:*", "<project>:*", "<project>:<user>" or "*:<user>"`);
  }
}

export function checkTimestamp(ts: unknown, field: string): void {
  if (typeof ts !== 'string' || !TIMESTAMP.test(ts)) fail(field, `"${String(ts)}" is not a timestamp like 1764640000.12345`);
}

const checkContainer = (c: Fields | undefined, field = 'container') => {
  if (!c) fail(field, 'is required');
  checkContainerName(c!.name, `${field}.name`);
  if (!c!.account) fail(`${field}.account`, 'is required');
  checkMetadata(c!.metadata, `${field}.metadata`);
  checkAcl(c!.readAcl, `${field}.read_acl`, false);
  checkAcl(c!.writeAcl, `${field}.write_acl`, true);
  if (Number(c!.quotaBytes) < 0) fail(`${field}.quota_bytes`, 'must be >= 0');
  if (Number(c!.quotaCount) < 0) fail(`${field}.quota_count`, 'must be >= 0');
};

const checkVersion = (o: Fields | undefined) => {
  if (!o) fail('object', 'is required');
  if (!o!.account) fail('object.account', 'is required');
  checkContainerName(o!.container, 'object.container');
  checkObjectName(o!.name);
  checkTimestamp(o!.timestamp, 'object.timestamp');
  if (!/^[0-9a-f]{32}(-\d+)?$/.test(o!.etag ?? '')) fail('object.etag', `"${o!.etag}" is not an MD5 hex digest`);
  const size = Number(o!.size);
  if (!Number.isInteger(size) || size < 0) fail('object.size', 'must be a whole number >= 0');
  checkMetadata(o!.metadata, 'object.metadata');
  const segments = (o!.segments ?? []) as Fields[];
  if (segments.length > LIMITS.segments) fail('object.segments', `has ${segments.length} segments (at most ${LIMITS.segments})`);
  if (segments.length === 0 && size > LIMITS.objectSize) fail('object.size', `is over ${LIMITS.objectSize} bytes: use a static large object`);
  for (const [i, s] of segments.entries()) {
    if (!/^[^/]+\/.+$/.test(s.path ?? '')) fail(`object.segments[${i}].path`, `"${s.path}" is not "container/object"`);
    if (!/^[0-9a-f]{32}$/.test(s.etag ?? '')) fail(`object.segments[${i}].etag`, 'is not an MD5 hex digest');
  }
};

/** Field rules of every object-domain command; throws InvalidArgumentError naming the field. */
export function validateObjectCommand(command: Fields): void {
  switch (command.type) {
    case 'CreateContainer':
      return checkContainer(command.container);
    case 'UpdateContainer':
      if (!command.container) fail('container', 'is required');
      checkMetadata(command.container.metadata, 'container.metadata');
      checkAcl(command.container.readAcl, 'container.read_acl', false);
      checkAcl(command.container.writeAcl, 'container.write_acl', true);
      for (const f of command.updateMask ?? []) {
        if (!['metadata', 'readAcl', 'writeAcl', 'quotaBytes', 'quotaCount'].includes(f)) fail('update_mask', `"${f}" cannot be changed (metadata, readAcl, writeAcl, quotaBytes, quotaCount can)`);
      }
      if (Number(command.container.quotaBytes) < 0) fail('container.quota_bytes', 'must be >= 0');
      if (Number(command.container.quotaCount) < 0) fail('container.quota_count', 'must be >= 0');
      return;
    case 'RecordObject':
      return checkVersion(command.object);
    case 'UpdateObjectMetadata':
      checkTimestamp(command.timestamp, 'timestamp');
      return checkMetadata(command.metadata, 'metadata');
    case 'RecordObjectDeleted':
    case 'ReportReplicaQuarantined':
      return checkTimestamp(command.timestamp, 'timestamp');
    case 'CreateRing':
      if (!Number.isInteger(command.partPower) || command.partPower < 1 || command.partPower > 20) fail('part_power', `${command.partPower} is not in 1..20`);
      if (!Number.isInteger(command.replicas) || command.replicas < 1 || command.replicas > 6) fail('replicas', `${command.replicas} is not in 1..6`);
      return;
    case 'AddRingDevice': {
      const d = command.device as Fields | undefined;
      if (!d) fail('device', 'is required');
      if (!Number.isInteger(d!.id) || d!.id < 0) fail('device.id', 'must be a whole number >= 0');
      if (!/^[^\s:]+:\d{1,5}$/.test(d!.host ?? '')) fail('device.host', `"${d!.host}" is not "address:port"`);
      if (!d!.device) fail('device.device', 'is required');
      if (!(Number(d!.weight) >= 0)) fail('device.weight', 'must be >= 0');
      return;
    }
    case 'SetRingDeviceWeight':
      if (!(Number(command.weight) >= 0)) fail('weight', 'must be >= 0');
      return;
    case 'SetRingDeviceAddress':
      if (!/^[^\s:]+:\d{1,5}$/.test(command.host ?? '')) fail('host', `"${command.host}" is not "address:port"`);
      return;
  }
}

/** The field rules as a decider's refusal (the codec has run them for wire commands; this covers direct callers). */
export function fieldProblem(command: Fields): Rejection | undefined {
  try {
    validateObjectCommand(command);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidArgumentError) return { code: 'INVALID_ARGUMENT', field: e.field, message: e.message };
    throw e;
  }
}
