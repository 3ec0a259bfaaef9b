// The floating IP lifecycle: DOWN when created, DOWN again whenever its association changes,
// ACTIVE or ERROR when its L3 agent reports; reports about no association, or an earlier one,
// refused naming the status.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given, testContext } from '../kernel/specification.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const fip = networkAggregate('floating_ip').decider;
const f = { id: 'f1', projectId: 'pr1', floatingNetworkId: 'ext', floatingIpAddress: '203.0.113.5', portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' };
const assoc = { portId: 'p1', fixedIpAddress: '10.0.0.5', routerId: 'r1' };
const created: M = { type: 'FloatingIpCreated', floatingIp: f };
const associated: M[] = [created, { type: 'FloatingIpUpdated', floatingIp: { ...f, ...assoc } }];
const active: M[] = [...associated, { type: 'FloatingIpStatusChanged', status: 'ACTIVE' }];

function run(start: M[], commands: M[]) {
  const events = [...start];
  const refusals: any[] = [];
  for (const c of commands) {
    const d = fip.decide(fold(fip, events), c, testContext({ aggregateId: 'f1', version: events.length }));
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(fip, events), events: events.slice(start.length), refusals };
}

describe('floating IP lifecycle', () => {
  it('is created DOWN whatever status is asked, then associated, reported ACTIVE, and disassociated DOWN', () => {
    const { events, refusals, state } = run([], [
      { type: 'CreateFloatingIp', floatingIp: { ...f, status: 'ACTIVE' } },
      { type: 'UpdateFloatingIp', floatingIp: assoc },
      { type: 'UpdateFloatingIp', floatingIp: assoc },
      { type: 'ReportFloatingIpStatus', status: 'ACTIVE', portId: 'p1' },
      { type: 'ReportFloatingIpStatus', status: 'ACTIVE' },
      { type: 'UpdateFloatingIp', floatingIp: { portId: '', fixedIpAddress: '', routerId: '' } },
    ]);
    expect(refusals).toEqual([]);
    expect(events).toEqual([
      created,
      { type: 'FloatingIpUpdated', floatingIp: { ...f, ...assoc } },
      { type: 'FloatingIpStatusChanged', status: 'ACTIVE' },
      { type: 'FloatingIpUpdated', floatingIp: { ...f, status: 'ACTIVE' } },
      { type: 'FloatingIpStatusChanged', status: 'DOWN' },
    ]);
    expect(state.value).toBe('DOWN');
    expect(state.context.floatingIp).toEqual(f);
  });

  it('goes DOWN when moved to another port, until reported for that port', () => {
    const moved = run(active, [{ type: 'UpdateFloatingIp', floatingIp: { ...assoc, portId: 'p2' } }]);
    expect(moved.state.value).toBe('DOWN');
    expect(run([...active, ...moved.events], [{ type: 'ReportFloatingIpStatus', status: 'ACTIVE', portId: 'p1' }]).refusals).toEqual([
      { code: 'FAILED_PRECONDITION', state: 'DOWN', message: 'floating IP f1 is associated with port p2, not p1' },
    ]);
    expect(run([...active, ...moved.events], [{ type: 'ReportFloatingIpStatus', status: 'ACTIVE', portId: 'p2' }]).state.value).toBe('ACTIVE');
  });

  it('refuses ACTIVE when not associated, a bad status and a half association, by name', () => {
    expect(run([created], [{ type: 'ReportFloatingIpStatus', status: 'ACTIVE' }]).refusals).toEqual([
      { code: 'FAILED_PRECONDITION', state: 'DOWN', message: 'floating IP f1 is DOWN and not associated with a port' },
    ]);
    expect(run([created], [{ type: 'ReportFloatingIpStatus', status: 'UP' }]).refusals).toMatchObject([{ code: 'INVALID_ARGUMENT', field: 'status' }]);
    expect(run([created], [{ type: 'UpdateFloatingIp', floatingIp: { portId: 'p1', fixedIpAddress: '', routerId: 'r1' } }]).refusals).toMatchObject([{ code: 'INVALID_ARGUMENT', field: 'floating_ip.fixed_ip_address' }]);
    expect(given(fip, []).when({ type: 'CreateFloatingIp', floatingIp: { ...f, floatingIpAddress: 'x' } } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'floating_ip.floating_ip_address' } });
  });

  it('reports ERROR from any status, and is deleted from any status, then gone', () => {
    expect(run(active, [{ type: 'ReportFloatingIpStatus', status: 'ERROR' }]).state.value).toBe('ERROR');
    for (const start of [[created], active]) {
      const d = run(start, [{ type: 'DeleteFloatingIp' }, { type: 'ReportFloatingIpStatus', status: 'DOWN' }]);
      expect(d.state.value).toBe('deleted');
      expect(d.refusals).toMatchObject([{ code: 'NOT_FOUND' }]);
    }
  });
});
