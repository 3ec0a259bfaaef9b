// The event log bench:replay rebuilds from: a cell of a cloud (a project with its users and
// tokens, compute hosts heartbeating and claimed, servers created, stopped, started, rebooted,
// resized and deleted, a network with ports, volumes attached and extended, containers of
// objects recorded and deleted, images uploaded) decided by the real deciders, command by
// command, and encoded as the runtime writes them (domain codec for the payload, envelope codec,
// event type header). That cell is then copied as many times as needed: every id, name and
// command id of a cell carries a fixed-width tag (CELL_TAG), and a copy is the cell's bytes with
// the tag overwritten by the copy's own (same length, so the protobuf stays valid), keyed and
// partitioned by its new aggregate id.
import type { ActorContext, Message } from '../domains/kernel/decider.js';
import type { EventEnvelope } from '../infra/envelope/envelope.js';
import { encodeEvent } from '../infra/envelope/envelope.codec.js';
import { hostedDomains } from '../infra/domains.js';
import type { OutRecord } from '../infra/log/log.js';
import { partitionForKey } from '../infra/log/partitioner.js';
import { HEADER_EVENT_TYPE } from '../infra/runtime/partition-decider.js';

type M = Message & Record<string, unknown>;

/** Six characters that occur nowhere else in a cell's bytes. */
export const CELL_TAG = 'Zq0000';
/** The same in ids that must be UUIDs (images): eight hex digits. */
const UUID_TAG = 'cafe0000';
const T = CELL_TAG;
const TAGS = [
  { tag: CELL_TAG, of: (cell: number) => `Zq${cell.toString(36).padStart(4, '0')}` },
  { tag: UUID_TAG, of: (cell: number) => `cafe${cell.toString(16).padStart(4, '0')}` },
];
const imageId = (i: number) => `${UUID_TAG}-0000-4000-8000-${String(i).padStart(12, '0')}`;

/** What a decider worker writes with tracing on. */
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

export interface CellEvent {
  domain: string;
  key: string;
  type: string;
  value: Uint8Array;
}

/** Commands decided and folded per aggregate as the partition decider does. */
class Recorder {
  private readonly state = new Map<string, { state: unknown; version: number }>();
  readonly events: CellEvent[] = [];
  private commands = 0;
  private clockMs = Date.UTC(2026, 10, 1);

  send(domain: string, aggregateType: string, aggregateId: string, command: M, actor: ActorContext, requestId?: string): M[] {
    const def = hostedDomains.find((d) => d.name === domain)?.aggregates.find((a) => a.decider.aggregateType === aggregateType);
    if (!def) throw new Error(`no aggregate ${domain}/${aggregateType}`);
    const key = `${aggregateType}/${aggregateId}`;
    const current = this.state.get(key) ?? { state: def.decider.initialState, version: 0 };
    const commandId = `cmd-${T}-${++this.commands}`;
    const issuedAtMs = (this.clockMs += 250);
    const decision = def.decider.decide(current.state, command, { commandId, aggregateId, version: current.version, actor, issuedAtMs });
    if (!('events' in decision)) throw new Error(`${command.type} on ${domain}/${key} refused: ${decision.rejection.message}`);
    let state = current.state;
    decision.events.forEach((event, i) => {
      state = def.decider.evolve(state, event);
      const envelope: EventEnvelope = {
        eventId: `${commandId}/${i}`,
        aggregateType,
        aggregateId,
        version: current.version + i + 1,
        type: event.type,
        payload: def.codec.encodeEvent(event),
        actor: { ...actor, roles: [...actor.roles] },
        causationId: commandId,
        correlationId: requestId ?? `req-${commandId}`,
        traceparent: TRACEPARENT,
        tracestate: '',
        occurredAtMs: issuedAtMs,
      };
      this.events.push({ domain, key: aggregateId, type: event.type, value: encodeEvent(envelope) });
    });
    this.state.set(key, { state, version: current.version + decision.events.length });
    return decision.events as M[];
  }
}

const ADMIN: ActorContext = { userId: `admin-${T}`, projectId: `admin-${T}`, roles: ['admin', 'member', 'reader'] };
const SERVICE: ActorContext = { userId: 'strata-conductor', projectId: '', roles: ['service'] };

/** One cell, decided. About 2,000 events. */
export function decideCell(): CellEvent[] {
  const r = new Recorder();
  const project = `p-${T}`;
  const users = [0, 1, 2].map((i) => `u-${T}-${i}`);
  const member: ActorContext = { userId: users[0], projectId: project, roles: ['member', 'reader'] };
  const I = (type: string, id: string, c: M, actor = ADMIN) => r.send('identity', type, id, c, actor);
  const C = (type: string, id: string, c: M, actor = SERVICE, req?: string) => r.send('compute', type, id, c, actor, req);
  const N = (type: string, id: string, c: M, actor = SERVICE) => r.send('network', type, id, c, actor);
  const B = (type: string, id: string, c: M, actor = SERVICE) => r.send('block', type, id, c, actor);
  const O = (type: string, id: string, c: M, actor = member) => r.send('object', type, id, c, actor);
  const G = (type: string, id: string, c: M, actor = member) => r.send('image', type, id, c, actor);

  // Identity: the project, its users (names claimed first), their roles, and logins.
  I('name', `project/default/web-${T}`.toLowerCase(), { type: 'ClaimName', ownerId: project });
  I('project', project, { type: 'CreateProject', project: { id: project, name: `web-${T}`, description: 'a tenant', domainId: 'default', parentId: '' } });
  for (const u of users) {
    I('name', `user/default/${u}`.toLowerCase(), { type: 'ClaimName', ownerId: u });
    I('user', u, { type: 'CreateUser', user: { id: u, name: u, domainId: 'default', email: `${u}@example.org`, description: '', defaultProjectId: project }, passwordHash: `scrypt$16384$8$1$${'c2FsdA'.repeat(4)}$${'aGFzaA'.repeat(10)}` });
    const id = `ra-${u}`;
    I('role_assignment', id, { type: 'GrantRole', assignment: { id, userId: u, projectId: project, roleId: 'role-member', inherited: false } });
  }
  for (let i = 0; i < 60; i++) {
    const auditId = `tok-${T}-${i}`;
    const u = users[i % users.length];
    I('token', auditId, {
      type: 'IssueToken',
      token: { auditId, userId: u, methods: ['password'], projectId: project, domainId: 'default', system: false, roles: ['member', 'reader'], issuedAtMs: Date.UTC(2026, 10, 1), expiresAtMs: Date.UTC(2026, 10, 2), auditIds: [auditId] },
    }, { userId: u, projectId: project, roles: ['member', 'reader'] });
    if (i % 10 === 0) I('token', auditId, { type: 'RevokeToken' });
  }

  // Compute: hosts, a flavor, the quota, a key pair.
  const hosts = [0, 1, 2, 3].map((i) => `h-${T}-${i}`);
  const inventory = { vcpus: { total: 32, reserved: 0, allocationRatio: 4 }, ramMb: { total: 131072, reserved: 512, allocationRatio: 1 }, diskGb: { total: 2000, reserved: 0, allocationRatio: 1 } };
  for (const h of hosts) C('host', h, { type: 'RegisterHost', inventory, availabilityZone: 'nova', endpoint: `10.0.${hosts.indexOf(h)}.1:5060` });
  const flavor = { id: `f-${T}`, name: `m1.small-${T}`, vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
  const large = { ...flavor, id: `f-${T}-l`, name: `m1.large-${T}`, vcpus: 2, ramMb: 4096 };
  C('flavor', flavor.id, { type: 'CreateFlavor', flavor: { ...flavor, isPublic: true, description: '' } }, ADMIN);
  C('flavor', large.id, { type: 'CreateFlavor', flavor: { ...large, isPublic: true, description: '' } }, ADMIN);
  C('quota', project, { type: 'SetQuotaLimits', limits: { cores: 200, instances: 100, ram: 1_000_000 } }, ADMIN);
  C('keypair', `k-${T}`, { type: 'CreateKeypair', keypair: { id: `k-${T}`, name: 'laptop', userId: users[0], publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop', fingerprint: 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8', type: 'ssh' } }, member);

  // Network: a network and subnet, the default security group with rules, a router.
  const net = `n-${T}`;
  const subnet = `s-${T}`;
  N('network', net, { type: 'CreateNetwork', network: { id: net, name: `net-${T}`, projectId: project, adminStateUp: true, shared: false, external: false, mtu: 1450, networkType: 'vxlan', physicalNetwork: '', segmentationId: 1000 }, segmentAllocated: true }, member);
  N('subnet', subnet, { type: 'CreateSubnet', subnet: { id: subnet, networkId: net, projectId: project, name: `sub-${T}`, ipVersion: 4, cidr: '10.0.0.0/22', gatewayIp: null, allocationPools: [], dnsNameservers: ['10.0.0.2'], hostRoutes: [], enableDhcp: true }, noGateway: false }, member);
  const sg = `sg-${T}`;
  N('security_group', sg, { type: 'CreateSecurityGroup', securityGroup: { id: sg, projectId: project, name: 'default', description: 'default', stateful: true, isDefault: true } }, member);
  for (const [i, port] of [22, 80, 443].entries()) {
    N('security_group', sg, { type: 'AddSecurityGroupRule', rule: { id: `r-${T}-${i}`, securityGroupId: sg, projectId: project, direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: port, portRangeMax: port, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: '', description: '' } }, member);
  }
  const router = `rt-${T}`;
  N('router', router, { type: 'CreateRouter', router: { id: router, projectId: project, name: 'edge', adminStateUp: true, externalGatewayInfo: null } }, member);

  /** A port on the network, bound and up on a host. */
  let macs = 0;
  const port = (id: string, deviceId: string, host: string) => {
    const mac = `fa:16:3e:00:${(++macs >> 8).toString(16).padStart(2, '0')}:${(macs & 255).toString(16).padStart(2, '0')}`;
    const [ip] = N('subnet', subnet, { type: 'AllocateIp', portId: id, ipAddress: '', deviceOwner: 'compute:nova' });
    N('network', net, { type: 'AddNetworkPort', portId: id, macAddress: mac });
    N('port', id, { type: 'CreatePort', port: { id, networkId: net, projectId: project, name: '', macAddress: mac, fixedIps: [{ subnetId: subnet, ipAddress: ip.ipAddress }], deviceOwner: 'compute:nova', deviceId, securityGroups: [sg], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true } });
    N('port', id, { type: 'BindPort', hostId: host });
    N('port', id, { type: 'ReportPortUp', hostId: host });
  };

  // Servers: booted through the conductor's steps, then used, some resized or deleted.
  const act = (id: string, command: M, action: string) => {
    const req = `req-${action}-${id}-${command.type}`;
    C('instance', id, command, member, req);
    C('instance', id, { type: 'CompleteInstanceAction', action }, SERVICE, req);
  };
  const servers: { id: string; host: string; deleted?: boolean }[] = [];
  for (let i = 0; i < 24; i++) {
    const id = `i-${T}-${i}`;
    const host = hosts[i % hosts.length];
    const req = `req-boot-${id}`;
    C('instance', id, { type: 'CreateInstance', name: `web-${i}`, projectId: project, userId: users[0], flavor, imageId: imageId(0), keyName: 'laptop', availabilityZone: '', serverGroupId: '', metadata: { role: 'web' } }, member, req);
    C('quota', project, { type: 'ReserveQuota', consumerId: id, usage: { instances: 1, cores: 1, ram: 2048 } }, SERVICE, req);
    C('host', host, { type: 'ClaimResources', consumerId: id, vcpus: 1, ramMb: 2048, diskGb: 20, groupId: '', policy: '' }, SERVICE, req);
    C('instance', id, { type: 'AssignInstanceHost', host, availabilityZone: 'nova' }, SERVICE, req);
    port(`pt-${T}-${i}`, id, host);
    C('instance', id, { type: 'AdvanceInstanceTask', taskState: 'spawning' }, SERVICE, req);
    C('instance', id, { type: 'CompleteInstanceAction', action: 'create' }, SERVICE, req);
    servers.push({ id, host });
  }
  for (const [i, s] of servers.entries()) {
    for (let round = 0; round < 3; round++) {
      act(s.id, { type: 'StopInstance' }, 'stop');
      act(s.id, { type: 'StartInstance' }, 'start');
    }
    act(s.id, { type: 'RebootInstance' }, 'reboot');
    C('instance', s.id, { type: 'SetInstanceMetadata', items: { owner: users[i % 3], tier: 'front' }, maxItems: 128 }, member);
    if (i % 4 === 1) {
      // Resize to another host, confirmed: the source's claim is given back.
      const target = hosts[(i + 1) % hosts.length];
      const req = `req-resize-${s.id}`;
      C('instance', s.id, { type: 'ResizeInstance', flavor: large }, member, req);
      C('host', target, { type: 'ClaimResources', consumerId: `${s.id}-resize`, vcpus: 2, ramMb: 4096, diskGb: 20, groupId: '', policy: '' }, SERVICE, req);
      C('instance', s.id, { type: 'AssignInstanceHost', host: target, availabilityZone: 'nova' }, SERVICE, req);
      C('instance', s.id, { type: 'CompleteInstanceAction', action: 'resize' }, SERVICE, req);
      C('instance', s.id, { type: 'ConfirmResizeInstance' }, member, `req-confirm-${s.id}`);
      C('host', s.host, { type: 'ReleaseResources', consumerId: s.id }, SERVICE);
      s.host = target;
    }
    if (i % 4 === 3) {
      act(s.id, { type: 'DeleteInstance', soft: false }, 'delete');
      C('host', s.host, { type: 'ReleaseResources', consumerId: s.id });
      C('quota', project, { type: 'ReleaseQuota', consumerId: s.id });
      N('port', `pt-${T}-${i}`, { type: 'DeletePort' });
      N('subnet', subnet, { type: 'ReleaseIp', portId: `pt-${T}-${i}`, ipAddress: '' });
      s.deleted = true;
    }
  }

  // Block: a storage host reporting capacity, a type, volumes made, attached, extended, some deleted.
  const bhost = `bh-${T}`;
  B('block_host', bhost, { type: 'RegisterBlockHost', hostId: bhost, backend: 'lvm', availabilityZone: 'nova', totalGb: 4000, backupStore: false });
  B('volume_type', `vt-${T}`, { type: 'CreateVolumeType', volumeType: { id: `vt-${T}`, name: `fast-${T}`, description: '', isPublic: true, extraSpecs: { volume_backend_name: 'lvm' }, backend: 'lvm' } }, ADMIN);
  for (let i = 0; i < 8; i++) {
    const v = `v-${T}-${i}`;
    const server = servers[i];
    B('block_quota', project, { type: 'ReserveBlockQuota', consumerId: v, usage: { volumes: 1, gigabytes: 10 } });
    B('volume', v, { type: 'CreateVolume', volume: { id: v, projectId: project, userId: users[0], name: `data-${i}`, description: '', sizeGb: 10, volumeTypeId: `vt-${T}`, backend: 'lvm', availabilityZone: 'nova', bootable: false, multiattach: false, metadata: {}, format: 'raw', source: { kind: '', id: '' }, createdAtMs: 0 }, hostId: bhost }, member);
    B('volume', v, { type: 'ReportVolumeCreated', hostId: bhost });
    if (!server.deleted) {
      const a = `att-${T}-${i}`;
      B('volume', v, { type: 'ReserveAttachment', attachment: { id: a, serverId: server.id, hostId: server.host, mode: 'rw', deleteOnTermination: false, status: 'reserved', connection: { host: '', port: 0, exportName: '' }, device: '' } });
      B('volume', v, { type: 'UpdateAttachment', attachmentId: a });
      B('volume', v, { type: 'ReportAttachmentExported', attachmentId: a, hostId: bhost, connection: { host: '10.0.9.1', port: 10809, exportName: v } });
      B('volume', v, { type: 'CompleteAttachment', attachmentId: a, device: '/dev/vdb' });
    } else {
      B('volume', v, { type: 'ExtendVolume', newSizeGb: 20 }, member);
      B('volume', v, { type: 'ReportVolumeExtended', hostId: bhost, sizeGb: 20 });
      B('volume', v, { type: 'DeleteVolume', cascade: false }, member);
      B('volume', v, { type: 'ReportVolumeDeleted', hostId: bhost });
      B('block_quota', project, { type: 'ReleaseBlockQuota', consumerId: v });
    }
  }

  // Object storage: two containers, objects recorded, rewritten, updated and deleted.
  const account = `AUTH_${project}`;
  const ts = (n: number) => `${1764640000 + n}.${String(n % 100000).padStart(5, '0')}`;
  let n = 0;
  for (const c of ['photos', 'backups']) {
    O('container', `${account}/${c}`, { type: 'CreateContainer', container: { account, name: c, metadata: { owner: users[0] }, readAcl: [], writeAcl: [], quotaBytes: 0, quotaCount: 0, createdAtMs: 0 } });
    for (let i = 0; i < 120; i++) {
      const name = `${c === 'photos' ? 'album' : 'nightly'}/${i % 7}/object-${i}.bin`;
      const id = `${account}/${c}/${name}`;
      const version = () => ({
        account, container: c, name, timestamp: ts(++n), etag: (n * 7919).toString(16).padStart(32, '0'), size: 1000 + i * 37,
        contentType: 'application/octet-stream', metadata: { source: 'camera' }, partition: i % 1024, segments: [], ringVersion: 1,
      });
      O('object', id, { type: 'RecordObject', object: version() });
      if (i % 3 === 0) O('object', id, { type: 'RecordObject', object: version() });
      if (i % 6 === 1) O('object', id, { type: 'UpdateObjectMetadata', timestamp: ts(++n), metadata: { reviewed: 'yes' }, contentType: 'image/jpeg' });
      if (i % 4 === 2) O('object', id, { type: 'RecordObjectDeleted', timestamp: ts(++n) });
    }
  }

  // Images: uploaded to active, one shared with another project.
  for (let i = 0; i < 3; i++) {
    const id = imageId(i);
    G('image', id, { type: 'CreateImage', image: { id, name: `debian-${i}`, owner: project, visibility: 'shared', diskFormat: 'qcow2', containerFormat: 'bare', minDisk: 1, minRam: 64, protected: false, osHidden: false, tags: ['os'], properties: { hw_disk_bus: 'virtio' } } });
    G('image', id, { type: 'StartImageUpload', location: `AUTH_glance/images/${id}` });
    G('image', id, { type: 'CompleteImageUpload', size: 300_000_000, virtualSize: 2 * 2 ** 30, checksum: 'a'.repeat(32), osHashAlgo: 'sha512', osHashValue: 'b'.repeat(128), location: `AUTH_glance/images/${id}` });
    if (i === 0) G('image', id, { type: 'AddImageMember', memberProjectId: `other-${T}` });
  }

  // Heartbeats: every host, every round (the bulk of a real log).
  for (let round = 0; round < 90; round++) {
    for (const h of hosts) C('host', h, { type: 'RecordHostHeartbeat' });
    if (round % 10 === 0) B('block_host', bhost, { type: 'ReportBlockCapacity', hostId: bhost, totalGb: 4000, freeGb: 3900 - round });
  }
  return r.events;
}

/** Where each tag sits in a record's bytes. */
interface Template extends CellEvent {
  at: number[][];
}

function tagPositions(bytes: Buffer, tag: string): number[] {
  const at: number[] = [];
  for (let i = bytes.indexOf(tag); i >= 0; i = bytes.indexOf(tag, i + tag.length)) at.push(i);
  return at;
}

/**
 * Records of `cells` copies of the cell, cell by cell, to the events topics `topicOf(domain)` with
 * `partitions` partitions each; `emit` takes them in chunks.
 */
export async function writeCells(
  cells: number,
  partitions: number,
  topicOf: (domain: string) => string,
  emit: (records: OutRecord[]) => Promise<void>,
  chunk = 10_000,
): Promise<{ records: number; bytes: number; perCell: number; byDomain: Record<string, number> }> {
  if (cells > 36 ** 4 || cells > 16 ** 4) throw new Error(`at most ${16 ** 4} cells`);
  const templates: Template[] = decideCell().map((e) => ({ ...e, at: TAGS.map((t) => tagPositions(Buffer.from(e.value), t.tag)) }));
  const byDomain: Record<string, number> = {};
  for (const t of templates) byDomain[t.domain] = (byDomain[t.domain] ?? 0) + cells;
  let out: OutRecord[] = [];
  let records = 0;
  let bytes = 0;
  for (let cell = 0; cell < cells; cell++) {
    const tags = TAGS.map((t) => t.of(cell));
    const tagBytes = tags.map((t) => Buffer.from(t));
    for (const t of templates) {
      const value = Buffer.from(t.value);
      t.at.forEach((at, k) => at.forEach((i) => tagBytes[k].copy(value, i)));
      let key = t.key;
      TAGS.forEach((x, k) => (key = key.replaceAll(x.tag, tags[k])));
      out.push({ topic: topicOf(t.domain), partition: partitionForKey(key, partitions), key, value, headers: { traceparent: TRACEPARENT, [HEADER_EVENT_TYPE]: t.type } });
      records++;
      bytes += value.length;
      if (out.length >= chunk) {
        await emit(out);
        out = [];
      }
    }
  }
  if (out.length > 0) await emit(out);
  return { records, bytes, perCell: templates.length, byDomain };
}
