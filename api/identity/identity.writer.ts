// Sends identity commands and waits for their replies (and, when the API hosts the identity
// projection, for the read model to show them). Creating a named resource first claims its name,
// so names stay unique in their scope; a refused create releases the claim. Command ids derive
// from the caller's request_id, so a retried request meets the original reply.
import { createHash, randomUUID } from 'node:crypto';
import type { Message } from '../../domains/kernel/decider.js';
import { IDENTITY_DOMAIN } from '../../domains/identity/identity.types.js';
import { identityCodecFor } from '../../infra/codecs/identity.codec.js';
import type { Actor, Position, Reply } from '../../infra/envelope/envelope.js';
import type { CommandBus } from '../../infra/runtime/command-bus.js';
import { ApiError } from '../errors.js';

export type Accepted = Extract<Reply, { kind: 'accepted' }>;

/** The name-claim aggregate id of a resource ("<kind>/<scope>/<lowercased name>"), or undefined for unnamed kinds. */
export function nameClaim(kind: string, resource: Record<string, unknown>): string | undefined {
  const name = String(resource.name ?? '').toLowerCase();
  switch (kind) {
    case 'domain':
    case 'role':
      return `${kind}/cloud/${name}`;
    case 'project':
    case 'user':
    case 'group':
      return `${kind}/${resource.domainId}/${name}`;
    default:
      return undefined;
  }
}

/** A resource id: derived from the request_id when there is one (so retries agree), else random. */
export const resourceId = (kind: string, requestId: string): string =>
  requestId ? createHash('sha256').update(`strata/${kind}/${requestId}`).digest('hex').slice(0, 32) : randomUUID().replaceAll('-', '');

export class IdentityWriter {
  constructor(
    private readonly bus: CommandBus,
    /** Resolves once the read model reflects the given position (absent: do not wait). */
    private readonly waitFor?: (position: Position) => Promise<void>,
    /** The API's clock, which stamps commands: lockouts and revocations compare with it. */
    private readonly now: () => number = Date.now,
  ) {}

  /** Sends one command; a rejection is thrown as ApiError; returns once the read model shows the events. */
  async send(
    aggregateType: string,
    aggregateId: string,
    command: Message & Record<string, unknown>,
    actor: Actor,
    commandId?: string,
    options: { awaitReadModel?: boolean } = {},
  ): Promise<Accepted> {
    const payload = identityCodecFor(aggregateType).encodeCommand(command);
    const reply = await this.bus.send({
      domain: IDENTITY_DOMAIN,
      aggregateType,
      aggregateId,
      type: command.type,
      payload,
      actor,
      commandId: commandId || randomUUID(),
      issuedAtMs: this.now(),
    });
    if (reply.kind === 'rejected') throw new ApiError(reply.rejection);
    if (reply.position && this.waitFor && options.awaitReadModel !== false) {
      await this.waitFor({ ...reply.position, offset: reply.position.offset + reply.events.length - 1 });
    }
    return reply;
  }

  async claimName(claim: string, ownerId: string, actor: Actor, commandId?: string): Promise<void> {
    await this.send('name', claim, { type: 'ClaimName', ownerId }, actor, commandId);
  }

  async releaseName(claim: string, ownerId: string, actor: Actor, commandId?: string): Promise<void> {
    await this.send('name', claim, { type: 'ReleaseName', ownerId }, actor, commandId);
  }

  /** Claims the name (if the kind has unique names), then creates; a refused create gives the name back. */
  async create(
    kind: string,
    noun: string,
    resource: Record<string, unknown>,
    actor: Actor,
    requestId: string,
    extra: Record<string, unknown> = {},
  ): Promise<Accepted> {
    const id = String(resource.id);
    const base = requestId ? `${kind}:${requestId}` : `${kind}:${randomUUID()}`;
    const claim = nameClaim(kind, resource);
    if (claim) await this.claimName(claim, id, actor, `${base}/claim`);
    try {
      return await this.send(kind, id, { type: `Create${noun}`, [kind]: resource, ...extra }, actor, `${base}/create`);
    } catch (e) {
      if (claim) await this.releaseName(claim, id, actor).catch(() => undefined);
      throw e;
    }
  }

  /** Renames claim the new name first and release the old one after. */
  async update(kind: string, noun: string, before: Record<string, unknown>, patch: Record<string, unknown>, mask: string[], actor: Actor): Promise<Accepted> {
    const id = String(before.id);
    const oldClaim = nameClaim(kind, before);
    const newClaim = mask.includes('name') ? nameClaim(kind, { ...before, name: patch.name }) : oldClaim;
    const renamed = newClaim !== oldClaim;
    if (renamed && newClaim) await this.claimName(newClaim, id, actor);
    try {
      const reply = await this.send(kind, id, { type: `Update${noun}`, [kind]: patch, updateMask: mask }, actor);
      if (renamed && oldClaim) await this.releaseName(oldClaim, id, actor);
      return reply;
    } catch (e) {
      if (renamed && newClaim) await this.releaseName(newClaim, id, actor).catch(() => undefined);
      throw e;
    }
  }

  async delete(kind: string, noun: string, resource: Record<string, unknown>, actor: Actor): Promise<Accepted> {
    const reply = await this.send(kind, String(resource.id), { type: `Delete${noun}` }, actor);
    const claim = nameClaim(kind, resource);
    if (claim) await this.releaseName(claim, String(resource.id), actor);
    return reply;
  }
}
