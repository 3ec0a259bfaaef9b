// The port lifecycle as Neutron runs it: DOWN when created, BUILD once bound, ACTIVE when its
// host's agent wired it, DOWN on unbind, admin down or the device gone; and a table of which
// command is legal in which status, refusals naming the status.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given, testContext } from '../kernel/specification.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const port = networkAggregate('port').decider;
const p = {
  id: 'p1', networkId: 'n1', projectId: 'pr1', name: '', macAddress: 'fa:16:3e:00:00:01', fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.2' }],
  deviceOwner: 'compute:nova', deviceId: 'i1', securityGroups: ['g1'], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
};
const created: M = { type: 'PortCreated', port: p };
const at = {
  DOWN: [created],
  BUILD: [created, { type: 'PortBound', hostId: 'h1' }, { type: 'PortStatusChanged', status: 'BUILD' }],
  ACTIVE: [created, { type: 'PortBound', hostId: 'h1' }, { type: 'PortStatusChanged', status: 'BUILD' }, { type: 'PortStatusChanged', status: 'ACTIVE' }],
} as Record<string, M[]>;

function run(start: M[], commands: M[]) {
  const events = [...start];
  const refusals: any[] = [];
  for (const c of commands) {
    const d = port.decide(fold(port, events), c, testContext({ aggregateId: 'p1', version: events.length }));
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(port, events), events, refusals };
}

describe('port lifecycle', () => {
  it('goes DOWN -> BUILD -> ACTIVE -> DOWN (unbind), and back', () => {
    const { state, events, refusals } = run([], [
      { type: 'CreatePort', port: p },
      { type: 'BindPort', hostId: 'h1' },
      { type: 'BindPort', hostId: 'h1' },
      { type: 'ReportPortUp', hostId: 'h1' },
      { type: 'ReportPortUp', hostId: 'h1' },
      { type: 'UnbindPort' },
    ]);
    expect(refusals).toEqual([]);
    expect(events.slice(1)).toEqual([
      { type: 'PortBound', hostId: 'h1' }, { type: 'PortStatusChanged', status: 'BUILD' },
      { type: 'PortStatusChanged', status: 'ACTIVE' },
      { type: 'PortUnbound', hostId: 'h1' }, { type: 'PortStatusChanged', status: 'DOWN' },
    ]);
    expect(state.value).toBe('DOWN');
    expect(state.context.hostId).toBe('');
  });

  it('goes DOWN on admin down and back to BUILD on admin up while bound', () => {
    const down = run(at.ACTIVE, [{ type: 'UpdatePort', port: { adminStateUp: false }, updateMask: ['adminStateUp'] }]);
    expect(down.state.value).toBe('DOWN');
    expect(run(down.events, [{ type: 'ReportPortUp', hostId: 'h1' }]).refusals).toEqual([{ code: 'FAILED_PRECONDITION', state: 'DOWN', message: 'port p1 is DOWN: admin_state_up is false' }]);
    expect(run(down.events, [{ type: 'UpdatePort', port: { adminStateUp: true }, updateMask: ['adminStateUp'] }]).state.value).toBe('BUILD');
    // A port bound while admin down stays DOWN.
    expect(run([{ type: 'PortCreated', port: { ...p, adminStateUp: false } }], [{ type: 'BindPort', hostId: 'h1' }]).state).toMatchObject({ value: 'DOWN', context: { hostId: 'h1' } });
  });

  it("goes DOWN when the agent reports the device gone, ACTIVE when it reports it back; another host's reports are refused", () => {
    const gone = run(at.ACTIVE, [{ type: 'ReportPortDown', hostId: 'h1' }]);
    expect(gone.state.value).toBe('DOWN');
    expect(run(gone.events, [{ type: 'ReportPortUp', hostId: 'h1' }]).state.value).toBe('ACTIVE');
    expect(run(at.BUILD, [{ type: 'ReportPortUp', hostId: 'h2' }]).refusals).toEqual([{ code: 'FAILED_PRECONDITION', state: 'BUILD', message: 'port p1 is bound to host h1, not h2' }]);
  });

  it('rebinding to another host needs that host to wire it: BUILD again', () => {
    expect(run(at.ACTIVE, [{ type: 'BindPort', hostId: 'h2' }]).state).toMatchObject({ value: 'BUILD', context: { hostId: 'h2' } });
  });

  it('deletes from every status, then is gone', () => {
    for (const s of ['DOWN', 'BUILD', 'ACTIVE']) {
      const d = run(at[s], [{ type: 'DeletePort' }, { type: 'BindPort', hostId: 'h1' }]);
      expect(d.state.value).toBe('deleted');
      expect(d.refusals).toMatchObject([{ code: 'NOT_FOUND', message: 'port p1 does not exist' }]);
    }
  });

  it('refuses a second creation, and bad fields by name', () => {
    expect(given(port, [created]).when({ type: 'CreatePort', port: p } as M)).toMatchObject({ rejection: { code: 'ALREADY_EXISTS' } });
    expect(given(port, []).when({ type: 'CreatePort', port: { ...p, macAddress: 'FA:16:3E:00:00:01' } } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'port.mac_address' } });
    expect(given(port, []).when({ type: 'CreatePort', port: { ...p, portSecurityEnabled: false } } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'port.security_groups' } });
    expect(given(port, [created]).when({ type: 'UpdatePort', port: { macAddress: 'fa:16:3e:00:00:02' }, updateMask: ['macAddress'] } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'port.mac_address' } });
  });

  // Which command is legal in which status (unbound DOWN, BUILD, ACTIVE): true = accepted.
  const table: [string, M, Record<string, boolean>][] = [
    ['UpdatePort', { type: 'UpdatePort', port: { name: 'x' }, updateMask: ['name'] }, { DOWN: true, BUILD: true, ACTIVE: true }],
    ['DeletePort', { type: 'DeletePort' }, { DOWN: true, BUILD: true, ACTIVE: true }],
    ['BindPort', { type: 'BindPort', hostId: 'h2' }, { DOWN: true, BUILD: true, ACTIVE: true }],
    ['UnbindPort', { type: 'UnbindPort' }, { DOWN: false, BUILD: true, ACTIVE: true }],
    ['ReportPortUp', { type: 'ReportPortUp', hostId: 'h1' }, { DOWN: false, BUILD: true, ACTIVE: true }],
    ['ReportPortDown', { type: 'ReportPortDown', hostId: 'h1' }, { DOWN: false, BUILD: true, ACTIVE: true }],
    ['CreatePort', { type: 'CreatePort', port: p }, { DOWN: false, BUILD: false, ACTIVE: false }],
  ];
  it.each(table)('%s', (_name, command, legal) => {
    for (const [status, ok] of Object.entries(legal)) {
      const d = given(port, at[status]).when(command, { aggregateId: 'p1' });
      expect('events' in d, `${command.type} in ${status}`).toBe(ok);
      if (!ok && command.type !== 'CreatePort') expect(d).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: status } });
    }
  });

  it('lists the commands allowed in each status', () => {
    expect(port.allowedCommands(fold(port, at.DOWN)).sort()).toEqual(['BindPort', 'DeletePort', 'ReportPortDown', 'ReportPortUp', 'UnbindPort', 'UpdatePort']);
    expect(port.allowedCommands(fold(port, [])).sort()).toEqual(['CreatePort']);
  });
});
