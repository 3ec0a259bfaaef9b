// Domains are pure (architecture invariant 2): the boundary check passes on domains/ and
// catches a domain file that reaches for I/O, infra or the clock.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const script = new URL('../scripts/check-boundaries.mjs', import.meta.url).pathname;

describe('domain purity check', () => {
  it('passes on domains/', () => {
    expect(execFileSync('node', [script], { encoding: 'utf8' })).toMatch(/clean/);
  });

  it('fails on a domain that imports node:fs, infra code, or reads the clock', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'strata-purity-')), 'domains', 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'bad.ts'),
      [
        "import { readFileSync } from 'node:fs';",
        "import type { Log } from '../../infra/log/log.js';",
        "import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';",
        'export const now = () => Date.now();',
      ].join('\n'),
    );
    const r = spawnSync('node', [script, join(dir, '..')], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('imports node:fs');
    expect(r.stderr).toContain('embedded-log.js');
    expect(r.stderr).toContain('Date.now()');
    expect(r.stderr).not.toContain("log.js' (");
  });
});
