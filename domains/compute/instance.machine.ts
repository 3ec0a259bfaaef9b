// The instance lifecycle: one state per Nova vm_state, task_state in the context, and every
// action of the API generated from INSTANCE_ACTIONS. An action's command emits
// InstanceActionStarted (task_state set, result vm_state decided); the host's agent or the boot
// saga then reports progress (AdvanceInstanceTask), the host (AssignInstanceHost), success
// (CompleteInstanceAction) or failure (FailInstanceAction). Actions without host work (lock,
// metadata, confirm resize, deletes of hostless servers) complete within their decision.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import { ACTION_BY_COMMAND, allowsTask, allowsVm, INSTANCE_ACTIONS, type FlavorRef, type InstanceAction, type InstanceContext } from './instance.actions.js';
import { applyInterfaceEvent, INTERFACE_EVENTS, type InstanceInterface, type InterfaceState } from './instance.interfaces.js';
import { POWER_STATES, VM_STATES, type TaskState, type VmState } from './instance.states.js';

type Ev = Message & Record<string, any> & { meta?: CommandContext };
// moveSource: the host a move (resize, migrate, live migration) left, so that a failed move puts
// the server back where it still runs.
type Ctx = InstanceContext & { pendingVm: VmState | null; moveSource: string };

export const initialInstanceContext: Ctx = {
  vm: 'building', task: null, action: null, previousVm: null, pendingVm: null,
  name: '', projectId: '', userId: '', flavor: null, newFlavor: null, oldFlavor: null, imageId: '', keyName: '',
  availabilityZone: '', serverGroupId: '', metadata: {}, host: '', node: '', launched: false,
  locked: false, lockedReason: '', lockedByAdmin: false, powerState: POWER_STATES.NOSTATE, fault: null, offloadOnShelve: true, failedHosts: [], moveSource: '',
  interfaces: [],
};

export const isAdmin = (e: Ev) => Boolean(e.meta?.actor.roles.includes('admin'));

/** Moves from a live source host: their failure leaves the server where it was (Nova's rollback). */
const MOVES_BACK_ON_FAILURE = new Set(['resize', 'migrate', 'live-migration']);

/** Actions that leave the server in ERROR when they fail on the host (the others roll back). */
const FAIL_TO_ERROR = new Set(['create', 'rebuild', 'evacuate', 'unshelve']);

/** Whether the action may run now; the reasons it may not are explained by instance.decider.ts. */
export function actionAllowed(a: InstanceAction, i: Ctx, e: Ev): boolean {
  if (!allowsVm(a, i.vm) || !allowsTask(a, i.task)) return false;
  if (a.mustHaveLaunched && !i.launched) return false;
  if (a.adminOnly && !isAdmin(e)) return false;
  if (a.lockChecked && i.locked && !isAdmin(e)) return false;
  if (a.command === 'UnlockInstance' && i.lockedByAdmin && !isAdmin(e)) return false;
  if (a.command === 'SetInstanceMetadata') {
    const keys = new Set([...Object.keys(i.metadata), ...Object.keys(e.items ?? {})]);
    if (e.maxItems >= 0 && keys.size > e.maxItems) return false;
  }
  if (a.command === 'DeleteInstanceMetadata' && !(e.key in i.metadata)) return false;
  if (a.command === 'ResizeInstance' && (!e.flavor || e.flavor.id === i.flavor?.id)) return false;
  if (a.command === 'AttachInstanceInterface' && (!e.interface?.portId || i.interfaces.some((x) => x.portId === e.interface.portId))) return false;
  if (a.command === 'DetachInstanceInterface' && interfaceOf(i, e.portId)?.state !== 'attached') return false;
  return true;
}

export const interfaceOf = (i: Pick<InstanceContext, 'interfaces'>, portId: string): InstanceInterface | undefined => i.interfaces.find((x) => x.portId === portId);

/** The state an interface must be in for the conductor's or the agent's report on it. */
export const INTERFACE_REPORTS: Readonly<Record<string, readonly InterfaceState[]>> = {
  RecordInterfaceAllocation: ['requested'],
  ReportInterfacePlugged: ['allocated'],
  ReportInterfaceUnplugged: ['detaching'],
  FailInstanceInterface: ['requested', 'allocated', 'detaching'],
  RemoveInstanceInterface: ['detached'],
};

function startAction(a: InstanceAction) {
  return enqueueActions(({ context, event, enqueue }: { context: Ctx; event: Ev; enqueue: any }) => {
    const startTask = a.startTask(context, event);
    const resultVm = a.result({ ...context, offloadOnShelve: event.offload ?? context.offloadOnShelve }, event);
    switch (a.command) {
      case 'LockInstance':
        enqueue.emit({ type: 'InstanceLocked', reason: event.reason ?? '', byAdmin: isAdmin(event) });
        return;
      case 'UnlockInstance':
        enqueue.emit({ type: 'InstanceUnlocked' });
        return;
      case 'SetInstanceMetadata':
        enqueue.emit({ type: 'InstanceMetadataSet', items: event.items });
        return;
      case 'DeleteInstanceMetadata':
        enqueue.emit({ type: 'InstanceMetadataDeleted', key: event.key });
        return;
      case 'AttachInstanceInterface':
        enqueue.emit({ type: 'InstanceInterfaceRequested', interface: { ...event.interface, state: 'requested', macAddress: '', fixedIps: [], mtu: 0, fault: '' } });
        return;
      case 'DetachInstanceInterface':
        enqueue.emit({ type: 'InstanceInterfaceDetaching', portId: event.portId, requestId: event.requestId ?? '' });
        return;
    }
    if (startTask === null) {
      enqueue.emit({ type: 'InstanceActionCompleted', action: a.name, vmState: resultVm, flavor: null, host: resultVm === 'deleted' ? '' : context.host });
      return;
    }
    enqueue.emit({
      type: 'InstanceActionStarted',
      action: a.name,
      taskState: startTask,
      resultVm,
      newFlavor: event.flavor ?? null,
      offload: event.offload ?? context.offloadOnShelve,
      imageId: event.imageId ?? '',
    });
  });
}

const liveCommands = (vm: VmState) => {
  const on: Record<string, unknown> = {};
  for (const a of INSTANCE_ACTIONS) {
    if (!allowsVm(a, vm)) continue;
    on[a.command] = { guard: ({ context, event }: { context: Ctx; event: Ev }) => actionAllowed(a, context, event), actions: startAction(a) };
  }
  const busy = ({ context }: { context: Ctx }) => context.task !== null;
  const current = ({ context, event }: { context: Ctx; event: Ev }) => context.task !== null && context.action === event.action;
  on.AdvanceInstanceTask = { guard: busy, actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'InstanceTaskChanged', taskState: event.taskState })) };
  on.AssignInstanceHost = {
    guard: busy,
    actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) =>
      enqueue.emit({ type: 'InstanceHostAssigned', host: event.host, node: event.node ?? event.host, availabilityZone: event.availabilityZone ?? '' }),
    ),
  };
  on.CompleteInstanceAction = {
    guard: current,
    actions: enqueueActions(({ context, enqueue }: { context: Ctx; enqueue: any }) => {
      const resized = context.action === 'resize' || context.action === 'migrate';
      const reverted = context.action === 'revertResize';
      enqueue.emit({
        type: 'InstanceActionCompleted',
        action: context.action,
        vmState: context.pendingVm,
        // A resize runs on the new flavor until confirmed; a revert goes back to the old one.
        flavor: resized ? context.newFlavor : reverted ? context.oldFlavor : null,
        host: context.pendingVm === 'shelved_offloaded' || context.pendingVm === 'deleted' ? '' : context.host,
      });
    }),
  };
  on.FailInstanceAction = {
    guard: current,
    actions: enqueueActions(({ context, event, enqueue }: { context: Ctx; event: Ev; enqueue: any }) =>
      enqueue.emit({
        type: 'InstanceActionFailed',
        action: context.action,
        vmState: FAIL_TO_ERROR.has(context.action!) ? 'error' : (context.previousVm ?? context.vm),
        fault: { code: Number(event.code ?? 500), message: String(event.message ?? 'the action failed') },
        host: MOVES_BACK_ON_FAILURE.has(context.action!) && context.moveSource ? context.moveSource : context.host,
      }),
    ),
  };
  // A move's destination is listening for the guest (its running state, or its disk): the source may send it.
  on.ReportMigrationTarget = {
    guard: ({ context, event }: { context: Ctx; event: Ev }) => MOVES_BACK_ON_FAILURE.has(context.action!) && context.task !== null && context.action === event.action,
    actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'InstanceMigrationTargetReady', uri: event.uri })),
  };
  // A boot that failed on its host goes back to scheduling (Nova's reschedule to an alternate).
  on.RescheduleInstance = {
    guard: ({ context }: { context: Ctx }) => context.action === 'create' && context.task !== null && context.host !== '',
    actions: enqueueActions(({ context, event, enqueue }: { context: Ctx; event: Ev; enqueue: any }) =>
      enqueue.emit({ type: 'InstanceRescheduled', failedHost: context.host, reason: String(event.reason ?? '') }),
    ),
  };
  // The interfaces' progress: the conductor (port made or claimed and bound; let go), the agent (plugged, unplugged).
  const reportable = ({ context, event }: { context: Ctx; event: Ev }) => (INTERFACE_REPORTS[event.type] ?? []).includes(interfaceOf(context, event.portId)?.state as InterfaceState);
  const onInterface = (make: (i: InstanceInterface, e: Ev) => Record<string, unknown>) => ({
    guard: reportable,
    actions: enqueueActions(({ context, event, enqueue }: { context: Ctx; event: Ev; enqueue: any }) => enqueue.emit(make(interfaceOf(context, event.portId)!, event))),
  });
  on.RecordInterfaceAllocation = onInterface((i, e) => ({ type: 'InstanceInterfaceAllocated', portId: i.portId, macAddress: e.macAddress, fixedIps: e.fixedIps ?? [], mtu: e.mtu ?? 0 }));
  on.ReportInterfacePlugged = onInterface((i) => ({ type: 'InstanceInterfacePlugged', portId: i.portId, requestId: i.requestId }));
  on.ReportInterfaceUnplugged = onInterface((i) => ({ type: 'InstanceInterfaceUnplugged', portId: i.portId, requestId: i.requestId }));
  on.FailInstanceInterface = onInterface((i, e) => ({ type: 'InstanceInterfaceFailed', portId: i.portId, requestId: i.requestId, message: String(e.message ?? ''), detaching: i.state === 'detaching' }));
  on.RemoveInstanceInterface = onInterface((i) => ({ type: 'InstanceInterfaceRemoved', portId: i.portId, requestId: i.requestId }));
  on.ReportPowerState = {
    actions: enqueueActions(({ context, event, enqueue }: { context: Ctx; event: Ev; enqueue: any }) => {
      if (event.powerState !== context.powerState) enqueue.emit({ type: 'InstancePowerStateObserved', powerState: event.powerState });
      // Nova's power-state sync: a guest that shut itself down is stopped.
      if (context.vm === 'active' && context.task === null && (event.powerState === POWER_STATES.SHUTDOWN || event.powerState === POWER_STATES.CRASHED)) {
        enqueue.emit({ type: 'InstanceActionCompleted', action: 'sync_power_state', vmState: 'stopped', flavor: null, host: context.host });
      }
    }),
  };
  return on;
};

const toVm = (assignments: (c: Ctx, e: Ev) => Partial<Ctx>) =>
  VM_STATES.map((vm) => ({
    guard: ({ event }: { event: Ev }) => event.vmState === vm,
    target: `.${vm}`,
    actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({ ...assignments(context, event), vm })),
  }));

const states: Record<string, unknown> = {
  absent: {
    on: {
      CreateInstance: {
        actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => {
          const { type: _t, meta: _m, ...spec } = event;
          enqueue.emit({ ...spec, type: 'InstanceCreated' });
        }),
      },
      InstanceCreated: {
        target: 'building',
        actions: assign(({ event }: { event: Ev }) => ({
          name: event.name, projectId: event.projectId, userId: event.userId, flavor: event.flavor as FlavorRef, imageId: event.imageId,
          keyName: event.keyName ?? '', availabilityZone: event.availabilityZone ?? '', serverGroupId: event.serverGroupId ?? '',
          metadata: event.metadata ?? {}, vm: 'building' as VmState, task: 'scheduling' as TaskState, action: 'create', pendingVm: 'active' as VmState,
          interfaces: (event.interfaces ?? []) as InstanceInterface[],
        })),
      },
    },
  },
};
for (const vm of VM_STATES) states[vm] = vm === 'deleted' ? {} : { on: liveCommands(vm) };

export const instanceMachine = setup({}).createMachine({
  id: 'instance',
  initial: 'absent',
  context: initialInstanceContext,
  on: {
    InstanceActionStarted: {
      actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({
        task: event.taskState, action: event.action, pendingVm: event.resultVm, previousVm: context.vm,
        newFlavor: event.newFlavor ?? null, offloadOnShelve: event.offload ?? context.offloadOnShelve, fault: null, moveSource: '',
      })),
    },
    InstanceTaskChanged: { actions: assign(({ event }: { event: Ev }) => ({ task: event.taskState })) },
    InstanceRescheduled: {
      actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({
        task: 'scheduling' as TaskState,
        host: '',
        node: '',
        failedHosts: [...context.failedHosts, event.failedHost],
        fault: { code: 500, message: event.reason },
      })),
    },
    InstanceHostAssigned: {
      actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({
        host: event.host, node: event.node, availabilityZone: event.availabilityZone || context.availabilityZone,
        moveSource: context.moveSource || (context.host !== event.host ? context.host : ''),
      })),
    },
    InstanceActionCompleted: toVm((c, e) => ({
      task: null, action: null, pendingVm: null, fault: null, interfaces: applyInterfaceEvent(c.interfaces, e),
      launched: c.launched || e.action === 'create',
      previousVm: e.action === 'resize' || e.action === 'migrate' ? c.previousVm : null,
      flavor: (e.flavor as FlavorRef | null) ?? c.flavor,
      oldFlavor: e.action === 'resize' || e.action === 'migrate' ? c.flavor : null,
      newFlavor: null,
      host: e.host ?? c.host,
      powerState: e.vmState === 'active' ? POWER_STATES.RUNNING : e.vmState === 'paused' ? POWER_STATES.PAUSED : e.vmState === 'suspended' ? POWER_STATES.SUSPENDED : ['stopped', 'shelved', 'shelved_offloaded', 'deleted', 'soft-delete'].includes(e.vmState) ? POWER_STATES.SHUTDOWN : c.powerState,
    })),
    InstanceActionFailed: toVm((c, e) => ({ task: null, action: null, pendingVm: null, newFlavor: null, fault: e.fault, previousVm: null, host: e.host || c.host, moveSource: '' })),
    InstanceLocked: { actions: assign(({ event }: { event: Ev }) => ({ locked: true, lockedReason: event.reason, lockedByAdmin: event.byAdmin })) },
    InstanceUnlocked: { actions: assign({ locked: false, lockedReason: '', lockedByAdmin: false }) },
    InstanceMetadataSet: { actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({ metadata: { ...context.metadata, ...event.items } })) },
    InstanceMetadataDeleted: {
      actions: assign(({ context, event }: { context: Ctx; event: Ev }) => {
        const { [event.key]: _gone, ...rest } = context.metadata;
        return { metadata: rest };
      }),
    },
    InstancePowerStateObserved: { actions: assign(({ event }: { event: Ev }) => ({ powerState: event.powerState })) },
    ...Object.fromEntries(
      INTERFACE_EVENTS.map((type) => [type, { actions: assign(({ context, event }: { context: Ctx; event: Ev }) => ({ interfaces: applyInterfaceEvent(context.interfaces, event) })) }]),
    ),
  } as never,
  states: states as never,
}) as unknown as AnyStateMachine;

export const INSTANCE_COMMANDS = [
  'CreateInstance', ...INSTANCE_ACTIONS.map((a) => a.command).filter((c, i, all) => all.indexOf(c) === i),
  'AdvanceInstanceTask', 'AssignInstanceHost', 'CompleteInstanceAction', 'FailInstanceAction', 'RescheduleInstance', 'ReportPowerState',
  'ReportMigrationTarget', 'RecordInterfaceAllocation', 'ReportInterfacePlugged', 'ReportInterfaceUnplugged', 'FailInstanceInterface', 'RemoveInstanceInterface',
] as const;

export const INSTANCE_EVENTS = [
  'InstanceCreated', 'InstanceActionStarted', 'InstanceTaskChanged', 'InstanceRescheduled', 'InstanceHostAssigned', 'InstanceActionCompleted',
  'InstanceActionFailed', 'InstanceLocked', 'InstanceUnlocked', 'InstanceMetadataSet', 'InstanceMetadataDeleted', 'InstancePowerStateObserved',
  'InstanceMigrationTargetReady', ...INTERFACE_EVENTS,
] as const;

export { ACTION_BY_COMMAND };
