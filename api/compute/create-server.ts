// CreateServer's writes, for one to max_count servers: first the quota of each (ReserveQuota on
// the project's quota aggregate, so concurrent boots meet at one writer), then each server's
// seat in its server group (AddServerGroupMember, capped by the server_group_members quota),
// then the instance itself (CreateInstance, which the conductor schedules from there: the API
// never schedules). Nova's multi-create: as many as max_count if all fit, else as many as fit
// down to min_count, else the first refusal (naming the quota). Whatever a refused request took
// is given back (ReleaseQuota, RemoveServerGroupMember), so nothing stays held.
//
// Ids and command ids derive from the request_id: a retried request sends the same commands and
// meets their original replies, so it creates the same servers, or fails the same way, once.
import { createHash } from 'node:crypto';
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import { requestedInterface } from '../../domains/compute/instance.interfaces.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { ApiError } from '../errors.js';
import type { ComputeWriter } from './compute.writer.js';
import { interfacePortId, type NetworkRequest } from './server-networks.js';

export interface ServerRequest {
  requestId: string;
  projectId: string;
  userId: string;
  actor: Actor;
  name: string;
  flavor: FlavorRef;
  imageId: string;
  keyName: string;
  availabilityZone: string;
  serverGroupId: string;
  metadata: Record<string, string>;
  minCount: number;
  maxCount: number;
  /** The project's server_group_members quota (-1: unlimited), when a group is named. */
  maxGroupMembers: number;
  /** The networks (checked: server-networks.ts), one interface each per server; absent: none. */
  networks?: NetworkRequest[];
}

/** A server's id, from its project, the request and its index: the same on every retry. */
export function serverId(projectId: string, requestId: string, index: number): string {
  const h = createHash('sha256').update(`strata/server/${projectId}/${requestId}/${index}`).digest('hex');
  // Shaped as a version-4 UUID, as Nova's instance ids are.
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Nova's multi_instance_display_name_template: "<name>-<n>" when several servers are made. */
export const serverName = (name: string, index: number, count: number) => (count > 1 ? `${name}-${index + 1}` : name);

/** The CreateInstance command of server `index` of `count`. */
export function createInstanceCommand(r: ServerRequest, index: number, count: number) {
  return {
    type: 'CreateInstance',
    name: serverName(r.name, index, count),
    projectId: r.projectId,
    userId: r.userId,
    flavor: r.flavor,
    imageId: r.imageId,
    keyName: r.keyName,
    availabilityZone: r.availabilityZone,
    serverGroupId: r.serverGroupId,
    metadata: r.metadata,
    // Each server its own ports on the networks asked for (ids from the server and the request), or the port given.
    interfaces: (r.networks ?? []).map((n, k) =>
      requestedInterface({
        portId: n.portId || interfacePortId(serverId(r.projectId, r.requestId, index), r.requestId, k),
        networkId: n.networkId,
        requestedIp: n.fixedIp,
        preserveOnDelete: Boolean(n.portId),
      }),
    ),
  };
}

const refused = (reply: Reply) => (reply.kind === 'rejected' ? reply.rejection : undefined);

/** Creates the servers; returns their ids (min_count to max_count of them) or throws the refusal. */
export async function createServers(writer: ComputeWriter, r: ServerRequest): Promise<string[]> {
  const ids = Array.from({ length: r.maxCount }, (_, i) => serverId(r.projectId, r.requestId, i));
  // Command ids are global idempotency keys: the project keeps two projects' request ids apart.
  const cmd = (i: number, step: string) => ({ commandId: `compute/${r.projectId}/${r.requestId}/server/${i}/${step}`, correlationId: r.requestId });
  const usage = { instances: 1, cores: r.flavor.vcpus, ram: r.flavor.ramMb };

  // Compensation: what servers from..to-1 hold goes back. The replies are not waited on for
  // success: a release of nothing held is accepted with no event.
  const release = async (from: number, to: number) => {
    for (let i = from; i < to; i++) await writer.send('quota', r.projectId, { type: 'ReleaseQuota', consumerId: ids[i] }, r.actor, cmd(i, 'release'));
  };
  const leave = async (from: number, to: number) => {
    if (!r.serverGroupId) return;
    for (let i = from; i < to; i++) {
      await writer.send('server_group', r.serverGroupId, { type: 'RemoveServerGroupMember', instanceId: ids[i] }, r.actor, cmd(i, 'leave'));
    }
  };

  // 1. Quota, one server at a time, until one does not fit.
  let reserved = 0;
  let refusal;
  while (reserved < r.maxCount) {
    const reply = await writer.reply('quota', r.projectId, { type: 'ReserveQuota', consumerId: ids[reserved], usage }, r.actor, cmd(reserved, 'reserve'));
    refusal = refused(reply);
    if (refusal) break;
    reserved++;
  }
  if (reserved < r.minCount || (refusal && refusal.code !== 'RESOURCE_EXHAUSTED')) {
    await release(0, reserved);
    throw new ApiError(refusal!);
  }

  // 2. Seats in the server group, within server_group_members.
  let seated = reserved;
  if (r.serverGroupId) {
    seated = 0;
    refusal = undefined;
    while (seated < reserved) {
      const reply = await writer.reply(
        'server_group',
        r.serverGroupId,
        { type: 'AddServerGroupMember', instanceId: ids[seated], maxMembers: r.maxGroupMembers },
        r.actor,
        cmd(seated, 'join'),
      );
      refusal = refused(reply);
      if (refusal) break;
      seated++;
    }
    if (seated < r.minCount || (refusal && refusal.code !== 'RESOURCE_EXHAUSTED')) {
      await leave(0, seated);
      await release(0, reserved);
      throw new ApiError(refusal!);
    }
  }
  await release(seated, reserved);

  // 3. The instances. Their commands were validated before step 1, so a refusal here is not
  // expected; if one comes, the servers not made give back what they hold, and if fewer than
  // min_count were made, those are deleted too (they have no host yet: deleted at once).
  for (let i = 0; i < seated; i++) {
    const reply = await writer.reply('instance', ids[i], createInstanceCommand(r, i, seated), r.actor, cmd(i, 'create'));
    const no = refused(reply);
    if (!no) continue;
    await leave(i, seated);
    await release(i, seated);
    if (i >= r.minCount) return ids.slice(0, i);
    for (let j = 0; j < i; j++) await writer.reply('instance', ids[j], { type: 'DeleteInstance', soft: false }, r.actor, cmd(j, 'undo'));
    await leave(0, i);
    await release(0, i);
    throw new ApiError(no);
  }
  return ids.slice(0, seated);
}
