// The CLI's plumbing shared by its command families (cli/main.ts: identity and the rest;
// cli/compute.ts: compute; cli/network.ts: network): exit codes, usage errors, option parsing, the
// command context, and the helpers of verbs (help, positionals, integers, a done message).
import { parseArgs } from 'node:util';
import type { StrataClient } from './client.js';
import { print, type OutputFormat } from './output.js';

export const EXIT_CODES = {
  ok: 0,
  error: 1,
  usage: 2,
  notFound: 3,
  permissionDenied: 4,
  unauthenticated: 5,
  invalidArgument: 6,
  alreadyExists: 7,
  failedPrecondition: 8,
  unavailable: 9,
  quotaExceeded: 10,
} as const;

export const GRPC_TO_EXIT: Record<number, number> = {
  3: EXIT_CODES.invalidArgument,
  5: EXIT_CODES.notFound,
  6: EXIT_CODES.alreadyExists,
  7: EXIT_CODES.permissionDenied,
  8: EXIT_CODES.quotaExceeded,
  9: EXIT_CODES.failedPrecondition,
  10: EXIT_CODES.failedPrecondition,
  14: EXIT_CODES.unavailable,
  4: EXIT_CODES.unavailable,
  16: EXIT_CODES.unauthenticated,
};

export class UsageError extends Error {}

export interface Context {
  output: OutputFormat;
  url: string;
  ca: string;
  token?: string;
  client(): StrataClient;
}

export type Options = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

export function parse(argv: string[], options: Options, usage: string) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${usage}`);
  }
  if (parsed.values.help) {
    console.log(usage);
    process.exit(EXIT_CODES.ok);
  }
  return parsed as { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] };
}

export const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** KEY=VALUE options (--property) into a map; a malformed one is a UsageError naming the flag. */
export function properties(values: unknown, flag = '--property'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of (values as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`${flag} takes KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export function int(flag: string, v: unknown): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} takes an integer, got "${String(v)}"`);
  return n;
}

/** `strata <command> --help` prints the usage (exit 0); any other unknown verb is a usage error. */
export function helpOrUsage(verb: string | undefined, usage: string): never {
  if (verb === '--help' || verb === '-h') {
    console.log(usage);
    process.exit(EXIT_CODES.ok);
  }
  throw new UsageError(verb ? `unknown: ${verb}\n\n${usage}` : usage);
}

export function need(positionals: string[], what: string, usage: string): string {
  if (!positionals[0]) throw new UsageError(`name the ${what}\n\n${usage}`);
  return positionals[0];
}

/** A mutation's outcome: a sentence for people, the object for --output json. */
export const done = (ctx: Context, message: string, json: Record<string, unknown>) => (ctx.output === 'json' ? print(ctx.output, json) : console.log(message));
