// A thin, typed wrapper over ovs-vsctl and ovs-ofctl for the network agent. Every command goes to
// one Open vSwitch instance: ovs-vsctl with --db=<endpoint.db>, ovs-ofctl (which finds a bridge's
// management socket, <bridge>.mgmt, in the vswitchd's run directory) with OVS_RUNDIR=<endpoint.rundir>.
// Bridges are userspace-datapath bridges by default (datapath_type=netdev: no kernel module) that
// forward nothing until flows are installed (fail_mode=secure). Flow tables are applied whole and
// atomically with `ovs-ofctl --bundle replace-flows` (an OpenFlow 1.4+ bundle; the bridge speaks
// OpenFlow 1.3 to 1.5 and ovs-ofctl negotiates).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OvsEndpoint {
  /** The ovsdb-server remote, e.g. unix:/tmp/strata-ovs/db.sock. */
  db: string;
  /** The ovs-vswitchd run directory (its control socket and the bridges' .mgmt sockets). */
  rundir: string;
}

export class OvsCommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | string | null,
    readonly stderr: string,
  ) {
    super(`${command} ${args.join(' ')} failed (exit ${exitCode ?? '?'}): ${stderr.trim() || '(no stderr)'}`);
    this.name = 'OvsCommandError';
  }
}

export interface BridgeOptions {
  /** Default netdev (userspace datapath). */
  datapathType?: 'netdev' | 'system';
  /** Default secure: no flows, no forwarding (standalone would act as a learning switch). */
  failMode?: 'secure' | 'standalone';
  /** Default OpenFlow13..15 (bundles need 1.4+). */
  protocols?: string[];
  externalIds?: Record<string, string>;
  /** Bridge other_config, e.g. { 'hwaddr': '...' }. */
  otherConfig?: Record<string, string>;
}

export interface PortOptions {
  /** ofport_request: the OpenFlow port number to ask for (1..65279). */
  ofport?: number;
  externalIds?: Record<string, string>;
  /** Interface type: '' (a system device such as a veth or tap), internal, vxlan, geneve, patch... */
  type?: string;
  /** Interface options, e.g. { remote_ip: '192.0.2.2', key: 'flow' } or { peer: 'patch-x' }. */
  options?: Record<string, string>;
}

export interface PortInfo {
  name: string;
  /** -1 when the interface could not be set up (see error). */
  ofport: number;
  type: string;
  externalIds: Record<string, string>;
  error?: string;
}

export interface FlowEntry {
  cookie: bigint;
  table: number;
  priority: number;
  /** The match as ovs-ofctl prints it, e.g. "in_port=11,dl_type=0x0806" ('' for match-all). */
  match: string;
  actions: string;
  packets: number;
  bytes: number;
  durationSec: number;
}

export interface PortStats {
  /** The OpenFlow port number, or 'LOCAL' for the bridge's own internal port. */
  port: number | 'LOCAL';
  rxPackets: number;
  rxBytes: number;
  rxDropped: number;
  rxErrors: number;
  txPackets: number;
  txBytes: number;
  txDropped: number;
  txErrors: number;
}

const OFPP_LOCAL = 65534;

function mapArgs(column: string, record: 'Bridge' | 'Interface', name: string, values: Record<string, string> | undefined): string[] {
  if (!values || Object.keys(values).length === 0) return [];
  return ['--', 'set', record, name, ...Object.entries(values).map(([k, v]) => `${column}:${k}=${quote(v)}`)];
}

/** ovsdb values with characters outside [A-Za-z0-9_.-:] must be double-quoted for ovs-vsctl. */
function quote(v: string): string {
  return /^[A-Za-z0-9_.:/-]+$/.test(v) ? v : JSON.stringify(v);
}

type OvsdbValue = string | number | boolean | ['map', [OvsdbValue, OvsdbValue][]] | ['set', OvsdbValue[]] | ['uuid', string];

function ovsdbMap(v: OvsdbValue): Record<string, string> {
  if (Array.isArray(v) && v[0] === 'map') return Object.fromEntries((v[1] as [OvsdbValue, OvsdbValue][]).map(([k, x]) => [String(k), String(x)]));
  return {};
}

/** An Interface row read with the columns name, ofport, type, external_ids, error. */
function interfaceOf([name, ofport, type, ids, error]: OvsdbValue[]): PortInfo {
  const err = ovsdbOptional(error!);
  const port = ovsdbOptional(ofport!);
  return {
    name: String(name),
    ofport: typeof port === 'number' ? port : -1,
    type: String(type),
    externalIds: ovsdbMap(ids!),
    ...(err !== undefined ? { error: String(err) } : {}),
  };
}

/** An optional column: a scalar, or ["set", []] when empty. */
function ovsdbOptional(v: OvsdbValue): string | number | boolean | undefined {
  if (Array.isArray(v)) return v[0] === 'set' && (v[1] as OvsdbValue[]).length === 1 ? (v[1][0] as string) : undefined;
  return v;
}

export class Ovs {
  constructor(
    readonly endpoint: OvsEndpoint,
    private readonly options: { timeoutMs?: number } = {},
  ) {}

  private exec(command: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        command,
        args,
        { env: { ...process.env, OVS_RUNDIR: this.endpoint.rundir }, timeout: this.options.timeoutMs ?? 30_000, maxBuffer: 64 << 20 },
        (error, stdout, stderr) => {
          if (error) {
            const e = error as NodeJS.ErrnoException & { code?: number | string; killed?: boolean };
            const why = e.killed ? `killed after ${this.options.timeoutMs ?? 30_000} ms` : stderr || e.message;
            reject(new OvsCommandError(command, args, e.code ?? null, why));
          } else resolve(stdout);
        },
      );
    });
  }

  /** ovs-vsctl against this instance's database (waits for ovs-vswitchd to apply each change). */
  vsctl(...args: string[]): Promise<string> {
    const seconds = Math.max(1, Math.ceil((this.options.timeoutMs ?? 30_000) / 1000) - 1);
    return this.exec('ovs-vsctl', [`--db=${this.endpoint.db}`, `--timeout=${seconds}`, ...args]);
  }

  /** ovs-ofctl with OpenFlow 1.3-1.5 allowed and numeric port names. */
  ofctl(...args: string[]): Promise<string> {
    return this.exec('ovs-ofctl', ['-O', 'OpenFlow13,OpenFlow14,OpenFlow15', '--no-names', ...args]);
  }

  async listBridges(): Promise<string[]> {
    return (await this.vsctl('list-br')).split('\n').filter(Boolean);
  }

  /** Creates the bridge (idempotent: an existing one gets the given settings). */
  async createBridge(name: string, options: BridgeOptions = {}): Promise<void> {
    const protocols = options.protocols ?? ['OpenFlow13', 'OpenFlow14', 'OpenFlow15'];
    await this.vsctl(
      '--may-exist', 'add-br', name,
      '--', 'set', 'Bridge', name,
      `datapath_type=${options.datapathType ?? 'netdev'}`,
      `fail_mode=${options.failMode ?? 'secure'}`,
      `protocols=${protocols.join(',')}`,
      ...mapArgs('external_ids', 'Bridge', name, options.externalIds),
      ...mapArgs('other_config', 'Bridge', name, options.otherConfig),
    );
  }

  async deleteBridge(name: string): Promise<void> {
    await this.vsctl('--if-exists', 'del-br', name);
  }

  /**
   * Adds the port (idempotent) and returns its ofport. Throws when ovs-vswitchd could not set the
   * interface up (no such device, bad tunnel options...), with the Interface's error column.
   */
  async addPort(bridge: string, port: string, options: PortOptions = {}): Promise<number> {
    const set: string[] = [];
    if (options.ofport !== undefined) set.push(`ofport_request=${options.ofport}`);
    if (options.type !== undefined) set.push(`type=${options.type}`);
    for (const [k, v] of Object.entries(options.options ?? {})) set.push(`options:${k}=${quote(v)}`);
    for (const [k, v] of Object.entries(options.externalIds ?? {})) set.push(`external_ids:${k}=${quote(v)}`);
    try {
      await this.vsctl('--may-exist', 'add-port', bridge, port, ...(set.length > 0 ? ['--', 'set', 'Interface', port, ...set] : []));
    } catch (e) {
      // ovs-vsctl reports a device it could not open but leaves the row: take it out again.
      if (e instanceof OvsCommandError && /Error detected while setting up/.test(e.stderr)) {
        await this.vsctl('--if-exists', 'del-port', bridge, port).catch(() => undefined);
      }
      throw e;
    }
    const [info] = await this.interfaces([port]);
    if (!info || info.ofport < 0) {
      await this.vsctl('--if-exists', 'del-port', bridge, port).catch(() => undefined);
      throw new OvsCommandError('ovs-vsctl', ['add-port', bridge, port], null, info?.error ?? 'no ofport assigned');
    }
    return info.ofport;
  }

  async deletePort(bridge: string, port: string): Promise<void> {
    await this.vsctl('--if-exists', 'del-port', bridge, port);
  }

  /**
   * The bridge's ports (not the bridge's own internal port) with their ofports. One ovs-vsctl run
   * reads the bridge, its ports and the interfaces together, from one snapshot of the database:
   * a port going away meanwhile (a guest's tap) cannot make it fail, and it costs one process.
   */
  async listPorts(bridge: string): Promise<PortInfo[]> {
    const out = await this.vsctl(
      '--format=json', '--columns=ports', 'list', 'Bridge', bridge,
      '--', '--columns=_uuid,interfaces', 'list', 'Port',
      '--', '--columns=_uuid,name,ofport,type,external_ids,error', 'list', 'Interface',
    );
    const [bridges, ports, interfaces] = out.trim().split('\n').map((line) => (JSON.parse(line) as { data: OvsdbValue[][] }).data);
    const uuids = (v: OvsdbValue): string[] => (Array.isArray(v) && v[0] === 'uuid' ? [v[1] as string] : Array.isArray(v) && v[0] === 'set' ? (v[1] as OvsdbValue[]).flatMap(uuids) : []);
    const portIds = new Set(uuids(bridges![0]![0]!));
    const interfaceIds = new Set(ports!.filter(([id]) => portIds.has(uuids(id!)[0]!)).flatMap(([, ifaces]) => uuids(ifaces!)));
    return interfaces!.filter(([id, name]) => interfaceIds.has(uuids(id!)[0]!) && name !== bridge).map(([, ...row]) => interfaceOf(row));
  }

  private async interfaces(names: string[]): Promise<PortInfo[]> {
    const out = await this.vsctl('--format=json', '--columns=name,ofport,type,external_ids,error', 'list', 'Interface', ...names);
    const table = JSON.parse(out) as { data: OvsdbValue[][] };
    return table.data.map(interfaceOf);
  }

  /**
   * Replaces the bridge's whole flow table (all tables) with `flows` (ovs-ofctl flow syntax, one
   * per entry) in one OpenFlow bundle: either all of it applies or none, and no packet sees a mix.
   * Flows whose match and actions are unchanged keep their counters.
   */
  async replaceFlows(bridge: string, flows: readonly string[]): Promise<void> {
    for (const f of flows) if (f.includes('\n')) throw new Error(`a flow may not contain a newline: ${JSON.stringify(f)}`);
    const dir = await mkdtemp(join(tmpdir(), 'strata-flows-'));
    try {
      const file = join(dir, `${bridge}.flows`);
      await writeFile(file, flows.map((f) => `${f}\n`).join(''));
      await this.ofctl('--bundle', 'replace-flows', bridge, file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Every flow with its counters (optionally only those matching an ovs-ofctl flow spec, e.g. "table=0"). */
  async dumpFlows(bridge: string, filter?: string): Promise<FlowEntry[]> {
    const out = await this.ofctl('dump-flows', bridge, ...(filter ? [filter] : []));
    return out.split('\n').filter((l) => /^\s*cookie=/.test(l)).map(parseFlow);
  }

  /** Per-port packet and byte counters (ofport, or 'LOCAL' for the bridge's internal port). */
  async portStats(bridge: string, port?: number): Promise<PortStats[]> {
    const out = await this.ofctl('dump-ports', bridge, ...(port !== undefined ? [String(port)] : []));
    return parsePortStats(out);
  }
}

const STAT_KEYS = new Set([
  'cookie', 'duration', 'table', 'n_packets', 'n_bytes', 'idle_age', 'hard_age', 'importance',
  'send_flow_rem', 'reset_counts', 'no_packet_counts', 'no_byte_counts', 'check_overlap',
]);

/** Parses one ovs-ofctl dump-flows line: " cookie=0x0, duration=1.2s, table=0, n_packets=3, n_bytes=294, priority=10,in_port=1 actions=output:2". */
export function parseFlow(line: string): FlowEntry {
  const at = line.indexOf(' actions=');
  if (at < 0) throw new Error(`unparsable flow: ${line}`);
  const actions = line.slice(at + ' actions='.length).trim();
  const fields: Record<string, string> = {};
  const match: string[] = [];
  let priority = 32768;
  for (const token of line.slice(0, at).trim().split(/,\s*/).filter(Boolean)) {
    const eq = token.indexOf('=');
    const key = eq < 0 ? token : token.slice(0, eq);
    const value = eq < 0 ? '' : token.slice(eq + 1);
    if (key === 'priority') priority = Number(value);
    else if (STAT_KEYS.has(key)) fields[key] = value;
    else match.push(token);
  }
  return {
    cookie: BigInt(fields.cookie ?? '0'),
    table: Number(fields.table ?? 0),
    priority,
    match: match.join(','),
    actions,
    packets: Number(fields.n_packets ?? 0),
    bytes: Number(fields.n_bytes ?? 0),
    durationSec: Number.parseFloat(fields.duration ?? '0'),
  };
}

/** Parses ovs-ofctl dump-ports output ("port  1: rx pkts=.., bytes=.., drop=.., errs=.., ..\n tx pkts=..."). */
export function parsePortStats(out: string): PortStats[] {
  const result: PortStats[] = [];
  let current: PortStats | undefined;
  const num = (s: string, key: string) => {
    const m = s.match(new RegExp(`\\b${key}=(\\d+)`));
    return m ? Number(m[1]) : 0;
  };
  for (const line of out.split('\n')) {
    const head = line.match(/^\s*port\s+("?[^:"]+"?):\s*rx\s+(.*)$/);
    if (head) {
      const id = head[1]!.replace(/"/g, '').trim();
      const port: number | 'LOCAL' = id === 'LOCAL' || Number(id) === OFPP_LOCAL ? 'LOCAL' : Number(id);
      current = { port, rxPackets: num(head[2]!, 'pkts'), rxBytes: num(head[2]!, 'bytes'), rxDropped: num(head[2]!, 'drop'), rxErrors: num(head[2]!, 'errs'), txPackets: 0, txBytes: 0, txDropped: 0, txErrors: 0 };
      result.push(current);
      continue;
    }
    const tx = line.match(/^\s*tx\s+(.*)$/);
    if (tx && current) {
      current.txPackets = num(tx[1]!, 'pkts');
      current.txBytes = num(tx[1]!, 'bytes');
      current.txDropped = num(tx[1]!, 'drop');
      current.txErrors = num(tx[1]!, 'errs');
    }
  }
  return result;
}
