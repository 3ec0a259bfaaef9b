// Usage metering (Ceilometer's job, computed instead of sampled): a fold of the decoded events of
// the compute, block, network, object and image domains into usage segments. A segment is one
// metric of one resource over a time interval, [startMs, endMs) with endMs null while it runs:
// an instance's hour on a flavor, a volume's GiB of a type, an object's bytes. Times are the
// events' own (occurredAtMs, from the command envelope), never the time of folding, so a replay
// gives the same segments. A resource's segments depend only on its own aggregate's events, which
// sit in one partition in order: the result does not depend on how partitions interleave. An
// event at or below the version already folded for its aggregate changes nothing (redelivery).
//
// What is metered, and from when to when:
//   - instance (key: the flavor's name, quantity 1), vcpu and ram_mb (quantity the flavor's): while
//     the server runs on a host. Billed states: active, paused (its memory stays allocated on the
//     host and it resumes at once), rescued (the guest runs, on the rescue image) and resized (it
//     runs on the new flavor until confirmed or reverted: billed on the new flavor). stopped and
//     suspended (saved to disk, nothing runs) only when MeteringPolicy.stopped; shelved (still on
//     its host) only when MeteringPolicy.shelved. Never: building, error, shelved_offloaded,
//     soft-delete, deleted. A state changes when its action completes or fails
//     (InstanceActionCompleted / InstanceActionFailed), at that event's time: a server is billed
//     from the end of its boot to the end of its deletion.
//   - volume_gb (key: the volume type id), snapshot_gb, backup_gb (quantity GiB): from creation
//     (the space is claimed then, as Cinder's quota counts it) to deletion, except while in status
//     error (a creation that failed holds nothing); an extend bills the new size from when the
//     host grew it (VolumeExtended), a retype the new type from then.
//   - floating_ip (key: the external network): from allocation to release, associated or not.
//   - object_bytes: an object version's bytes from its record to its replacement or deletion, for
//     tenants' accounts (AUTH_<project>); a large object's manifest holds no bytes of its own (its
//     segments are objects of their own); the image service's account (AUTH_glance) is not a
//     tenant's: its data is metered as image_bytes.
//   - image_bytes (the owner project): an image's data from activation to deletion.
import type { FlavorRef } from '../compute/instance.actions.js';

export const METRICS = ['instance', 'vcpu', 'ram_mb', 'volume_gb', 'snapshot_gb', 'backup_gb', 'object_bytes', 'floating_ip', 'image_bytes'] as const;
export type Metric = (typeof METRICS)[number];

/** A human unit per metric: the amount is quantity-seconds / 3600 / divisor. */
export const METRIC_UNITS: Record<Metric, { unit: string; divisor: number }> = {
  instance: { unit: 'instance-hours', divisor: 1 },
  vcpu: { unit: 'vCPU-hours', divisor: 1 },
  ram_mb: { unit: 'GiB-hours', divisor: 1024 },
  volume_gb: { unit: 'GiB-hours', divisor: 1 },
  snapshot_gb: { unit: 'GiB-hours', divisor: 1 },
  backup_gb: { unit: 'GiB-hours', divisor: 1 },
  object_bytes: { unit: 'GiB-hours', divisor: 1024 ** 3 },
  floating_ip: { unit: 'IP-hours', divisor: 1 },
  image_bytes: { unit: 'GiB-hours', divisor: 1024 ** 3 },
};

/** Which states of an instance bill besides the running ones (default: none). */
export interface MeteringPolicy {
  /** stopped and suspended servers (their host keeps the resources claimed). */
  stopped: boolean;
  /** shelved servers not yet offloaded (still on their host). */
  shelved: boolean;
}

export const DEFAULT_METERING_POLICY: MeteringPolicy = { stopped: false, shelved: false };

/** A policy from its configuration text: a comma-separated list of stopped, shelved ('' or none: running states only). */
export function meteringPolicyFrom(text: string): MeteringPolicy {
  const words = text.split(',').map((w) => w.trim().toLowerCase()).filter((w) => w && w !== 'none');
  for (const w of words) if (w !== 'stopped' && w !== 'shelved') throw new Error(`metering policy: "${w}" is not a state that may be billed (stopped, shelved)`);
  return { stopped: words.includes('stopped'), shelved: words.includes('shelved') };
}

/** vm_states billed whatever the policy: the guest runs (or holds its memory) on a host. */
export const RUNNING_VM_STATES: readonly string[] = ['active', 'paused', 'rescued', 'resized'];

export interface UsageSegment {
  resourceId: string;
  /** The aggregate version of the event that opened it. */
  seq: number;
  metric: Metric;
  key: string;
  projectId: string;
  quantity: number;
  startMs: number;
  /** null while open. */
  endMs: number | null;
}

export type UsageChange = { kind: 'close'; resourceId: string; endMs: number } | { kind: 'open'; segment: UsageSegment };

/** A decoded event (infra/sagas/domain.feed.ts DecodedEvent): payload fields with its envelope's. */
export type MeteredEvent = Record<string, any> & { type: string; aggregateType: string; aggregateId: string; version: number; occurredAtMs: number };

export type ResourceKind = 'instance' | 'volume' | 'snapshot' | 'backup' | 'floating_ip' | 'object' | 'image';

/** What the meter keeps of a resource: enough to say what it bills now. Exported for persistence. */
export interface MeteredResource {
  resourceId: string;
  kind: ResourceKind;
  projectId: string;
  /** The last version folded (events at or below it are redeliveries). */
  version: number;
  /** The time of the last event folded: a later event never closes before it. */
  lastMs: number;
  /** Kind-specific: vm, flavor (instance); sizeGb, typeId, status (block); bytes (object, image); network (floating IP); gone. */
  attrs: Record<string, string | number | boolean>;
  /** The segments open now. */
  open: { metric: Metric; key: string; quantity: number; seq: number; startMs: number }[];
}

/** The event types the meter folds, by domain. */
export const METERED_EVENTS = {
  compute: ['InstanceCreated', 'InstanceActionCompleted', 'InstanceActionFailed'],
  block: [
    'VolumeCreated', 'VolumeStatusChanged', 'VolumeExtended', 'VolumeRetyped', 'VolumeDeleted',
    'SnapshotCreated', 'SnapshotStatusChanged', 'SnapshotDeleted',
    'BackupCreated', 'BackupStatusChanged', 'BackupDeleted',
  ],
  network: ['FloatingIpCreated', 'FloatingIpDeleted'],
  object: ['ObjectRecorded', 'ObjectDeleted'],
  image: ['ImageCreated', 'ImageActivated', 'ImageDeleted'],
} as const;

const KIND_OF_EVENT: Record<string, ResourceKind> = {};
for (const t of METERED_EVENTS.compute) KIND_OF_EVENT[t] = 'instance';
for (const t of METERED_EVENTS.block) KIND_OF_EVENT[t] = t.startsWith('Volume') ? 'volume' : t.startsWith('Snapshot') ? 'snapshot' : 'backup';
for (const t of METERED_EVENTS.network) KIND_OF_EVENT[t] = 'floating_ip';
for (const t of METERED_EVENTS.object) KIND_OF_EVENT[t] = 'object';
for (const t of METERED_EVENTS.image) KIND_OF_EVENT[t] = 'image';

/** The image service's object storage account: its data is metered as the images' (image_bytes). */
export const IMAGE_SERVICE_ACCOUNT = 'AUTH_glance';

/** The project of a tenant's object storage account (AUTH_<project>); '' for any other account. */
export function projectOfAccount(account: string): string {
  if (account === IMAGE_SERVICE_ACCOUNT || !account.startsWith('AUTH_')) return '';
  return account.slice('AUTH_'.length);
}

type Billed = { metric: Metric; key: string; quantity: number };

const num = (v: unknown) => Number(v ?? 0);

/** What a resource bills now, by its attributes and the policy. */
export function billedNow(r: MeteredResource, policy: MeteringPolicy): Billed[] {
  const a = r.attrs;
  if (a.gone || !r.projectId) return [];
  const out: Billed[] = [];
  switch (r.kind) {
    case 'instance': {
      const vm = String(a.vm ?? '');
      const billed = RUNNING_VM_STATES.includes(vm) || (policy.stopped && (vm === 'stopped' || vm === 'suspended')) || (policy.shelved && vm === 'shelved');
      if (!billed) return [];
      out.push({ metric: 'instance', key: String(a.flavorName || a.flavorId || ''), quantity: 1 });
      out.push({ metric: 'vcpu', key: '', quantity: num(a.vcpus) });
      out.push({ metric: 'ram_mb', key: '', quantity: num(a.ramMb) });
      break;
    }
    case 'volume':
      if (a.status !== 'error') out.push({ metric: 'volume_gb', key: String(a.typeId ?? ''), quantity: num(a.sizeGb) });
      break;
    case 'snapshot':
      if (a.status !== 'error') out.push({ metric: 'snapshot_gb', key: '', quantity: num(a.sizeGb) });
      break;
    case 'backup':
      if (a.status !== 'error') out.push({ metric: 'backup_gb', key: '', quantity: num(a.sizeGb) });
      break;
    case 'floating_ip':
      out.push({ metric: 'floating_ip', key: String(a.network ?? ''), quantity: 1 });
      break;
    case 'object':
      out.push({ metric: 'object_bytes', key: '', quantity: num(a.bytes) });
      break;
    case 'image':
      if (a.active) out.push({ metric: 'image_bytes', key: '', quantity: num(a.bytes) });
      break;
  }
  // A zero quantity bills nothing: no segment.
  return out.filter((b) => b.quantity > 0);
}

const sameBilling = (open: MeteredResource['open'], billed: Billed[]) =>
  open.length === billed.length && billed.every((b, i) => open[i].metric === b.metric && open[i].key === b.key && open[i].quantity === b.quantity);

/** The fold: events in, segment changes out; its per-resource state can be exported and imported. */
export class UsageMeter {
  private readonly resources = new Map<string, MeteredResource>();
  readonly policy: MeteringPolicy;

  constructor(policy: Partial<MeteringPolicy> = {}) {
    this.policy = { ...DEFAULT_METERING_POLICY, ...policy };
  }

  /** Whether the meter folds this event type. */
  static folds(type: string): boolean {
    return type in KIND_OF_EVENT;
  }

  /** Folds one event; returns the segments it closes (all the resource's open ones) and opens. */
  apply(e: MeteredEvent): UsageChange[] {
    const kind = KIND_OF_EVENT[e.type];
    if (!kind) return [];
    const id = e.aggregateId;
    let r = this.resources.get(id);
    if (r && e.version <= r.version) return [];
    if (!r) {
      r = { resourceId: id, kind, projectId: '', version: 0, lastMs: 0, attrs: {}, open: [] };
      this.resources.set(id, r);
    }
    r.version = e.version;
    // Clocks of the components that stamp commands may disagree a little: never run backwards.
    const at = Math.max(num(e.occurredAtMs), r.lastMs);
    r.lastMs = at;
    this.evolve(r, e);
    const billed = billedNow(r, this.policy);
    if (sameBilling(r.open, billed)) return [];
    const changes: UsageChange[] = [];
    if (r.open.length > 0) changes.push({ kind: 'close', resourceId: id, endMs: at });
    r.open = billed.map((b) => ({ ...b, seq: e.version, startMs: at }));
    for (const o of r.open) changes.push({ kind: 'open', segment: { resourceId: id, seq: o.seq, metric: o.metric, key: o.key, projectId: r.projectId, quantity: o.quantity, startMs: at, endMs: null } });
    return changes;
  }

  private evolve(r: MeteredResource, e: MeteredEvent): void {
    const a = r.attrs;
    const flavor = (f: FlavorRef | null | undefined) => {
      if (!f) return;
      a.flavorId = f.id ?? '';
      a.flavorName = f.name ?? '';
      a.vcpus = num(f.vcpus);
      a.ramMb = num(f.ramMb);
    };
    switch (e.type) {
      case 'InstanceCreated':
        r.projectId = e.projectId ?? '';
        a.vm = 'building';
        flavor(e.flavor);
        break;
      case 'InstanceActionCompleted':
        a.vm = e.vmState ?? a.vm;
        flavor(e.flavor);
        if (e.vmState === 'deleted') a.gone = true;
        break;
      case 'InstanceActionFailed':
        a.vm = e.vmState || a.vm;
        break;
      case 'VolumeCreated':
        r.projectId = e.volume?.projectId ?? '';
        a.sizeGb = num(e.volume?.sizeGb);
        a.typeId = e.volume?.volumeTypeId ?? '';
        a.status = 'creating';
        break;
      case 'VolumeStatusChanged':
      case 'SnapshotStatusChanged':
      case 'BackupStatusChanged':
        a.status = e.status ?? '';
        break;
      case 'VolumeExtended':
        a.sizeGb = num(e.sizeGb);
        break;
      case 'VolumeRetyped':
        a.typeId = e.volumeTypeId ?? '';
        break;
      case 'SnapshotCreated':
        r.projectId = e.snapshot?.projectId ?? '';
        a.sizeGb = num(e.snapshot?.sizeGb);
        a.status = 'creating';
        break;
      case 'BackupCreated':
        r.projectId = e.backup?.projectId ?? '';
        a.sizeGb = num(e.backup?.sizeGb);
        a.status = 'creating';
        break;
      case 'VolumeDeleted':
      case 'SnapshotDeleted':
      case 'BackupDeleted':
      case 'FloatingIpDeleted':
      case 'ImageDeleted':
        a.gone = true;
        break;
      case 'FloatingIpCreated':
        r.projectId = e.floatingIp?.projectId ?? '';
        a.network = e.floatingIp?.floatingNetworkId ?? '';
        break;
      case 'ObjectRecorded': {
        const o = e.object ?? {};
        r.projectId = projectOfAccount(o.account ?? '');
        a.bytes = (o.segments ?? []).length > 0 ? 0 : num(o.size);
        a.gone = false;
        break;
      }
      case 'ObjectDeleted':
        a.bytes = 0;
        a.gone = true;
        break;
      case 'ImageCreated':
        r.projectId = e.image?.owner ?? '';
        break;
      case 'ImageActivated':
        a.bytes = num(e.size);
        a.active = true;
        break;
    }
  }

  resource(id: string): MeteredResource | undefined {
    return this.resources.get(id);
  }

  /** Every resource's state (a copy), for persistence. */
  export(): MeteredResource[] {
    return [...this.resources.values()].map((r) => structuredCloneResource(r));
  }

  /** Replaces the state with what was exported (at start, after a rebuild's reset, after a failed batch). */
  import(resources: Iterable<MeteredResource>): void {
    this.resources.clear();
    for (const r of resources) this.resources.set(r.resourceId, structuredCloneResource(r));
  }
}

const structuredCloneResource = (r: MeteredResource): MeteredResource => ({ ...r, attrs: { ...r.attrs }, open: r.open.map((o) => ({ ...o })) });

// Reports: segments cut into hours and summed.

export const HOUR_MS = 3_600_000;

export interface UsageRow {
  projectId: string;
  /** The hour's start (granularity hour), or the period's start (total). */
  startMs: number;
  metric: Metric;
  key: string;
  /** Quantity x milliseconds (exact for whole-millisecond times). */
  quantityMs: number;
}

export interface ReportWindow {
  fromMs: number;
  toMs: number;
  /** Open segments count up to min(toMs, nowMs). */
  nowMs: number;
  granularity: 'hour' | 'total';
}

/** The pieces of a segment within the window, one per hour it touches (hours aligned to the epoch, UTC). */
export function splitByHour(s: Pick<UsageSegment, 'startMs' | 'endMs'>, w: Pick<ReportWindow, 'fromMs' | 'toMs' | 'nowMs'>): { hourMs: number; ms: number }[] {
  const start = Math.max(s.startMs, w.fromMs);
  const end = Math.min(s.endMs ?? Math.min(w.toMs, w.nowMs), w.toMs);
  const out: { hourMs: number; ms: number }[] = [];
  for (let t = start; t < end; ) {
    const hour = Math.floor(t / HOUR_MS) * HOUR_MS;
    const next = Math.min(hour + HOUR_MS, end);
    out.push({ hourMs: hour, ms: next - t });
    t = next;
  }
  return out;
}

/** Segments summed per project, metric, key and hour (or over the whole window), sorted. */
export function aggregateUsage(segments: Iterable<UsageSegment>, w: ReportWindow): UsageRow[] {
  const rows = new Map<string, UsageRow>();
  for (const s of segments) {
    for (const piece of splitByHour(s, w)) {
      const startMs = w.granularity === 'hour' ? piece.hourMs : w.fromMs;
      const k = `${s.projectId}\u0000${startMs}\u0000${s.metric}\u0000${s.key}`;
      const row = rows.get(k) ?? { projectId: s.projectId, startMs, metric: s.metric, key: s.key, quantityMs: 0 };
      row.quantityMs += s.quantity * piece.ms;
      rows.set(k, row);
    }
  }
  const metricOrder = (m: Metric) => METRICS.indexOf(m);
  return [...rows.values()]
    .filter((r) => r.quantityMs > 0)
    .sort((a, b) => (a.projectId < b.projectId ? -1 : a.projectId > b.projectId ? 1 : a.startMs - b.startMs || metricOrder(a.metric) - metricOrder(b.metric) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
}

/** A row's amount in its human unit (instance-hours, vCPU-hours, GiB-hours, IP-hours). */
export function amountOf(metric: Metric, quantityMs: number): number {
  return quantityMs / HOUR_MS / METRIC_UNITS[metric].divisor;
}
