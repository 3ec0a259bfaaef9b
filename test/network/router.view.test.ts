// NetworkView's fold of routers and floating IPs: what the L3 agent reads.
import { describe, expect, it } from 'vitest';
import type { FloatingIp, Router } from '../../domains/network/network.types.js';
import { NetworkView, type NetworkEvent } from '../../domains/network/network.view.js';

let version = 0;
const ev = (aggregateType: string, aggregateId: string, type: string, fields: Record<string, unknown> = {}): NetworkEvent =>
  ({ type, aggregateType, aggregateId, version: ++version, ...fields }) as NetworkEvent;

const router: Router = { id: 'r1', projectId: 'p1', name: 'r', adminStateUp: true, externalGatewayInfo: null };
const gateway = { networkId: 'ext', enableSnat: true, externalFixedIps: [{ subnetId: 'ext-sub', ipAddress: '203.0.113.3' }] };
const fip: FloatingIp = { id: 'f1', projectId: 'p1', floatingNetworkId: 'ext', floatingIpAddress: '203.0.113.4', portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' };

describe('NetworkView routers and floating IPs', () => {
  it('folds a router through its gateway, interfaces and deletion', () => {
    const view = new NetworkView();
    expect(view.apply(ev('router', 'r1', 'RouterCreated', { router }))).toBe('r1');
    expect(view.routers.get('r1')).toEqual({ router, version });
    view.apply(ev('router', 'r1', 'RouterGatewaySet', { router: { ...router, externalGatewayInfo: gateway }, portId: 'gw' }));
    expect(view.routers.get('r1')!.router.externalGatewayInfo).toEqual(gateway);
    expect(view.apply(ev('router', 'r1', 'RouterInterfaceAdded', { portId: 'if1', subnets: [{ subnetId: 's1', cidr: '10.0.0.0/24' }] }))).toBe('r1');
    expect(view.routers.get('r1')!.version).toBe(version);
    view.apply(ev('router', 'r1', 'RouterGatewayCleared', { router, portId: 'gw' }));
    expect(view.routers.get('r1')!.router.externalGatewayInfo).toBeNull();
    view.apply(ev('router', 'r1', 'RouterDeleted', { router }));
    expect(view.routers.has('r1')).toBe(false);
  });

  it('folds a floating IP through association, status reports and deletion', () => {
    const view = new NetworkView();
    view.apply(ev('floating_ip', 'f1', 'FloatingIpCreated', { floatingIp: fip }));
    expect(view.floatingIps.get('f1')).toEqual({ floatingIp: fip, version });
    const associated = { ...fip, portId: 'p', fixedIpAddress: '10.0.0.5', routerId: 'r1' };
    view.apply(ev('floating_ip', 'f1', 'FloatingIpUpdated', { floatingIp: associated }));
    view.apply(ev('floating_ip', 'f1', 'FloatingIpStatusChanged', { status: 'ACTIVE' }));
    expect(view.floatingIps.get('f1')).toEqual({ floatingIp: { ...associated, status: 'ACTIVE' }, version });
    expect(view.apply(ev('floating_ip', 'nope', 'FloatingIpStatusChanged', { status: 'ACTIVE' }))).toBeUndefined();
    view.apply(ev('floating_ip', 'f1', 'FloatingIpDeleted', { floatingIp: associated }));
    expect(view.floatingIps.size).toBe(0);
  });
});
