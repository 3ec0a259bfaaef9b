// Field rules of compute commands, shared by the API (before it sends) and the codec (for any
// other sender): Nova's request rules restated on the commands. A broken rule throws
// InvalidArgumentError naming the field by its proto path ("flavor.ram_mb"). Rules the state
// decides (quota, capacity, a resize to the same flavor) are the deciders', not these.
import { InvalidArgumentError } from '../kernel/rejection.js';
import { GROUP_POLICIES, KEYPAIR_TYPES } from './compute.types.js';
import { POWER_STATES, TASK_STATES } from './instance.states.js';
import { QUOTA_DEFAULTS } from './quota.machine.js';

type Fields = Record<string, unknown>;

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const at = (prefix: string, field: string) => (prefix ? `${prefix}.${field}` : field);

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Nova's flavor id: letters, digits, ".", " ", "_", "-", no leading or trailing space. */
const FLAVOR_ID = /^(?! )[a-zA-Z0-9. _-]{1,255}(?<! )$/;
/** Nova's key pair name (API < 2.92). */
const KEYPAIR_NAME = /^[a-zA-Z0-9 _-]{1,255}$/;
const SSH_KEY_TYPES = ['ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521'];

function text(field: string, value: unknown, max: number, required: boolean): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (required && s.trim() === '') throw new InvalidArgumentError(field, 'is required');
  if (s.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters, got ${s.length}`);
  if (CONTROL.test(s)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

function id(field: string, value: unknown): void {
  text(field, value, 64, true);
  if (!ID.test(value as string)) throw new InvalidArgumentError(field, `"${value}" is not an id (letters, digits, _ . -; at most 64)`);
}

function int(field: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `must be an integer, got ${String(value)}`);
  if (value < min) throw new InvalidArgumentError(field, `must be at least ${min}, got ${value}`);
}

function oneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(value as string)) throw new InvalidArgumentError(field, `must be one of ${allowed.join(', ')}, got "${String(value)}"`);
}

/** A string map (metadata, extra specs): keys 1..255 characters, values at most 255. */
function stringMap(field: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a map of strings');
  for (const [k, v] of Object.entries(value as Fields)) {
    if (k.trim() === '') throw new InvalidArgumentError(field, 'keys must not be empty');
    if (k.length > 255) throw new InvalidArgumentError(field, `key "${k.slice(0, 32)}..." is longer than 255 characters`);
    if (CONTROL.test(k)) throw new InvalidArgumentError(field, `key "${k}" must not contain control characters`);
    if (typeof v !== 'string') throw new InvalidArgumentError(field, `value of "${k}" must be a string`);
    if (v.length > 255) throw new InvalidArgumentError(field, `value of "${k}" must be at most 255 characters, got ${v.length}`);
  }
}

function availabilityZone(field: string, value: unknown): void {
  text(field, value, 255, false);
  if (typeof value === 'string' && value.includes(':')) throw new InvalidArgumentError(field, `"${value}" must not contain ":"`);
}

/** "ssh-ed25519 AAAA... comment": a known type, and a base64 blob that names the same type. */
function sshPublicKey(field: string, value: string): void {
  const m = /^(\S+)[ \t]+([A-Za-z0-9+/]+={0,2})(?:[ \t]+[^\u0000-\u001f\u007f]*)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(field, 'is not an OpenSSH public key ("<type> <base64> [comment]")');
  const [, type, blob] = m;
  if (!SSH_KEY_TYPES.includes(type)) throw new InvalidArgumentError(field, `key type "${type}" is not one of ${SSH_KEY_TYPES.join(', ')}`);
  let bytes: string;
  try {
    bytes = atob(blob);
  } catch {
    throw new InvalidArgumentError(field, 'the key is not valid base64');
  }
  const len = bytes.length >= 4 ? ((bytes.charCodeAt(0) << 24) | (bytes.charCodeAt(1) << 16) | (bytes.charCodeAt(2) << 8) | bytes.charCodeAt(3)) >>> 0 : -1;
  if (len !== type.length || bytes.slice(4, 4 + len) !== type || bytes.length <= 4 + len) {
    throw new InvalidArgumentError(field, `the key's data is not a ${type} key`);
  }
}

type Rule = (value: unknown, resource: Fields, prefix: string) => void;

const name255: Rule = (v, _r, p) => text(at(p, 'name'), v, 255, true);

/** The sizes of a flavor, shared by flavors and the copies instances carry. */
const FLAVOR_SIZES: Record<string, Rule> = {
  vcpus: (v, _r, p) => int(at(p, 'vcpus'), v, 1),
  ramMb: (v, _r, p) => int(at(p, 'ram_mb'), v, 1),
  diskGb: (v, _r, p) => int(at(p, 'disk_gb'), v, 0),
  ephemeralGb: (v, _r, p) => int(at(p, 'ephemeral_gb'), v, 0),
  swapMb: (v, _r, p) => int(at(p, 'swap_mb'), v, 0),
  extraSpecs: (v, _r, p) => stringMap(at(p, 'extra_specs'), v),
};

const FLAVOR_REF_RULES: Record<string, Rule> = {
  id: (v, _r, p) => {
    text(at(p, 'id'), v, 255, true);
    if (!FLAVOR_ID.test(v as string)) throw new InvalidArgumentError(at(p, 'id'), `"${v}" is not a flavor id (letters, digits, . _ - and inner spaces)`);
  },
  name: (v, _r, p) => text(at(p, 'name'), v, 255, false),
  ...FLAVOR_SIZES,
};

/** Per resource kind (the command field that carries it): the rule of every field, and which fields an update may change. */
export const COMPUTE_RESOURCE_RULES: Record<string, { rules: Record<string, Rule>; mutable: readonly string[] }> = {
  flavor: {
    rules: {
      ...FLAVOR_REF_RULES,
      name: (v, r, p) => {
        name255(v, r, p);
        if ((v as string).trim() !== v) throw new InvalidArgumentError(at(p, 'name'), 'must not begin or end with whitespace');
      },
      isPublic: () => undefined,
      description: (v, _r, p) => text(at(p, 'description'), v, 65535, false),
    },
    mutable: ['description', 'extraSpecs'],
  },
  keypair: {
    rules: {
      id: (v, _r, p) => id(at(p, 'id'), v),
      name: (v, _r, p) => {
        text(at(p, 'name'), v, 255, true);
        if (!KEYPAIR_NAME.test(v as string)) throw new InvalidArgumentError(at(p, 'name'), `"${v}" may contain only letters, digits, spaces, "_" and "-"`);
      },
      userId: (v, _r, p) => text(at(p, 'user_id'), v, 255, true),
      type: (v, _r, p) => oneOf(at(p, 'type'), v, KEYPAIR_TYPES),
      publicKey: (v, r, p) => {
        const field = at(p, 'public_key');
        if (typeof v !== 'string' || v.trim() === '') throw new InvalidArgumentError(field, 'is required');
        if (v.length > 16384) throw new InvalidArgumentError(field, `must be at most 16384 characters, got ${v.length}`);
        if (r.type === 'x509') {
          if (!/^-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----\s*$/.test((v as string).trim())) throw new InvalidArgumentError(field, 'is not a PEM certificate');
        } else sshPublicKey(field, v as string);
      },
      fingerprint: (v, _r, p) => text(at(p, 'fingerprint'), v, 255, false),
    },
    mutable: ['name'],
  },
  serverGroup: {
    rules: {
      id: (v, _r, p) => id(at(p, 'id'), v),
      name: name255,
      projectId: (v, _r, p) => text(at(p, 'project_id'), v, 255, true),
      userId: (v, _r, p) => text(at(p, 'user_id'), v, 255, false),
      policy: (v, _r, p) => oneOf(at(p, 'policy'), v, GROUP_POLICIES),
      maxServerPerHost: (v, r, p) => {
        int(at(p, 'max_server_per_host'), v ?? 0, 0);
        if ((v as number) > 0 && r.policy !== 'anti-affinity') throw new InvalidArgumentError(at(p, 'max_server_per_host'), 'applies only to the anti-affinity policy');
      },
    },
    mutable: ['name'],
  },
  aggregate: {
    rules: {
      id: (v, _r, p) => id(at(p, 'id'), v),
      name: name255,
      availabilityZone: (v, _r, p) => availabilityZone(at(p, 'availability_zone'), v),
      metadata: (v, _r, p) => stringMap(at(p, 'metadata'), v),
    },
    mutable: ['name', 'availabilityZone', 'metadata'],
  },
};

function present(field: string, value: unknown): asserts value is Fields {
  if (value === undefined || value === null) throw new InvalidArgumentError(field, 'is required');
}

function applyRules(rules: Record<string, Rule>, resource: Fields, prefix: string): void {
  for (const [field, rule] of Object.entries(rules)) rule(resource[field], resource, prefix);
}

/** A whole resource, as CreateFlavor (and the like) carry it; `kind` is its command field. */
export function validateComputeResource(kind: string, resource: unknown): void {
  const field = snake(kind);
  present(field, resource);
  applyRules(COMPUTE_RESOURCE_RULES[kind].rules, resource, field);
}

/** An update: the mask (camelCase paths) is non-empty and names mutable fields; the changed fields obey their rules. */
export function validateComputeUpdate(kind: string, patch: unknown, mask: readonly string[] | undefined): void {
  const field = snake(kind);
  const { rules, mutable } = COMPUTE_RESOURCE_RULES[kind];
  const list = mutable.map(snake).join(', ');
  if (!mask || mask.length === 0) throw new InvalidArgumentError('update_mask', `name the fields to change (any of ${list})`);
  present(field, patch);
  for (const path of mask) {
    if (!(path in rules)) throw new InvalidArgumentError('update_mask', `${field} has no field ${snake(path)}`);
    if (!mutable.includes(path)) throw new InvalidArgumentError(at(field, snake(path)), `cannot be changed (a ${field}'s changeable fields: ${list})`);
    rules[path](patch[path], patch, field);
  }
}

/** The flavor copy an instance carries (create, resize). */
export function validateFlavorRef(field: string, flavor: unknown): void {
  present(field, flavor);
  applyRules(FLAVOR_REF_RULES, flavor, field);
}

/** "host:port" (a name, an IPv4 address or a bracketed IPv6 address; port 1..65535); empty is allowed. */
const ENDPOINT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})):(\d{1,5})$/;

/** A host agent's endpoint: empty (it serves nothing) or "host:port". */
export function endpoint(field: string, value: unknown): void {
  text(field, value, 255, false);
  const s = (value as string | undefined) ?? '';
  if (s === '') return;
  const m = ENDPOINT.exec(s);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new InvalidArgumentError(field, `"${s}" is not host:port (a port from 1 to 65535)`);
}

/** Host inventory: every class present, totals and reserved at least 0 (reserved within total), ratios above 0. */
export function validateInventory(field: string, inventory: unknown): void {
  present(field, inventory);
  for (const r of ['vcpus', 'ramMb', 'diskGb']) {
    const path = at(field, snake(r));
    const i = inventory[r];
    present(path, i);
    int(`${path}.total`, i.total, 0);
    int(`${path}.reserved`, i.reserved, 0);
    if ((i.reserved as number) > (i.total as number)) throw new InvalidArgumentError(`${path}.reserved`, `must not exceed total (${i.total}), got ${i.reserved}`);
    const ratio = i.allocationRatio;
    if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio <= 0) throw new InvalidArgumentError(`${path}.allocation_ratio`, `must be greater than 0, got ${String(ratio)}`);
  }
}

/** An interface as a request makes it (CreateInstance, AttachInstanceInterface). */
function requestedInterface(field: string, value: unknown): void {
  present(field, value);
  text(`${field}.port_id`, value.portId, 255, true);
  text(`${field}.network_id`, value.networkId, 255, true);
  text(`${field}.requested_ip`, value.requestedIp, 64, false);
  text(`${field}.request_id`, value.requestId, 255, false);
  if (value.preserveOnDelete && value.requestedIp) throw new InvalidArgumentError(`${field}.requested_ip`, 'applies only to a port the server makes (a network), not to a port given');
}

const VM_RESETS = ['active', 'error'] as const;
const POWER = Object.values(POWER_STATES) as number[];

/** The rules of each command type that has fields to check (resource commands aside). */
const COMMAND_RULES: Record<string, (c: Fields) => void> = {
  CreateInstance: (c) => {
    text('name', c.name, 255, true);
    text('project_id', c.projectId, 255, true);
    text('user_id', c.userId, 255, true);
    validateFlavorRef('flavor', c.flavor);
    text('image_id', c.imageId, 255, true);
    text('key_name', c.keyName, 255, false);
    availabilityZone('availability_zone', c.availabilityZone);
    text('server_group_id', c.serverGroupId, 255, false);
    stringMap('metadata', c.metadata);
    const interfaces = (c.interfaces as Fields[] | undefined) ?? [];
    if (!Array.isArray(interfaces)) throw new InvalidArgumentError('interfaces', 'must be a list');
    const ports = new Set<string>();
    interfaces.forEach((i, n) => {
      requestedInterface(`interfaces[${n}]`, i);
      if (ports.has(i.portId as string)) throw new InvalidArgumentError(`interfaces[${n}].port_id`, `port ${i.portId} is asked for twice`);
      ports.add(i.portId as string);
    });
  },
  AttachInstanceInterface: (c) => requestedInterface('interface', c.interface),
  DetachInstanceInterface: (c) => {
    text('port_id', c.portId, 255, true);
    text('request_id', c.requestId, 255, false);
  },
  RecordInterfaceAllocation: (c) => {
    text('port_id', c.portId, 255, true);
    text('mac_address', c.macAddress, 64, true);
    if (c.mtu !== undefined && c.mtu !== null) int('mtu', c.mtu, 0);
    ((c.fixedIps as Fields[] | undefined) ?? []).forEach((f, n) => {
      text(`fixed_ips[${n}].subnet_id`, f.subnetId, 255, true);
      text(`fixed_ips[${n}].ip_address`, f.ipAddress, 64, true);
      text(`fixed_ips[${n}].cidr`, f.cidr, 64, false);
      text(`fixed_ips[${n}].gateway_ip`, f.gatewayIp, 64, false);
    });
  },
  ReportInterfacePlugged: (c) => text('port_id', c.portId, 255, true),
  ReportInterfaceUnplugged: (c) => text('port_id', c.portId, 255, true),
  FailInstanceInterface: (c) => {
    text('port_id', c.portId, 255, true);
    text('message', c.message, 65535, false);
  },
  RemoveInstanceInterface: (c) => text('port_id', c.portId, 255, true),
  ResizeInstance: (c) => validateFlavorRef('flavor', c.flavor),
  RebuildInstance: (c) => text('image_id', c.imageId, 255, true),
  CreateInstanceImage: (c) => {
    text('image_id', c.imageId, 255, true);
    text('name', c.name, 255, true);
  },
  CreateInstanceBackup: (c) => {
    text('image_id', c.imageId, 255, true);
    text('name', c.name, 255, true);
  },
  LockInstance: (c) => text('reason', c.reason, 255, false),
  SetInstanceMetadata: (c) => {
    stringMap('items', c.items);
    if (c.maxItems !== undefined && c.maxItems !== null) int('max_items', c.maxItems, -1);
  },
  DeleteInstanceMetadata: (c) => text('key', c.key, 255, true),
  ResetInstanceState: (c) => oneOf('vm_state', c.vmState, VM_RESETS),
  AdvanceInstanceTask: (c) => {
    if (c.taskState !== null && c.taskState !== undefined) oneOf('task_state', c.taskState, TASK_STATES);
  },
  AssignInstanceHost: (c) => {
    text('host', c.host, 255, true);
    text('node', c.node, 255, false);
    availabilityZone('availability_zone', c.availabilityZone);
  },
  CompleteInstanceAction: (c) => text('action', c.action, 255, true),
  ReportMigrationTarget: (c) => {
    text('action', c.action, 255, true);
    text('uri', c.uri, 1024, true);
  },
  FailInstanceAction: (c) => {
    text('action', c.action, 255, true);
    if (c.code !== undefined && c.code !== null) int('code', c.code, 0);
    text('message', c.message, 65535, false);
  },
  RescheduleInstance: (c) => text('reason', c.reason, 65535, false),
  ReportPowerState: (c) => {
    if (!POWER.includes(c.powerState as number)) throw new InvalidArgumentError('power_state', `must be one of ${POWER.join(', ')}, got ${String(c.powerState)}`);
  },

  RegisterHost: (c) => {
    validateInventory('inventory', c.inventory);
    availabilityZone('availability_zone', c.availabilityZone);
    endpoint('endpoint', c.endpoint);
  },
  ClaimResources: (c) => {
    text('consumer_id', c.consumerId, 255, true);
    int('vcpus', c.vcpus, 0);
    int('ram_mb', c.ramMb, 0);
    int('disk_gb', c.diskGb, 0);
    if (c.policy) oneOf('policy', c.policy, GROUP_POLICIES);
    if (c.policy && !c.groupId) throw new InvalidArgumentError('group_id', `is required with policy ${c.policy}`);
    if (c.maxServerPerHost !== undefined && c.maxServerPerHost !== null) int('max_server_per_host', c.maxServerPerHost, 1);
  },
  ReleaseResources: (c) => text('consumer_id', c.consumerId, 255, true),
  DisableHost: (c) => text('reason', c.reason, 255, false),

  SetQuotaLimits: (c) => {
    const limits = (c.limits as Record<string, unknown> | undefined) ?? {};
    if (Object.keys(limits).length === 0) throw new InvalidArgumentError('limits', 'name at least one quota to set');
    for (const [name, limit] of Object.entries(limits)) {
      if (!(name in QUOTA_DEFAULTS)) throw new InvalidArgumentError('limits', `unknown quota "${name}" (one of ${Object.keys(QUOTA_DEFAULTS).join(', ')})`);
      int(`limits.${name}`, limit, -1);
    }
  },
  ReserveQuota: (c) => {
    text('consumer_id', c.consumerId, 255, true);
    present('usage', c.usage);
    for (const name of ['instances', 'cores', 'ram']) int(`usage.${name}`, (c.usage as Fields)[name], 0);
  },
  ReleaseQuota: (c) => text('consumer_id', c.consumerId, 255, true),

  AddFlavorAccess: (c) => text('project_id', c.projectId, 255, true),
  RemoveFlavorAccess: (c) => text('project_id', c.projectId, 255, true),
  AddServerGroupMember: (c) => {
    text('instance_id', c.instanceId, 255, true);
    int('max_members', c.maxMembers, -1);
  },
  RemoveServerGroupMember: (c) => text('instance_id', c.instanceId, 255, true),
  AddAggregateHost: (c) => text('host', c.host, 255, true),
  RemoveAggregateHost: (c) => text('host', c.host, 255, true),
};

/** The resource commands: Create/Update + the noun -> the command field carrying the resource. */
const RESOURCE_NOUNS: Record<string, string> = { Flavor: 'flavor', Keypair: 'keypair', ServerGroup: 'serverGroup', Aggregate: 'aggregate' };

/** Every field rule of one compute command; throws InvalidArgumentError naming the field. */
export function validateComputeCommand(command: { type: string } & Fields): void {
  const m = /^(Create|Update)(Flavor|Keypair|ServerGroup|Aggregate)$/.exec(command.type);
  if (m) {
    const kind = RESOURCE_NOUNS[m[2]];
    if (m[1] === 'Create') validateComputeResource(kind, command[kind]);
    else validateComputeUpdate(kind, command[kind], command.updateMask as string[] | undefined);
    return;
  }
  COMMAND_RULES[command.type]?.(command);
}
