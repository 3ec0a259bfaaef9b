// The usage command of the strata CLI (UsageService, proto/strata/metering/v1): what a project
// used, per hour or in total, over a period. Times are ISO 8601 (2026-03-01, 2026-03-01T10:00:00Z);
// the period defaults to the current UTC day up to now.
import { helpOrUsage, parse, str, UsageError, type Context } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const USAGE_COMMANDS = ['usage'];

export const USAGE_HELP = `  usage show [--project P | --all-projects] [--start ISO] [--end ISO] [--by hour|total]`;

const USAGE = `Usage: strata usage show [--project P | --all-projects] [--start ISO] [--end ISO] [--by hour|total]

What a project used over [start, end), per hour (the default) or in total: instance-hours per
flavor, vCPU-hours, RAM GiB-hours (while servers run; stopped and shelved time as the cloud's
metering policy says), volume GiB-hours per volume type, snapshot and backup GiB-hours, object
storage GiB-hours, image GiB-hours and floating IP-hours. The figures come from the events' own
times: the same question gives the same answer after a replay. Usage still running counts up to
now. --project defaults to the token's project; another project's usage and --all-projects are
for cloud admins. --start defaults to the start of the current UTC day, --end to now; ISO 8601
times (2026-03-01, 2026-03-01T10:00:00Z). --output json prints the records with their
quantity-seconds.`;

const COLUMNS = ['project', 'start', 'metric', 'key', 'amount', 'unit'];

function isoMs(flag: string, v: unknown): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const ms = Date.parse(s);
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--${flag} takes an ISO 8601 time (2026-03-01T10:00:00Z), got "${s}"`);
  return ms;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
/** Amounts to 6 decimals, trailing zeros cut (2.5, not 2.500000). */
const amount = (n: number) => String(Number(n.toFixed(6)));

export async function usageCommand(ctx: Context, _command: string, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'show') helpOrUsage(verb, USAGE);
  const { values, positionals } = parse(
    rest,
    { project: { type: 'string' }, 'all-projects': { type: 'boolean' }, start: { type: 'string' }, end: { type: 'string' }, by: { type: 'string' } },
    USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected: ${positionals.join(' ')}\n\n${USAGE}`);
  const by = str(values.by) ?? 'hour';
  if (by !== 'hour' && by !== 'total') throw new UsageError(`--by takes hour or total, got "${by}"`);
  if (values.project && values['all-projects']) throw new UsageError('--project and --all-projects exclude each other');
  const res = await ctx.client().call('GetUsage', {
    projectId: str(values.project) ?? '',
    allProjects: Boolean(values['all-projects']),
    startMs: isoMs('start', values.start) ?? 0,
    endMs: isoMs('end', values.end) ?? 0,
    granularity: by === 'total' ? 'GRANULARITY_TOTAL' : 'GRANULARITY_HOUR',
  });
  const records = (res.records ?? []) as Obj[];
  if (ctx.output === 'json') {
    print(ctx.output, { start: iso(Number(res.startMs)), end: iso(Number(res.endMs)), counted_to: iso(Number(res.countedToMs)), records });
    return 0;
  }
  print(
    ctx.output,
    records.map((r) => ({ project: r.projectId, start: iso(Number(r.startMs)), metric: r.metric, key: r.key, amount: amount(Number(r.amount)), unit: r.unit })),
    COLUMNS,
  );
  return 0;
}
