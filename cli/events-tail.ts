// strata events tail: follows the cloud's event stream (SubscriptionService.Subscribe,
// proto/strata/events/v1/subscription_service.proto). One line per event (time, type, aggregate,
// actor, owner project), or one JSON object per line with --output json; the cursor to resume
// from goes to stderr when the stream ends, is cut off or is interrupted (Ctrl-C), so that
// `--from CURSOR` continues exactly where it stopped.
import { helpOrUsage, parse, str, UsageError, type Context } from './common.js';
import { ApiCallError } from './client.js';

export const EVENTS_COMMANDS = ['events'];

export const EVENTS_HELP = `  events tail [--from earliest|latest|CURSOR] [--type T]... [--domain D]... [--project P] [--no-follow]`;

const USAGE = `Usage: strata events tail [--from earliest|latest|CURSOR] [--type T]... [--domain D]... [--project P]
                         [--follow | --no-follow]

Streams the events of the cloud as they are appended to the log: one line per event (time, type,
domain/aggregate type/aggregate id, who acted, the project that owns the resource), or one JSON
object per line with --output json (the event with its payload decoded, its log position and its
cursor). Tenants see their own project's events; admins see all, or one project's with --project.

  --from      latest (the default: from now on), earliest (the whole log), or a cursor printed by
              an earlier tail: it continues exactly after the last event that tail printed
  --type      only events of this type (InstanceCreated, VolumeAttached, ...); repeatable
  --domain    only this domain's events (identity, compute, network, block, object, image); repeatable
  --project   admins: only this project's events
  --no-follow stop once the events already in the log have been printed (default: follow until Ctrl-C)

When the tail ends (Ctrl-C, --no-follow, or the server cuts off a subscriber that fell behind),
it prints "cursor CURSOR" on stderr: pass it to --from to resume.`;

type Obj = Record<string, any>;

/** "2026-12-02T06:40:31.123Z" from a protobuf Timestamp. */
const time = (t: { seconds?: number | string; nanos?: number } | undefined) =>
  t ? new Date(Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString() : '';

function line(e: Obj): string {
  const actor = e.actor?.userId ? `${e.actor.userId}${e.actor.projectId ? `@${e.actor.projectId}` : ''}` : '-';
  const owner = e.projectId ? `  project ${e.projectId}` : '';
  return `${time(e.occurredAt)}  ${e.type}  ${e.domain}/${e.aggregateType}/${e.aggregateId} v${e.version}  by ${actor}${owner}`;
}

function jsonLine(e: Obj): string {
  let payload: unknown = null;
  try {
    payload = e.payloadJson ? JSON.parse(e.payloadJson) : null;
  } catch {
    payload = e.payloadJson;
  }
  const { payloadJson: _p, occurredAt, ...rest } = e;
  return JSON.stringify({ ...rest, occurredAt: time(occurredAt), payload });
}

/** Exit 0 when the stream ends or is interrupted; an API error maps to its exit code (cli/main.ts). */
export async function eventsCommand(ctx: Context, _command: string, argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb !== 'tail') helpOrUsage(verb, USAGE);
  const { values, positionals } = parse(
    rest,
    {
      from: { type: 'string' },
      type: { type: 'string', multiple: true },
      domain: { type: 'string', multiple: true },
      project: { type: 'string' },
      follow: { type: 'boolean' },
      'no-follow': { type: 'boolean' },
    },
    USAGE,
  );
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals[0]}\n\n${USAGE}`);
  if (values.follow && values['no-follow']) throw new UsageError('--follow and --no-follow exclude each other');
  const from = str(values.from) ?? 'latest';
  const request: Obj = {
    domains: (values.domain as string[] | undefined) ?? [],
    eventTypes: (values.type as string[] | undefined) ?? [],
    projectId: str(values.project) ?? '',
    stopAtEnd: Boolean(values['no-follow']),
  };
  if (from === 'earliest') request.position = 'START_POSITION_EARLIEST';
  else if (from === 'latest') request.position = 'START_POSITION_LATEST';
  else request.cursor = from;

  let cursor = from === 'earliest' || from === 'latest' ? '' : from;
  const printCursor = () => cursor && process.stderr.write(`cursor ${cursor}\n`);
  const stream = ctx.client().stream('Subscribe', request, (m: Obj) => {
    if (m.event) {
      cursor = m.event.cursor;
      process.stdout.write(`${ctx.output === 'json' ? jsonLine(m.event) : line(m.event)}\n`);
    } else if (m.progress) cursor = m.progress.cursor;
  });
  // Ctrl-C (or a TERM) ends the stream from this side; what was printed is what the cursor covers.
  const stop = () => stream.cancel();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await stream.done;
  } catch (e) {
    printCursor();
    if (e instanceof ApiCallError && e.code === 8) process.stderr.write('strata: resume with --from the cursor above\n');
    throw e;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  printCursor();
  return 0;
}
