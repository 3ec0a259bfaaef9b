// The group: the plain resource lifecycle plus its members. Adding a member twice changes
// nothing; removing a user who is not a member is NOT_FOUND (explained by the decider).
import { assign, enqueueActions } from 'xstate';
import type { Message } from '../kernel/decider.js';
import { resourceMachine, type ResourceContext, type ResourceMachineSpec } from '../kernel/resource.machine.js';

type Ev = Message & { userId: string };

export interface GroupContext extends ResourceContext {
  members: string[];
}

export const groupSpec: ResourceMachineSpec = {
  noun: 'Group',
  field: 'group',
  toggles: false,
  context: { members: [] },
  live: {
    AddGroupMember: {
      actions: enqueueActions(({ context, event, enqueue }: { context: GroupContext; event: Ev; enqueue: any }) => {
        if (!context.members.includes(event.userId)) enqueue.emit({ type: 'GroupMemberAdded', userId: event.userId });
      }),
    },
    GroupMemberAdded: { actions: assign(({ context, event }: { context: GroupContext; event: Ev }) => ({ members: [...context.members, event.userId] })) },
    RemoveGroupMember: {
      guard: ({ context, event }: { context: GroupContext; event: Ev }) => context.members.includes(event.userId),
      actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'GroupMemberRemoved', userId: event.userId })),
    },
    GroupMemberRemoved: {
      actions: assign(({ context, event }: { context: GroupContext; event: Ev }) => ({ members: context.members.filter((m) => m !== event.userId) })),
    },
  },
};

export const groupMachine = resourceMachine(groupSpec);
export const groupExtraCommands = ['AddGroupMember', 'RemoveGroupMember'] as const;
export const groupExtraEvents = ['GroupMemberAdded', 'GroupMemberRemoved'] as const;
