// The audit commands of the strata CLI (AuditService and ReplayService, proto/strata/events/v1):
// audit resource (a resource's history, or its state at a past point: time travel), audit user
// (what a user did), and admin replay (rebuild every read model from the log and compare).
import { EXIT_CODES, helpOrUsage, int, parse, str, UsageError, type Context } from './common.js';
import { print } from './output.js';

type Obj = Record<string, any>;

export const AUDIT_COMMANDS = ['audit', 'admin'];

export const AUDIT_HELP = `  audit resource ID [--since T] [--until T] | audit resource ID --at T|--at-offset N
  audit user USER [--project P] [--since T] [--until T]
  admin replay [--read-model NAME]...`;

const USAGE = `Usage: strata audit resource ID [--type AGGREGATE_TYPE] [--since TIME] [--until TIME] [--limit N]
       strata audit resource ID [--type AGGREGATE_TYPE] --at TIME | --at-offset OFFSET
       strata audit user USER_ID [--project PROJECT_ID] [--since TIME] [--until TIME] [--limit N]
       strata admin replay [--read-model NAME]...

audit resource lists every event of a resource (a server, volume, port, image, object...) in the
order it happened: when, the event, who (user and project), the request it came from and its trace
id; --output json adds what changed (the payload). With --at (a time, ISO 8601 or epoch ms) or
--at-offset (a log offset of the resource's partition) it shows the resource's state then instead,
folded from its events up to that point (time travel). audit user lists what a user did, in time
order. Tenants see their own project's resources only. Times: ISO 8601 (2026-12-02T10:00:00Z) or
milliseconds since the epoch; --since is inclusive, --until exclusive.

admin replay (cloud admins) rebuilds every read model (or those named: identity, compute, network,
block, object, image, metering_usage, audit) from offset 0 of the log into a fresh store and compares it
with the live one, table by table (row count and content hash). Exit code 1 when any differs.`;

/** A time flag as a google.protobuf.Timestamp. */
function timestampOf(flag: string, v: unknown): { seconds: number; nanos: number } | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag} takes a time (ISO 8601 or epoch milliseconds), got "${s}"`);
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

const iso = (t: Obj | undefined) => (t ? new Date(Number(t.seconds) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6)).toISOString() : '');

const row = (e: Obj) => ({
  time: iso(e.occurredAt),
  version: e.version,
  event: e.type,
  resource: `${e.aggregateType} ${e.aggregateId}`,
  user: e.actor?.userId ?? '',
  project: e.actor?.projectId ?? '',
  request: e.causationId,
  trace: e.traceId,
});

/** Every page of a listing, up to `limit` events. */
async function pages(ctx: Context, rpc: string, request: Obj, limit: number): Promise<Obj[]> {
  const out: Obj[] = [];
  let pageToken = '';
  do {
    const res = await ctx.client().call(rpc, { ...request, pageSize: Math.min(1000, limit - out.length), pageToken });
    out.push(...(res.events as Obj[]));
    pageToken = res.nextPageToken;
  } while (pageToken && out.length < limit);
  return out;
}

const FLAGS = {
  type: { type: 'string' as const },
  since: { type: 'string' as const },
  until: { type: 'string' as const },
  limit: { type: 'string' as const },
  at: { type: 'string' as const },
  'at-offset': { type: 'string' as const },
  project: { type: 'string' as const },
};

async function auditCommand(ctx: Context, rest: string[]): Promise<number> {
  const [verb, ...args] = rest;
  if (verb !== 'resource' && verb !== 'user') helpOrUsage(verb, USAGE);
  const { values, positionals } = parse(args, FLAGS, USAGE);
  if (positionals.length !== 1) throw new UsageError(`name one ${verb}\n\n${USAGE}`);
  const id = positionals[0];
  const limit = int('limit', values.limit) ?? 10_000;
  if (limit < 1) throw new UsageError('--limit takes a positive integer');
  const range = { startTime: timestampOf('since', values.since), endTime: timestampOf('until', values.until) };
  if (verb === 'resource') {
    const aggregateType = str(values.type) ?? '';
    if (values.at !== undefined || values['at-offset'] !== undefined) {
      if (values.at !== undefined && values['at-offset'] !== undefined) throw new UsageError('--at and --at-offset exclude each other');
      const at = values.at !== undefined ? { time: timestampOf('at', values.at) } : { offset: int('at-offset', values['at-offset']) };
      const res = await ctx.client().call('GetResourceAt', { resourceId: id, aggregateType, ...at });
      if (ctx.output === 'json') print(ctx.output, { ...res, state: res.state, stateJson: undefined, stateValue: JSON.parse(res.stateJson) });
      else {
        print(ctx.output, { resource: `${res.aggregateType} ${res.resourceId}`, version: res.version, state: res.state, as_of: `${iso(res.asOf?.occurredAt)} (${res.asOf?.type}, offset ${res.asOf?.offset})` });
        console.log(JSON.stringify(JSON.parse(res.stateJson), null, 2));
      }
      return EXIT_CODES.ok;
    }
    const events = await pages(ctx, 'ListResourceEvents', { resourceId: id, aggregateType, ...range }, limit);
    print(ctx.output, ctx.output === 'json' ? events : events.map(row));
    return EXIT_CODES.ok;
  }
  const events = await pages(ctx, 'ListUserEvents', { userId: id, projectId: str(values.project) ?? '', ...range }, limit);
  print(ctx.output, ctx.output === 'json' ? events : events.map(row));
  return EXIT_CODES.ok;
}

async function adminCommand(ctx: Context, rest: string[]): Promise<number> {
  const [verb, ...args] = rest;
  if (verb !== 'replay') helpOrUsage(verb, USAGE);
  const { values, positionals } = parse(args, { 'read-model': { type: 'string', multiple: true } }, USAGE);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}\n\n${USAGE}`);
  // A replay reads the whole log: give it an hour.
  const report = await ctx.client().call('ReplayReadModels', { readModels: (values['read-model'] as string[] | undefined) ?? [] }, undefined, { timeoutMs: 3_600_000 });
  if (ctx.output === 'json') print(ctx.output, report);
  else {
    const rows = report.readModels.flatMap((m: Obj) =>
      m.tables.map((t: Obj) => ({ read_model: m.readModel, table: t.table, live_rows: t.liveRows, replayed_rows: t.replayedRows, hash: String(t.liveHash).slice(0, 16), equal: t.equal ? 'yes' : 'NO' })),
    );
    print(ctx.output, rows);
    console.log(`${report.eventsReplayed} events replayed (${report.recordsRead} records read) in ${Number(report.seconds).toFixed(1)} s: ${report.equal ? 'every read model is identical to its replay' : 'DIFFERENCES:'}`);
    for (const d of report.differences as string[]) console.log(`  ${d}`);
  }
  return report.equal ? EXIT_CODES.ok : EXIT_CODES.error;
}

export function auditCommandOf(ctx: Context, command: string, rest: string[]): Promise<number> {
  return command === 'audit' ? auditCommand(ctx, rest) : adminCommand(ctx, rest);
}
