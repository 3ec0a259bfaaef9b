// The tests' and dev tools' handle on the private Open vSwitch run by ovs.sh: its own ovsdb-server
// and ovs-vswitchd (userspace datapath only) with their sockets under $STRATA_OVS_DIR
// (default /tmp/strata-ovs). Point ovs-vsctl at `db` and ovs-ofctl/ovs-appctl at `rundir`
// (OVS_RUNDIR); agents/network/ovs.ts takes exactly this { db, rundir } pair.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./ovs.sh', import.meta.url));

export interface LocalOvs {
  /** The state directory (database, logs, pidfiles, sockets). */
  dir: string;
  /** ovsdb-server's remote: unix:<dir>/db.sock. */
  db: string;
  /** OVS_RUNDIR for ovs-ofctl / ovs-appctl (ovs-vswitchd's control socket, bridges' .mgmt sockets). */
  rundir: string;
}

export interface OvsInstance {
  /** State directory (default $STRATA_OVS_DIR or /tmp/strata-ovs); one instance per directory. Keep it short (unix socket paths). */
  dir?: string;
  /**
   * An existing network namespace to run the daemons in: a simulated host with its own
   * interfaces and routing table (userspace tunnels route and ARP in the vswitchd's namespace).
   */
  netns?: string;
}

async function ovs(instance: OvsInstance, ...args: string[]): Promise<string> {
  const env = { ...process.env };
  if (instance.dir) env.STRATA_OVS_DIR = instance.dir;
  if (instance.netns) env.STRATA_OVS_NETNS = instance.netns;
  try {
    const { stdout } = await run('bash', [SCRIPT, ...args], { env, timeout: 60_000, maxBuffer: 1 << 20 });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`ovs.sh ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

function parse(out: string): LocalOvs {
  const vars = Object.fromEntries(
    out.split('\n').map((l) => l.match(/^(OVS_[A-Z]+)=(.*)$/)).filter((m): m is RegExpMatchArray => m !== null).map((m) => [m[1], m[2]]),
  );
  if (!vars.OVS_DIR || !vars.OVS_DB || !vars.OVS_RUNDIR) throw new Error(`ovs.sh printed no endpoint: ${out}`);
  return { dir: vars.OVS_DIR, db: vars.OVS_DB, rundir: vars.OVS_RUNDIR };
}

/** Starts the private ovsdb-server + ovs-vswitchd unless both already run (then reuses them). Needs root. */
export async function ensureOvs(instance: OvsInstance = {}): Promise<LocalOvs> {
  return parse(await ovs(instance, 'up'));
}

/** Stops both daemons (every bridge goes with them; veths and namespaces are the caller's) and removes the state. */
export async function stopOvs(instance: Pick<OvsInstance, 'dir'> = {}): Promise<void> {
  await ovs(instance, 'down');
}

/** Whether ensureOvs can work here: root, and the Open vSwitch binaries installed. */
export async function ovsAvailable(): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    await run('ovs-vswitchd', ['--version']);
    return true;
  } catch {
    return false;
  }
}
