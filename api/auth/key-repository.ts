// A Keystone-style Fernet key repository: one key per file in a directory, named by number.
//   0        the staged key: decrypts, and becomes the primary at the next rotation, so that
//            every node can learn it before any node encrypts with it;
//   highest  the primary: encrypts (and decrypts);
//   others   secondaries: decrypt only, until rotation removes them.
// A rotation promotes 0 to max+1, stages a new 0 and removes the oldest secondaries so that at
// most maxActiveKeys remain. A token encrypted with the primary therefore validates for
// maxActiveKeys-2 more rotations and stops at the (maxActiveKeys-1)th (one more for a token
// encrypted with the staged key by a node that had rotated first).
//
// The server reads the directory; `strata` (another process) rotates it. reloadIfChanged() is
// the cheap check a server makes: one stat of the directory. Files are written whole (a temp
// file, then link or rename), so a reader sees old keys or new keys, never half a key.
// Key material is never logged: errors name files, not contents.
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { FernetKey } from './fernet.js';

export interface KeyRepositoryOptions {
  /** Staged + primary + secondaries kept after a rotation; at least 2. Keystone's default: 3. */
  maxActiveKeys?: number;
}

const KEY_FILE = /^(0|[1-9][0-9]{0,8})$/;
const LOCK = '.rotate.lock';
/** A rotation takes milliseconds; a lock older than this was left by a process that died. */
const STALE_LOCK_MS = 30_000;
/** Attempts 20 ms apart before giving up on a held lock. */
const LOCK_ATTEMPTS = 100;
/**
 * Directory mtimes come from a coarse clock (a kernel tick, or a second on some filesystems): a
 * change within the same tick as the one we read leaves the mtime as it was. While the mtime we
 * read is this recent, reloadIfChanged() re-reads the directory instead of trusting the mtime.
 */
const RACY_MS = 2_000;

interface Loaded {
  /** Ascending key numbers, as found. */
  numbers: number[];
  byNumber: Map<number, FernetKey>;
}

export class KeyRepository {
  private ordered: readonly FernetKey[] = [];
  private primaryKey!: FernetKey;
  private numbers: number[] = [];
  private mtimeNs = -1n;
  private racy = true;

  private constructor(
    readonly dir: string,
    readonly maxActiveKeys: number,
  ) {}

  /**
   * Open (creating if needed) the repository in `dir`: the directory is made 0700, and when it
   * holds no key, key 0 (staged) and key 1 (primary) are written 0600.
   */
  static open(dir: string, options: KeyRepositoryOptions = {}): KeyRepository {
    const maxActiveKeys = options.maxActiveKeys ?? 3;
    if (!Number.isInteger(maxActiveKeys) || maxActiveKeys < 2) {
      throw new RangeError(`maxActiveKeys must be an integer >= 2 (a staged and a primary key), got ${maxActiveKeys}`);
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const repo = new KeyRepository(dir, maxActiveKeys);
    if (keyNumbers(dir).length === 0) {
      // Two processes may open an empty directory at once: links never overwrite, so whichever
      // wrote a number first wins, and both then read the same keys from disk.
      writeKeyFile(dir, 1, FernetKey.generate(), 'no-clobber');
      writeKeyFile(dir, 0, FernetKey.generate(), 'no-clobber');
      fsyncDir(dir);
    }
    repo.reload();
    return repo;
  }

  /** The key that encrypts: the highest number (key 0 only if it is alone). */
  primary(): FernetKey {
    return this.primaryKey;
  }

  /**
   * Every key that decrypts, primary first, then the others newest first: the staged key (which
   * another node may already have promoted), then secondaries by descending number. The same
   * array until the keys change, so validation can call this per token.
   */
  keys(): readonly FernetKey[] {
    return this.ordered;
  }

  /** The key numbers on disk, ascending (for `strata` to show; never the material). */
  keyNumbers(): readonly number[] {
    return this.numbers;
  }

  /** Re-read the directory (another process may have rotated). */
  reload(): void {
    // The mtime is taken before reading: a rotation that lands while we read changes it
    // afterwards, so the next reloadIfChanged() reads again. A rotation caught half way (the new
    // primary linked, 0 not yet replaced) is a consistent set anyway: the old staged key twice.
    const before = dirStat(this.dir);
    const loaded = load(this.dir);
    this.apply(loaded);
    this.mtimeNs = before.mtimeNs;
    this.racy = Date.now() - Number(before.mtimeNs / 1_000_000n) < RACY_MS;
  }

  /**
   * Reload when the directory changed since the last read. Costs one stat, unless the last
   * change was too recent for the mtime to be trusted. Returns whether the keys changed.
   */
  reloadIfChanged(): boolean {
    const { mtimeNs } = dirStat(this.dir);
    if (mtimeNs === this.mtimeNs && !this.racy) return false;
    const previous = this.ordered;
    this.reload();
    return previous.length !== this.ordered.length || previous.some((k, i) => !k.equals(this.ordered[i]));
  }

  /**
   * Promote the staged key to primary (number max+1), stage a new key 0, and remove the oldest
   * secondaries until at most maxActiveKeys remain. Rotations are serialized across processes
   * by a lock file in the directory.
   */
  rotate(): void {
    const release = lock(this.dir);
    try {
      const loaded = load(this.dir);
      const max = loaded.numbers.length > 0 ? loaded.numbers[loaded.numbers.length - 1] : 0;
      const next = max + 1;
      if (loaded.byNumber.has(0)) {
        // Link first, then replace 0: a reader never finds the directory without a staged key.
        linkSync(join(this.dir, '0'), join(this.dir, String(next)));
      }
      writeKeyFile(this.dir, 0, FernetKey.generate(), 'replace');
      // Numbers above 0 after the promotion, ascending: the last is the primary, the rest are
      // secondaries, oldest (lowest) first, removed until at most maxActiveKeys remain.
      const promoted = [...loaded.numbers.filter((n) => n > 0), ...(loaded.byNumber.has(0) ? [next] : [])];
      const secondaries = promoted.slice(0, -1);
      let active = promoted.length + 1;
      while (active > this.maxActiveKeys && secondaries.length > 0) {
        unlinkSync(join(this.dir, String(secondaries.shift())));
        active--;
      }
      fsyncDir(this.dir);
    } finally {
      release();
    }
    this.reload();
  }

  private apply(loaded: Loaded): void {
    const { numbers, byNumber } = loaded;
    if (numbers.length === 0) throw new Error(`no Fernet key in ${this.dir}`);
    const primaryNumber = numbers[numbers.length - 1];
    const order = [primaryNumber, ...(primaryNumber !== 0 && byNumber.has(0) ? [0] : []), ...numbers.filter((n) => n !== 0 && n !== primaryNumber).reverse()];
    const ordered: FernetKey[] = [];
    for (const n of order) {
      const k = byNumber.get(n)!;
      if (!ordered.some((o) => o.equals(k))) ordered.push(k); // mid-rotation, 0 and max+1 are one key
    }
    this.numbers = numbers;
    this.primaryKey = byNumber.get(primaryNumber)!;
    this.ordered = ordered;
  }

  toString(): string {
    return `KeyRepository(${this.dir}, keys ${this.numbers.join(',')})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function dirStat(dir: string) {
  return statSync(dir, { bigint: true });
}

function keyNumbers(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => KEY_FILE.test(name))
    .map(Number)
    .sort((a, b) => a - b);
}

function load(dir: string): Loaded {
  const byNumber = new Map<number, FernetKey>();
  const numbers: number[] = [];
  for (const n of keyNumbers(dir)) {
    let text: string;
    try {
      text = readFileSync(join(dir, String(n)), 'utf8');
    } catch (e) {
      // Removed by a rotation between the listing and the read: it is no longer a key.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    try {
      byNumber.set(n, FernetKey.fromString(text));
    } catch {
      throw new Error(`Fernet key file ${join(dir, String(n))} is not the url-safe base64 of 32 bytes`);
    }
    numbers.push(n);
  }
  return { numbers, byNumber };
}

/** Write a key to a 0600 temp file, fsync it, then put it in place: whole or not at all. */
function writeKeyFile(dir: string, n: number, key: FernetKey, mode: 'no-clobber' | 'replace'): void {
  const tmp = join(dir, `.tmp-${n}-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, key.encode());
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const target = join(dir, String(n));
  try {
    if (mode === 'replace') renameSync(tmp, target);
    else {
      try {
        linkSync(tmp, target);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      unlinkSync(tmp);
    }
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw e;
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the renames are still atomic.
  } finally {
    closeSync(fd);
  }
}

function lock(dir: string): () => void {
  const path = join(dir, LOCK);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => unlinkSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let age: number;
    try {
      age = Date.now() - statSync(path).mtimeMs;
    } catch {
      continue; // released meanwhile: try again
    }
    if (age > STALE_LOCK_MS) {
      // Left by a rotation that died: take it over (if two do, one of them wins the 'wx').
      try {
        unlinkSync(path);
      } catch {
        // taken over by someone else first
      }
      continue;
    }
    if (attempt >= LOCK_ATTEMPTS) {
      throw new Error(`another rotation holds ${path}; retry, or remove the file if no rotation is running`);
    }
    // Synchronous sleep: rotation is a rare operator action, and the lock is held for milliseconds.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
}
