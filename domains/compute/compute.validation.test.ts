// Compute's field rules as Nova states them: each good command passes, each bad field is refused
// with InvalidArgumentError naming it by its proto path.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../kernel/rejection.js';
import { validateComputeCommand } from './compute.validation.js';

type C = { type: string } & Record<string, unknown>;

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHnt6+UhHElc402VwTZwQLMeNUNd5kytTaaZiuNyn0dB alice@example';
const ECDSA = 'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMgnNe7oIkfRxKYzbgeKYozA4YMx1jeXtGTvM1Rfh8DTl/GRB94Jop0F7sd+vGNc4ULFKB+DfiesdwH6XgftAwk=';
const flavor = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: { 'hw:cpu_policy': 'dedicated' }, isPublic: true, description: '' };
const flavorRef = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const keypair = { id: 'k1', name: 'alice key_1-2', userId: 'u1', publicKey: ED25519, fingerprint: '', type: 'ssh' };
const group = { id: 'g1', name: 'web', projectId: 'p1', userId: 'u1', policy: 'anti-affinity', maxServerPerHost: 2 };
const aggregate = { id: 'a1', name: 'ssd', availabilityZone: 'az1', metadata: { ssd: 'true' } };
const instance = { type: 'CreateInstance', name: 'vm1', projectId: 'p1', userId: 'u1', flavor: flavorRef, imageId: 'img', keyName: '', availabilityZone: '', serverGroupId: '', metadata: { role: 'web' } };
const inventory = {
  vcpus: { total: 16, reserved: 0, allocationRatio: 4 },
  ramMb: { total: 65536, reserved: 512, allocationRatio: 1.5 },
  diskGb: { total: 1000, reserved: 0, allocationRatio: 1 },
};

/** The field a refused command names, or undefined if it passes. */
function refused(command: C): string | undefined {
  try {
    validateComputeCommand(command);
    return undefined;
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    expect(e.message.startsWith(`${e.field}: `)).toBe(true);
    return e.field;
  }
}

const long = (n: number) => 'x'.repeat(n);

describe('compute field rules', () => {
  it.each<[string, C]>([
    ['a flavor', { type: 'CreateFlavor', flavor }],
    ['a flavor with zero disks and an id with dots and inner spaces', { type: 'CreateFlavor', flavor: { ...flavor, id: 'm1.small v2', diskGb: 0, extraSpecs: {} } }],
    ['a flavor description update', { type: 'UpdateFlavor', flavor: { ...flavor, description: 'd' }, updateMask: ['description'] }],
    ['an ed25519 key pair', { type: 'CreateKeypair', keypair }],
    ['an ecdsa key pair', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: ECDSA } }],
    ['an x509 key pair', { type: 'CreateKeypair', keypair: { ...keypair, type: 'x509', publicKey: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' } }],
    ['every server group policy', { type: 'CreateServerGroup', serverGroup: { ...group, policy: 'soft-anti-affinity', maxServerPerHost: 0 } }],
    ['an aggregate', { type: 'CreateAggregate', aggregate }],
    ['an aggregate without a zone', { type: 'CreateAggregate', aggregate: { ...aggregate, availabilityZone: '', metadata: {} } }],
    ['a server', instance],
    ['a resize', { type: 'ResizeInstance', flavor: { ...flavorRef, id: 'f2' } }],
    ['a host', { type: 'RegisterHost', inventory, availabilityZone: 'az1' }],
    ['a host with its agent endpoint', { type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: 'compute-1.example:40123' }],
    ['a host with an IPv6 agent endpoint', { type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: '[::1]:40123' }],
    ['a claim with a group', { type: 'ClaimResources', consumerId: 'i1', vcpus: 1, ramMb: 1, diskGb: 0, groupId: 'g1', policy: 'anti-affinity', maxServerPerHost: 2 }],
    ['unlimited quotas', { type: 'SetQuotaLimits', limits: { cores: -1, server_group_members: 20 } }],
    ['no task', { type: 'AdvanceInstanceTask', taskState: null }],
    ['metadata without a quota', { type: 'SetInstanceMetadata', items: { a: '' } }],
    ['commands without fields', { type: 'StopInstance' }],
  ])('accepts %s', (_what, command) => {
    expect(refused(command)).toBeUndefined();
  });

  it.each<[string, C, string]>([
    // Flavors.
    ['an empty flavor name', { type: 'CreateFlavor', flavor: { ...flavor, name: ' ' } }, 'flavor.name'],
    ['a flavor name over 255', { type: 'CreateFlavor', flavor: { ...flavor, name: long(256) } }, 'flavor.name'],
    ['a flavor name with outer spaces', { type: 'CreateFlavor', flavor: { ...flavor, name: ' tiny' } }, 'flavor.name'],
    ['a flavor id with a slash', { type: 'CreateFlavor', flavor: { ...flavor, id: 'a/b' } }, 'flavor.id'],
    ['no vcpus', { type: 'CreateFlavor', flavor: { ...flavor, vcpus: 0 } }, 'flavor.vcpus'],
    ['no RAM', { type: 'CreateFlavor', flavor: { ...flavor, ramMb: 0 } }, 'flavor.ram_mb'],
    ['a negative disk', { type: 'CreateFlavor', flavor: { ...flavor, diskGb: -1 } }, 'flavor.disk_gb'],
    ['a negative ephemeral disk', { type: 'CreateFlavor', flavor: { ...flavor, ephemeralGb: -1 } }, 'flavor.ephemeral_gb'],
    ['a negative swap', { type: 'CreateFlavor', flavor: { ...flavor, swapMb: -1 } }, 'flavor.swap_mb'],
    ['an extra spec key over 255', { type: 'CreateFlavor', flavor: { ...flavor, extraSpecs: { [long(256)]: 'v' } } }, 'flavor.extra_specs'],
    ['an extra spec value over 255', { type: 'CreateFlavor', flavor: { ...flavor, extraSpecs: { k: long(256) } } }, 'flavor.extra_specs'],
    ['no flavor at all', { type: 'CreateFlavor', flavor: null }, 'flavor'],
    ['an empty update mask', { type: 'UpdateFlavor', flavor, updateMask: [] }, 'update_mask'],
    ['an update of an unknown field', { type: 'UpdateFlavor', flavor, updateMask: ['colour'] }, 'update_mask'],
    ['an update of the RAM', { type: 'UpdateFlavor', flavor, updateMask: ['ramMb'] }, 'flavor.ram_mb'],
    ['an update with a bad value', { type: 'UpdateFlavor', flavor: { ...flavor, extraSpecs: { '': 'x' } }, updateMask: ['extraSpecs'] }, 'flavor.extra_specs'],
    // Key pairs.
    ['a key pair name with "!"', { type: 'CreateKeypair', keypair: { ...keypair, name: 'alice!' } }, 'keypair.name'],
    ['an empty key pair name', { type: 'CreateKeypair', keypair: { ...keypair, name: '' } }, 'keypair.name'],
    ['a key pair name over 255', { type: 'CreateKeypair', keypair: { ...keypair, name: long(256) } }, 'keypair.name'],
    ['no public key', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: '' } }, 'keypair.public_key'],
    ['a public key of another type', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: 'ssh-foo AAAA' } }, 'keypair.public_key'],
    ['a public key that is not one', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: 'hello world' } }, 'keypair.public_key'],
    ['a key whose data names another type', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: ED25519.replace('ssh-ed25519', 'ssh-rsa') } }, 'keypair.public_key'],
    ['a key broken over two lines', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: ED25519.replace(' alice', '\nalice') } }, 'keypair.public_key'],
    ['a truncated key', { type: 'CreateKeypair', keypair: { ...keypair, publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5' } }, 'keypair.public_key'],
    ['an x509 key pair without a certificate', { type: 'CreateKeypair', keypair: { ...keypair, type: 'x509' } }, 'keypair.public_key'],
    ['an unknown key pair type', { type: 'CreateKeypair', keypair: { ...keypair, type: 'pgp' } }, 'keypair.type'],
    ['a key pair without a user', { type: 'CreateKeypair', keypair: { ...keypair, userId: '' } }, 'keypair.user_id'],
    // Server groups.
    ['an empty group name', { type: 'CreateServerGroup', serverGroup: { ...group, name: '' } }, 'server_group.name'],
    ['an unknown policy', { type: 'CreateServerGroup', serverGroup: { ...group, policy: 'spread' } }, 'server_group.policy'],
    ['max_server_per_host with affinity', { type: 'CreateServerGroup', serverGroup: { ...group, policy: 'affinity' } }, 'server_group.max_server_per_host'],
    ['a negative max_server_per_host', { type: 'CreateServerGroup', serverGroup: { ...group, maxServerPerHost: -1 } }, 'server_group.max_server_per_host'],
    ['a group without a project', { type: 'CreateServerGroup', serverGroup: { ...group, projectId: '' } }, 'server_group.project_id'],
    ['a policy change', { type: 'UpdateServerGroup', serverGroup: group, updateMask: ['policy'] }, 'server_group.policy'],
    ['a member without an id', { type: 'AddServerGroupMember', instanceId: '', maxMembers: 10 }, 'instance_id'],
    // Aggregates.
    ['an empty aggregate name', { type: 'CreateAggregate', aggregate: { ...aggregate, name: '' } }, 'aggregate.name'],
    ['a zone with ":"', { type: 'CreateAggregate', aggregate: { ...aggregate, availabilityZone: 'az:1' } }, 'aggregate.availability_zone'],
    ['metadata over 255', { type: 'UpdateAggregate', aggregate: { ...aggregate, metadata: { k: long(256) } }, updateMask: ['metadata'] }, 'aggregate.metadata'],
    ['an aggregate id that is not one', { type: 'CreateAggregate', aggregate: { ...aggregate, id: '' } }, 'aggregate.id'],
    ['a host without a name', { type: 'AddAggregateHost', host: '' }, 'host'],
    // Instances.
    ['a server without a name', { ...instance, name: '' }, 'name'],
    ['a server name over 255', { ...instance, name: long(256) }, 'name'],
    ['a server without a flavor', { ...instance, flavor: null }, 'flavor'],
    ['a server flavor without RAM', { ...instance, flavor: { ...flavorRef, ramMb: 0 } }, 'flavor.ram_mb'],
    ['a server without an image', { ...instance, imageId: '' }, 'image_id'],
    ['a server without a project', { ...instance, projectId: '' }, 'project_id'],
    ['a metadata key over 255', { ...instance, metadata: { [long(256)]: 'v' } }, 'metadata'],
    ['a metadata value over 255', { ...instance, metadata: { k: long(256) } }, 'metadata'],
    ['an empty metadata key', { ...instance, metadata: { '': 'v' } }, 'metadata'],
    ['a resize without a flavor', { type: 'ResizeInstance', flavor: null }, 'flavor'],
    ['a rebuild without an image', { type: 'RebuildInstance', imageId: '' }, 'image_id'],
    ['a snapshot without a name', { type: 'CreateInstanceImage', imageId: 'i', name: '' }, 'name'],
    ['a lock reason over 255', { type: 'LockInstance', reason: long(256) }, 'reason'],
    ['metadata items over 255', { type: 'SetInstanceMetadata', items: { k: long(256) } }, 'items'],
    ['a reset to another state', { type: 'ResetInstanceState', vmState: 'paused' }, 'vm_state'],
    ['an unknown task_state', { type: 'AdvanceInstanceTask', taskState: 'napping' }, 'task_state'],
    ['an unknown power state', { type: 'ReportPowerState', powerState: 2 }, 'power_state'],
    ['a host assignment without a host', { type: 'AssignInstanceHost', host: '', availabilityZone: '' }, 'host'],
    ['a completion without an action', { type: 'CompleteInstanceAction', action: '' }, 'action'],
    // Hosts.
    ['a host without an inventory', { type: 'RegisterHost', inventory: null, availabilityZone: '' }, 'inventory'],
    ['a host without RAM inventory', { type: 'RegisterHost', inventory: { ...inventory, ramMb: null }, availabilityZone: '' }, 'inventory.ram_mb'],
    ['a negative total', { type: 'RegisterHost', inventory: { ...inventory, vcpus: { total: -1, reserved: 0, allocationRatio: 1 } }, availabilityZone: '' }, 'inventory.vcpus.total'],
    ['a negative reserved', { type: 'RegisterHost', inventory: { ...inventory, diskGb: { total: 10, reserved: -1, allocationRatio: 1 } }, availabilityZone: '' }, 'inventory.disk_gb.reserved'],
    ['reserved beyond total', { type: 'RegisterHost', inventory: { ...inventory, diskGb: { total: 10, reserved: 11, allocationRatio: 1 } }, availabilityZone: '' }, 'inventory.disk_gb.reserved'],
    ['a zero allocation ratio', { type: 'RegisterHost', inventory: { ...inventory, vcpus: { total: 4, reserved: 0, allocationRatio: 0 } }, availabilityZone: '' }, 'inventory.vcpus.allocation_ratio'],
    ['a negative allocation ratio', { type: 'RegisterHost', inventory: { ...inventory, ramMb: { total: 4, reserved: 0, allocationRatio: -1 } }, availabilityZone: '' }, 'inventory.ram_mb.allocation_ratio'],
    ['an endpoint without a port', { type: 'RegisterHost', inventory, availabilityZone: '', endpoint: '127.0.0.1' }, 'endpoint'],
    ['an endpoint with port 0', { type: 'RegisterHost', inventory, availabilityZone: '', endpoint: 'host-1:0' }, 'endpoint'],
    ['an endpoint with a path', { type: 'RegisterHost', inventory, availabilityZone: '', endpoint: 'http://host-1:80/x' }, 'endpoint'],
    ['a claim without a consumer', { type: 'ClaimResources', consumerId: '', vcpus: 1, ramMb: 1, diskGb: 1, groupId: '', policy: '' }, 'consumer_id'],
    ['a negative claim', { type: 'ClaimResources', consumerId: 'i1', vcpus: -1, ramMb: 1, diskGb: 1, groupId: '', policy: '' }, 'vcpus'],
    ['a claim with a policy and no group', { type: 'ClaimResources', consumerId: 'i1', vcpus: 1, ramMb: 1, diskGb: 1, groupId: '', policy: 'affinity' }, 'group_id'],
    // Quotas.
    ['an unknown quota', { type: 'SetQuotaLimits', limits: { gpus: 1 } }, 'limits'],
    ['a limit below -1', { type: 'SetQuotaLimits', limits: { cores: -2 } }, 'limits.cores'],
    ['a reservation without usage', { type: 'ReserveQuota', consumerId: 'i1', usage: null }, 'usage'],
    ['a negative reservation', { type: 'ReserveQuota', consumerId: 'i1', usage: { instances: 1, cores: -1, ram: 0 } }, 'usage.cores'],
  ])('refuses %s', (_what, command, field) => {
    expect(refused(command)).toBe(field);
  });
});
