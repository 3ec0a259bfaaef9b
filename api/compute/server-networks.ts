// The networks a server asks for, checked against the network read models as Nova's API checks
// them with Neutron before it accepts a boot or an attach (validate_networks): each network visible
// to the project and with a subnet, a fixed IP on one of its subnets, each port the project's and
// not in use, no port twice, a port or fixed IP only for one server. With no networks: "none", or
// "auto" (microversion 2.37: the one network the project may use), or, asked for nothing, that
// one network if there is exactly one. The ports themselves are made (or claimed) and bound by the
// conductor once the server has a host (infra/sagas/compute.network.ts).
import { createHash } from 'node:crypto';
import { inCidr, parseCidr } from '../../domains/network/ip.js';
import type { NetworkQueries, NetworkRecord } from '../../projections/network/network.queries.js';
import { invalid, refuse } from '../errors.js';

/** One interface a request asks for: a network (a port the server makes), or a port given. */
export interface NetworkRequest {
  networkId: string;
  /** The port given ('' : the server makes one on networkId). */
  portId: string;
  /** The address asked for on networkId ('' : any). */
  fixedIp: string;
}

export interface NetworkCaller {
  /** The project the server is (to be) in. */
  projectId: string;
  isAdmin: boolean;
}

/** The id of the port a server makes for its k-th requested network: the same on every retry, shaped as Neutron's UUIDs. */
export function interfacePortId(instanceId: string, requestId: string, k: number): string {
  const h = createHash('sha256').update(`strata/port/${instanceId}/${requestId}/${k}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16], 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const noService = () => refuse('FAILED_PRECONDITION', 'this cloud has no network service: servers cannot ask for networks', { state: 'no network service' });

async function visibleNetwork(q: NetworkQueries, c: NetworkCaller, id: string, field: string): Promise<NetworkRecord> {
  const n = await q.getNetwork(id);
  if (!n || !(c.isAdmin || n.shared || n.projectId === c.projectId)) throw refuse('NOT_FOUND', `${field}: Network ${id} could not be found.`, { field });
  return n;
}

type Field = 'uuid' | 'port' | 'fixed_ip';

/** Checks one requested network or port (`count`: how many servers the request makes); `at` names the request's fields. */
async function checkOne(q: NetworkQueries, c: NetworkCaller, entry: { uuid?: string; port?: string; fixedIp?: string }, at: (f: Field) => string, count: number): Promise<NetworkRequest> {
  const uuid = String(entry.uuid ?? '');
  const portId = String(entry.port ?? '');
  const fixedIp = String(entry.fixedIp ?? '');
  if (portId) {
    if (fixedIp) throw invalid(at('fixed_ip'), 'applies to a network (uuid), not to a port given');
    if (count > 1) throw invalid(at('port'), 'Unable to launch multiple instances with a single configured port ID. Please launch your instance one by one with different ports.');
    const p = await q.getPort(portId);
    if (!p || !(c.isAdmin || p.projectId === c.projectId)) throw refuse('NOT_FOUND', `${at('port')}: Port ${portId} could not be found.`, { field: at('port') });
    if (uuid && uuid !== p.networkId) throw invalid(at('uuid'), `port ${portId} is on network ${p.networkId}, not ${uuid}`);
    if (p.deviceId) throw refuse('FAILED_PRECONDITION', `${at('port')}: Port ${portId} is still in use.`, { field: at('port'), state: 'in use' });
    return { networkId: p.networkId, portId, fixedIp: '' };
  }
  if (!uuid) throw invalid(at('uuid'), 'a network (uuid) or a port is required');
  const n = await visibleNetwork(q, c, uuid, at('uuid'));
  const subnets = await q.subnetsOf(n.id);
  if (subnets.length === 0) throw invalid(at('uuid'), `Network ${n.id} requires a subnet in order to boot instances on.`);
  if (fixedIp) {
    if (count > 1) throw invalid(at('fixed_ip'), 'max_count cannot be greater than 1 if a fixed_ip is specified.');
    const a = parseCidr(`${fixedIp}/${fixedIp.includes(':') ? 128 : 32}`);
    if (!a) throw invalid(at('fixed_ip'), `"${fixedIp}" is not an IP address`);
    if (!subnets.some((s) => inCidr(parseCidr(s.cidr)!, { version: a.version, value: a.network }))) throw invalid(at('fixed_ip'), `${fixedIp} is on no subnet of network ${n.id}`);
  }
  return { networkId: n.id, portId: '', fixedIp };
}

/** The networks the project may boot on without naming one: its own and the shared ones, with a subnet, not external. */
async function available(q: NetworkQueries, c: NetworkCaller): Promise<NetworkRecord[]> {
  return (await q.listNetworks({ projectId: c.projectId, limit: 1000 })).filter((n) => !n.external && n.subnets.length > 0);
}

/** CreateServer's networks and network_allocation, checked, for `count` servers. */
export async function serverNetworks(
  q: NetworkQueries | undefined,
  c: NetworkCaller,
  req: { networks?: { uuid?: string; port?: string; fixedIp?: string }[]; networkAllocation?: string },
  count: number,
): Promise<NetworkRequest[]> {
  const list = req.networks ?? [];
  const mode = String(req.networkAllocation ?? '');
  if (!['', 'auto', 'none'].includes(mode)) throw invalid('network_allocation', `must be "auto", "none" or empty, got "${mode}"`);
  if (mode && list.length > 0) throw invalid('network_allocation', `"${mode}" stands for the networks: give networks or network_allocation, not both`);
  if (mode === 'none') return [];
  if (list.length > 0) {
    if (!q) throw noService();
    const out: NetworkRequest[] = [];
    for (const [i, entry] of list.entries()) {
      const r = await checkOne(q, c, entry, (f) => `networks[${i}].${f}`, count);
      if (r.portId && out.some((o) => o.portId === r.portId)) throw invalid(`networks[${i}].port`, `port ${r.portId} is asked for twice`);
      out.push(r);
    }
    return out;
  }
  if (!q) {
    if (mode === 'auto') throw noService();
    return [];
  }
  const nets = await available(q, c);
  if (nets.length === 1) return [{ networkId: nets[0].id, portId: '', fixedIp: '' }];
  if (mode !== 'auto') return [];
  if (nets.length === 0) throw refuse('FAILED_PRECONDITION', `Unable to automatically allocate a network for project ${c.projectId}: it has no network with a subnet`, { state: 'no network' });
  throw refuse('FAILED_PRECONDITION', 'Multiple possible networks found, use a Network ID to be more specific.', { state: 'ambiguous', field: 'networks' });
}

/** AttachInterface's port_id or network_id (with fixed_ip), checked. */
export async function attachNetwork(q: NetworkQueries | undefined, c: NetworkCaller, req: { portId?: string; networkId?: string; fixedIp?: string }): Promise<NetworkRequest> {
  if (!q) throw noService();
  const portId = String(req.portId ?? '');
  const networkId = String(req.networkId ?? '');
  if (portId && networkId) throw invalid('network_id', 'give port_id or network_id, not both');
  if (!portId && !networkId) throw invalid('port_id', 'port_id or network_id is required');
  const names: Record<Field, string> = { uuid: 'network_id', port: 'port_id', fixed_ip: 'fixed_ip' };
  return checkOne(q, c, { uuid: networkId, port: portId, fixedIp: req.fixedIp }, (f) => names[f], 1);
}
