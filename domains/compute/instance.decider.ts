// The instance machine as a decider, with refusals worded as Nova words them ("Cannot 'pause'
// instance X while it is in vm_state stopped") and the state named.
import type { Message } from '../kernel/decider.js';
import { machineDecider, type MachineState } from '../kernel/machine-decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { ACTION_BY_COMMAND, allowsTask, allowsVm, type InstanceContext } from './instance.actions.js';
import { INSTANCE_COMMANDS, INTERFACE_REPORTS, interfaceOf, instanceMachine, isAdmin } from './instance.machine.js';
import { instanceStatus } from './instance.states.js';

type Ev = Message & Record<string, any>;

export function explainInstance(state: MachineState, command: Ev, id: string, admin: boolean): Rejection | undefined {
  if (state.value === 'absent' || state.value === 'deleted') return undefined;
  const i = state.context as unknown as InstanceContext;
  const a = ACTION_BY_COMMAND.get(command.type);
  const at = (what: string) => `Cannot '${a!.name}' instance ${id} while it is in ${what}`;
  if (a) {
    if (!allowsVm(a, i.vm)) return { code: 'FAILED_PRECONDITION', state: i.vm, message: at(`vm_state ${i.vm}`) };
    if (!allowsTask(a, i.task)) return { code: 'FAILED_PRECONDITION', state: `${i.vm}/${i.task}`, message: at(`task_state ${i.task}`) };
    if (a.mustHaveLaunched && !i.launched) return { code: 'FAILED_PRECONDITION', state: i.vm, message: at(`vm_state ${i.vm} (it has never finished booting)`) };
    if (a.adminOnly && !admin) return { code: 'PERMISSION_DENIED', message: `only an admin may ${a.name} instance ${id}` };
    if (a.lockChecked && i.locked && !admin) {
      return { code: 'FAILED_PRECONDITION', state: 'locked', message: `Instance ${id} is locked${i.lockedReason ? `: ${i.lockedReason}` : ''}` };
    }
    if (a.command === 'UnlockInstance' && i.lockedByAdmin && !admin) {
      return { code: 'PERMISSION_DENIED', message: `instance ${id} was locked by an admin; only an admin may unlock it` };
    }
    if (a.command === 'SetInstanceMetadata') {
      return { code: 'RESOURCE_EXHAUSTED', message: `Quota exceeded for metadata_items: at most ${command.maxItems} metadata items per server` };
    }
    if (a.command === 'DeleteInstanceMetadata') return { code: 'NOT_FOUND', message: `metadata key ${command.key} not found on instance ${id}` };
    if (a.command === 'ResizeInstance') return { code: 'INVALID_ARGUMENT', field: 'flavor', message: 'flavor: a resize needs a flavor other than the current one' };
    // Nova's PortInUse (409) and PortNotFound (404).
    if (a.command === 'AttachInstanceInterface') return { code: 'FAILED_PRECONDITION', state: 'in use', field: 'port_id', message: `Port ${command.interface?.portId} is still in use.` };
    if (a.command === 'DetachInstanceInterface') {
      const iface = interfaceOf(i, command.portId);
      if (!iface) return { code: 'NOT_FOUND', field: 'port_id', message: `Port ${command.portId} is not attached to instance ${id}` };
      return { code: 'FAILED_PRECONDITION', state: iface.state, message: `Port ${command.portId} of instance ${id} is ${iface.state}, not attached` };
    }
    return undefined;
  }
  if (command.type in INTERFACE_REPORTS) {
    const iface = interfaceOf(i, command.portId);
    if (!iface) return { code: 'NOT_FOUND', field: 'port_id', message: `instance ${id} has no interface on port ${command.portId}` };
    return {
      code: 'FAILED_PRECONDITION',
      state: iface.state,
      message: `${command.type} is not allowed: the interface on port ${command.portId} of instance ${id} is ${iface.state} (wanted ${INTERFACE_REPORTS[command.type].join(' or ')})`,
    };
  }
  if (['CompleteInstanceAction', 'FailInstanceAction', 'AdvanceInstanceTask', 'AssignInstanceHost', 'RescheduleInstance', 'ReportMigrationTarget'].includes(command.type)) {
    return {
      code: 'FAILED_PRECONDITION',
      state: `${i.vm}/${i.task}`,
      message: `instance ${id} is not doing ${command.action ?? 'any action'} (vm_state ${i.vm}, task_state ${i.task}${i.action ? `, action ${i.action}` : ''})`,
    };
  }
  return undefined;
}

export const instanceDecider = machineDecider<Message, Message>({
  aggregateType: 'instance',
  machine: instanceMachine,
  commandTypes: INSTANCE_COMMANDS,
  absentState: 'absent',
  goneStates: ['deleted'],
  creationCommands: ['CreateInstance'],
  explain: (state, command, context) => explainInstance(state, command as Ev, context.aggregateId, isAdmin({ ...(command as Ev), meta: context })),
});

/** Nova's API status of an instance state. */
export const statusOf = (state: MachineState): string =>
  state.value === 'absent' ? 'UNKNOWN' : instanceStatus((state.context as unknown as InstanceContext).vm, (state.context as unknown as InstanceContext).task);
