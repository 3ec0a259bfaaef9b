// Output of the CLI: a table for people, JSON for programs (--output json).

export type OutputFormat = 'table' | 'json';

const cell = (v: unknown): string =>
  v === undefined || v === null ? '' : Array.isArray(v) ? v.join(',') : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** Rows as an aligned text table with the given columns (default: the keys of the first row). */
export function table(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const cols = columns ?? Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** One object as "field  value" lines. */
export function record(obj: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(obj).map((k) => k.length));
  return Object.entries(obj)
    .map(([k, v]) => `${k.padEnd(width)}  ${cell(v)}`)
    .join('\n');
}

export function print(format: OutputFormat, value: Record<string, unknown> | Record<string, unknown>[], columns?: string[]): void {
  if (format === 'json') console.log(JSON.stringify(value, null, 2));
  else console.log(Array.isArray(value) ? table(value, columns) : record(value));
}
