// The network API's multi-aggregate writes, done as small sagas with compensation (as
// create-server.ts does for compute): each step is a command to one aggregate, and a failed step
// gives back what the earlier ones took, so nothing stays held.
//
//   create network = reserve quota (network) + (a tenant network) allocate a VXLAN id from the
//                    configured range on the "vxlan" segment pool + CreateNetwork
//   create port    = reserve quota (port) + register its MAC on the network (AddNetworkPort; a drawn
//                    MAC that is taken is drawn again) + allocate its fixed IPs on their subnets
//                    (AllocateIp: the next free one, or the one asked) + CreatePort
//   delete port    = DeletePort + ReleaseIp on each subnet + RemoveNetworkPort + ReleaseNetworkQuota
//   delete network = DeleteNetwork (refused while ports are on it) + DeleteSubnet each +
//                    ReleaseSegment + ReleaseNetworkQuota
//
// Command ids derive from the project, the request and the step: a retried request sends the same
// commands and meets their original replies, so it makes the same resource, or fails the same way.
import { createHash } from 'node:crypto';
import type { FixedIp, Network, Port, SecurityGroup, Subnet } from '../../domains/network/network.types.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { ApiError } from '../errors.js';
import { derivedId } from '../request.js';
import type { NetworkWriter } from './network.writer.js';

const refused = (reply: Reply) => (reply.kind === 'rejected' ? reply.rejection : undefined);

/** The segment pool of a network type: "vxlan", or "vlan:<physical network>". */
export const segmentPool = (n: Pick<Network, 'networkType' | 'physicalNetwork'>) => (n.networkType === 'vlan' ? `vlan:${n.physicalNetwork}` : n.networkType);

export interface SegmentRanges {
  /** Neutron's vni_ranges: the tenant VXLAN ids. */
  vxlan: { min: number; max: number };
  /** Neutron's network_vlan_ranges (one range for every physical network here). */
  vlan: { min: number; max: number };
}

export const DEFAULT_SEGMENT_RANGES: SegmentRanges = { vxlan: { min: 1, max: 65_535 }, vlan: { min: 1, max: 4094 } };

export interface SagaContext {
  writer: NetworkWriter;
  actor: Actor;
  projectId: string;
  requestId: string;
}

export const step = (s: SagaContext, kind: string, id: string, name: string) => ({ commandId: `network/${s.projectId}/${s.requestId}/${kind}/${id}/${name}`, correlationId: s.requestId });

/**
 * Creates a network. Without provider attributes it is a tenant network: VXLAN, with the lowest
 * free id of ranges.vxlan. An admin's provider network with a segmentation id records that id on
 * its pool (ALREADY_EXISTS when another network holds it). A non-admin's provider attributes go to
 * the decider as they are, which refuses them naming the field.
 */
export async function createNetwork(s: SagaContext, network: Network, ranges: SegmentRanges, isAdmin: boolean): Promise<void> {
  const provider = Boolean(network.networkType || network.physicalNetwork || network.segmentationId);
  const quota = await s.writer.reply('network_quota', s.projectId, { type: 'ReserveNetworkQuota', consumerId: network.id, usage: { network: 1 } }, s.actor, step(s, 'network', network.id, 'reserve'));
  const releaseQuota = () => s.writer.send('network_quota', s.projectId, { type: 'ReleaseNetworkQuota', consumerId: network.id }, s.actor, step(s, 'network', network.id, 'release'));
  if (refused(quota)) throw new ApiError(refused(quota)!);

  let pool = '';
  let segmentAllocated = false;
  const n = { ...network };
  if (!provider || (isAdmin && (n.networkType === 'vxlan' || n.networkType === 'vlan'))) {
    if (!provider) Object.assign(n, { networkType: 'vxlan', physicalNetwork: '' });
    pool = segmentPool(n);
    const range = n.networkType === 'vlan' ? ranges.vlan : ranges.vxlan;
    const reply = await s.writer.reply(
      'segment_pool',
      pool,
      { type: 'AllocateSegment', networkId: n.id, segmentationId: n.segmentationId ?? 0, rangeMin: range.min, rangeMax: range.max },
      s.actor,
      step(s, 'network', n.id, 'segment'),
    );
    const no = refused(reply);
    if (no) {
      await releaseQuota();
      throw new ApiError(no);
    }
    const [allocated] = reply.kind === 'accepted' ? s.writer.events('segment_pool', reply) : [];
    if (allocated) n.segmentationId = allocated.segmentationId;
    segmentAllocated = !provider;
  }
  const created = await s.writer.reply('network', n.id, { type: 'CreateNetwork', network: n, segmentAllocated }, s.actor, step(s, 'network', n.id, 'create'));
  const no = refused(created);
  if (no) {
    if (pool) await s.writer.send('segment_pool', pool, { type: 'ReleaseSegment', networkId: n.id }, s.actor, step(s, 'network', n.id, 'unsegment'));
    await releaseQuota();
    throw new ApiError(no);
  }
}

/** Deletes a network (refused while ports are on it), its subnets, and gives back its segment and quota. */
export async function deleteNetwork(s: SagaContext, network: Network, subnetIds: string[]): Promise<void> {
  await s.writer.send('network', network.id, { type: 'DeleteNetwork' }, s.actor, step(s, 'network', network.id, 'delete'));
  for (const id of subnetIds) {
    const reply = await s.writer.reply('subnet', id, { type: 'DeleteSubnet' }, s.actor, step(s, 'subnet', id, 'delete'));
    // A subnet already gone (deleted before, or concurrently) is what we wanted.
    if (refused(reply) && refused(reply)!.code !== 'NOT_FOUND') throw new ApiError(refused(reply)!);
    await s.writer.send('network_quota', network.projectId, { type: 'ReleaseNetworkQuota', consumerId: id }, s.actor, step(s, 'subnet', id, 'release'));
  }
  if (network.networkType && network.networkType !== 'flat') {
    await s.writer.send('segment_pool', segmentPool(network), { type: 'ReleaseSegment', networkId: network.id }, s.actor, step(s, 'network', network.id, 'unsegment'));
  }
  await s.writer.send('network_quota', network.projectId, { type: 'ReleaseNetworkQuota', consumerId: network.id }, s.actor, step(s, 'network', network.id, 'release'));
}

/** A MAC in Neutron's base fa:16:3e, its last three bytes drawn from the request and the attempt. */
export function drawMac(seed: string, attempt: number): string {
  const h = createHash('sha256').update(`strata/mac/${seed}/${attempt}`).digest();
  return ['fa', '16', '3e', ...[h[0], h[1], h[2]].map((x) => x.toString(16).padStart(2, '0'))].join(':');
}

/** How many drawn MACs may be taken in a row before the request gives up (2^24 per network). */
const MAC_ATTEMPTS = 8;

/**
 * Creates a port: quota, MAC, fixed IPs (each `{subnetId, ipAddress}`; '' = the next free one),
 * then the port. A given MAC that is taken is ALREADY_EXISTS; a drawn one is drawn again. Router
 * gateway and floating IP ports count against no quota (Neutron gives them no project).
 */
/** The id of a project's default security group: one per project, whoever asks first. */
export const defaultGroupId = (projectId: string) => derivedId('security_group', projectId, 'default');

/**
 * Makes the project's default group (Neutron's rules) unless it was made: every caller (the
 * NetworkService, the conductor giving servers ports) sends the same command id, so concurrent
 * ones meet one group; ALREADY_EXISTS (made, maybe deleted by an admin since) leaves it as it is.
 */
export async function makeDefaultGroup(writer: NetworkWriter, projectId: string, actor: Actor): Promise<string> {
  const id = defaultGroupId(projectId);
  const securityGroup: SecurityGroup = { id, projectId, name: 'default', description: 'Default security group', stateful: true, isDefault: true };
  const reply = await writer.reply('security_group', id, { type: 'CreateSecurityGroup', securityGroup }, actor, { commandId: `network/${projectId}/default-security-group` });
  if (reply.kind === 'rejected' && reply.rejection.code !== 'ALREADY_EXISTS') throw new ApiError(reply.rejection);
  return id;
}

/** Where a port that names no fixed IP gets its address: the network's first IPv4 subnet (else its first). */
export const defaultSubnet = (subnets: Subnet[]): Subnet | undefined => subnets.find((x) => x.ipVersion === 4) ?? subnets[0];

export async function createPort(s: SagaContext, port: Port, wanted: FixedIp[], deviceOwner: string, options: { countQuota?: boolean } = {}): Promise<Port> {
  const undo: (() => Promise<unknown>)[] = [];
  const rollback = async () => {
    for (const u of undo.reverse()) await u();
  };
  const cmd = (name: string) => step(s, 'port', port.id, name);
  try {
    if (options.countQuota ?? true) {
      const quota = await s.writer.reply('network_quota', s.projectId, { type: 'ReserveNetworkQuota', consumerId: port.id, usage: { port: 1 } }, s.actor, cmd('reserve'));
      if (refused(quota)) throw new ApiError(refused(quota)!);
      undo.push(() => s.writer.reply('network_quota', s.projectId, { type: 'ReleaseNetworkQuota', consumerId: port.id }, s.actor, cmd('release')));
    }

    let mac = port.macAddress;
    for (let attempt = 0; ; attempt++) {
      const candidate = mac || drawMac(`${s.projectId}/${s.requestId}/${port.id}`, attempt);
      const reply = await s.writer.reply('network', port.networkId, { type: 'AddNetworkPort', portId: port.id, macAddress: candidate }, s.actor, cmd(`mac/${attempt}`));
      const no = refused(reply);
      if (!no) {
        mac = candidate;
        break;
      }
      if (no.code !== 'ALREADY_EXISTS' || port.macAddress || attempt + 1 >= MAC_ATTEMPTS) throw new ApiError(no);
    }
    undo.push(() => s.writer.reply('network', port.networkId, { type: 'RemoveNetworkPort', portId: port.id, macAddress: mac }, s.actor, cmd('unmac')));

    const fixedIps: FixedIp[] = [];
    for (const [i, f] of wanted.entries()) {
      const reply = await s.writer.reply('subnet', f.subnetId, { type: 'AllocateIp', portId: port.id, ipAddress: f.ipAddress, deviceOwner }, s.actor, cmd(`ip/${i}`));
      const no = refused(reply);
      if (no) throw new ApiError(no.field === 'ip_address' ? { ...no, field: `port.fixed_ips[${i}].ip_address` } : no);
      const [allocated] = reply.kind === 'accepted' ? s.writer.events('subnet', reply) : [];
      fixedIps.push({ subnetId: f.subnetId, ipAddress: allocated?.ipAddress ?? f.ipAddress });
      undo.push(() => s.writer.reply('subnet', f.subnetId, { type: 'ReleaseIp', portId: port.id, ipAddress: '' }, s.actor, cmd(`unip/${i}`)));
    }

    const made = { ...port, macAddress: mac, fixedIps };
    await s.writer.send('port', port.id, { type: 'CreatePort', port: made }, s.actor, cmd('create'));
    return made;
  } catch (e) {
    await rollback();
    throw e;
  }
}

/**
 * Gives a port other fixed IPs (Neutron's port update of fixed_ips): the addresses it keeps stay,
 * the new ones are allocated on their subnets first (a taken or exhausted one refuses the whole
 * update and gives back what was taken), then the port records them, then the ones it no longer
 * has go back to their subnets.
 */
export async function changeFixedIps(s: SagaContext, port: Port, wanted: FixedIp[]): Promise<Port> {
  const cmd = (name: string) => step(s, 'port', port.id, name);
  const held = (f: FixedIp) => port.fixedIps.some((x) => x.subnetId === f.subnetId && x.ipAddress === f.ipAddress);
  const taken: FixedIp[] = [];
  const fixedIps: FixedIp[] = [];
  try {
    for (const [i, f] of wanted.entries()) {
      if (f.ipAddress && held(f)) {
        fixedIps.push(f);
        continue;
      }
      const reply = await s.writer.reply('subnet', f.subnetId, { type: 'AllocateIp', portId: port.id, ipAddress: f.ipAddress, deviceOwner: port.deviceOwner }, s.actor, cmd(`update-ip/${i}`));
      const no = refused(reply);
      if (no) throw new ApiError(no.field === 'ip_address' ? { ...no, field: `port.fixed_ips[${i}].ip_address` } : no);
      const [allocated] = reply.kind === 'accepted' ? s.writer.events('subnet', reply) : [];
      const got = { subnetId: f.subnetId, ipAddress: allocated?.ipAddress ?? f.ipAddress };
      taken.push(got);
      fixedIps.push(got);
    }
    const updated = { ...port, fixedIps };
    await s.writer.send('port', port.id, { type: 'UpdatePort', port: updated, updateMask: ['fixedIps'] }, s.actor, cmd('update-ips'));
    for (const [i, f] of port.fixedIps.filter((x) => !fixedIps.some((y) => y.subnetId === x.subnetId && y.ipAddress === x.ipAddress)).entries()) {
      await s.writer.send('subnet', f.subnetId, { type: 'ReleaseIp', portId: port.id, ipAddress: f.ipAddress }, s.actor, cmd(`unip-old/${i}`));
    }
    return updated;
  } catch (e) {
    for (const [i, f] of taken.entries()) await s.writer.reply('subnet', f.subnetId, { type: 'ReleaseIp', portId: port.id, ipAddress: f.ipAddress }, s.actor, cmd(`unip-new/${i}`));
    throw e;
  }
}

/** Deletes a port and gives back everything it holds; byOwner: its router or floating IP deletes it. */
export async function deletePort(s: SagaContext, port: Port, byOwner = false): Promise<void> {
  const cmd = (name: string) => step(s, 'port', port.id, name);
  await s.writer.send('port', port.id, { type: 'DeletePort', ...(byOwner ? { byOwner } : {}) }, s.actor, cmd('delete'));
  for (const subnetId of new Set(port.fixedIps.map((f) => f.subnetId))) {
    await s.writer.send('subnet', subnetId, { type: 'ReleaseIp', portId: port.id, ipAddress: '' }, s.actor, cmd(`unip/${subnetId}`));
  }
  await s.writer.send('network', port.networkId, { type: 'RemoveNetworkPort', portId: port.id, macAddress: port.macAddress }, s.actor, cmd('unmac'));
  await s.writer.send('network_quota', port.projectId, { type: 'ReleaseNetworkQuota', consumerId: port.id }, s.actor, cmd('release'));
}
