// Issue 4 acceptance a: every server action from every vm_state, against Nova's table
// (shared/reference §1.3, restated here independently of instance.actions.ts): allowed actions
// reach the vm_state Nova would, illegal ones get FAILED_PRECONDITION naming the state and emit
// nothing; the lock stops non-admins; task_state guards; status strings.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import type { MachineState } from '../kernel/machine-decider.js';
import { instanceDecider, statusOf } from './instance.decider.js';
import { VM_STATES, type VmState } from './instance.states.js';

type M = Message & Record<string, unknown>;
const small = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const large = { ...small, id: 'f2', name: 'm1.large', vcpus: 4, ramMb: 8192 };
const created: M = { type: 'InstanceCreated', name: 'vm1', projectId: 'p1', userId: 'u1', flavor: small, imageId: 'img', metadata: { role: 'web' } };
const done = (action: string, vmState: VmState): M => ({ type: 'InstanceActionCompleted', action, vmState, flavor: null, host: 'h1' });

/** Events that leave a launched instance idle in `vm` (building: mid-boot, never launched). */
function history(vm: VmState): M[] {
  if (vm === 'building') return [created];
  const booted = [created, { type: 'InstanceHostAssigned', host: 'h1', node: 'h1', availabilityZone: 'az1' }, done('create', 'active')];
  if (vm === 'resized') {
    // Through the decider, as the API and the agent would: resize, then the host's completion.
    const out = [...booted];
    for (const command of [{ type: 'ResizeInstance', flavor: large }, { type: 'CompleteInstanceAction', action: 'resize' }] as M[]) {
      const d = instanceDecider.decide(fold(instanceDecider, out), command, testContext({ aggregateId: 'i1', ...admin }));
      if (!('events' in d)) throw new Error(d.rejection.message);
      out.push(...(d.events as M[]));
    }
    return out;
  }
  return vm === 'active' ? booted : [...booted, done('test-setup', vm)];
}

const admin = { actor: { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] } };
const member = { actor: { userId: 'u1', projectId: 'p1', roles: ['member', 'reader'] } };

function decide(events: M[], command: M, who = admin) {
  const state = fold(instanceDecider, events);
  return { state, decision: instanceDecider.decide(state, command, testContext({ aggregateId: 'i1', version: events.length, ...who })) };
}

/** Applies a decision's events, then completes the action if it started one. */
function run(events: M[], command: M, who = admin): MachineState {
  const { state, decision } = decide(events, command, who);
  if (!('events' in decision)) throw new Error(`refused: ${decision.rejection.message}`);
  let next = fold(instanceDecider, decision.events, state);
  if (decision.events.some((e) => e.type === 'InstanceActionStarted')) {
    const action = (decision.events.find((e) => e.type === 'InstanceActionStarted') as M).action;
    const completion = instanceDecider.decide(next, { type: 'CompleteInstanceAction', action } as M, testContext({ aggregateId: 'i1' }));
    if (!('events' in completion)) throw new Error(`completion refused: ${completion.rejection.message}`);
    next = fold(instanceDecider, completion.events, next);
  }
  return next;
}

// Nova's table: allowed vm_states (task_state idle) and the resulting vm_state.
const NOVA: Record<string, { allowed: VmState[] | 'any'; result: (from: VmState) => VmState; command: M }> = {
  DeleteInstance: { allowed: 'any', result: () => 'deleted', command: { type: 'DeleteInstance' } },
  ForceDeleteInstance: { allowed: ['soft-delete'], result: () => 'deleted', command: { type: 'ForceDeleteInstance' } },
  RestoreInstance: { allowed: ['soft-delete'], result: () => 'active', command: { type: 'RestoreInstance' } },
  StartInstance: { allowed: ['stopped'], result: () => 'active', command: { type: 'StartInstance' } },
  StopInstance: { allowed: ['active', 'error'], result: () => 'stopped', command: { type: 'StopInstance' } },
  RebootInstance: { allowed: ['active'], result: () => 'active', command: { type: 'RebootInstance' } },
  HardRebootInstance: { allowed: ['active', 'stopped', 'paused', 'suspended', 'error'], result: () => 'active', command: { type: 'HardRebootInstance' } },
  RebuildInstance: { allowed: ['active', 'stopped', 'error'], result: (from) => (from === 'stopped' ? 'stopped' : 'active'), command: { type: 'RebuildInstance', imageId: 'img2' } },
  ResizeInstance: { allowed: ['active', 'stopped'], result: () => 'resized', command: { type: 'ResizeInstance', flavor: large } },
  ConfirmResizeInstance: { allowed: ['resized'], result: () => 'active', command: { type: 'ConfirmResizeInstance' } },
  RevertResizeInstance: { allowed: ['resized'], result: () => 'active', command: { type: 'RevertResizeInstance' } },
  MigrateInstance: { allowed: ['active', 'stopped'], result: () => 'resized', command: { type: 'MigrateInstance' } },
  LiveMigrateInstance: { allowed: ['active', 'paused'], result: (from) => from, command: { type: 'LiveMigrateInstance' } },
  EvacuateInstance: { allowed: ['active', 'stopped', 'error'], result: () => 'stopped', command: { type: 'EvacuateInstance' } },
  PauseInstance: { allowed: ['active'], result: () => 'paused', command: { type: 'PauseInstance' } },
  UnpauseInstance: { allowed: ['paused'], result: () => 'active', command: { type: 'UnpauseInstance' } },
  SuspendInstance: { allowed: ['active'], result: () => 'suspended', command: { type: 'SuspendInstance' } },
  ResumeInstance: { allowed: ['suspended'], result: () => 'active', command: { type: 'ResumeInstance' } },
  LockInstance: { allowed: 'any', result: (from) => from, command: { type: 'LockInstance', reason: 'maintenance' } },
  UnlockInstance: { allowed: 'any', result: (from) => from, command: { type: 'UnlockInstance' } },
  RescueInstance: { allowed: ['active', 'stopped', 'error'], result: () => 'rescued', command: { type: 'RescueInstance' } },
  UnrescueInstance: { allowed: ['rescued'], result: () => 'active', command: { type: 'UnrescueInstance' } },
  ShelveInstance: { allowed: ['active', 'stopped', 'paused', 'suspended'], result: () => 'shelved_offloaded', command: { type: 'ShelveInstance', offload: true } },
  ShelveOffloadInstance: { allowed: ['shelved'], result: () => 'shelved_offloaded', command: { type: 'ShelveOffloadInstance' } },
  UnshelveInstance: { allowed: ['shelved', 'shelved_offloaded'], result: () => 'active', command: { type: 'UnshelveInstance' } },
  CreateInstanceImage: { allowed: ['active', 'stopped', 'paused', 'suspended'], result: (from) => from, command: { type: 'CreateInstanceImage', imageId: 'snap', name: 's' } },
  CreateInstanceBackup: { allowed: ['active', 'stopped', 'paused', 'suspended'], result: (from) => from, command: { type: 'CreateInstanceBackup', imageId: 'bak', name: 'b' } },
  ChangeInstancePassword: { allowed: ['active'], result: () => 'active', command: { type: 'ChangeInstancePassword' } },
  SetInstanceMetadata: { allowed: ['active', 'paused', 'suspended', 'stopped'], result: (from) => from, command: { type: 'SetInstanceMetadata', items: { tier: 'gold' }, maxItems: 128 } },
  DeleteInstanceMetadata: { allowed: ['active', 'paused', 'suspended', 'stopped'], result: (from) => from, command: { type: 'DeleteInstanceMetadata', key: 'role' } },
  ResetInstanceState: { allowed: 'any', result: () => 'active', command: { type: 'ResetInstanceState', vmState: 'active' } },
  // os-interface: active, paused, stopped (Nova's check_instance_state on attach_interface).
  AttachInstanceInterface: {
    allowed: ['active', 'paused', 'stopped'], result: (from) => from,
    command: { type: 'AttachInstanceInterface', interface: { portId: 'port-9', networkId: 'net-1', requestedIp: '', preserveOnDelete: false, requestId: 'r9' } },
  },
};
// Actions that need a finished first boot (everything but delete, lock, unlock, reset state).
const NO_LAUNCH_NEEDED = new Set(['DeleteInstance', 'LockInstance', 'UnlockInstance', 'ResetInstanceState']);
const LIVE_STATES = VM_STATES.filter((s) => s !== 'deleted');

describe('every server action from every vm_state', () => {
  for (const [type, nova] of Object.entries(NOVA)) {
    it.each(LIVE_STATES)(`${type} from %s`, (vm) => {
      const events = history(vm);
      const allowed = (nova.allowed === 'any' || nova.allowed.includes(vm)) && (vm !== 'building' || NO_LAUNCH_NEEDED.has(type));
      const { decision } = decide(events, nova.command);
      if (allowed) {
        expect(decision, JSON.stringify(decision)).toHaveProperty('events');
        const after = run(events, nova.command);
        expect(after.value).toBe(nova.result(vm));
      } else {
        expect(decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: vm } });
        if ('rejection' in decision) expect(decision.rejection.message).toContain(`vm_state ${vm}`);
      }
    });
  }

  it('covers every action the machine knows', () => {
    const machineActions = instanceDecider.allowedCommands(fold(instanceDecider, history('active')));
    const reports = ['AdvanceInstanceTask', 'AssignInstanceHost', 'CompleteInstanceAction', 'FailInstanceAction', 'RescheduleInstance', 'ReportPowerState', 'ReportMigrationTarget'];
    const interfaces = ['DetachInstanceInterface', 'RecordInterfaceAllocation', 'ReportInterfacePlugged', 'ReportInterfaceUnplugged', 'FailInstanceInterface', 'RemoveInstanceInterface'];
    for (const c of machineActions) expect(Object.keys(NOVA).concat(reports, interfaces)).toContain(c);
  });
});

describe('the lock', () => {
  const locked = [...history('active'), { type: 'InstanceLocked', reason: 'maintenance', byAdmin: false }];
  it('refuses lock-checked actions to non-admins, naming the lock and its reason', () => {
    const { decision } = decide(locked, { type: 'StopInstance' }, member);
    expect(decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'locked', message: 'Instance i1 is locked: maintenance' } });
    expect(run(locked, { type: 'StopInstance' }, admin).value).toBe('stopped');
  });
  it('lets non-lock-checked actions through (create image), and the owner unlock their own lock', () => {
    expect(decide(locked, { type: 'CreateInstanceImage', imageId: 'x' }, member).decision).toHaveProperty('events');
    expect((run(locked, { type: 'UnlockInstance' }, member).context as { locked: boolean }).locked).toBe(false);
  });
  it('keeps an admin lock from being lifted by a non-admin', () => {
    const byAdmin = [...history('active'), { type: 'InstanceLocked', reason: '', byAdmin: true }];
    expect(decide(byAdmin, { type: 'UnlockInstance' }, member).decision).toMatchObject({ rejection: { code: 'PERMISSION_DENIED' } });
  });
});

describe('task_state guards', () => {
  const stopping = [...history('active'), { type: 'InstanceActionStarted', action: 'stop', taskState: 'powering-off', resultVm: 'stopped' }];
  it('refuses a second action while one runs, naming the task_state', () => {
    expect(decide(stopping, { type: 'PauseInstance' }).decision).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'active/powering-off', message: "Cannot 'pause' instance i1 while it is in task_state powering-off" },
    });
  });
  it('lets a hard reboot interrupt a soft reboot, not a power-off', () => {
    const rebooting = [...history('active'), { type: 'InstanceActionStarted', action: 'reboot', taskState: 'rebooting', resultVm: 'active' }];
    expect(decide(rebooting, { type: 'HardRebootInstance' }).decision).toHaveProperty('events');
    expect(decide(stopping, { type: 'HardRebootInstance' }).decision).toHaveProperty('rejection');
  });
  it('refuses admin-only actions to members with PERMISSION_DENIED', () => {
    expect(decide(history('active'), { type: 'MigrateInstance' }, member).decision).toMatchObject({ rejection: { code: 'PERMISSION_DENIED' } });
  });
});

describe('boot, failure, resize and status', () => {
  it('boots through Nova task states to ACTIVE, showing BUILD meanwhile', () => {
    let s = fold(instanceDecider, [created]);
    expect(statusOf(s)).toBe('BUILD');
    for (const command of [
      { type: 'AssignInstanceHost', host: 'h7', availabilityZone: 'az2' },
      { type: 'AdvanceInstanceTask', taskState: 'networking' },
      { type: 'AdvanceInstanceTask', taskState: 'block_device_mapping' },
      { type: 'AdvanceInstanceTask', taskState: 'spawning' },
      { type: 'CompleteInstanceAction', action: 'create' },
    ] as M[]) {
      const d = instanceDecider.decide(s, command, testContext({ aggregateId: 'i1' }));
      if (!('events' in d)) throw new Error(d.rejection.message);
      s = fold(instanceDecider, d.events, s);
    }
    expect(s.value).toBe('active');
    expect(statusOf(s)).toBe('ACTIVE');
    expect(s.context).toMatchObject({ host: 'h7', availabilityZone: 'az2', launched: true, task: null, powerState: 1 });
  });

  it('goes to ERROR with the fault when the boot fails, and refuses a completion for another action', () => {
    const s = fold(instanceDecider, [created]);
    expect(instanceDecider.decide(s, { type: 'CompleteInstanceAction', action: 'stop' } as M, testContext())).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION' } });
    const d = instanceDecider.decide(s, { type: 'FailInstanceAction', action: 'create', code: 500, message: 'No valid host was found. ' } as M, testContext());
    const failed = fold(instanceDecider, (d as { events: M[] }).events, s);
    expect(failed.value).toBe('error');
    expect(statusOf(failed)).toBe('ERROR');
    expect(failed.context).toMatchObject({ fault: { code: 500, message: 'No valid host was found. ' } });
  });

  it('goes back to scheduling when the spawn fails on its host, remembering the host', () => {
    const onHost = [created, { type: 'InstanceHostAssigned', host: 'h1', node: 'h1', availabilityZone: 'az1' }, { type: 'InstanceTaskChanged', taskState: 'spawning' }] as M[];
    const s = fold(instanceDecider, onHost);
    const d = instanceDecider.decide(s, { type: 'RescheduleInstance', reason: 'spawn failed: disk full' } as M, testContext());
    const next = fold(instanceDecider, (d as { events: M[] }).events, s);
    expect(next.context).toMatchObject({ task: 'scheduling', host: '', failedHosts: ['h1'] });
    expect(statusOf(next)).toBe('BUILD');
    // Not on a running server, nor before a host was assigned.
    expect(instanceDecider.decide(fold(instanceDecider, history('active')), { type: 'RescheduleInstance' } as M, testContext())).toHaveProperty('rejection');
    expect(instanceDecider.decide(fold(instanceDecider, [created]), { type: 'RescheduleInstance' } as M, testContext())).toHaveProperty('rejection');
  });

  it('rolls a failed pause back to active with a fault', () => {
    const pausing = [...history('active'), { type: 'InstanceActionStarted', action: 'pause', taskState: 'pausing', resultVm: 'paused' }] as M[];
    const s = fold(instanceDecider, pausing);
    const d = instanceDecider.decide(s, { type: 'FailInstanceAction', action: 'pause', message: 'hypervisor said no' } as M, testContext());
    expect(fold(instanceDecider, (d as { events: M[] }).events, s).value).toBe('active');
  });

  it('resizes to the new flavor on confirm, and back to the old on revert', () => {
    expect((run(history('resized'), { type: 'ConfirmResizeInstance' }).context as { flavor: { id: string } }).flavor.id).toBe('f2');
    expect((run(history('resized'), { type: 'RevertResizeInstance' }).context as { flavor: { id: string } }).flavor.id).toBe('f1');
    expect(statusOf(fold(instanceDecider, history('resized')))).toBe('VERIFY_RESIZE');
  });

  it('refuses metadata beyond the quota with RESOURCE_EXHAUSTED naming it', () => {
    expect(decide(history('active'), { type: 'SetInstanceMetadata', items: { a: '1', b: '2' }, maxItems: 2 }).decision).toMatchObject({
      rejection: { code: 'RESOURCE_EXHAUSTED', message: expect.stringContaining('metadata_items') },
    });
  });

  it('stops an instance whose guest shut itself down (power-state sync)', () => {
    const s = fold(instanceDecider, history('active'));
    const d = instanceDecider.decide(s, { type: 'ReportPowerState', powerState: 4 } as M, testContext());
    expect(fold(instanceDecider, (d as { events: M[] }).events, s).value).toBe('stopped');
  });

  it("records a live migration's target, and refuses one outside a live migration naming the state", () => {
    const migrating = [...history('active'), { type: 'InstanceActionStarted', action: 'live-migration', taskState: 'migrating', resultVm: 'active' }] as M[];
    const d = decide(migrating, { type: 'ReportMigrationTarget', action: 'live-migration', uri: 'tcp:127.0.0.1:4444' }).decision;
    expect(d).toEqual({ events: [{ type: 'InstanceMigrationTargetReady', uri: 'tcp:127.0.0.1:4444' }] });
    expect(decide(history('active'), { type: 'ReportMigrationTarget', action: 'live-migration', uri: 'tcp:127.0.0.1:4444' }).decision).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', message: expect.stringContaining('vm_state active') },
    });
  });

  it('puts a server whose move failed back on the host it left; a failed pause stays where it is', () => {
    const moving = [
      ...history('active'),
      { type: 'InstanceActionStarted', action: 'migrate', taskState: 'resize_prep', resultVm: 'resized' },
      { type: 'InstanceHostAssigned', host: 'h2', node: 'h2', availabilityZone: '' },
    ] as M[];
    const d = decide(moving, { type: 'FailInstanceAction', action: 'migrate', message: 'disk copy failed' }).decision as { events: M[] };
    expect(d.events).toEqual([{ type: 'InstanceActionFailed', action: 'migrate', vmState: 'active', fault: { code: 500, message: 'disk copy failed' }, host: 'h1' }]);
    expect((fold(instanceDecider, [...moving, ...d.events]).context as { host: string }).host).toBe('h1');
    const pausing = [...history('active'), { type: 'InstanceActionStarted', action: 'pause', taskState: 'pausing', resultVm: 'paused' }] as M[];
    expect(decide(pausing, { type: 'FailInstanceAction', action: 'pause' }).decision).toMatchObject({ events: [{ host: 'h1' }] });
  });

    it('deletes a server that never got a host at once, and says NOT_FOUND after', () => {
    const d = decide([created], { type: 'DeleteInstance' }).decision as { events: M[] };
    expect(d.events.map((e) => e.type)).toEqual(['InstanceActionCompleted']);
    const gone = [created, ...d.events];
    expect(decide(gone, { type: 'StopInstance' }).decision).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });
});

describe('network interfaces (os-interface)', () => {
  const given = { portId: 'port-user', networkId: 'net-1', requestedIp: '', preserveOnDelete: true, requestId: '' };
  const made = { portId: 'port-made', networkId: 'net-1', requestedIp: '10.0.0.7', preserveOnDelete: false, requestId: '' };
  const requested = (i: Record<string, unknown>) => ({ ...i, macAddress: '', fixedIps: [], mtu: 0, state: 'requested', fault: '' });
  const bootWith = [
    { ...created, interfaces: [requested(made), requested(given)] },
    { type: 'InstanceHostAssigned', host: 'h1', node: 'h1', availabilityZone: 'az1' },
  ] as M[];
  const allocation = (portId: string, ip: string): M => ({
    type: 'RecordInterfaceAllocation', portId, macAddress: 'fa:16:3e:00:00:01', fixedIps: [{ subnetId: 's1', ipAddress: ip, cidr: '10.0.0.0/24', gatewayIp: '10.0.0.1' }], mtu: 1450,
  });
  const ifaces = (state: MachineState) => (state.context as { interfaces: { portId: string; state: string; requestId: string; fault: string }[] }).interfaces;
  const step = (events: M[], command: M, who = admin): M[] => {
    const { decision } = decide(events, command, who);
    if (!('events' in decision)) throw new Error(`${command.type} refused: ${decision.rejection.message}`);
    return [...events, ...(decision.events as M[])];
  };

  it("a boot's interfaces are allocated by the conductor, and attached when the spawn completes", () => {
    let h = step(bootWith, allocation('port-made', '10.0.0.7'));
    expect(ifaces(fold(instanceDecider, h)).map((i) => i.state)).toEqual(['allocated', 'requested']);
    h = step(h, allocation('port-user', '10.0.0.9'));
    h = step(h, { type: 'CompleteInstanceAction', action: 'create' });
    expect(ifaces(fold(instanceDecider, h)).map((i) => i.state)).toEqual(['attached', 'attached']);
    // An allocation reported twice (a conductor that restarted with a new command id) is refused, naming the state.
    expect(decide(h, allocation('port-made', '10.0.0.7')).decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'attached' } });
  });

  it('attach: requested -> allocated -> attached; a second attach of the port is PortInUse; locked servers refuse members', () => {
    const active = history('active');
    const attach: M = { type: 'AttachInstanceInterface', interface: { ...given, requestId: 'op-1' } };
    let h = step(active, attach);
    expect(ifaces(fold(instanceDecider, h))).toMatchObject([{ portId: 'port-user', state: 'requested', requestId: 'op-1' }]);
    expect(decide(h, attach).decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'in use', message: 'Port port-user is still in use.' } });
    h = step(h, allocation('port-user', '10.0.0.9'));
    h = step(h, { type: 'ReportInterfacePlugged', portId: 'port-user' });
    expect(h[h.length - 1]).toMatchObject({ type: 'InstanceInterfacePlugged', portId: 'port-user', requestId: 'op-1' });
    expect(fold(instanceDecider, h).value).toBe('active');
    const locked = [...active, { type: 'InstanceLocked', reason: 'audit', byAdmin: false }] as M[];
    expect(decide(locked, attach, member).decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'locked' } });
  });

  it('detach: attached -> detaching -> detached -> removed; an unknown port is NOT_FOUND', () => {
    let h = step(bootWith, allocation('port-made', '10.0.0.7'));
    h = step(h, allocation('port-user', '10.0.0.9'));
    h = step(h, { type: 'CompleteInstanceAction', action: 'create' });
    expect(decide(h, { type: 'DetachInstanceInterface', portId: 'nope', requestId: 'd0' }).decision).toMatchObject({ rejection: { code: 'NOT_FOUND', field: 'port_id' } });
    h = step(h, { type: 'DetachInstanceInterface', portId: 'port-made', requestId: 'd1' });
    expect(decide(h, { type: 'DetachInstanceInterface', portId: 'port-made', requestId: 'd2' }).decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'detaching' } });
    h = step(h, { type: 'ReportInterfaceUnplugged', portId: 'port-made' });
    h = step(h, { type: 'RemoveInstanceInterface', portId: 'port-made' });
    expect(h[h.length - 1]).toEqual({ type: 'InstanceInterfaceRemoved', portId: 'port-made', requestId: 'd1' });
    expect(ifaces(fold(instanceDecider, h)).map((i) => i.portId)).toEqual(['port-user']);
  });

  it('a failed attach lets the interface go (detached, with the fault); a failed detach leaves it attached', () => {
    let h = step(history('stopped'), { type: 'AttachInstanceInterface', interface: { ...made, requestId: 'op-2' } });
    h = step(h, { type: 'FailInstanceInterface', portId: 'port-made', message: 'No more IP addresses available on subnet s1' });
    expect(ifaces(fold(instanceDecider, h))).toMatchObject([{ state: 'detached', fault: 'No more IP addresses available on subnet s1' }]);
    h = step(h, { type: 'RemoveInstanceInterface', portId: 'port-made' });
    expect(ifaces(fold(instanceDecider, h))).toEqual([]);

    let d = step(bootWith, allocation('port-made', '10.0.0.7'));
    d = step(d, allocation('port-user', '10.0.0.9'));
    d = step(d, { type: 'CompleteInstanceAction', action: 'create' });
    d = step(d, { type: 'DetachInstanceInterface', portId: 'port-user', requestId: 'd3' });
    d = step(d, { type: 'FailInstanceInterface', portId: 'port-user', message: 'the guest did not release the device' });
    expect(ifaces(fold(instanceDecider, d)).find((i) => i.portId === 'port-user')).toMatchObject({ state: 'attached', fault: 'the guest did not release the device' });
  });

  it('refuses attach and detach in other vm_states and while a task runs, naming them', () => {
    const attach: M = { type: 'AttachInstanceInterface', interface: { ...given, requestId: 'op-3' } };
    expect(decide(history('suspended'), attach).decision).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'suspended', message: "Cannot 'attach_interface' instance i1 while it is in vm_state suspended" },
    });
    const stopping = [...history('active'), { type: 'InstanceActionStarted', action: 'stop', taskState: 'powering-off', resultVm: 'stopped' }] as M[];
    expect(decide(stopping, attach).decision).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'active/powering-off' } });
  });
});
