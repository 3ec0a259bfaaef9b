// The network commands of the strata CLI: network, subnet, port, security-group,
// security-group-rule, router and floating-ip, each create|list|show|set|delete (rules: no set;
// routers and floating IPs also unset, routers add|remove subnet|port), with the flags of the
// openstack client where it has them (--subnet-range, --fixed-ip subnet=S,ip-address=A,
// --dst-port 80:90, --provider-network-type). Resources are named by id or by name; tables for
// people, JSON with --output json. Refusals exit as every command does (cli/common.ts).
import { done, helpOrUsage, int, need, parse, str, UsageError, type Context } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const NETWORK_COMMANDS = ['network', 'subnet', 'port', 'security-group', 'security-group-rule', 'router', 'floating-ip'];

export const NETWORK_HELP = `  network create|list|show|set|delete
  subnet create|list|show|set|delete
  port create|list|show|set|delete
  security-group create|list|show|set|delete
  security-group-rule create|list|show|delete
  router create|list|show|set|unset|delete|add subnet|add port|remove subnet|remove port
  floating-ip create|list|show|set|unset|delete`;

/** KEY=VALUE,KEY=VALUE options (--fixed-ip subnet=S,ip-address=A) into objects. */
function pairs(values: unknown, flag: string, keys: string[]): Record<string, string>[] {
  return ((values as string[] | undefined) ?? []).map((v) => {
    const out: Record<string, string> = {};
    for (const kv of v.split(',')) {
      const i = kv.indexOf('=');
      const key = kv.slice(0, i);
      if (i <= 0 || !keys.includes(key)) throw new UsageError(`${flag} takes ${keys.map((k) => `${k}=...`).join(',')}, got "${v}"`);
      out[key] = kv.slice(i + 1);
    }
    return out;
  });
}

const list = (v: unknown) => (v as string[] | undefined) ?? [];

/** A resource's id from its id or its name (the caller's view); the name must be unique. */
async function resolve(ctx: Context, rpc: string, field: string, what: string, nameOrId: string): Promise<string> {
  const res = await ctx.client().call(rpc, { pageSize: 1000 });
  const rows = res[field] as Obj[];
  if (rows.some((r) => r.id === nameOrId)) return nameOrId;
  const named = rows.filter((r) => r.name === nameOrId);
  if (named.length > 1) throw new UsageError(`more than one ${what} is named ${nameOrId}: give its id (${named.map((r) => r.id).join(', ')})`);
  return named[0]?.id ?? nameOrId;
}
const networkId = (ctx: Context, v: string) => resolve(ctx, 'ListNetworks', 'networks', 'network', v);
const subnetId = (ctx: Context, v: string) => resolve(ctx, 'ListSubnets', 'subnets', 'subnet', v);
const portId = (ctx: Context, v: string) => resolve(ctx, 'ListPorts', 'ports', 'port', v);
const groupId = (ctx: Context, v: string) => resolve(ctx, 'ListSecurityGroups', 'securityGroups', 'security group', v);
const routerId = (ctx: Context, v: string) => resolve(ctx, 'ListRouters', 'routers', 'router', v);

/** A floating IP's id from its id or its address. */
async function floatingIpId(ctx: Context, idOrAddress: string): Promise<string> {
  const res = await ctx.client().call('ListFloatingIps', { floatingIpAddress: idOrAddress });
  return (res.floatingIps as Obj[])[0]?.id ?? idOrAddress;
}

/** A list as a table, or as JSON under its field with the next page token. */
function printList(ctx: Context, res: Obj, field: string, jsonField: string, rows: Obj[], columns: string[]): void {
  if (ctx.output === 'json') return print(ctx.output, { [jsonField]: res[field], next_page_token: res.nextPageToken ?? '' });
  print(ctx.output, rows, columns);
  if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
}

/** Boolean pairs (--enable/--disable): true, false, or undefined when neither is given. */
function flag(values: Obj, on: string, off: string): boolean | undefined {
  if (values[on] && values[off]) throw new UsageError(`--${on} and --${off} exclude each other`);
  return values[on] ? true : values[off] ? false : undefined;
}

/** An update: the fields given, and the mask naming them. */
function patch(fields: Record<string, unknown>): { value: Obj; paths: string[] } {
  const given = Object.entries(fields).filter(([, v]) => v !== undefined);
  if (given.length === 0) throw new UsageError('give at least one field to change');
  const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return { value: Object.fromEntries(given), paths: given.map(([k]) => snake(k)) };
}

const PAGE = { 'page-size': { type: 'string' }, 'page-token': { type: 'string' } } as const;
const paging = (values: Obj) => ({ pageSize: int('page-size', values['page-size']) ?? 0, pageToken: str(values['page-token']) ?? '' });

// ---- networks ------------------------------------------------------------------------------

const networkRow = (n: Obj) => ({ ...n, subnets: n.subnets, type: n.networkType ? `${n.networkType}${n.segmentationId ? `:${n.segmentationId}` : ''}` : '' });

async function networksCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata network create --name N [--disable] [--share] [--external] [--mtu N] [--project ID] [--request-id R]
           [--provider-network-type flat|vlan|vxlan] [--provider-physical-network P] [--provider-segment N]   (admins)
       strata network list [--name N] [--all-projects] [--page-size N] [--page-token T]
       strata network show ID|NAME
       strata network set ID|NAME [--name N] [--enable|--disable] [--mtu N] [--share|--no-share] [--external|--no-external]
       strata network delete ID|NAME
A network without provider attributes is a tenant network: VXLAN, on the next free id of the
cloud's range. Provider attributes, --share and --external are for admins. A network with ports
cannot be deleted (exit 8).`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'create': {
      const { values } = parse(
        rest,
        {
          name: { type: 'string' }, disable: { type: 'boolean' }, share: { type: 'boolean' }, external: { type: 'boolean' }, mtu: { type: 'string' },
          project: { type: 'string' }, 'request-id': { type: 'string' }, 'provider-network-type': { type: 'string' },
          'provider-physical-network': { type: 'string' }, 'provider-segment': { type: 'string' },
        },
        usage,
      );
      const network = {
        name: str(values.name) ?? '',
        projectId: str(values.project) ?? '',
        shared: Boolean(values.share),
        external: Boolean(values.external),
        mtu: int('mtu', values.mtu) ?? 0,
        networkType: str(values['provider-network-type']) ?? '',
        physicalNetwork: str(values['provider-physical-network']) ?? '',
        segmentationId: int('provider-segment', values['provider-segment']) ?? 0,
      };
      const res = await client.call('CreateNetwork', { network, adminStateUp: !values.disable, requestId: str(values['request-id']) ?? '' });
      return print(ctx.output, res.network);
    }
    case 'list': {
      const { values } = parse(rest, { name: { type: 'string' }, 'all-projects': { type: 'boolean' }, ...PAGE }, usage);
      const res = await client.call('ListNetworks', { name: str(values.name) ?? '', allProjects: Boolean(values['all-projects']), ...paging(values) });
      return printList(ctx, res, 'networks', 'networks', res.networks.map(networkRow), ['id', 'name', 'status', 'subnets', 'shared', 'type']);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetNetwork', { id: await networkId(ctx, need(positionals, 'network', usage)) })).network);
    }
    case 'set': {
      const { values, positionals } = parse(
        rest,
        {
          name: { type: 'string' }, enable: { type: 'boolean' }, disable: { type: 'boolean' }, mtu: { type: 'string' },
          share: { type: 'boolean' }, 'no-share': { type: 'boolean' }, external: { type: 'boolean' }, 'no-external': { type: 'boolean' },
        },
        usage,
      );
      const id = await networkId(ctx, need(positionals, 'network', usage));
      const { value, paths } = patch({ name: str(values.name), adminStateUp: flag(values, 'enable', 'disable'), mtu: int('mtu', values.mtu), shared: flag(values, 'share', 'no-share'), external: flag(values, 'external', 'no-external') });
      return print(ctx.output, (await client.call('UpdateNetwork', { network: { ...value, id }, updateMask: { paths } })).network);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await networkId(ctx, need(positionals, 'network', usage));
      await client.call('DeleteNetwork', { id });
      return done(ctx, `network ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- subnets -------------------------------------------------------------------------------

const subnetRow = (s: Obj) => ({ ...s, pools: (s.allocationPools as Obj[]).map((p) => `${p.start}-${p.end}`) });

async function subnetCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata subnet create --network NET --subnet-range CIDR [--name N] [--ip-version 4|6] [--gateway IP|none]
           [--allocation-pool start=A,end=B]... [--dns-nameserver IP]... [--host-route destination=CIDR,gateway=IP]... [--no-dhcp] [--request-id R]
       strata subnet list [--network NET] [--page-size N] [--page-token T]
       strata subnet show ID|NAME
       strata subnet set ID|NAME [--name N] [--dns-nameserver IP]... [--dhcp|--no-dhcp]   (the nameservers replace the list)
       strata subnet delete ID|NAME
The gateway defaults to the first address, the pool to the rest of the range. A subnet whose
addresses ports hold cannot be deleted (exit 8).`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'name', 'networkId', 'cidr', 'gatewayIp', 'pools', 'usedIps'];
  switch (verb) {
    case 'create': {
      const { values } = parse(
        rest,
        {
          network: { type: 'string' }, 'subnet-range': { type: 'string' }, name: { type: 'string' }, 'ip-version': { type: 'string' }, gateway: { type: 'string' },
          'allocation-pool': { type: 'string', multiple: true }, 'dns-nameserver': { type: 'string', multiple: true }, 'host-route': { type: 'string', multiple: true },
          'no-dhcp': { type: 'boolean' }, 'request-id': { type: 'string' },
        },
        usage,
      );
      if (!str(values.network)) throw new UsageError(`--network is required\n\n${usage}`);
      if (!str(values['subnet-range'])) throw new UsageError(`--subnet-range is required\n\n${usage}`);
      const gateway = str(values.gateway);
      const subnet = {
        networkId: await networkId(ctx, str(values.network)!),
        cidr: str(values['subnet-range']),
        name: str(values.name) ?? '',
        ipVersion: int('ip-version', values['ip-version']) ?? (str(values['subnet-range'])!.includes(':') ? 6 : 4),
        ...(gateway && gateway !== 'none' ? { gatewayIp: gateway } : {}),
        allocationPools: pairs(values['allocation-pool'], '--allocation-pool', ['start', 'end']),
        dnsNameservers: list(values['dns-nameserver']),
        hostRoutes: pairs(values['host-route'], '--host-route', ['destination', 'gateway']).map((r) => ({ destination: r.destination, nexthop: r.gateway })),
      };
      const res = await client.call('CreateSubnet', { subnet, noGateway: gateway === 'none', enableDhcp: !values['no-dhcp'], requestId: str(values['request-id']) ?? '' });
      return print(ctx.output, res.subnet);
    }
    case 'list': {
      const { values } = parse(rest, { network: { type: 'string' }, ...PAGE }, usage);
      const network = str(values.network) ? await networkId(ctx, str(values.network)!) : '';
      const res = await client.call('ListSubnets', { networkId: network, ...paging(values) });
      return printList(ctx, res, 'subnets', 'subnets', res.subnets.map(subnetRow), columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetSubnet', { id: await subnetId(ctx, need(positionals, 'subnet', usage)) })).subnet);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { name: { type: 'string' }, 'dns-nameserver': { type: 'string', multiple: true }, dhcp: { type: 'boolean' }, 'no-dhcp': { type: 'boolean' } }, usage);
      const id = await subnetId(ctx, need(positionals, 'subnet', usage));
      const { value, paths } = patch({ name: str(values.name), dnsNameservers: values['dns-nameserver'] ? list(values['dns-nameserver']) : undefined, enableDhcp: flag(values, 'dhcp', 'no-dhcp') });
      return print(ctx.output, (await client.call('UpdateSubnet', { subnet: { ...value, id }, updateMask: { paths } })).subnet);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await subnetId(ctx, need(positionals, 'subnet', usage));
      await client.call('DeleteSubnet', { id });
      return done(ctx, `subnet ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- ports ---------------------------------------------------------------------------------

const portRow = (p: Obj) => ({ ...p, fixedIps: (p.fixedIps as Obj[]).map((f) => f.ipAddress) });

async function portCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata port create --network NET [--name N] [--fixed-ip subnet=S,ip-address=A]... [--mac-address M]
           [--security-group SG]... [--disable-port-security] [--device-owner O] [--device-id D] [--disable] [--request-id R]
       strata port list [--network NET] [--device-id D] [--page-size N] [--page-token T]
       strata port show ID|NAME
       strata port set ID|NAME [--name N] [--enable|--disable] [--security-group SG]... [--device-owner O] [--device-id D]
           [--no-fixed-ip] [--fixed-ip subnet=S,ip-address=A]...   (adds addresses; --no-fixed-ip first drops the ones it has)
       strata port delete ID|NAME
A port gets a MAC (fa:16:3e:...) and one address of the network's first IPv4 subnet unless
--fixed-ip says otherwise (subnet=S alone: the next free address of S); without --security-group
it is in the project's default group. A subnet with no free address exits 10, naming it.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'name', 'macAddress', 'fixedIps', 'status'];
  switch (verb) {
    case 'create': {
      const { values } = parse(
        rest,
        {
          network: { type: 'string' }, name: { type: 'string' }, 'fixed-ip': { type: 'string', multiple: true }, 'mac-address': { type: 'string' },
          'security-group': { type: 'string', multiple: true }, 'disable-port-security': { type: 'boolean' }, 'device-owner': { type: 'string' },
          'device-id': { type: 'string' }, disable: { type: 'boolean' }, 'request-id': { type: 'string' },
        },
        usage,
      );
      if (!str(values.network)) throw new UsageError(`--network is required\n\n${usage}`);
      const fixedIps = [];
      for (const f of pairs(values['fixed-ip'], '--fixed-ip', ['subnet', 'ip-address'])) {
        fixedIps.push({ subnetId: f.subnet ? await subnetId(ctx, f.subnet) : '', ipAddress: f['ip-address'] ?? '' });
      }
      const securityGroups = [];
      for (const g of list(values['security-group'])) securityGroups.push(await groupId(ctx, g));
      const port = {
        networkId: await networkId(ctx, str(values.network)!),
        name: str(values.name) ?? '',
        fixedIps,
        macAddress: str(values['mac-address']) ?? '',
        securityGroups,
        deviceOwner: str(values['device-owner']) ?? '',
        deviceId: str(values['device-id']) ?? '',
      };
      const res = await client.call('CreatePort', {
        port,
        adminStateUp: !values.disable,
        portSecurityEnabled: !values['disable-port-security'],
        requestId: str(values['request-id']) ?? '',
      });
      return print(ctx.output, res.port);
    }
    case 'list': {
      const { values } = parse(rest, { network: { type: 'string' }, 'device-id': { type: 'string' }, ...PAGE }, usage);
      const network = str(values.network) ? await networkId(ctx, str(values.network)!) : '';
      const res = await client.call('ListPorts', { networkId: network, deviceId: str(values['device-id']) ?? '', ...paging(values) });
      return printList(ctx, res, 'ports', 'ports', res.ports.map(portRow), columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetPort', { id: await portId(ctx, need(positionals, 'port', usage)) })).port);
    }
    case 'set': {
      const { values, positionals } = parse(
        rest,
        {
          name: { type: 'string' }, enable: { type: 'boolean' }, disable: { type: 'boolean' }, 'security-group': { type: 'string', multiple: true }, 'device-owner': { type: 'string' }, 'device-id': { type: 'string' },
          'fixed-ip': { type: 'string', multiple: true }, 'no-fixed-ip': { type: 'boolean' },
        },
        usage,
      );
      const id = await portId(ctx, need(positionals, 'port', usage));
      // As the openstack client: --fixed-ip adds to the port's addresses, --no-fixed-ip drops them first.
      let fixedIps: Obj[] | undefined;
      if (values['fixed-ip'] || values['no-fixed-ip']) {
        fixedIps = values['no-fixed-ip'] ? [] : ((await client.call('GetPort', { id })).port.fixedIps as Obj[]);
        for (const f of pairs(values['fixed-ip'], '--fixed-ip', ['subnet', 'ip-address'])) {
          fixedIps.push({ subnetId: f.subnet ? await subnetId(ctx, f.subnet) : '', ipAddress: f['ip-address'] ?? '' });
        }
      }
      let securityGroups: string[] | undefined;
      if (values['security-group']) {
        securityGroups = [];
        for (const g of list(values['security-group'])) securityGroups.push(await groupId(ctx, g));
      }
      const { value, paths } = patch({ name: str(values.name), adminStateUp: flag(values, 'enable', 'disable'), securityGroups, deviceOwner: str(values['device-owner']), deviceId: str(values['device-id']), fixedIps });
      return print(ctx.output, (await client.call('UpdatePort', { port: { ...value, id }, updateMask: { paths } })).port);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await portId(ctx, need(positionals, 'port', usage));
      await client.call('DeletePort', { id });
      return done(ctx, `port ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- security groups and rules -------------------------------------------------------------

const ruleRow = (r: Obj) => ({
  ...r,
  protocol: r.protocol || 'any',
  ports: r.portRangeMin === undefined || r.portRangeMin === null ? 'any' : r.portRangeMax !== undefined && r.portRangeMax !== r.portRangeMin ? `${r.portRangeMin}:${r.portRangeMax}` : String(r.portRangeMin),
  remote: r.remoteIpPrefix || (r.remoteGroupId ? `group ${r.remoteGroupId}` : 'any'),
});
const RULE_COLUMNS = ['id', 'securityGroupId', 'direction', 'ethertype', 'protocol', 'ports', 'remote'];

async function securityGroupCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata security-group create NAME [--description D] [--request-id R]
       strata security-group list [--page-size N] [--page-token T]
       strata security-group show ID|NAME
       strata security-group set ID|NAME [--name N] [--description D]
       strata security-group delete ID|NAME
Every project has a "default" group, made on its first network call; a group a port uses cannot
be deleted (exit 8).`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(rest, { description: { type: 'string' }, 'request-id': { type: 'string' } }, usage);
      const securityGroup = { name: need(positionals, 'group', usage), description: str(values.description) ?? '' };
      return print(ctx.output, (await client.call('CreateSecurityGroup', { securityGroup, requestId: str(values['request-id']) ?? '' })).securityGroup);
    }
    case 'list': {
      const { values } = parse(rest, { ...PAGE }, usage);
      const res = await client.call('ListSecurityGroups', paging(values));
      return printList(ctx, res, 'securityGroups', 'security_groups', res.securityGroups.map((g: Obj) => ({ ...g, rules: g.rules.length })), ['id', 'name', 'description', 'rules', 'isDefault']);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      const g = (await client.call('GetSecurityGroup', { id: await groupId(ctx, need(positionals, 'group', usage)) })).securityGroup;
      if (ctx.output === 'json') return print(ctx.output, g);
      print(ctx.output, { ...g, rules: g.rules.length });
      console.log('');
      return print(ctx.output, g.rules.map(ruleRow), RULE_COLUMNS);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { name: { type: 'string' }, description: { type: 'string' } }, usage);
      const id = await groupId(ctx, need(positionals, 'group', usage));
      const { value, paths } = patch({ name: str(values.name), description: str(values.description) });
      return print(ctx.output, (await client.call('UpdateSecurityGroup', { securityGroup: { ...value, id }, updateMask: { paths } })).securityGroup);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await groupId(ctx, need(positionals, 'group', usage));
      await client.call('DeleteSecurityGroup', { id });
      return done(ctx, `security group ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

async function ruleCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata security-group-rule create GROUP [--ingress|--egress] [--ethertype IPv4|IPv6] [--protocol tcp|udp|icmp|icmpv6|N|any]
           [--dst-port PORT[:PORT]] [--icmp-type N [--icmp-code N]] [--remote-ip CIDR | --remote-group GROUP] [--description D] [--request-id R]
       strata security-group-rule list [GROUP]
       strata security-group-rule show ID
       strata security-group-rule delete ID
Default: ingress, IPv4, any protocol from anywhere. A rule the group has already exits 7.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(
        rest,
        {
          ingress: { type: 'boolean' }, egress: { type: 'boolean' }, ethertype: { type: 'string' }, protocol: { type: 'string' }, 'dst-port': { type: 'string' },
          'icmp-type': { type: 'string' }, 'icmp-code': { type: 'string' }, 'remote-ip': { type: 'string' }, 'remote-group': { type: 'string' },
          description: { type: 'string' }, 'request-id': { type: 'string' },
        },
        usage,
      );
      if (values.ingress && values.egress) throw new UsageError('--ingress and --egress exclude each other');
      const group = await groupId(ctx, need(positionals, 'group', usage));
      let portRangeMin: number | undefined;
      let portRangeMax: number | undefined;
      const dst = str(values['dst-port']);
      if (dst) {
        const [lo, hi] = dst.split(':');
        portRangeMin = int('dst-port', lo);
        portRangeMax = int('dst-port', hi ?? lo);
      } else if (values['icmp-type'] !== undefined) {
        portRangeMin = int('icmp-type', values['icmp-type']);
        portRangeMax = int('icmp-code', values['icmp-code']);
      }
      const rule = {
        direction: values.egress ? 'egress' : 'ingress',
        ethertype: str(values.ethertype) ?? 'IPv4',
        protocol: str(values.protocol) === 'any' ? '' : (str(values.protocol) ?? ''),
        ...(portRangeMin === undefined ? {} : { portRangeMin }),
        ...(portRangeMax === undefined ? {} : { portRangeMax }),
        remoteIpPrefix: str(values['remote-ip']) ?? '',
        remoteGroupId: str(values['remote-group']) ? await groupId(ctx, str(values['remote-group'])!) : '',
        description: str(values.description) ?? '',
      };
      return print(ctx.output, (await client.call('CreateSecurityGroupRule', { securityGroupId: group, rule, requestId: str(values['request-id']) ?? '' })).rule);
    }
    case 'list': {
      const { positionals } = parse(rest, {}, usage);
      const group = positionals[0] ? await groupId(ctx, positionals[0]) : '';
      const res = await client.call('ListSecurityGroupRules', { securityGroupId: group });
      return ctx.output === 'json' ? print(ctx.output, { rules: res.rules }) : print(ctx.output, res.rules.map(ruleRow), RULE_COLUMNS);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetSecurityGroupRule', { id: need(positionals, 'rule', usage) })).rule);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = need(positionals, 'rule', usage);
      await client.call('DeleteSecurityGroupRule', { id });
      return done(ctx, `security group rule ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- routers -------------------------------------------------------------------------------

const routerRow = (r: Obj): Obj => ({
  ...r,
  externalGateway: r.externalGatewayInfo ? `${r.externalGatewayInfo.networkId}${r.externalGatewayInfo.enableSnat ? '' : ' (no snat)'}` : '',
  interfaces: (r.interfacesInfo as Obj[]).length,
});

/** --external-gateway with its SNAT and fixed-IP flags, as external_gateway_info (undefined: not given). */
async function gatewayInfo(ctx: Context, values: Obj): Promise<Obj | undefined> {
  const network = str(values['external-gateway']);
  const enableSnat = flag(values, 'enable-snat', 'disable-snat');
  const fixed = pairs(values['fixed-ip'], '--fixed-ip', ['subnet', 'ip-address']);
  if (!network) {
    if (enableSnat !== undefined || fixed.length > 0) throw new UsageError('--enable-snat, --disable-snat and --fixed-ip go with --external-gateway');
    return undefined;
  }
  const externalFixedIps = [];
  for (const f of fixed) externalFixedIps.push({ subnetId: f.subnet ? await subnetId(ctx, f.subnet) : '', ipAddress: f['ip-address'] ?? '' });
  return { networkId: await networkId(ctx, network), ...(enableSnat === undefined ? {} : { enableSnat }), externalFixedIps };
}

const GATEWAY = {
  'external-gateway': { type: 'string' }, 'enable-snat': { type: 'boolean' }, 'disable-snat': { type: 'boolean' }, 'fixed-ip': { type: 'string', multiple: true },
} as const;

async function routerCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata router create NAME [--external-gateway NET [--enable-snat|--disable-snat] [--fixed-ip subnet=S,ip-address=A]...]
           [--disable] [--project ID] [--request-id R]
       strata router list [--name N] [--external-gateway NET] [--page-size N] [--page-token T]
       strata router show ID|NAME
       strata router set ID|NAME [--name N] [--enable|--disable] [--external-gateway NET [--enable-snat|--disable-snat] [--fixed-ip ...]]
       strata router unset ID|NAME --external-gateway
       strata router add subnet ROUTER SUBNET
       strata router add port ROUTER PORT
       strata router remove subnet ROUTER SUBNET
       strata router remove port ROUTER PORT
       strata router delete ID|NAME
The gateway is a port on an external network with an address of its subnet; SNAT and the
gateway's addresses are for admins. Adding a subnet makes a port holding its gateway IP; removing
an interface deletes its port. A router with interfaces cannot be deleted, nor an interface or
gateway floating IPs need (exit 8).`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'name', 'status', 'adminStateUp', 'externalGateway', 'interfaces'];
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(rest, { disable: { type: 'boolean' }, project: { type: 'string' }, 'request-id': { type: 'string' }, ...GATEWAY }, usage);
      const externalGatewayInfo = await gatewayInfo(ctx, values);
      const router = { name: need(positionals, 'router', usage), projectId: str(values.project) ?? '', ...(externalGatewayInfo ? { externalGatewayInfo } : {}) };
      return print(ctx.output, (await client.call('CreateRouter', { router, adminStateUp: !values.disable, requestId: str(values['request-id']) ?? '' })).router);
    }
    case 'list': {
      const { values } = parse(rest, { name: { type: 'string' }, 'external-gateway': { type: 'string' }, ...PAGE }, usage);
      const gateway = str(values['external-gateway']) ? await networkId(ctx, str(values['external-gateway'])!) : '';
      const res = await client.call('ListRouters', { name: str(values.name) ?? '', externalNetworkId: gateway, ...paging(values) });
      return printList(ctx, res, 'routers', 'routers', res.routers.map(routerRow), columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      const r = (await client.call('GetRouter', { id: await routerId(ctx, need(positionals, 'router', usage)) })).router;
      if (ctx.output === 'json') return print(ctx.output, r);
      const { interfacesInfo, ...shown } = routerRow(r);
      print(ctx.output, shown);
      console.log('');
      return print(ctx.output, interfacesInfo, ['portId', 'subnetId', 'ipAddress']);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { name: { type: 'string' }, enable: { type: 'boolean' }, disable: { type: 'boolean' }, ...GATEWAY }, usage);
      const id = await routerId(ctx, need(positionals, 'router', usage));
      const { value, paths } = patch({ name: str(values.name), adminStateUp: flag(values, 'enable', 'disable'), externalGatewayInfo: await gatewayInfo(ctx, values) });
      return print(ctx.output, (await client.call('UpdateRouter', { router: { ...value, id }, updateMask: { paths } })).router);
    }
    case 'unset': {
      const { values, positionals } = parse(rest, { 'external-gateway': { type: 'boolean' } }, usage);
      const id = await routerId(ctx, need(positionals, 'router', usage));
      if (!values['external-gateway']) throw new UsageError(`name what to unset (--external-gateway)\n\n${usage}`);
      return print(ctx.output, (await client.call('UpdateRouter', { router: { id }, updateMask: { paths: ['external_gateway_info'] } })).router);
    }
    case 'add':
    case 'remove': {
      const [what, ...args] = rest;
      if (what !== 'subnet' && what !== 'port') throw new UsageError(`strata router ${verb} subnet|port ROUTER ${what === undefined ? 'SUBNET|PORT' : `(not "${what}")`}\n\n${usage}`);
      const { positionals } = parse(args, {}, usage);
      const id = await routerId(ctx, need(positionals, 'router', usage));
      const target = need(positionals.slice(1), what, usage);
      const named = what === 'subnet' ? { subnetId: await subnetId(ctx, target) } : { portId: await portId(ctx, target) };
      const res = await client.call(verb === 'add' ? 'AddRouterInterface' : 'RemoveRouterInterface', { routerId: id, ...named });
      return done(ctx, `${what} ${target} ${verb === 'add' ? 'added to' : 'removed from'} router ${id} (port ${res.portId})`, res);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await routerId(ctx, need(positionals, 'router', usage));
      await client.call('DeleteRouter', { id });
      return done(ctx, `router ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

// ---- floating IPs --------------------------------------------------------------------------

async function floatingIpCommand(ctx: Context, argv: string[]): Promise<void> {
  const usage = `Usage: strata floating-ip create NETWORK [--port PORT [--fixed-ip-address A]] [--floating-ip-address A] [--project ID] [--request-id R]
       strata floating-ip list [--port PORT] [--router ROUTER] [--network NET] [--status ACTIVE|DOWN|ERROR] [--floating-ip-address A]
                               [--page-size N] [--page-token T]
       strata floating-ip show ID|ADDRESS
       strata floating-ip set ID|ADDRESS --port PORT [--fixed-ip-address A]
       strata floating-ip unset ID|ADDRESS --port
       strata floating-ip delete ID|ADDRESS
A floating IP takes an address of an external network (--floating-ip-address: admins). With a
port, it goes through the router whose interface is on the port's subnet and whose gateway is on
that network (none: exit 3); it is DOWN until the L3 agent has set it up.`;
  const [verb, ...rest] = argv;
  const client = ctx.client();
  const columns = ['id', 'floatingIpAddress', 'fixedIpAddress', 'portId', 'routerId', 'status'];
  switch (verb) {
    case 'create': {
      const { values, positionals } = parse(
        rest,
        { port: { type: 'string' }, 'fixed-ip-address': { type: 'string' }, 'floating-ip-address': { type: 'string' }, project: { type: 'string' }, 'request-id': { type: 'string' } },
        usage,
      );
      const floatingIp = {
        floatingNetworkId: await networkId(ctx, need(positionals, 'network', usage)),
        portId: str(values.port) ? await portId(ctx, str(values.port)!) : '',
        fixedIpAddress: str(values['fixed-ip-address']) ?? '',
        floatingIpAddress: str(values['floating-ip-address']) ?? '',
        projectId: str(values.project) ?? '',
      };
      return print(ctx.output, (await client.call('CreateFloatingIp', { floatingIp, requestId: str(values['request-id']) ?? '' })).floatingIp);
    }
    case 'list': {
      const { values } = parse(
        rest,
        { port: { type: 'string' }, router: { type: 'string' }, network: { type: 'string' }, status: { type: 'string' }, 'floating-ip-address': { type: 'string' }, ...PAGE },
        usage,
      );
      const res = await client.call('ListFloatingIps', {
        portId: str(values.port) ? await portId(ctx, str(values.port)!) : '',
        routerId: str(values.router) ? await routerId(ctx, str(values.router)!) : '',
        floatingNetworkId: str(values.network) ? await networkId(ctx, str(values.network)!) : '',
        status: str(values.status) ?? '',
        floatingIpAddress: str(values['floating-ip-address']) ?? '',
        ...paging(values),
      });
      return printList(ctx, res, 'floatingIps', 'floating_ips', res.floatingIps, columns);
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      return print(ctx.output, (await client.call('GetFloatingIp', { id: await floatingIpId(ctx, need(positionals, 'floating IP', usage)) })).floatingIp);
    }
    case 'set': {
      const { values, positionals } = parse(rest, { port: { type: 'string' }, 'fixed-ip-address': { type: 'string' } }, usage);
      const id = await floatingIpId(ctx, need(positionals, 'floating IP', usage));
      if (!str(values.port)) throw new UsageError(`--port is required\n\n${usage}`);
      const { value, paths } = patch({ portId: await portId(ctx, str(values.port)!), fixedIpAddress: str(values['fixed-ip-address']) });
      return print(ctx.output, (await client.call('UpdateFloatingIp', { floatingIp: { ...value, id }, updateMask: { paths } })).floatingIp);
    }
    case 'unset': {
      const { values, positionals } = parse(rest, { port: { type: 'boolean' } }, usage);
      const id = await floatingIpId(ctx, need(positionals, 'floating IP', usage));
      if (!values.port) throw new UsageError(`name what to unset (--port)\n\n${usage}`);
      return print(ctx.output, (await client.call('UpdateFloatingIp', { floatingIp: { id, portId: '' }, updateMask: { paths: ['port_id'] } })).floatingIp);
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      const id = await floatingIpId(ctx, need(positionals, 'floating IP', usage));
      await client.call('DeleteFloatingIp', { id });
      return done(ctx, `floating IP ${id} deleted`, { deleted: id });
    }
    default:
      helpOrUsage(verb, usage);
  }
}

export async function networkCommand(ctx: Context, command: string, argv: string[]): Promise<void> {
  switch (command) {
    case 'network':
      return networksCommand(ctx, argv);
    case 'subnet':
      return subnetCommand(ctx, argv);
    case 'port':
      return portCommand(ctx, argv);
    case 'security-group':
      return securityGroupCommand(ctx, argv);
    case 'security-group-rule':
      return ruleCommand(ctx, argv);
    case 'router':
      return routerCommand(ctx, argv);
    case 'floating-ip':
      return floatingIpCommand(ctx, argv);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
