// The compute codec carries exactly what the deciders consume: every command and event of every
// compute aggregate, produced by driving the deciders through realistic histories, survives
// encode -> decode deep-equal (nulls stay null, empty maps stay {}, optional fields stay absent),
// and folding the decoded events gives the state the originals give. Bad fields are refused at
// decode, named.
import { describe, expect, it } from 'vitest';
import { computeAggregate, computeAggregates } from '../../domains/compute/compute.deciders.js';
import { ACTION_BY_COMMAND } from '../../domains/compute/instance.machine.js';
import type { Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { testContext } from '../../domains/kernel/specification.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { hostedDomains } from '../domains.js';
import { COMPUTE_PROTO_PACKAGE, computeCodecFor, computeDefinitions, computeEventTypes } from './compute.codec.js';
import { protoCodec } from './proto-codec.js';

type M = Message & Record<string, unknown>;

const admin = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] };
const seen = new Map<string, { commands: Set<string>; events: Set<string> }>();

/** Runs commands in order against one aggregate through the codec; returns both folds. */
function drive(aggregateType: string, aggregateId: string, commands: M[]): { original: MachineState; decoded: MachineState; events: M[] } {
  const { decider } = computeAggregate(aggregateType);
  const codec = computeCodecFor(aggregateType);
  const record = seen.get(aggregateType) ?? { commands: new Set(), events: new Set() };
  seen.set(aggregateType, record);
  let original = decider.initialState;
  let decoded = decider.initialState;
  const events: M[] = [];
  commands.forEach((command, i) => {
    const wire = codec.decodeCommand(command.type, codec.encodeCommand(command)) as M;
    expect(wire, `${command.type} after the wire`).toStrictEqual(command);
    record.commands.add(command.type);
    const context = testContext({ aggregateId, version: events.length, actor: admin, issuedAtMs: 1_767_225_600_000 + i });
    const want = decider.decide(original, command, context);
    const got = decider.decide(decoded, wire, context);
    if (!('events' in want)) throw new Error(`${command.type} (#${i}) refused: ${want.rejection.message}`);
    expect(got, `${command.type}: deciding the decoded command`).toStrictEqual(want);
    for (const event of want.events as M[]) {
      const back = codec.decodeEvent(event.type, codec.encodeEvent(event)) as M;
      expect(back, `${event.type} after the wire`).toStrictEqual(event);
      record.events.add(event.type);
      events.push(event);
      original = decider.evolve(original, event);
      decoded = decider.evolve(decoded, back);
    }
    expect({ value: decoded.value, context: decoded.context }, `state after ${command.type}`).toStrictEqual({ value: original.value, context: original.context });
  });
  return { original, decoded, events };
}

const small = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const large = { id: 'f2', name: 'm1.large', vcpus: 4, ramMb: 8192, diskGb: 80, ephemeralGb: 10, swapMb: 1024, extraSpecs: { 'hw:cpu_policy': 'dedicated' } };
const createInstance = (over: Record<string, unknown> = {}): M => ({
  type: 'CreateInstance', name: 'vm1', projectId: 'p1', userId: 'u1', flavor: small, imageId: 'img', keyName: 'alice key',
  availabilityZone: '', serverGroupId: 'g1', metadata: { role: 'web' }, interfaces: [], ...over,
});
/** An action's command, then the host's completion of it. */
const act = (command: M): M[] => [command, { type: 'CompleteInstanceAction', action: ACTION_BY_COMMAND.get(command.type)!.name }];
const inventory = (vcpus: number) => ({
  vcpus: { total: vcpus, reserved: 0, allocationRatio: 4 },
  ramMb: { total: 65536, reserved: 512, allocationRatio: 1.5 },
  diskGb: { total: 1000, reserved: 10, allocationRatio: 1 },
});
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnt6+UhHElc402VwTZwQLMeNUNd5kytTaaZiuNyn0dB alice@example';

describe('compute codec', () => {
  it('carries a server through its whole life: boot with a reschedule, every action, failures, power sync, shelve, soft delete', () => {
    const { decoded } = drive('instance', 'i1', [
      createInstance(),
      { type: 'AssignInstanceHost', host: 'h1', availabilityZone: 'az1' },
      { type: 'AdvanceInstanceTask', taskState: 'spawning' },
      { type: 'RescheduleInstance', reason: 'spawn failed: disk full' },
      { type: 'AssignInstanceHost', host: 'h2', node: 'h2.node', availabilityZone: '' },
      { type: 'AdvanceInstanceTask', taskState: 'networking' },
      { type: 'CompleteInstanceAction', action: 'create' },
      { type: 'ReportPowerState', powerState: 3 },
      { type: 'ReportPowerState', powerState: 1 },
      { type: 'LockInstance', reason: 'maintenance' },
      { type: 'UnlockInstance' },
      { type: 'SetInstanceMetadata', items: { tier: 'gold' }, maxItems: 128 },
      { type: 'SetInstanceMetadata', items: { zone: 'b' } },
      { type: 'DeleteInstanceMetadata', key: 'role' },
      ...act({ type: 'StopInstance' }),
      ...act({ type: 'StartInstance' }),
      ...act({ type: 'RebootInstance' }),
      ...act({ type: 'HardRebootInstance' }),
      { type: 'RebuildInstance', imageId: 'img2' },
      { type: 'AdvanceInstanceTask', taskState: 'rebuild_spawning' },
      { type: 'CompleteInstanceAction', action: 'rebuild' },
      ...act({ type: 'PauseInstance' }),
      ...act({ type: 'UnpauseInstance' }),
      ...act({ type: 'SuspendInstance' }),
      ...act({ type: 'ResumeInstance' }),
      ...act({ type: 'RescueInstance' }),
      ...act({ type: 'UnrescueInstance' }),
      { type: 'ResizeInstance', flavor: large },
      { type: 'AssignInstanceHost', host: 'h3', availabilityZone: 'az1' },
      { type: 'CompleteInstanceAction', action: 'resize' },
      { type: 'ConfirmResizeInstance' },
      ...act({ type: 'MigrateInstance' }),
      ...act({ type: 'RevertResizeInstance' }),
      { type: 'LiveMigrateInstance' },
      { type: 'AssignInstanceHost', host: 'h5', availabilityZone: 'az1' },
      { type: 'ReportMigrationTarget', action: 'live-migration', uri: 'tcp:127.0.0.1:4444' },
      { type: 'FailInstanceAction', action: 'live-migration', code: 500, message: 'connection refused' },
      ...act({ type: 'LiveMigrateInstance' }),
      ...act({ type: 'CreateInstanceImage', imageId: 'snap', name: 'nightly' }),
      ...act({ type: 'CreateInstanceBackup', imageId: 'bak', name: 'weekly' }),
      ...act({ type: 'ChangeInstancePassword' }),
      { type: 'PauseInstance' },
      { type: 'FailInstanceAction', action: 'pause', code: 409, message: 'hypervisor said no' },
      { type: 'StopInstance' },
      { type: 'FailInstanceAction', action: 'stop' },
      ...act({ type: 'EvacuateInstance' }),
      ...act({ type: 'StartInstance' }),
      { type: 'ReportPowerState', powerState: 4 },
      ...act({ type: 'StartInstance' }),
      ...act({ type: 'ShelveInstance', offload: false }),
      ...act({ type: 'ShelveOffloadInstance' }),
      { type: 'UnshelveInstance' },
      { type: 'AssignInstanceHost', host: 'h4', availabilityZone: 'az1' },
      { type: 'CompleteInstanceAction', action: 'unshelve' },
      ...act({ type: 'ShelveInstance' }),
      ...act({ type: 'UnshelveInstance' }),
      { type: 'ResetInstanceState', vmState: 'error' },
      { type: 'ResetInstanceState', vmState: 'active' },
      ...act({ type: 'DeleteInstance', soft: true }),
      ...act({ type: 'RestoreInstance' }),
      ...act({ type: 'DeleteInstance', soft: true }),
      ...act({ type: 'ForceDeleteInstance' }),
    ]);
    expect(decoded.value).toBe('deleted');
  });

  it('keeps a null task_state null, and absent flavors null, not "" or {}', () => {
    const { events, decoded } = drive('instance', 'i2', [createInstance({ serverGroupId: '', metadata: {}, keyName: '' }), { type: 'AdvanceInstanceTask', taskState: null }]);
    expect(events.at(-1)).toStrictEqual({ type: 'InstanceTaskChanged', taskState: null });
    expect(decoded.context).toMatchObject({ task: null, metadata: {}, newFlavor: null });
    const codec = computeCodecFor('instance');
    const roundTrip = (e: M) => codec.decodeEvent(e.type, codec.encodeEvent(e));
    expect(roundTrip({ type: 'InstanceActionStarted', action: 'stop', taskState: null, resultVm: 'stopped', newFlavor: null, offload: true, imageId: '' })).toStrictEqual({
      type: 'InstanceActionStarted', action: 'stop', taskState: null, resultVm: 'stopped', newFlavor: null, offload: true, imageId: '',
    });
    expect(roundTrip({ type: 'InstanceTaskChanged', taskState: '' })).toStrictEqual({ type: 'InstanceTaskChanged', taskState: '' });
    expect(roundTrip({ type: 'InstanceActionCompleted', action: 'create', vmState: 'active', flavor: null, host: 'h1' })).toMatchObject({ flavor: null });
  });

  it('deletes a server that never got a host at once', () => {
    const { events } = drive('instance', 'i3', [createInstance(), { type: 'DeleteInstance', soft: false }]);
    expect(events.at(-1)).toStrictEqual({ type: 'InstanceActionCompleted', action: 'delete', vmState: 'deleted', flavor: null, host: '' });
  });

  it('carries hosts: registration, inventory updates, heartbeats, claims with and without a group, disable and enable', () => {
    const { decoded } = drive('host', 'h1', [
      { type: 'RegisterHost', inventory: inventory(16), availabilityZone: 'az1', endpoint: '' },
      { type: 'RegisterHost', inventory: inventory(32), availabilityZone: 'az1', endpoint: '127.0.0.1:40000' },
      { type: 'RecordHostHeartbeat' },
      { type: 'ClaimResources', consumerId: 'i1', vcpus: 2, ramMb: 2048, diskGb: 20, groupId: 'g1', policy: 'anti-affinity', maxServerPerHost: 1 },
      { type: 'ClaimResources', consumerId: 'i2', vcpus: 1, ramMb: 512, diskGb: 5, groupId: '', policy: '' },
      { type: 'ReleaseResources', consumerId: 'i1' },
      { type: 'DisableHost', reason: 'bad DIMM' },
      { type: 'ReleaseResources', consumerId: 'i2' },
      { type: 'EnableHost' },
    ]);
    expect(decoded.context).toMatchObject({ used: { vcpus: 0, ramMb: 0, diskGb: 0 }, lastHeartbeatMs: 1_767_225_600_002, groupMembers: { g1: [] } });
  });

  it('carries quotas: limits by Nova name (snake_case keys kept), reservations and releases', () => {
    const { decoded } = drive('quota', 'p1', [
      { type: 'SetQuotaLimits', limits: { cores: -1, instances: 100, metadata_items: 5 } },
      { type: 'ReserveQuota', consumerId: 'i1', usage: { instances: 1, cores: 64, ram: 2048 } },
      { type: 'ReserveQuota', consumerId: 'i2', usage: { instances: 1, cores: 0, ram: 0 } },
      { type: 'ReleaseQuota', consumerId: 'i1' },
    ]);
    expect(decoded.context).toMatchObject({ limits: { cores: -1, instances: 100, metadata_items: 5, ram: 51200 }, used: { instances: 1, cores: 0, ram: 0 } });
  });

  it('carries flavors, key pairs, server groups and host aggregates through create, update, members and delete', () => {
    const flavor = { id: 'f1', name: 'gpu.large', vcpus: 8, ramMb: 32768, diskGb: 100, ephemeralGb: 0, swapMb: 0, extraSpecs: { 'pci_passthrough:alias': 'a100:1' }, isPublic: false, description: '' };
    drive('flavor', 'f1', [
      { type: 'CreateFlavor', flavor },
      { type: 'UpdateFlavor', flavor: { ...flavor, description: 'one A100', extraSpecs: {} }, updateMask: ['description', 'extraSpecs'] },
      { type: 'AddFlavorAccess', projectId: 'p1' },
      { type: 'RemoveFlavorAccess', projectId: 'p1' },
      { type: 'DeleteFlavor' },
    ]);
    const keypair = { id: 'k1', name: 'alice key', userId: 'u1', publicKey: ED25519, fingerprint: '3c:1f:aa:00:11:22:33:44:55:66:77:88:99:aa:bb:cc', type: 'ssh' };
    drive('keypair', 'k1', [
      { type: 'CreateKeypair', keypair },
      { type: 'UpdateKeypair', keypair: { ...keypair, name: 'alice laptop' }, updateMask: ['name'] },
      { type: 'DeleteKeypair' },
    ]);
    const group = { id: 'g1', name: 'web', projectId: 'p1', userId: 'u1', policy: 'anti-affinity', maxServerPerHost: 2 };
    const g = drive('server_group', 'g1', [
      { type: 'CreateServerGroup', serverGroup: group },
      { type: 'UpdateServerGroup', serverGroup: { ...group, name: 'web-tier' }, updateMask: ['name'] },
      { type: 'AddServerGroupMember', instanceId: 'i1', maxMembers: 10 },
      { type: 'AddServerGroupMember', instanceId: 'i2', maxMembers: -1 },
      { type: 'RemoveServerGroupMember', instanceId: 'i1' },
    ]);
    expect(g.decoded.context).toMatchObject({ members: ['i2'], resource: { ...group, name: 'web-tier' } });
    drive('server_group', 'g2', [{ type: 'CreateServerGroup', serverGroup: { ...group, id: 'g2', policy: 'soft-affinity', maxServerPerHost: 0 } }, { type: 'DeleteServerGroup' }]);
    const aggregate = { id: 'a1', name: 'ssd', availabilityZone: 'az1', metadata: { ssd: 'true' } };
    drive('aggregate', 'a1', [
      { type: 'CreateAggregate', aggregate },
      { type: 'UpdateAggregate', aggregate: { ...aggregate, availabilityZone: '', metadata: { ssd: 'true', gpu: 'a100' } }, updateMask: ['availabilityZone', 'metadata'] },
      { type: 'AddAggregateHost', host: 'h1' },
      { type: 'RemoveAggregateHost', host: 'h1' },
      { type: 'DeleteAggregate' },
    ]);
  });

  it('carries network interfaces: a boot with two, an attach, a failed attach, a detach, a failed detach', () => {
    const iface = (portId: string, over: Record<string, unknown> = {}) => ({
      portId, networkId: 'net-1', requestedIp: '', preserveOnDelete: false, macAddress: '', fixedIps: [], mtu: 0, state: 'requested', requestId: '', fault: '', ...over,
    });
    const ip = (ipAddress: string, gatewayIp = '') => ({ subnetId: 's1', ipAddress, cidr: '10.0.0.0/24', gatewayIp });
    const { decoded } = drive('instance', 'i-net', [
      createInstance({ interfaces: [iface('p-made', { requestedIp: '10.0.0.5' }), iface('p-given', { preserveOnDelete: true })] }),
      { type: 'AssignInstanceHost', host: 'h1', node: 'h1', availabilityZone: 'az1' },
      { type: 'AdvanceInstanceTask', taskState: 'networking' },
      { type: 'RecordInterfaceAllocation', portId: 'p-made', macAddress: 'fa:16:3e:00:00:05', fixedIps: [ip('10.0.0.5', '10.0.0.1')], mtu: 1450 },
      { type: 'RecordInterfaceAllocation', portId: 'p-given', macAddress: 'fa:16:3e:00:00:06', fixedIps: [ip('10.0.0.6')], mtu: 0 },
      { type: 'CompleteInstanceAction', action: 'create' },
      { type: 'AttachInstanceInterface', interface: iface('p-hot', { requestId: 'op-1' }) },
      { type: 'RecordInterfaceAllocation', portId: 'p-hot', macAddress: 'fa:16:3e:00:00:07', fixedIps: [], mtu: 1500 },
      { type: 'ReportInterfacePlugged', portId: 'p-hot' },
      { type: 'AttachInstanceInterface', interface: iface('p-full', { requestId: 'op-2' }) },
      { type: 'FailInstanceInterface', portId: 'p-full', message: 'No more IP addresses available on network net-1' },
      { type: 'RemoveInstanceInterface', portId: 'p-full' },
      { type: 'DetachInstanceInterface', portId: 'p-hot', requestId: 'op-3' },
      { type: 'FailInstanceInterface', portId: 'p-hot', message: 'the guest kept the device' },
      { type: 'DetachInstanceInterface', portId: 'p-hot', requestId: 'op-4' },
      { type: 'ReportInterfaceUnplugged', portId: 'p-hot' },
      { type: 'RemoveInstanceInterface', portId: 'p-hot' },
    ]);
    expect((decoded.context as { interfaces: { portId: string; state: string }[] }).interfaces.map((i) => [i.portId, i.state])).toEqual([['p-made', 'attached'], ['p-given', 'attached']]);
  });

  it('has seen every command and event type of every compute aggregate (runs last)', () => {
    for (const a of computeAggregates) {
      const s = seen.get(a.aggregateType);
      expect([...(s?.commands ?? [])].sort(), `${a.aggregateType} commands`).toEqual([...a.commandTypes].sort());
      expect([...(s?.events ?? [])].sort(), `${a.aggregateType} events`).toEqual([...a.eventTypes].sort());
    }
  });
});

describe('compute codec: refusals and hosting', () => {
  const refusal = (aggregateType: string, command: M) => {
    const codec = computeCodecFor(aggregateType);
    try {
      codec.decodeCommand(command.type, codec.encodeCommand(command));
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      return { field: (e as InvalidArgumentError).field, message: (e as Error).message };
    }
    throw new Error(`${command.type} was accepted`);
  };

  it('refuses bad fields at decode, naming them', () => {
    const flavor = { id: 'f1', name: 'm1.tiny', vcpus: 1, ramMb: 0, diskGb: 1, ephemeralGb: 0, swapMb: 0, extraSpecs: {}, isPublic: true, description: '' };
    expect(refusal('flavor', { type: 'CreateFlavor', flavor })).toMatchObject({ field: 'flavor.ram_mb', message: 'flavor.ram_mb: must be at least 1, got 0' });
    expect(refusal('keypair', { type: 'CreateKeypair', keypair: { id: 'k1', name: 'bad!name', userId: 'u1', publicKey: ED25519, fingerprint: '', type: 'ssh' } })).toMatchObject({ field: 'keypair.name' });
    expect(refusal('server_group', { type: 'CreateServerGroup', serverGroup: { id: 'g', name: 'web', projectId: 'p1', policy: 'spread' } })).toMatchObject({ field: 'server_group.policy' });
    expect(refusal('host', { type: 'RegisterHost', inventory: { ...inventory(4), ramMb: { total: 1024, reserved: 0, allocationRatio: 0 } } })).toMatchObject({ field: 'inventory.ram_mb.allocation_ratio' });
    expect(refusal('instance', createInstance({ flavor: null }))).toMatchObject({ field: 'flavor', message: 'flavor: is required' });
    expect(refusal('instance', { type: 'AdvanceInstanceTask', taskState: 'napping' })).toMatchObject({ field: 'task_state' });
    expect(refusal('quota', { type: 'SetQuotaLimits', limits: { gpus: 4 } })).toMatchObject({ field: 'limits' });
    expect(refusal('aggregate', { type: 'UpdateAggregate', aggregate: { id: 'a1' }, updateMask: ['id'] })).toMatchObject({ field: 'aggregate.id', message: expect.stringContaining('cannot be changed') });
  });

  it('refuses bytes that are not the message, naming the type', () => {
    const codec = computeCodecFor('instance');
    expect(() => codec.decodeCommand('CreateInstance', new Uint8Array([0x0a, 0xff]))).toThrow(InvalidArgumentError);
    expect(() => codec.decodeCommand('InstanceCreated', new Uint8Array())).toThrow(/unknown command type/);
  });

  it('refuses a nullable field that is not a proto3 optional field', () => {
    expect(() =>
      protoCodec({ protoPackage: COMPUTE_PROTO_PACKAGE, commandTypes: ['LockInstance'], eventTypes: [], nullable: { LockInstance: ['reason'] } }),
    ).toThrow(/not a proto3 optional field/);
  });

  it('is hosted, with every aggregate and every event type', () => {
    const hosted = hostedDomains.find((d) => d.name === COMPUTE_DOMAIN);
    expect(hosted?.aggregates).toBe(computeDefinitions);
    expect(computeDefinitions.map((d) => d.decider.aggregateType)).toEqual(['instance', 'host', 'quota', 'flavor', 'keypair', 'server_group', 'aggregate']);
    expect(new Set(computeEventTypes).size).toBe(computeEventTypes.length);
    expect(() => computeCodecFor('volume')).toThrow(/no compute aggregate/);
  });
});
