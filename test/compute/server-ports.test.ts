// The servers' ports through the API with fake-driver hosts (no OVS, no guest: the ports stay
// BUILD once bound, as no network agent wires them): the binding follows the server's host through
// a cold migration and its revert, a live migration, a shelve offload (unbound) and an unshelve;
// the server's networks are checked before anything is taken; a boot whose port cannot be made
// (no address left) ends in ERROR with Nova's message, and gives the ports it made back when it
// is deleted; a refused attach is an operation in error, its interface gone and nothing held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf } from '../identity/cloud.js';
import { eventually, startComputeCloud, type ComputeTestCloud, type Member } from './compute-cloud.js';

const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const FAILED_PRECONDITION = 9;

describe('the servers\' ports (fake hosts)', () => {
  let t: ComputeTestCloud;
  let alice: Member;
  let flavorId: string;
  let networkId: string;

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 3 });
    alice = await t.member();
    flavorId = (await t.admin.call('CreateFlavor', { flavor: { name: 'ports.tiny', vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;
    networkId = (await alice.client.call('CreateNetwork', { network: { name: 'only' } })).network.id;
    // A /29: five addresses for ports.
    await alice.client.call('CreateSubnet', { subnet: { networkId, cidr: '10.88.0.0/29' } });
  }, 120_000);
  afterAll(async () => t?.close());

  const wait = async (server: string, res: Record<string, any>) => {
    const op = res.operation.done ? res.operation : (await alice.client.call('WaitOperation', { name: res.operation.name, serverId: server, timeout: { seconds: 60 } })).operation;
    return op as { result: string; error: string; action: string };
  };
  const act = async (rpc: string, server: string, by = alice.client) => {
    const op = await wait(server, await by.call(rpc, { id: server }));
    expect(op, `${rpc}: ${op.error}`).toMatchObject({ result: 'success' });
  };
  const hostOf = async (server: string) => (await t.admin.call('GetServer', { id: server })).server.host as string;
  const portOf = async (id: string) => (await alice.client.call('GetPort', { id })).port;
  const boundTo = (port: string, host: string) => eventually(async () => ((await portOf(port)).hostId === host ? true : undefined), 20_000, `port ${port} bound to ${host || 'no host'}`);

  it('boots on the only network with nothing asked; the binding follows the host through moves, shelve and unshelve', { timeout: 120_000 }, async () => {
    const created = await alice.client.call('CreateServer', { name: 'mover', flavorId, imageId: 'cirros' });
    const id = created.servers[0].id;
    expect((await wait(id, { operation: created.operations[0] })).result).toBe('success');
    const [port] = (await alice.client.call('ListPorts', { deviceId: id })).ports;
    expect(port).toMatchObject({ networkId, deviceOwner: 'compute:nova', status: 'BUILD' });
    expect(port.securityGroups).toHaveLength(1);
    const first = await hostOf(id);
    await boundTo(port.id, first);

    await act('MigrateServer', id, t.admin);
    const second = await hostOf(id);
    expect(second).not.toBe(first);
    await boundTo(port.id, second);
    await act('RevertResizeServer', id);
    await boundTo(port.id, first);

    await act('LiveMigrateServer', id, t.admin);
    const third = await hostOf(id);
    expect(third).not.toBe(first);
    await boundTo(port.id, third);

    await act('ShelveServer', id);
    expect((await alice.client.call('GetServer', { id })).server.status).toBe('SHELVED_OFFLOADED');
    await boundTo(port.id, '');
    expect((await portOf(port.id)).status).toBe('DOWN');
    await act('UnshelveServer', id);
    await boundTo(port.id, await hostOf(id));
    // The same port all along, with its address.
    expect((await portOf(port.id)).fixedIps).toEqual(port.fixedIps);

    await act('DeleteServer', id);
    await eventually(async () => ((await errorOf(portOf(port.id))).code === NOT_FOUND ? true : undefined), 20_000, 'the port deleted');
  });

  it('checks the networks before anything is taken', async () => {
    const create = (extra: Record<string, unknown>) => errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'cirros', ...extra }));
    expect(await create({ networks: [{ uuid: 'no-such-network' }] })).toMatchObject({ code: NOT_FOUND, field: 'networks[0].uuid' });
    expect(await create({ networks: [{ uuid: networkId, fixedIp: '10.99.0.5' }] })).toMatchObject({ code: INVALID_ARGUMENT, field: 'networks[0].fixed_ip' });
    expect(await create({ networks: [{ uuid: networkId, fixedIp: '10.88.0.5' }], maxCount: 2 })).toMatchObject({ code: INVALID_ARGUMENT, field: 'networks[0].fixed_ip' });
    expect(await create({ networks: [{ uuid: networkId }], networkAllocation: 'auto' })).toMatchObject({ code: INVALID_ARGUMENT, field: 'network_allocation' });
    const bare = (await alice.client.call('CreateNetwork', { network: { name: 'bare' } })).network.id;
    expect(await create({ networks: [{ uuid: bare }] })).toMatchObject({ code: INVALID_ARGUMENT, field: 'networks[0].uuid' });
    const other = await t.member();
    const theirs = (await other.client.call('CreatePort', { port: { networkId: (await other.client.call('CreateNetwork', { network: { name: 'theirs' } })).network.id } })).port.id;
    expect(await create({ networks: [{ port: theirs }] })).toMatchObject({ code: NOT_FOUND, field: 'networks[0].port' });
    expect((await alice.client.call('ListServers', {})).servers.filter((s: { name: string }) => s.name === 'x')).toEqual([]);
    // With two networks (one without a subnet does not count) nothing asked is still the one; "auto" too; "none" is none.
    const none = await alice.client.call('CreateServer', { name: 'none', flavorId, imageId: 'cirros', networkAllocation: 'none' });
    expect(none.servers[0].interfaces).toEqual([]);
    const auto = await alice.client.call('CreateServer', { name: 'auto', flavorId, imageId: 'cirros', networkAllocation: 'auto' });
    expect(auto.servers[0].interfaces).toMatchObject([{ networkId, state: 'requested' }]);
    for (const s of [none.servers[0].id, auto.servers[0].id]) {
      await wait(s, { operation: (await alice.client.call('ListServerActions', { id: s })).operations[0] });
      await act('DeleteServer', s);
    }
    await eventually(async () => ((await alice.client.call('ListPorts', { networkId })).ports.length === 0 ? true : undefined), 20_000, 'the auto port deleted');
  }, 60_000);

  it('a boot whose port cannot be made ends in ERROR; a refused attach fails its operation and holds nothing', { timeout: 120_000 }, async () => {
    // Fill the /29 (five addresses): four ports, one server.
    const held = [];
    for (let i = 0; i < 4; i++) held.push((await alice.client.call('CreatePort', { port: { networkId, name: `fill-${i}` } })).port.id);
    const last = await alice.client.call('CreateServer', { name: 'last', flavorId, imageId: 'cirros', networks: [{ uuid: networkId }] });
    const lastId = last.servers[0].id;
    expect((await wait(lastId, { operation: last.operations[0] })).result).toBe('success');

    const full = await alice.client.call('CreateServer', { name: 'full', flavorId, imageId: 'cirros', networks: [{ uuid: networkId }] });
    const fullId = full.servers[0].id;
    const op = await wait(fullId, { operation: full.operations[0] });
    expect(op.result).toBe('error');
    expect(op.error).toMatch(new RegExp(`^Build of instance ${fullId} aborted: Failed to allocate the network\\(s\\), not rescheduling: .*`));
    expect((await alice.client.call('GetServer', { id: fullId })).server.status).toBe('ERROR');

    const attach = await alice.client.call('AttachInterface', { id: lastId, networkId });
    const failed = await wait(lastId, attach);
    expect(failed).toMatchObject({ action: 'attach_interface', result: 'error' });
    await eventually(async () => ((await alice.client.call('ListServerInterfaces', { id: lastId })).interfaces.length === 1 ? true : undefined), 20_000, 'the failed interface gone');
    expect(await errorOf(alice.client.call('GetPort', { id: attach.interface.portId }))).toMatchObject({ code: NOT_FOUND });

    // Freeing an address lets the next attach through; a detach of it gives it back.
    const freed = held.pop()!;
    const address = (await portOf(freed)).fixedIps[0].ipAddress;
    await alice.client.call('DeletePort', { id: freed });
    const again = await alice.client.call('AttachInterface', { id: lastId, networkId, fixedIp: address });
    const ok = await wait(lastId, again);
    expect(ok, ok.error).toMatchObject({ result: 'success' });
    expect((await portOf(again.interface.portId)).fixedIps).toMatchObject([{ ipAddress: address }]);
    expect(t.drivers.get(await hostOf(lastId))!.interfaces(lastId)).toHaveLength(2);
    expect(await errorOf(alice.client.call('AttachInterface', { id: fullId, networkId }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'error' });

    for (const s of [fullId, lastId]) await act('DeleteServer', s);
    await eventually(async () => ((await alice.client.call('ListPorts', { networkId })).ports.length === held.length ? true : undefined), 20_000, "the servers' ports deleted");
  });
});
