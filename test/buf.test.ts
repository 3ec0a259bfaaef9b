// Invariant 8: commands and events are protobuf messages checked by `buf lint` and
// `buf breaking`. Each check also runs once on a deliberately bad copy, to show it can fail.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const buf = join(root, 'node_modules/.bin/buf');
const run = (args: string[], cwd = root) => spawnSync(buf, args, { cwd, encoding: 'utf8' });

function copyModule(): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-buf-'));
  cpSync(join(root, 'proto'), join(dir, 'proto'), { recursive: true });
  cpSync(join(root, 'buf.yaml'), join(dir, 'buf.yaml'));
  return dir;
}

describe('protos', () => {
  it('pass buf lint', () => {
    const r = run(['lint']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('buf lint fails on an enum without an _UNSPECIFIED zero value', () => {
    const dir = copyModule();
    const file = join(dir, 'proto/strata/core/v1/envelope.proto');
    writeFileSync(file, readFileSync(file, 'utf8').replace('REJECTION_CODE_UNSPECIFIED = 0', 'REJECTION_CODE_NONE = 0'));
    const r = run(['lint'], dir);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain('REJECTION_CODE_NONE');
  });

  it('have no breaking change against main', () => {
    const hasMain = spawnSync('git', ['rev-parse', '--verify', '--quiet', 'main'], { cwd: root }).status === 0;
    const against = hasMain ? '.git#branch=main' : 'proto';
    const r = run(['breaking', '--against', against]);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('buf breaking fails when a field changes its number', () => {
    const dir = copyModule();
    const file = join(dir, 'proto/strata/core/v1/envelope.proto');
    writeFileSync(file, readFileSync(file, 'utf8').replace('string command_id = 1;', 'string command_id = 14;'));
    const r = run(['breaking', '--against', join(root, 'buf.yaml').replace('buf.yaml', '')], dir);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/command_id|CommandEnvelope/);
  });
});
