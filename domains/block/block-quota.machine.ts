// A project's block quotas with Cinder's names and defaults (volumes 10, gigabytes 1000,
// snapshots 10, backups 10, backup_gigabytes 1000), and what its consumers (volumes, snapshots,
// backups) hold. A create reserves before it writes and gives back on failure or delete; an
// extend adjusts the volume's holding. One writer per project, so concurrent creates cannot
// overrun a limit. -1 means unlimited. The refusal is Cinder's exception, named and worded as Cinder does.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Rejection } from '../kernel/rejection.js';
import { BLOCK_QUOTA_DEFAULTS, type BlockQuotaName } from './block.types.js';
import { fieldProblem } from './block.validation.js';
import type { Ev } from './status-rules.js';

const NAMES = Object.keys(BLOCK_QUOTA_DEFAULTS) as BlockQuotaName[];
/** Cinder's quota engine reports the names over quota sorted, and the first one names the error. */
const CHECK_ORDER = [...NAMES].sort();
type Counts = Record<BlockQuotaName, number>;

export interface BlockQuotaContext {
  limits: Counts;
  used: Counts;
  /** consumer (a volume, snapshot or backup id) -> what it holds */
  reservations: Record<string, Partial<Counts>>;
}

const zero = (): Counts => Object.fromEntries(NAMES.map((n) => [n, 0])) as Counts;

export interface QuotaExcess {
  name: BlockQuotaName;
  asked: number;
  used: number;
  limit: number;
}

/** The first quota (in Cinder's order) that growing by `growth` would exceed. */
export function exceededBlockQuota(c: BlockQuotaContext, growth: Partial<Record<string, number>>): QuotaExcess | undefined {
  for (const name of CHECK_ORDER) {
    const limit = c.limits[name];
    const asked = growth[name] ?? 0;
    if (asked > 0 && limit >= 0 && c.used[name] + asked > limit) return { name, asked, used: c.used[name], limit };
  }
  return undefined;
}

/** Cinder's messages (cinder/quota_utils.py process_reserve_over_quota and cinder/exception.py). */
export function blockQuotaMessage(over: QuotaExcess): string {
  switch (over.name) {
    case 'gigabytes':
      return `VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested ${over.asked}G, quota is ${over.limit}G and ${over.used}G has been consumed.`;
    case 'backup_gigabytes':
      return `VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested ${over.asked}G, quota is ${over.limit}G and ${over.used}G has been consumed.`;
    case 'volumes':
      return `VolumeLimitExceeded: Maximum number of volumes allowed (${over.limit}) exceeded for quota 'volumes'.`;
    case 'snapshots':
      return `SnapshotLimitExceeded: Maximum number of snapshots allowed (${over.limit}) exceeded`;
    case 'backups':
      return `BackupLimitExceeded: Maximum number of backups allowed (${over.limit}) exceeded`;
  }
}

/** What an adjustment grows by: the new holding less the old, per name (shrinking counts as 0). */
const growthOf = (held: Partial<Counts>, usage: Record<string, number>) =>
  Object.fromEntries(Object.entries(usage).map(([n, v]) => [n, Math.max(0, v - (held[n as BlockQuotaName] ?? 0))]));

/** Why this quota command is refused (undefined: it may run). */
export function blockQuotaRefusal(context: BlockQuotaContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  let over: QuotaExcess | undefined;
  const held = context.reservations[event.consumerId];
  // A retried reservation: the consumer holds it already.
  if (event.type === 'ReserveBlockQuota' && !held) over = exceededBlockQuota(context, event.usage);
  if (event.type === 'AdjustBlockQuota') over = exceededBlockQuota(context, growthOf(held ?? {}, event.usage));
  return over && { code: 'RESOURCE_EXHAUSTED', field: over.name, message: blockQuotaMessage(over) };
}

const allowed = ({ context, event }: { context: BlockQuotaContext; event: Ev }) => blockQuotaRefusal(context, event) === undefined;
const emit = (make: (c: BlockQuotaContext, e: Ev) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: BlockQuotaContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});
const positive = (usage: Record<string, number>) => Object.fromEntries(Object.entries(usage).filter(([, n]) => n > 0)) as Partial<Counts>;
/** used, with one consumer's holding changed from `before` to `after`. */
const recount = (used: Counts, before: Partial<Counts>, after: Partial<Counts>) =>
  Object.fromEntries(NAMES.map((n) => [n, used[n] - (before[n] ?? 0) + (after[n] ?? 0)])) as Counts;

export const blockQuotaMachine = setup({}).createMachine({
  id: 'block_quota',
  initial: 'tracking',
  context: { limits: { ...BLOCK_QUOTA_DEFAULTS }, used: zero(), reservations: {} } as BlockQuotaContext,
  states: {
    tracking: {
      on: {
        SetBlockQuotaLimits: emit((_c, e) => [{ type: 'BlockQuotaLimitsSet', limits: e.limits }]),
        BlockQuotaLimitsSet: { actions: assign(({ context, event }: { context: BlockQuotaContext; event: Ev }) => ({ limits: { ...context.limits, ...event.limits } })) },
        ReserveBlockQuota: emit((c, e) => (c.reservations[e.consumerId] ? [] : [{ type: 'BlockQuotaReserved', consumerId: e.consumerId, usage: e.usage }])),
        BlockQuotaReserved: {
          actions: assign(({ context, event }: { context: BlockQuotaContext; event: Ev }) => {
            const usage = positive(event.usage);
            return { reservations: { ...context.reservations, [event.consumerId]: usage }, used: recount(context.used, {}, usage) };
          }),
        },
        AdjustBlockQuota: emit((c, e) => {
          const held = c.reservations[e.consumerId] ?? {};
          // An adjustment to what the consumer holds already (a retry): nothing new.
          const changes = Object.entries(e.usage as Record<string, number>).some(([n, v]) => (held[n as BlockQuotaName] ?? 0) !== v);
          return changes ? [{ type: 'BlockQuotaAdjusted', consumerId: e.consumerId, usage: e.usage }] : [];
        }),
        BlockQuotaAdjusted: {
          actions: assign(({ context, event }: { context: BlockQuotaContext; event: Ev }) => {
            const before = context.reservations[event.consumerId] ?? {};
            const after = positive({ ...before, ...event.usage });
            return { reservations: { ...context.reservations, [event.consumerId]: after }, used: recount(context.used, before, after) };
          }),
        },
        ReleaseBlockQuota: emit((c, e) => (c.reservations[e.consumerId] ? [{ type: 'BlockQuotaReleased', consumerId: e.consumerId }] : [])),
        BlockQuotaReleased: {
          actions: assign(({ context, event }: { context: BlockQuotaContext; event: Ev }) => {
            const { [event.consumerId]: held, ...reservations } = context.reservations;
            return { reservations, used: recount(context.used, held ?? {}, {}) };
          }),
        },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const BLOCK_QUOTA_COMMANDS = ['SetBlockQuotaLimits', 'ReserveBlockQuota', 'ReleaseBlockQuota', 'AdjustBlockQuota'] as const;
export const BLOCK_QUOTA_EVENTS = ['BlockQuotaLimitsSet', 'BlockQuotaReserved', 'BlockQuotaReleased', 'BlockQuotaAdjusted'] as const;
