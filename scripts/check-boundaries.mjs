#!/usr/bin/env node
// Domains are pure: no I/O, no clock, no randomness. This check fails when a file under
// domains/ imports a module that does I/O or reaches into infra/, api/, agents/ or projections/
// (type-only imports aside), or calls Date.now(), new Date(), Math.random() or crypto.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : [join(root, 'domains')];

const FORBIDDEN_MODULES = [/^node:/, /^(fs|path|os|child_process|net|http|https|crypto|dgram|worker_threads)$/, /^kafkajs/, /^better-sqlite3/, /^pg$/, /^@grpc\//, /^protobufjs/, /^@opentelemetry\//];
const FORBIDDEN_PATHS = [/\/(infra|api|agents|projections)\//];
const FORBIDDEN_CALLS = [/\bDate\.now\s*\(/, /\bnew Date\s*\(/, /\bMath\.random\s*\(/, /\bperformance\.now\s*\(/, /\bprocess\./, /\bsetTimeout\s*\(/, /\bsetInterval\s*\(/];

const files = [];
const walk = (d) => {
  for (const name of readdirSync(d)) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (/\.ts$/.test(name) && !/\.test\.ts$/.test(name)) files.push(p);
  }
};
for (const d of dirs) walk(d);

const problems = [];
for (const file of files) {
  const lines = readFileSync(file, 'utf8').split('\n');
  lines.forEach((line, i) => {
    const where = `${relative(root, file)}:${i + 1}`;
    const m = line.match(/^\s*import\s+(type\s+)?[^'"]*from\s+['"]([^'"]+)['"]/) ?? line.match(/^\s*import\s+['"]([^'"]+)['"]/);
    if (m) {
      const typeOnly = Boolean(m[1]) && m.length === 3;
      const spec = m.length === 3 ? m[2] : m[1];
      if (!typeOnly && FORBIDDEN_MODULES.some((r) => r.test(spec))) problems.push(`${where}: imports ${spec} (domains do no I/O)`);
      if (!typeOnly && spec.startsWith('.') && FORBIDDEN_PATHS.some((r) => r.test(join('/', relative(root, join(file, '..', spec)))))) {
        problems.push(`${where}: imports ${spec} (domains may not depend on infra, api, agents or projections)`);
      }
    }
    const code = line.replace(/\/\/.*$/, '');
    for (const r of FORBIDDEN_CALLS) if (r.test(code)) problems.push(`${where}: ${code.trim()} (time and randomness come from the command envelope)`);
  });
}
if (problems.length > 0) {
  console.error(`domain purity check failed:\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`domain purity check: ${files.length} files clean`);
