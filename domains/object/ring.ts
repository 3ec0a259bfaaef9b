// Swift's ring in small pure pieces: which devices hold each partition of the object namespace.
// A name's partition is the top partPower bits of its md5 (computed by the caller: domains do no
// crypto); the assignment table (Swift's replica2part2dev) maps [replica][partition] to a device id.
//
// How the assignment is chosen (Swift's ring builder, simplified):
//  - Targets. Each failure domain (region, zone, host, device) gets a share of every partition's
//    replicas ("replicanths") proportional to its weight, but never more than it can hold while the
//    replicas stay spread: a device holds at most one replica of a partition, and a domain at most
//    ceil of its share. DISPERSION_TOLERANCE: a domain whose weight share is within 1% above a
//    whole number of replicas is held to that whole number and its siblings take the rest, so that
//    3 nearly equal zones still get exactly one replica each (dispersion wins over weight within
//    1%); further off, weight wins and some partitions get two replicas in the heavier domain.
//    The shares are then turned into whole partition-replica counts top-down (largest remainder,
//    ties by key), so a domain's count never exceeds what its cap allows.
//  - Rebalance. Replicas on removed devices are taken off (all of them: the device is gone), and
//    one replica of each partition that has more replicas in a domain than its cap now allows;
//    those empty slots go to the device that most wants partitions among those the caps allow.
//    Then devices above their count (weight-0 devices: all they hold) give replicas straight to
//    devices below it, where the receiver fits the partition's caps. A partition that lost a
//    replica in any of these steps loses no other (Swift's min_part_hours), so 2 of 3 replicas of
//    every partition stay in place and readable; what that rule leaves over waits for the next
//    rebalance. Where a giver is stuck (every receiver's zone already holds a replica of its
//    partitions) the replica may be relayed through a device at its count, which gives one of its
//    own elsewhere: two moves instead of none, kept only while it costs <= 4 moves per replica.
//    Untouched replicas never move.
//  - Ties never use randomness: a 32-bit integer hash of the partition (murmur3's finalizer).

export interface RingDevice {
  /** Unique, 0..65535 (stored as uint16 in the encoded table), never reused. */
  id: number;
  region: number;
  zone: number;
  /** Address of its object server, "127.0.0.1:6201". */
  host: string;
  /** Disk name, "d1". */
  device: string;
  /** >= 0; its share of partition-replicas is proportional to it; 0 = drain. */
  weight: number;
}

export interface Ring {
  /** 2^partPower partitions, 1..20. */
  partPower: number;
  /** Integer 1..6. */
  replicas: number;
  /** The devices of the assignment, sorted by id. */
  devices: RingDevice[];
  /** [replica][partition] -> device id (replica2part2dev); rows are empty in an empty ring. */
  assignment: number[][];
  /** 0 for an empty ring, +1 per rebalance. */
  version: number;
}

export interface RebalanceResult {
  ring: Ring;
  /** Partition-replicas whose device changed (all of them for the first rebalance). */
  moved: number;
}

export const MAX_PART_POWER = 20;
export const MAX_REPLICAS = 6;
export const MAX_DEVICE_ID = 0xffff;
/** How far (relative) a domain's weight share may be above a whole number of replicas and still be held to it. */
export const DISPERSION_TOLERANCE = 0.01;

export const emptyRing = (partPower: number, replicas: number): Ring => ({
  partPower,
  replicas,
  devices: [],
  assignment: Array.from({ length: replicas }, () => []),
  version: 0,
});

export const partitionCount = (ring: Pick<Ring, 'partPower'>): number => 2 ** ring.partPower;

/** Partition of a name hash: top partPower bits of the first 4 bytes (big-endian) of the md5 digest given as hex. The caller computes md5 (domains may not import crypto). */
export function partitionOfHash(md5Hex: string, partPower: number): number {
  if (!/^[0-9a-fA-F]{8}/.test(md5Hex)) throw new Error(`md5Hex: must start with 8 hex digits, got '${md5Hex}'`);
  const top = parseInt(md5Hex.slice(0, 8), 16); // exact: < 2^32 fits a double
  return Math.floor(top / 2 ** (32 - partPower));
}

/** murmur3's 32-bit finalizer: a pure, well-mixed hash for deterministic tie-breaks. */
const mix32 = (x: number): number => {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
};
const mix2 = (a: number, b: number): number => mix32((mix32(a) ^ Math.imul(b + 1, 0x9e3779b1)) >>> 0);

/** Why this device set cannot be a ring (undefined if it can). Messages name the field. */
export function ringProblem(partPower: number, replicas: number, devices: RingDevice[]): string | undefined {
  if (!Number.isInteger(partPower) || partPower < 1 || partPower > MAX_PART_POWER) return `partPower: must be an integer from 1 to ${MAX_PART_POWER}, got ${partPower}`;
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_REPLICAS) return `replicas: must be an integer from 1 to ${MAX_REPLICAS}, got ${replicas}`;
  if (devices.length === 0) return 'devices: no device';
  const seen = new Map<number, number>();
  for (let i = 0; i < devices.length; i++) {
    const d = devices[i];
    if (!Number.isInteger(d.id) || d.id < 0 || d.id > MAX_DEVICE_ID) return `devices[${i}].id: must be an integer from 0 to ${MAX_DEVICE_ID}, got ${d.id}`;
    const first = seen.get(d.id);
    if (first !== undefined) return `devices[${i}].id: duplicate of devices[${first}].id (${d.id})`;
    seen.set(d.id, i);
    if (!Number.isInteger(d.region) || d.region < 0) return `devices[${i}].region: must be an integer >= 0, got ${d.region}`;
    if (!Number.isInteger(d.zone) || d.zone < 0) return `devices[${i}].zone: must be an integer >= 0, got ${d.zone}`;
    if (typeof d.host !== 'string' || d.host === '') return `devices[${i}].host: must not be empty`;
    if (typeof d.device !== 'string' || d.device === '') return `devices[${i}].device: must not be empty`;
    if (typeof d.weight !== 'number' || !Number.isFinite(d.weight) || d.weight < 0) return `devices[${i}].weight: must be >= 0, got ${d.weight}`;
  }
  const weighted = devices.filter((d) => d.weight > 0).length;
  if (weighted < replicas) return `devices: ${weighted} with weight > 0, fewer than replicas (${replicas}): each replica of a partition needs a device of its own`;
  return undefined;
}

// ---- targets: how many partition-replicas each device should hold, and each domain's cap per partition

interface Plan {
  /** Device id -> partition-replicas it should hold (weight-0 devices: 0). Sums to partitions * replicas. */
  desired: Map<number, number>;
  /** Per weighted device: the caps (replicas of one partition) of its region, zone and host, and their ids. */
  tiers: Map<number, { keys: [string, string, string]; caps: [number, number, number] }>;
}

const TIER_KEYS: ((d: RingDevice) => string)[] = [(d) => `r${d.region}`, (d) => `r${d.region}z${d.zone}`, (d) => `r${d.region}z${d.zone}h${d.host}`, (d) => `d${d.id}`];

/** Shares of `total` proportional to weights, none above its hi; undefined if the his cannot hold total. */
function waterFill(weights: number[], his: number[], total: number): number[] | undefined {
  const share: (number | undefined)[] = weights.map(() => undefined);
  for (;;) {
    let freeWeight = 0;
    let left = total;
    for (let i = 0; i < weights.length; i++) {
      if (share[i] === undefined) freeWeight += weights[i];
      else left -= share[i]!;
    }
    if (freeWeight === 0) return left > 1e-9 ? undefined : (share as number[]);
    let capped = false;
    for (let i = 0; i < weights.length; i++) {
      if (share[i] === undefined && (left * weights[i]) / freeWeight > his[i] + 1e-12) {
        share[i] = his[i];
        capped = true;
      }
    }
    if (!capped) return share.map((s, i) => s ?? (left * weights[i]) / freeWeight);
  }
}

/** Whole counts summing to `total`, proportional to `exact`, none above its cap (largest remainder, ties by order). */
function apportion(exact: number[], caps: number[], total: number): number[] {
  const counts = exact.map((x, i) => Math.min(caps[i], Math.floor(x + 1e-9)));
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((_, i) => i).sort((a, b) => exact[b] - counts[b] - (exact[a] - counts[a]) || a - b);
  while (left > 0) {
    let given = false;
    for (const i of order) {
      if (left > 0 && counts[i] < caps[i]) {
        counts[i]++;
        left--;
        given = true;
      }
    }
    if (!given) break; // cannot happen: the caps hold total (water-filled before)
  }
  return counts;
}

function planRing(devices: RingDevice[], partitions: number, replicas: number): Plan {
  const desired = new Map<number, number>(devices.map((d) => [d.id, 0]));
  const tiers: Plan['tiers'] = new Map();
  const weighted = devices.filter((d) => d.weight > 0);
  for (const d of weighted) tiers.set(d.id, { keys: [TIER_KEYS[0](d), TIER_KEYS[1](d), TIER_KEYS[2](d)], caps: [0, 0, 0] });

  // share: replicanths of this group; count: its whole partition-replicas
  const split = (group: RingDevice[], level: number, share: number, count: number): void => {
    if (level === TIER_KEYS.length) {
      desired.set(group[0].id, count);
      return;
    }
    const byKey = new Map<string, RingDevice[]>();
    for (const d of group) {
      const k = TIER_KEYS[level](d);
      const list = byKey.get(k);
      if (list) list.push(d);
      else byKey.set(k, [d]);
    }
    const keys = [...byKey.keys()].sort();
    const children = keys.map((k) => byKey.get(k)!);
    const weights = children.map((c) => c.reduce((a, d) => a + d.weight, 0));
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    const raw = weights.map((w) => (share * w) / totalWeight);
    const size = children.map((c) => c.length); // a child holds at most one replica per device
    const shares =
      waterFill(weights, raw.map((r, i) => Math.min(size[i], Math.max(1, Math.ceil(r / (1 + DISPERSION_TOLERANCE) - 1e-9)))), share) ??
      waterFill(weights, raw.map((r, i) => Math.min(size[i], Math.ceil(r - 1e-9))), share) ??
      waterFill(weights, size, share)!;
    const caps = shares.map((s) => Math.max(1, Math.ceil(s - 1e-9)));
    if (level < 3) for (let i = 0; i < children.length; i++) for (const d of children[i]) tiers.get(d.id)!.caps[level] = caps[i];
    const counts = apportion(
      shares.map((s) => (count * s) / share),
      caps.map((c) => c * partitions),
      count,
    );
    for (let i = 0; i < children.length; i++) split(children[i], level + 1, shares[i], counts[i]);
  };
  split(weighted, 0, replicas, partitions * replicas);
  return { desired, tiers };
}

const currentCounts = (ring: Ring): Map<number, number> => {
  const counts = new Map<number, number>();
  for (const row of ring.assignment) for (const id of row) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
};

/** Theoretical minimum number of partition-replicas that must move to go from `ring` to the weights of `devices` (sum over devices of max(0, desired - current)). */
export function theoreticalMoves(ring: Ring, devices: RingDevice[]): number {
  const { desired } = planRing(devices, partitionCount(ring), ring.replicas);
  const current = currentCounts(ring);
  let moves = 0;
  for (const [id, want] of desired) moves += Math.max(0, want - (current.get(id) ?? 0));
  return moves;
}

// ---- rebalance

/** Computes the assignment for a new device set (devices added, removed or re-weighted) moving as few partition-replicas as possible. Throws the ringProblem. */
export function rebalance(ring: Ring, devices: RingDevice[]): RebalanceResult {
  const problem = ringProblem(ring.partPower, ring.replicas, devices);
  if (problem) throw new Error(problem);
  const P = partitionCount(ring);
  const R = ring.replicas;
  const sorted = [...devices].sort((a, b) => a.id - b.id).map((d) => ({ ...d }));
  const { desired, tiers } = planRing(sorted, P, R);

  // Devices as dense indices for the hot loops; -1 = slot not assigned.
  const index = new Map(sorted.map((d, i) => [d.id, i]));
  const n = sorted.length;
  const want = sorted.map((d) => desired.get(d.id)!); // desired - held, updated as slots move
  const goal = sorted.map((d) => Math.max(1, desired.get(d.id)!));
  const weighted = sorted.map((d) => d.weight > 0);
  const tierIds = new Map<string, number>();
  const tierOf: number[][] = sorted.map((d) => (tiers.get(d.id)?.keys ?? []).map((k) => tierIds.get(k) ?? (tierIds.set(k, tierIds.size), tierIds.size - 1)));
  const capOf: number[][] = sorted.map((d) => tiers.get(d.id)?.caps ?? [0, 0, 0]);

  const fresh = ring.assignment.length !== R || ring.assignment.some((row) => row.length !== P);
  const table: Int32Array[] = Array.from({ length: R }, (_, r) => {
    const row = new Int32Array(P).fill(-1);
    if (!fresh) for (let p = 0; p < P; p++) row[p] = index.get(ring.assignment[r][p]) ?? -1;
    return row;
  });
  const touched = new Uint8Array(P); // a replica of this partition moved in this rebalance
  for (let r = 0; r < R; r++)
    for (let p = 0; p < P; p++) {
      if (table[r][p] >= 0) want[table[r][p]]--;
      else if (!fresh) touched[p] = 1; // its device was removed
    }

  // Partitions in a hash order so that the replicas taken from a device are spread over the ring.
  const orderKey = Float64Array.from({ length: P }, (_, p) => mix32(p) * 2 ** 20 + p); // unique: p < 2^20
  const order = Array.from(orderKey.sort(), (k) => k % 2 ** 20);

  const take = (r: number, p: number) => {
    want[table[r][p]]++;
    table[r][p] = -1;
    touched[p] = 1;
  };

  if (!fresh) {
    // Dispersion: a partition with more replicas in a domain than its cap now allows gives one up,
    // from the device most above its count.
    for (const p of order) {
      if (touched[p]) continue;
      let pick = -1;
      for (let r = 0; r < R; r++) {
        const d = table[r][p];
        if (!weighted[d]) continue; // weight-0 devices are in no domain
        let crowded = false;
        for (let level = 0; level < 3 && !crowded; level++) {
          let inTier = 0;
          for (let q = 0; q < R; q++) if (weighted[table[q][p]] && tierOf[table[q][p]][level] === tierOf[d][level]) inTier++;
          crowded = inTier > capOf[d][level];
        }
        if (crowded && (pick < 0 || want[d] < want[table[pick][p]])) pick = r;
      }
      if (pick >= 0) take(pick, p);
    }
  }

  // Place every empty slot: among the weighted devices not in the partition whose domains are
  // under their caps, the one that most wants partitions (relative to its count), then the one
  // sharing the fewest domains with the partition's other replicas, then a hash of the partition.
  const others: number[] = [];
  const shared = (d: number): number => {
    let s = 0;
    for (const o of others) for (let level = 0; level < 3; level++) if (tierOf[o][level] === tierOf[d][level]) s++;
    return s;
  };
  const fits = (d: number): boolean => {
    for (let level = 0; level < 3; level++) {
      let inTier = 0;
      for (const o of others) if (tierOf[o][level] === tierOf[d][level]) inTier++;
      if (inTier >= capOf[d][level]) return false;
    }
    return true;
  };
  const better = (p: number, a: number, b: number): boolean => {
    const fa = want[a] / goal[a];
    const fb = want[b] / goal[b];
    if (fa !== fb) return fa > fb;
    const sa = shared(a);
    const sb = shared(b);
    if (sa !== sb) return sa < sb;
    return mix2(p, sorted[a].id) < mix2(p, sorted[b].id);
  };
  const placeOrder = fresh ? order.slice().sort((a, b) => a - b) : order;
  for (const p of placeOrder) {
    for (let r = 0; r < R; r++) {
      if (table[r][p] >= 0) continue;
      others.length = 0;
      for (let q = 0; q < R; q++) if (table[q][p] >= 0) others.push(table[q][p]);
      let pick = -1;
      for (let d = 0; d < n; d++) if (weighted[d] && !others.includes(d) && fits(d) && (pick < 0 || better(p, d, pick))) pick = d;
      // No device fits the caps (earlier choices crowded them): the least shared device wins.
      if (pick < 0)
        for (let d = 0; d < n; d++) if (weighted[d] && !others.includes(d) && (pick < 0 || shared(d) < shared(pick) || (shared(d) === shared(pick) && better(p, d, pick)))) pick = d;
      table[r][p] = pick;
      want[pick]--;
    }
  }

  // Weight: a device above its count gives a replica to a device below its count, at most one
  // replica per partition, and only where the receiver fits the partition's caps (a zone that must
  // grow can only take partitions it holds no replica of yet). Givers go at the pace of their own
  // excess so that they all finish together; receivers are chosen as in placement.
  const excess = want.map((w) => Math.max(0, -w));
  /** Per device: untouched partitions where it could give its replica to a device below its count. */
  const outlets = new Int32Array(n);
  const countOutlets = () => {
    outlets.fill(0);
    for (let p = 0; p < P; p++) {
      if (touched[p]) continue;
      for (let r = 0; r < R; r++) {
        others.length = 0;
        for (let q = 0; q < R; q++) if (q !== r) others.push(table[q][p]);
        for (let u = 0; u < n; u++)
          if (want[u] > 0 && weighted[u] && !others.includes(u) && fits(u)) {
            outlets[table[r][p]]++;
            break;
          }
      }
    }
  };
  /** One sweep over the untouched partitions; `lenient`: receivers may also be at their count (and go 1 over) if they have an outlet. */
  const giveAway = (lenient: boolean, budget: number): number => {
    let moves = 0;
    for (const p of order) {
      if (moves >= budget) break;
      if (touched[p]) continue;
      let giver = -1;
      let taker = -1;
      let pace = 0;
      for (let r = 0; r < R; r++) {
        const d = table[r][p];
        if (want[d] >= 0 || (giver >= 0 && -want[d] / excess[d] <= pace)) continue;
        others.length = 0;
        for (let q = 0; q < R; q++) if (q !== r) others.push(table[q][p]);
        let pick = -1;
        for (let u = 0; u < n; u++) if ((want[u] > 0 || (lenient && want[u] === 0 && outlets[u] > 0)) && weighted[u] && u !== d && !others.includes(u) && fits(u) && (pick < 0 || better(p, u, pick))) pick = u;
        if (pick < 0) continue;
        giver = r;
        taker = pick;
        pace = -want[d] / excess[d];
      }
      if (giver < 0) continue;
      want[table[giver][p]]++;
      table[giver][p] = taker;
      if (want[taker] <= 0) outlets[taker]--;
      want[taker]--;
      touched[p] = 1;
      moves++;
    }
    return moves;
  };
  if (!fresh) {
    giveAway(false, Infinity);
    // Stuck: what is left above its count sits only in partitions where no device below its count
    // fits (its zone already holds a replica). Pass it through a device at its count, which then
    // gives one of its own, in another partition, to a device below: two moves instead of none.
    // A round that costs more than 4 moves per replica it brings home is undone, and the rest
    // waits for the next rebalance (when other partitions may move).
    const over = () => want.reduce((a, w) => a + (w < 0 ? -w : 0), 0);
    for (let round = 0; round < 8; round++) {
      const short = want.reduce((a, w, d) => a + (weighted[d] && w > 0 ? w : 0), 0);
      const before = over();
      if (short === 0 || before === 0) break;
      const saved = { table: table.map((row) => row.slice()), want: want.slice(), touched: touched.slice() };
      countOutlets();
      const moves = giveAway(true, short) + giveAway(false, Infinity);
      if (moves === 0) break;
      if ((before - over()) * 4 < moves) {
        saved.table.forEach((row, r) => table[r].set(row));
        want.splice(0, want.length, ...saved.want);
        touched.set(saved.touched);
        break;
      }
    }
  }

  const assignment = table.map((row) => Array.from(row, (d) => sorted[d].id));
  let moved = 0;
  for (let r = 0; r < R; r++) for (let p = 0; p < P; p++) if (fresh || assignment[r][p] !== ring.assignment[r][p]) moved++;
  return { ring: { partPower: ring.partPower, replicas: R, devices: sorted, assignment, version: ring.version + 1 }, moved };
}

// ---- lookups

const deviceMap = (ring: Ring) => new Map(ring.devices.map((d) => [d.id, d]));

/** The devices holding a partition, replica 0 first. Empty for an empty ring. */
export function primaryDevices(ring: Ring, partition: number): RingDevice[] {
  if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount(ring)) throw new RangeError(`partition: must be an integer from 0 to ${partitionCount(ring) - 1}, got ${partition}`);
  const devices = deviceMap(ring);
  return ring.assignment.filter((row) => row.length > partition).map((row) => devices.get(row[partition])!);
}

/** Swift's get_more_nodes: a deterministic sequence seeded by a hash of the partition: first devices in regions not used by the primaries, then unused zones, then unused hosts, then any other device; never a primary, never twice. Weight-0 devices are not offered (they are draining). */
export function handoffDevices(ring: Ring, partition: number): RingDevice[] {
  const primaries = primaryDevices(ring, partition);
  const usedTiers = [new Set<string>(), new Set<string>(), new Set<string>()];
  const mark = (d: RingDevice) => {
    for (let level = 0; level < 3; level++) usedTiers[level].add(TIER_KEYS[level](d));
  };
  primaries.forEach(mark);
  const taken = new Set(primaries.map((d) => d.id));
  const candidates = ring.devices.filter((d) => d.weight > 0 && !taken.has(d.id)).sort((a, b) => mix2(partition, a.id) - mix2(partition, b.id) || a.id - b.id);
  const handoffs: RingDevice[] = [];
  for (let level = 0; level <= 3; level++) {
    for (const d of candidates) {
      if (taken.has(d.id)) continue;
      if (level < 3 && usedTiers[level].has(TIER_KEYS[level](d))) continue;
      handoffs.push(d);
      taken.add(d.id);
      mark(d);
    }
  }
  return handoffs;
}

// ---- the table as text (events, JSON)

/** Compact string form: 4 hex digits (uint16) per entry, replica rows concatenated. */
export function encodeAssignment(assignment: number[][]): string {
  const parts: string[] = [];
  for (const row of assignment)
    for (const id of row) {
      if (!Number.isInteger(id) || id < 0 || id > MAX_DEVICE_ID) throw new Error(`assignment: device id ${id} does not fit uint16`);
      parts.push(id.toString(16).padStart(4, '0'));
    }
  return parts.join('');
}

/** The table from encodeAssignment; '' is the empty ring (rows with no partition). */
export function decodeAssignment(text: string, replicas: number, partPower: number): number[][] {
  if (text === '') return Array.from({ length: replicas }, () => []);
  const P = 2 ** partPower;
  if (text.length !== replicas * P * 4) throw new Error(`assignment: ${text.length} characters, expected ${replicas * P * 4} (${replicas} replicas x ${P} partitions x 4 hex digits)`);
  if (!/^[0-9a-fA-F]*$/.test(text)) throw new Error('assignment: must be hex digits');
  return Array.from({ length: replicas }, (_, r) => Array.from({ length: P }, (_, p) => parseInt(text.slice((r * P + p) * 4, (r * P + p) * 4 + 4), 16)));
}
