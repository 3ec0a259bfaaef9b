// What asking for one server means in commands, in order: reserve the project's quota (so an
// over-quota request is refused at once with RESOURCE_EXHAUSTED naming the quota), join the
// server group if one is named (its member cap is a quota too), then create the instance, which
// the conductor schedules from there. A refusal at any step gives back what the earlier steps
// took, so a refused request leaves nothing held. Command ids derive from the caller's request
// id, so a retried request meets the original replies instead of booting twice.
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import type { Message } from '../../domains/kernel/decider.js';
import type { Rejection } from '../../domains/kernel/rejection.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';

export interface BootRequest {
  instanceId: string;
  name: string;
  projectId: string;
  userId: string;
  flavor: FlavorRef;
  imageId: string;
  keyName?: string;
  availabilityZone?: string;
  serverGroupId?: string;
  /** The project's server_group_members quota (-1: unlimited). */
  maxGroupMembers?: number;
  metadata?: Record<string, string>;
}

export type BootOutcome = { ok: true; reply: Extract<Reply, { kind: 'accepted' }> } | { ok: false; rejection: Rejection };

export async function requestBoot(
  bus: CommandBus,
  r: BootRequest,
  actor: Actor,
  requestId: string,
  options: { domain?: string; now?: () => number } = {},
): Promise<BootOutcome> {
  const domain = options.domain ?? COMPUTE_DOMAIN;
  const send = (aggregateType: string, aggregateId: string, command: Message & Record<string, unknown>, step: string) =>
    bus.send({
      domain,
      aggregateType,
      aggregateId,
      type: command.type,
      payload: computeCodecFor(aggregateType).encodeCommand(command),
      actor,
      commandId: `${requestId}/${r.instanceId}/${step}`,
      correlationId: requestId,
      issuedAtMs: (options.now ?? Date.now)(),
    });
  const usage = { instances: 1, cores: r.flavor.vcpus, ram: r.flavor.ramMb };
  const quota = await send('quota', r.projectId, { type: 'ReserveQuota', consumerId: r.instanceId, usage }, 'reserve-quota');
  if (quota.kind === 'rejected') return { ok: false, rejection: quota.rejection };
  const undo: (() => Promise<unknown>)[] = [() => send('quota', r.projectId, { type: 'ReleaseQuota', consumerId: r.instanceId }, 'release-quota')];
  const giveBack = async () => {
    for (const u of undo.reverse()) await u();
  };
  if (r.serverGroupId) {
    const joined = await send('server_group', r.serverGroupId, { type: 'AddServerGroupMember', instanceId: r.instanceId, maxMembers: r.maxGroupMembers ?? 10 }, 'join-group');
    if (joined.kind === 'rejected') {
      await giveBack();
      return { ok: false, rejection: joined.rejection };
    }
    undo.push(() => send('server_group', r.serverGroupId!, { type: 'RemoveServerGroupMember', instanceId: r.instanceId }, 'leave-group'));
  }
  const created = await send(
    'instance',
    r.instanceId,
    {
      type: 'CreateInstance', name: r.name, projectId: r.projectId, userId: r.userId, flavor: r.flavor, imageId: r.imageId,
      keyName: r.keyName ?? '', availabilityZone: r.availabilityZone ?? '', serverGroupId: r.serverGroupId ?? '', metadata: r.metadata ?? {},
    },
    'create',
  );
  if (created.kind === 'rejected') {
    await giveBack();
    return { ok: false, rejection: created.rejection };
  }
  return { ok: true, reply: created };
}
