// The compute agent's configuration, from the environment (listed in README.md). One agent
// process serves one host, or with the fake driver any number of simulated hosts.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { endpoint as validateEndpoint } from '../../domains/compute/compute.validation.js';
import type { HostConfig } from './compute.agent.js';
import { parseListen } from './console.server.js';
import type { ComputeDriver } from './driver.js';
import { FakeDriver } from './fake.driver.js';
import { Ovs } from '../network/ovs.js';
import { ImageDirectory } from './image-dir.js';
import { HostImages } from './image-service.js';
import { QemuDriver, type Accelerator } from './qemu.driver.js';

export interface AgentConfig {
  domain: string;
  partitions: number;
  replyPartitions: number;
  driver: 'fake' | 'qemu';
  hosts: HostConfig[];
  heartbeatMs: number;
  syncMs: number;
  /** Where the agent serves ComputeAgentService (console output); undefined: it does not. */
  listen: string | undefined;
  /** The endpoint it registers, when not the listen address. */
  advertise: string | undefined;
  /** The qemu host's images (the image service attaches itself to them at start); undefined for fake hosts. */
  images: HostImages | undefined;
  /** Where the qemu host caches images downloaded from the image service. */
  imageCacheDir: string;
}

function number(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, integer = true): number {
  const raw = env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} of at least ${min}, got "${raw}"`);
  }
  return n;
}

export function agentConfigFromEnv(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  const driver = env.STRATA_AGENT_DRIVER ?? 'fake';
  if (driver !== 'fake' && driver !== 'qemu') throw new Error(`STRATA_AGENT_DRIVER must be "fake" or "qemu", got "${driver}"`);
  const count = number(env, 'STRATA_AGENT_HOSTS', 1, 1);
  if (driver === 'qemu' && count !== 1) throw new Error('STRATA_AGENT_HOSTS must be 1 with the qemu driver: one agent per real host');
  const baseId = env.STRATA_AGENT_HOST_ID || hostname();
  const zones = (env.STRATA_AGENT_AZ ?? 'nova').split(',').filter(Boolean);
  if (zones.length === 0) throw new Error('STRATA_AGENT_AZ must name at least one availability zone');
  const inventory: HostConfig['inventory'] = {
    vcpus: { total: number(env, 'STRATA_AGENT_VCPUS', 16, 1), allocationRatio: number(env, 'STRATA_AGENT_CPU_RATIO', 4, 0.0001, false) },
    ramMb: {
      total: number(env, 'STRATA_AGENT_RAM_MB', 32768, 1),
      reserved: number(env, 'STRATA_AGENT_RESERVED_RAM_MB', 512, 0),
      allocationRatio: number(env, 'STRATA_AGENT_RAM_RATIO', 1.5, 0.0001, false),
    },
    diskGb: { total: number(env, 'STRATA_AGENT_DISK_GB', 200, 1), allocationRatio: number(env, 'STRATA_AGENT_DISK_RATIO', 1, 0.0001, false) },
  };
  const spawnMs = number(env, 'STRATA_FAKE_SPAWN_MS', 0, 0);
  const failureRate = number(env, 'STRATA_FAKE_FAILURE_RATE', 0, 0, false);
  if (failureRate > 1) throw new Error(`STRATA_FAKE_FAILURE_RATE must be between 0 and 1, got "${env.STRATA_FAKE_FAILURE_RATE}"`);
  const partitions = number(env, 'STRATA_PARTITIONS', backend === 'embedded' ? 4 : 12, 1);
  const images = driver === 'qemu' ? new HostImages(new ImageDirectory(env.STRATA_AGENT_IMAGE_DIR ?? join(env.STRATA_STATE_DIR ?? '.strata', 'images'))) : undefined;
  const qemu = images ? qemuDriverFromEnv(env, images) : undefined;
  const listenRaw = (env.STRATA_AGENT_LISTEN ?? '127.0.0.1:0').trim();
  const listen = listenRaw === 'none' || listenRaw === '' ? undefined : listenRaw;
  if (listen !== undefined) {
    try {
      parseListen(listen);
    } catch {
      throw new Error(`STRATA_AGENT_LISTEN must be host:port (port 0: any free one) or "none", got "${listenRaw}"`);
    }
  }
  const advertise = env.STRATA_AGENT_ENDPOINT?.trim() || undefined;
  if (advertise !== undefined) {
    try {
      validateEndpoint('STRATA_AGENT_ENDPOINT', advertise);
    } catch (e) {
      throw new Error(`STRATA_AGENT_ENDPOINT: ${(e as Error).message}`);
    }
  }
  const hosts = Array.from({ length: count }, (_, i) => {
    const hostId = count === 1 ? baseId : `${baseId}-${String(i).padStart(Math.max(4, String(count - 1).length), '0')}`;
    const d: ComputeDriver = qemu ?? new FakeDriver(hostId, { spawnMs, failureRate });
    return { hostId, availabilityZone: zones[i % zones.length], inventory, driver: d };
  });
  return {
    domain: env.STRATA_COMPUTE_DOMAIN || COMPUTE_DOMAIN,
    partitions,
    replyPartitions: number(env, 'STRATA_REPLY_PARTITIONS', partitions, 1),
    driver,
    hosts,
    heartbeatMs: number(env, 'STRATA_AGENT_HEARTBEAT_S', 10, 1) * 1000,
    syncMs: number(env, 'STRATA_AGENT_SYNC_S', 60, 1) * 1000,
    listen,
    advertise,
    images,
    imageCacheDir: env.STRATA_AGENT_IMAGE_CACHE_DIR || join(env.STRATA_STATE_DIR ?? '.strata', 'image-cache'),
  };
}

/**
 * The qemu driver from the environment. Images come from the image service (downloaded into
 * STRATA_AGENT_IMAGE_CACHE_DIR), or for ids it does not have from STRATA_AGENT_IMAGE_DIR
 * (agents/compute/image-dir.ts): <id>/vmlinuz (+ <id>/initramfs.cpio.gz, <id>/disk.qcow2) boots a
 * kernel, <id>.qcow2 a disk; snapshots of those are written there too.
 */
function qemuDriverFromEnv(env: NodeJS.ProcessEnv, images: HostImages): QemuDriver {
  const stateRoot = env.STRATA_STATE_DIR ?? '.strata';
  const accelerator = (env.STRATA_QEMU_ACCEL ?? 'auto') as Accelerator;
  if (!['auto', 'kvm', 'tcg'].includes(accelerator)) throw new Error(`STRATA_QEMU_ACCEL must be auto, kvm or tcg, got "${accelerator}"`);
  // The integration bridge the guests' taps go into, on the Open vSwitch whose state directory
  // (db.sock, the run directory) infra/ovs/ovs.sh uses: STRATA_OVS_DIR, default /tmp/strata-ovs.
  const bridge = env.STRATA_AGENT_OVS_BRIDGE?.trim() || undefined;
  if (bridge !== undefined && !/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw new Error(`STRATA_AGENT_OVS_BRIDGE must be a bridge name (at most 15 letters, digits, _ . -), got "${bridge}"`);
  const ovsDir = env.STRATA_AGENT_OVS_DIR || env.STRATA_OVS_DIR || '/tmp/strata-ovs';
  const kernelArgs = env.STRATA_QEMU_KERNEL_NETWORK ?? '1';
  if (kernelArgs !== '0' && kernelArgs !== '1') throw new Error(`STRATA_QEMU_KERNEL_NETWORK must be 0 or 1, got "${kernelArgs}"`);
  return new QemuDriver({
    stateDir: env.STRATA_AGENT_STATE_DIR ?? join(stateRoot, 'compute'),
    network: bridge ? { ovs: new Ovs({ db: `unix:${ovsDir}/db.sock`, rundir: ovsDir }), bridge } : undefined,
    kernelNetworkArgs: kernelArgs === '1',
    qemuBinary: env.STRATA_QEMU_BINARY || undefined,
    accelerator,
    consoleLogBytes: number(env, 'STRATA_CONSOLE_LOG_BYTES', 1024 * 1024, 1024),
    images,
    migrationAddress: env.STRATA_AGENT_MIGRATION_ADDRESS || undefined,
  });
}
