// One lifecycle for plain resources (identity's domains, projects, groups, roles, regions,
// services, endpoints and users; compute's flavors, ...): absent -> live -> deleted, where "live" is
// enabled/disabled for resources that can be switched off and "active" otherwise.
// Commands only emit; events move and assign, so the state stays the fold of the events.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from './decider.js';

export interface ResourceContext {
  resource: Record<string, unknown> | null;
  [extra: string]: unknown;
}

export interface ResourceMachineSpec {
  /** "Project": the noun of the commands (CreateProject) and events (ProjectCreated). */
  noun: string;
  /** "project": the field that carries the resource in commands and events. */
  field: string;
  /** enabled/disabled states, with Enabled/Disabled events when an update flips `enabled`. */
  toggles: boolean;
  /** Keystone refuses to delete an enabled domain: Delete only from disabled. */
  deleteOnlyWhenDisabled?: boolean;
  /** Extra context of this kind (a user's failed attempts, a group's members). */
  context?: Record<string, unknown>;
  /** Extra transitions of every live state (commands and their events). */
  live?: Record<string, unknown>;
  /** Extra transitions of the enabled state only (a user's authentication attempts). */
  enabledOnly?: Record<string, unknown>;
  /** Extra fields of the created event to keep in context (a user's password hash). */
  onCreated?: (event: Record<string, unknown>) => Record<string, unknown>;
}

type AnyEvent = Message & Record<string, unknown> & { meta?: CommandContext };

/** Applies the fields named by the mask (camelCase) from patch onto resource. */
export const applyMask = (resource: Record<string, unknown>, patch: Record<string, unknown>, mask: readonly string[]) => {
  const next = { ...resource };
  for (const path of mask) next[path] = patch[path];
  return next;
};

export const commandTypesOf = (spec: Pick<ResourceMachineSpec, 'noun'>, extra: readonly string[] = []) => [
  `Create${spec.noun}`,
  `Update${spec.noun}`,
  `Delete${spec.noun}`,
  ...extra,
];

export const eventTypesOf = (spec: Pick<ResourceMachineSpec, 'noun' | 'toggles'>, extra: readonly string[] = []) => [
  `${spec.noun}Created`,
  `${spec.noun}Updated`,
  `${spec.noun}Deleted`,
  ...(spec.toggles ? [`${spec.noun}Enabled`, `${spec.noun}Disabled`] : []),
  ...extra,
];

export function resourceMachine(spec: ResourceMachineSpec): AnyStateMachine {
  const { noun, field } = spec;
  const live = spec.live ?? {};
  const created = `${noun}Created`;
  const updated = `${noun}Updated`;
  const deleted = `${noun}Deleted`;

  const update = {
    actions: enqueueActions(({ context, event, enqueue }: { context: ResourceContext; event: AnyEvent; enqueue: any }) => {
      const before = context.resource!;
      const after = applyMask(before, event[field] as Record<string, unknown>, event.updateMask as string[]);
      enqueue.emit({ type: updated, [field]: after });
      if (spec.toggles && before.enabled !== after.enabled) {
        enqueue.emit({ type: after.enabled ? `${noun}Enabled` : `${noun}Disabled` });
      }
    }),
  };
  const del = {
    actions: enqueueActions(({ context, enqueue }: { context: ResourceContext; enqueue: any }) =>
      enqueue.emit({ type: deleted, [field]: context.resource }),
    ),
  };
  const assignResource = assign(({ event }: { event: AnyEvent }) => ({
    resource: event[field] as Record<string, unknown>,
    ...(spec.onCreated?.(event) ?? {}),
  }));
  const liveOn = (canDelete: boolean) => ({
    [`Update${noun}`]: update,
    [updated]: { actions: assign(({ event }: { event: AnyEvent }) => ({ resource: event[field] as Record<string, unknown> })) },
    ...(canDelete ? { [`Delete${noun}`]: del } : {}),
    [deleted]: { target: 'deleted' },
    ...live,
  });

  const states: Record<string, unknown> = {
    absent: {
      on: {
        [`Create${noun}`]: {
          actions: enqueueActions(({ event, enqueue }: { event: AnyEvent; enqueue: any }) => {
            const { type: _type, meta: _meta, ...rest } = event;
            enqueue.emit({ ...rest, type: created });
          }),
        },
        [created]: spec.toggles
          ? [
              { guard: ({ event }: { event: AnyEvent }) => (event[field] as { enabled: boolean }).enabled, target: 'enabled', actions: assignResource },
              { target: 'disabled', actions: assignResource },
            ]
          : { target: 'active', actions: assignResource },
      },
    },
    deleted: {},
  };
  if (spec.toggles) {
    states.enabled = {
      on: { ...liveOn(!spec.deleteOnlyWhenDisabled), ...(spec.enabledOnly ?? {}), [`${noun}Disabled`]: { target: 'disabled' } },
    };
    states.disabled = { on: { ...liveOn(true), [`${noun}Enabled`]: { target: 'enabled' } } };
  } else {
    states.active = { on: liveOn(true) };
  }

  return setup({}).createMachine({
    id: field,
    initial: 'absent',
    context: { resource: null, ...(spec.context ?? {}) },
    states: states as never,
  }) as unknown as AnyStateMachine;
}
