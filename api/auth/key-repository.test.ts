// The key repository on disk: layout, modes, rotation, and a second process's view of it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FernetKey } from './fernet.js';
import { KeyRepository } from './key-repository.js';

const roots: string[] = [];
function freshDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'strata-keys-'));
  roots.push(root);
  return join(root, 'fernet-keys');
}
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

const mode = (p: string) => statSync(p).mode & 0o777;
const fileKey = (dir: string, n: number) => FernetKey.fromString(readFileSync(join(dir, String(n)), 'utf8'));

describe('open', () => {
  it('creates the directory 0700 with a staged key 0 and a primary key 1, files 0600', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir);
    expect(mode(dir)).toBe(0o700);
    expect(readdirSync(dir).sort()).toEqual(['0', '1']);
    expect(mode(join(dir, '0'))).toBe(0o600);
    expect(mode(join(dir, '1'))).toBe(0o600);
    expect(keys.keyNumbers()).toEqual([0, 1]);
    expect(keys.primary().equals(fileKey(dir, 1))).toBe(true);
    expect(keys.keys().map((k) => k.encode())).toEqual([fileKey(dir, 1).encode(), fileKey(dir, 0).encode()]);
    expect(fileKey(dir, 0).equals(fileKey(dir, 1))).toBe(false);
  });

  it('reads an existing repository without touching it', () => {
    const dir = freshDir();
    const first = KeyRepository.open(dir);
    const again = KeyRepository.open(dir);
    expect(readdirSync(dir).sort()).toEqual(['0', '1']);
    expect(again.keys().map((k) => k.encode())).toEqual(first.keys().map((k) => k.encode()));
  });

  it('refuses maxActiveKeys below 2, naming the option', () => {
    for (const bad of [1, 0, -3, 2.5]) expect(() => KeyRepository.open(freshDir(), { maxActiveKeys: bad })).toThrow(/maxActiveKeys.*>= 2/);
  });

  it('names a corrupt key file without showing its content', () => {
    const dir = freshDir();
    KeyRepository.open(dir);
    writeFileSync(join(dir, '1'), 'c2VjcmV0LWJ1dC10b28tc2hvcnQ=');
    let message = '';
    try {
      KeyRepository.open(dir);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain(join(dir, '1'));
    expect(message).not.toContain('c2VjcmV0');
  });

  it('ignores files that are not key numbers', () => {
    const dir = freshDir();
    KeyRepository.open(dir);
    writeFileSync(join(dir, 'README'), 'not a key');
    writeFileSync(join(dir, '01'), 'not a key either');
    expect(KeyRepository.open(dir).keyNumbers()).toEqual([0, 1]);
  });

  it('never prints key material', () => {
    const keys = KeyRepository.open(freshDir());
    const material = keys.primary().encode().slice(0, 12);
    const inspect = (keys as unknown as Record<symbol, () => string>)[Symbol.for('nodejs.util.inspect.custom')]();
    for (const s of [String(keys), inspect, JSON.stringify(keys.keys())]) expect(s).not.toContain(material);
  });
});

describe('rotate', () => {
  it('promotes the staged key, stages a new one and keeps at most maxActiveKeys (3)', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir, { maxActiveKeys: 3 });
    const staged = fileKey(dir, 0);
    const oldPrimary = fileKey(dir, 1);
    keys.rotate();
    expect(readdirSync(dir).sort()).toEqual(['0', '1', '2']);
    expect(fileKey(dir, 2).equals(staged)).toBe(true);
    expect(keys.primary().equals(staged)).toBe(true);
    expect(fileKey(dir, 0).equals(staged)).toBe(false);
    // primary, then staged, then secondaries newest first
    expect(keys.keys().map((k) => k.encode())).toEqual([staged.encode(), fileKey(dir, 0).encode(), oldPrimary.encode()]);
    keys.rotate();
    expect(readdirSync(dir).sort()).toEqual(['0', '2', '3']);
    keys.rotate();
    expect(readdirSync(dir).sort()).toEqual(['0', '3', '4']);
    for (const f of ['0', '3', '4']) expect(mode(join(dir, f))).toBe(0o600);
  });

  it('orders keys primary, staged, then secondaries by descending number', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir, { maxActiveKeys: 5 });
    for (let i = 0; i < 4; i++) keys.rotate();
    expect(keys.keyNumbers()).toEqual([0, 2, 3, 4, 5]);
    expect(keys.keys().map((k) => k.encode())).toEqual([5, 0, 4, 3, 2].map((n) => fileKey(dir, n).encode()));
  });

  it('leaves no temp or lock file behind', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir);
    keys.rotate();
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('takes over a lock left by a rotation that died, and waits then gives up on a live one', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir);
    const lock = join(dir, '.rotate.lock');
    writeFileSync(lock, '12345\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(lock, old, old);
    keys.rotate();
    expect(keys.keyNumbers()).toEqual([0, 1, 2]);
    writeFileSync(lock, '12345\n');
    expect(() => keys.rotate()).toThrow(/another rotation holds/);
    expect(keys.keyNumbers()).toEqual([0, 1, 2]);
  });
});

describe('reload', () => {
  it('reloadIfChanged sees a rotation done by another instance on the same directory', () => {
    const dir = freshDir();
    const server = KeyRepository.open(dir);
    const cli = KeyRepository.open(dir);
    const before = server.primary();
    cli.rotate(); // same millisecond as the open, as often as not: the mtime alone cannot tell
    expect(server.primary().equals(before)).toBe(true);
    expect(server.reloadIfChanged()).toBe(true);
    expect(server.primary().equals(cli.primary())).toBe(true);
    expect(server.keyNumbers()).toEqual([0, 1, 2]);
    expect(server.reloadIfChanged()).toBe(false);
  });

  it('reloadIfChanged re-reads while the mtime is too recent to trust (a change in the same clock tick)', () => {
    const dir = freshDir();
    const server = KeyRepository.open(dir);
    // Pin the directory mtime to a whole recent second, so it can be put back exactly.
    const tick = Math.floor(Date.now() / 1000);
    utimesSync(dir, tick, tick);
    server.reload();
    KeyRepository.open(dir).rotate();
    utimesSync(dir, tick, tick); // the rotation left the mtime as it was
    expect(server.reloadIfChanged()).toBe(true);
    expect(server.keyNumbers()).toEqual([0, 1, 2]);
  });

  it('reloadIfChanged trusts an old mtime: one stat, no re-read', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir);
    const old = new Date(Date.now() - 60_000);
    utimesSync(dir, old, old);
    keys.reload();
    const array = keys.keys();
    expect(keys.reloadIfChanged()).toBe(false);
    expect(keys.keys()).toBe(array);
    // A key swapped behind the repository's back, with the mtime put back, goes unseen...
    writeFileSync(join(dir, '1'), FernetKey.generate().encode());
    utimesSync(dir, old, old);
    expect(keys.reloadIfChanged()).toBe(false);
    // ...while a real change of the directory is seen.
    KeyRepository.open(dir).rotate();
    expect(keys.reloadIfChanged()).toBe(true);
    expect(keys.keyNumbers()).toEqual([0, 1, 2]);
  });

  it('reload picks up a staged key another node copied in', () => {
    const dir = freshDir();
    const keys = KeyRepository.open(dir);
    const copied = FernetKey.generate();
    writeFileSync(join(dir, '0'), copied.encode(), { mode: 0o600 });
    keys.reload();
    expect(keys.keys()[1].equals(copied)).toBe(true);
  });
});
