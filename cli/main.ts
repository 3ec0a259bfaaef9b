// strata: the command line of a Strata cloud. `strata --help` lists the commands; every command
// takes --help. Exit codes (stable, for scripts) are listed in EXIT_CODES (cli/common.ts) and in the help.
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { BLOCK_COMMANDS, blockCommand, BLOCK_HELP } from './block.js';
import { ApiCallError, StrataClient } from './client.js';
import { EXIT_CODES, GRPC_TO_EXIT, parse, str, UsageError, type Context, type Options } from './common.js';
import { COMPUTE_COMMANDS, computeCommand, COMPUTE_HELP } from './compute.js';
import { NETWORK_COMMANDS, networkCommand, NETWORK_HELP } from './network.js';
import { OBJECT_COMMANDS, OBJECT_HELP, objectStorageCommand } from './object.js';
import { IMAGE_COMMANDS, IMAGE_HELP, imageCommand } from './image.js';
import { AUDIT_COMMANDS, AUDIT_HELP, auditCommandOf } from './audit.js';
import { EVENTS_COMMANDS, EVENTS_HELP, eventsCommand } from './events-tail.js';
import { USAGE_COMMANDS, USAGE_HELP, usageCommand } from './usage.js';
import { print, type OutputFormat } from './output.js';

export { EXIT_CODES } from './common.js';


const HELP = `strata: the command line of a Strata cloud

Usage: strata [global options] <command> [options]

Getting started:
  strata bootstrap --password P        create the admin user, admin project, default roles and
                                       catalog (run once on the cloud's machine; idempotent)
  strata login --user admin --password P --project admin
  strata project list

Commands:
  bootstrap                 create the admin user, project, roles and catalog (talks to the log)
  login / logout            get a token and keep it for later commands / revoke and forget it
  token issue|show|revoke   issue a token without keeping it; describe or revoke a token
  keys rotate               rotate the token keys in <state dir>/token-keys (on the API's machine)
  domain|project|user|group|role|region|service|endpoint  create|list|show|update|delete
  group member add|remove|check|list GROUP [USER]
  role assignment create|list|show|delete
${COMPUTE_HELP}
${NETWORK_HELP}
${BLOCK_HELP}
${OBJECT_HELP}
${IMAGE_HELP}
${AUDIT_HELP}
${EVENTS_HELP}
${USAGE_HELP}

Global options:
  --url URL        the API (default: $STRATA_URL, the URL of the last login, or grpcs://127.0.0.1:5050)
  --ca FILE        CA certificate of the API (default: $STRATA_CA_CERT, the last login's, or .strata/tls/ca.crt)
  --output FORMAT  table (default) or json
  -h, --help       help; also after any command: strata project create --help

The token: --token, $STRATA_TOKEN, or the one 'strata login' saved in
$XDG_CONFIG_HOME/strata/credentials.json (mode 0600).

Exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 permission denied, 5 unauthenticated,
6 invalid argument, 7 already exists, 8 failed precondition, 9 API unreachable, 10 quota exceeded.`;

interface Kind {
  noun: string;
  plural: string;
  /** flag -> field; `enable`/`disable` set enabled. */
  flags: Record<string, string>;
  /** list filters: flag -> request field */
  filters: Record<string, string>;
  columns: string[];
}

const KINDS: Record<string, Kind> = {
  domain: { noun: 'Domain', plural: 'Domains', flags: { name: 'name', description: 'description' }, filters: { name: 'name' }, columns: ['id', 'name', 'enabled', 'description'] },
  project: {
    noun: 'Project',
    plural: 'Projects',
    flags: { name: 'name', description: 'description', domain: 'domainId', parent: 'parentId' },
    filters: { domain: 'domainId', parent: 'parentId', name: 'name' },
    columns: ['id', 'name', 'domainId', 'parentId', 'enabled'],
  },
  user: {
    noun: 'User',
    plural: 'Users',
    flags: { name: 'name', domain: 'domainId', email: 'email', description: 'description', 'default-project': 'defaultProjectId' },
    filters: { domain: 'domainId', name: 'name' },
    columns: ['id', 'name', 'domainId', 'email', 'enabled'],
  },
  group: { noun: 'Group', plural: 'Groups', flags: { name: 'name', domain: 'domainId', description: 'description' }, filters: { domain: 'domainId', name: 'name' }, columns: ['id', 'name', 'domainId', 'description'] },
  role: { noun: 'Role', plural: 'Roles', flags: { name: 'name', description: 'description', implies: 'implies' }, filters: { name: 'name' }, columns: ['id', 'name', 'implies'] },
  region: { noun: 'Region', plural: 'Regions', flags: { description: 'description', 'parent-region': 'parentRegionId' }, filters: { 'parent-region': 'parentRegionId' }, columns: ['id', 'description', 'parentRegionId'] },
  service: { noun: 'Service', plural: 'Services', flags: { type: 'type', name: 'name', description: 'description' }, filters: { type: 'type' }, columns: ['id', 'type', 'name', 'enabled'] },
  endpoint: {
    noun: 'Endpoint',
    plural: 'Endpoints',
    flags: { service: 'serviceId', region: 'regionId', interface: 'interface', url: 'url' },
    filters: { service: 'serviceId', region: 'regionId', interface: 'interface' },
    columns: ['id', 'serviceId', 'regionId', 'interface', 'url', 'enabled'],
  },
};
const TOGGLES = new Set(['domain', 'project', 'user', 'service', 'endpoint']);
const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// ---- saved credentials --------------------------------------------------------------------

interface Saved {
  url?: string;
  caCert?: string;
  token?: string;
  userId?: string;
  projectId?: string;
  expiresAt?: string;
}

const configDir = () => join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'strata');
const credentialsPath = () => join(configDir(), 'credentials.json');

function loadSaved(): Saved {
  try {
    return JSON.parse(readFileSync(credentialsPath(), 'utf8')) as Saved;
  } catch {
    return {};
  }
}

function save(saved: Saved): void {
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  const path = credentialsPath();
  writeFileSync(path, JSON.stringify(saved, null, 2), { mode: 0o600 });
  chmodSync(path, 0o600); // an existing file keeps its mode on write
}

// ---- command plumbing ---------------------------------------------------------------------


function readPassword(values: Record<string, unknown>): string {
  const p = str(values.password) ?? (values['password-stdin'] ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : process.env.STRATA_PASSWORD);
  if (!p) throw new UsageError('a password is needed: --password, --password-stdin or $STRATA_PASSWORD');
  return p;
}

const SCOPE_OPTIONS: Options = {
  user: { type: 'string' },
  'user-id': { type: 'string' },
  'user-domain': { type: 'string' },
  password: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  project: { type: 'string' },
  'project-id': { type: 'string' },
  'project-domain': { type: 'string' },
  domain: { type: 'string' },
  system: { type: 'boolean' },
  unscoped: { type: 'boolean' },
};

const SCOPE_USAGE = `  --user NAME | --user-id ID   who (with --user: --user-domain NAME, default "Default")
  --password P | --password-stdin   the password (or $STRATA_PASSWORD)
  scope, one of (default: the user's default project, else unscoped):
  --project NAME [--project-domain NAME]   --project-id ID   --domain NAME   --system   --unscoped`;

async function issue(ctx: Context, argv: string[], usage: string) {
  const { values } = parse(argv, SCOPE_OPTIONS, usage);
  const userName = str(values.user);
  const userId = str(values['user-id']);
  if (!userName && !userId) throw new UsageError(`say who: --user NAME or --user-id ID\n\n${usage}`);
  const password = readPassword(values);
  const scope = values.unscoped
    ? { unscoped: true }
    : values.system
      ? { system: true }
      : str(values['project-id'])
        ? { projectId: values['project-id'] }
        : str(values.project)
          ? { project: { name: values.project, domainName: str(values['project-domain']) ?? 'Default' } }
          : str(values.domain)
            ? { domainName: values.domain }
            : undefined;
  const res = await ctx.client().call('IssueToken', {
    password: userId ? { userId, password } : { userName, domainName: str(values['user-domain']) ?? 'Default', password },
    ...(scope ? { scope } : {}),
  });
  return res as { token: string; info: Record<string, any> };
}

const describeToken = (info: Record<string, any>) => ({
  user: info.userId,
  project: info.projectId,
  domain: info.domainId,
  system: info.system,
  roles: info.roles,
  methods: info.methods,
  expires: info.expiresAt ? new Date(Number(info.expiresAt.seconds) * 1000).toISOString() : '',
  audit_ids: info.auditIds,
});

async function resolveRole(ctx: Context, nameOrId: string): Promise<string> {
  const byName = await ctx.client().call('ListRoles', { name: nameOrId });
  return byName.roles[0]?.id ?? nameOrId;
}

// ---- commands -----------------------------------------------------------------------------

async function bootstrapCommand(ctx: Context, argv: string[]) {
  const usage = `Usage: strata bootstrap --password P [--admin-user admin] [--admin-project admin] [--region RegionOne] [--identity-url URL]

Creates, idempotently, the default domain, the roles admin > manager > member > reader and
service, the admin project and user (admin on the project and on the system), the region and the
identity service with its endpoints. It writes to the log directly, as the cloud's own tool: run
it where the cloud runs, with the same STRATA_LOG / STRATA_LOG_PATH / STRATA_KAFKA_BROKERS
environment, while the cloud is up (npm start). An existing admin keeps its password.`;
  const { values } = parse(argv, { password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, 'admin-user': { type: 'string' }, 'admin-project': { type: 'string' }, region: { type: 'string' }, 'identity-url': { type: 'string' } }, usage);
  const password = readPassword(values);
  const { logConfigFromEnv, openLog } = await import('../infra/config/config.js');
  const { CommandBus, CommandTimeoutError } = await import('../infra/runtime/command-bus.js');
  const { IdentityWriter } = await import('../api/identity/identity.writer.js');
  const { bootstrap } = await import('../api/identity/bootstrap.js');
  const log = openLog(logConfigFromEnv());
  try {
    const bus = await CommandBus.connect({ log, timeoutMs: Number(process.env.STRATA_BOOTSTRAP_TIMEOUT_MS ?? 20_000) });
    try {
      const result = await bootstrap(new IdentityWriter(bus), {
        adminPassword: password,
        adminUserName: str(values['admin-user']),
        adminProjectName: str(values['admin-project']),
        regionId: str(values.region),
        identityUrl: str(values['identity-url']) ?? ctx.url,
      });
      print(ctx.output, { admin_user: result.adminUserId, admin_project: result.adminProjectId, domain: result.domainId });
    } catch (e) {
      if (e instanceof CommandTimeoutError) throw new Error('no answer from the identity deciders: is the cloud running (npm start) on this log?');
      throw e;
    } finally {
      await bus.close();
    }
  } finally {
    await log.close();
  }
}

async function loginCommand(ctx: Context, argv: string[]) {
  const usage = `Usage: strata login --user NAME --password P [scope]\n\nIssues a token and saves it (with the URL and CA) in ${credentialsPath()}, mode 0600.\n\n${SCOPE_USAGE}`;
  const { token, info } = await issue(ctx, argv, usage);
  save({ url: ctx.url, caCert: ctx.ca, token, userId: info.userId, projectId: info.projectId, expiresAt: describeToken(info).expires });
  print(ctx.output, describeToken(info));
}

async function logoutCommand(ctx: Context, argv: string[]) {
  parse(argv, {}, 'Usage: strata logout\n\nRevokes the saved token and forgets it.');
  const saved = loadSaved();
  if (saved.token) await ctx.client().call('RevokeToken', { token: saved.token }, saved.token).catch(() => undefined);
  rmSync(credentialsPath(), { force: true });
  if (ctx.output === 'json') print(ctx.output, { logged_out: true });
  else console.log('logged out');
}

async function tokenCommand(ctx: Context, argv: string[]) {
  const [verb, ...rest] = argv;
  const usage = `Usage: strata token issue [scope]   print a new token (not saved)
       strata token show [TOKEN]    describe a token (default: your own)
       strata token revoke [TOKEN]  revoke a token (default: your own)\n\n${SCOPE_USAGE}`;
  if (verb === 'issue') {
    const { token, info } = await issue(ctx, rest, usage);
    print(ctx.output, { token, ...describeToken(info) });
    return;
  }
  if (verb !== 'show' && verb !== 'revoke') throw new UsageError(usage);
  const { positionals } = parse(rest, {}, usage);
  const subject = positionals[0] ?? ctx.token;
  if (!subject) throw new UsageError(`no token: log in first, or name one\n\n${usage}`);
  if (verb === 'show') print(ctx.output, describeToken((await ctx.client().call('ValidateToken', { token: subject })).info));
  else {
    await ctx.client().call('RevokeToken', { token: subject });
    if (ctx.output === 'json') print(ctx.output, { revoked: true });
    else console.log('token revoked');
  }
}

async function keysCommand(ctx: Context, argv: string[]) {
  const usage = `Usage: strata keys rotate [--keys-dir DIR] [--max-active-keys 3]

Rotates the token keys: the staged key becomes primary, a new staged key is made, and the oldest
keys beyond --max-active-keys are removed (tokens they signed stop validating). Run it on the
API's machine; a running API picks the change up within a second. Default directory:
$STRATA_STATE_DIR/token-keys (.strata/token-keys).`;
  const [verb, ...rest] = argv;
  if (verb !== 'rotate') throw new UsageError(usage);
  const { values } = parse(rest, { 'keys-dir': { type: 'string' }, 'max-active-keys': { type: 'string' } }, usage);
  const { KeyRepository } = await import('../api/auth/key-repository.js');
  const dir = str(values['keys-dir']) ?? join(process.env.STRATA_STATE_DIR ?? '.strata', 'token-keys');
  const repo = KeyRepository.open(dir, { maxActiveKeys: Number(str(values['max-active-keys']) ?? 3) });
  repo.rotate();
  if (ctx.output === 'json') print(ctx.output, { rotated: true, dir });
  else console.log(`rotated the keys in ${dir}`);
}

async function resourceCommand(ctx: Context, kindName: string, argv: string[]) {
  const kind = KINDS[kindName];
  const [verb, ...rest] = argv;
  const flagList = Object.keys(kind.flags).map((f) => `--${f}`);
  const toggles = TOGGLES.has(kindName) ? ' [--enable|--disable]' : '';
  const usage = `Usage: strata ${kindName} create ${flagList.map((f) => `[${f} V]`).join(' ')}${toggles}${kindName === 'user' ? ' --password P' : ''} [--id ID] [--request-id R]
       strata ${kindName} list [${Object.keys(kind.filters).map((f) => `--${f} V`).join('] [')}] [--page-size N] [--page-token T]
       strata ${kindName} show ID
       strata ${kindName} update ID ${flagList.map((f) => `[${f} V]`).join(' ')}${toggles}${kindName === 'user' ? ' [--password P]' : ''}
       strata ${kindName} delete ID`;
  const field = kindName;
  const flagOptions: Options = Object.fromEntries(Object.keys(kind.flags).map((f) => [f, { type: 'string' as const }]));
  if (TOGGLES.has(kindName)) Object.assign(flagOptions, { enable: { type: 'boolean' }, disable: { type: 'boolean' } });
  if (kindName === 'user') Object.assign(flagOptions, { password: { type: 'string' }, 'password-stdin': { type: 'boolean' } });
  const client = ctx.client();

  const fromFlags = async (values: Record<string, unknown>) => {
    const resource: Record<string, unknown> = {};
    for (const [flag, f] of Object.entries(kind.flags)) {
      const v = str(values[flag]);
      if (v === undefined) continue;
      resource[f] = f === 'implies' ? await Promise.all(v.split(',').filter(Boolean).map((r) => resolveRole(ctx, r))) : v;
    }
    if (values.enable && values.disable) throw new UsageError('--enable and --disable exclude each other');
    if (values.enable) resource.enabled = true;
    if (values.disable) resource.enabled = false;
    return resource;
  };

  switch (verb) {
    case 'create': {
      const { values } = parse(rest, { ...flagOptions, id: { type: 'string' }, 'request-id': { type: 'string' } }, usage);
      const resource = await fromFlags(values);
      if (str(values.id)) resource.id = values.id;
      const req: Record<string, unknown> = { [field]: resource, requestId: str(values['request-id']) ?? '' };
      if (kindName === 'user') req.password = readPassword(values);
      print(ctx.output, (await client.call(`Create${kind.noun}`, req))[field], kind.columns);
      return;
    }
    case 'list': {
      const filterOptions: Options = Object.fromEntries(Object.keys(kind.filters).map((f) => [f, { type: 'string' as const }]));
      const { values } = parse(rest, { ...filterOptions, 'page-size': { type: 'string' }, 'page-token': { type: 'string' } }, usage);
      const req: Record<string, unknown> = { pageSize: Number(str(values['page-size']) ?? 0), pageToken: str(values['page-token']) ?? '' };
      for (const [flag, f] of Object.entries(kind.filters)) if (str(values[flag])) req[f] = values[flag];
      const res = await client.call(`List${kind.plural}`, req);
      const items = res[Object.keys(res).find((k) => Array.isArray(res[k]))!] as Record<string, unknown>[];
      if (ctx.output === 'json') print(ctx.output, { [snake(kind.plural).slice(1)]: items, next_page_token: res.nextPageToken });
      else {
        print(ctx.output, items, kind.columns);
        if (res.nextPageToken) console.log(`(more: --page-token ${res.nextPageToken})`);
      }
      return;
    }
    case 'show': {
      const { positionals } = parse(rest, {}, usage);
      if (!positionals[0]) throw new UsageError(`name the ${kindName}: strata ${kindName} show ID`);
      print(ctx.output, (await client.call(`Get${kind.noun}`, { id: positionals[0] }))[field]);
      return;
    }
    case 'update': {
      const { values, positionals } = parse(rest, flagOptions, usage);
      if (!positionals[0]) throw new UsageError(`name the ${kindName}: strata ${kindName} update ID ...`);
      const resource = { ...(await fromFlags(values)), id: positionals[0] };
      const paths = Object.keys(resource).filter((k) => k !== 'id').map(snake);
      const password = kindName === 'user' && (values.password || values['password-stdin']) ? readPassword(values) : '';
      if (paths.length === 0 && !password) throw new UsageError(`nothing to change: give at least one of ${flagList.join(', ')}\n\n${usage}`);
      print(ctx.output, (await client.call(`Update${kind.noun}`, { [field]: resource, updateMask: { paths }, password }))[field]);
      return;
    }
    case 'delete': {
      const { positionals } = parse(rest, {}, usage);
      if (!positionals[0]) throw new UsageError(`name the ${kindName}: strata ${kindName} delete ID`);
      await client.call(`Delete${kind.noun}`, { id: positionals[0] });
      if (ctx.output === 'json') print(ctx.output, { deleted: positionals[0] });
      else console.log(`${kindName} ${positionals[0]} deleted`);
      return;
    }
    default:
      throw new UsageError(usage);
  }
}

async function memberCommand(ctx: Context, argv: string[]) {
  const usage = `Usage: strata group member add|remove|check GROUP_ID USER_ID
       strata group member list GROUP_ID`;
  const [verb, ...rest] = argv;
  const { positionals } = parse(rest, {}, usage);
  const [groupId, userId] = positionals;
  if (!groupId || (verb !== 'list' && !userId)) throw new UsageError(usage);
  const client = ctx.client();
  if (verb === 'list') print(ctx.output, (await client.call('ListGroupMembers', { groupId })).users, KINDS.user.columns);
  else if (verb === 'add' || verb === 'remove' || verb === 'check') {
    await client.call(`${verb[0].toUpperCase()}${verb.slice(1)}GroupMember`, { groupId, userId });
    const said = { add: 'added to', remove: 'removed from', check: 'is a member of' }[verb];
    if (ctx.output === 'json') print(ctx.output, { group_id: groupId, user_id: userId, ok: true });
    else console.log(`user ${userId} ${said} group ${groupId}`);
  } else throw new UsageError(usage);
}

async function assignmentCommand(ctx: Context, argv: string[]) {
  const usage = `Usage: strata role assignment create (--user ID | --group ID) (--project ID | --domain ID | --system) --role NAME|ID [--inherited]
       strata role assignment list [--user ID] [--group ID] [--project ID] [--domain ID] [--system] [--role NAME|ID] [--effective]
       strata role assignment show ID
       strata role assignment delete ID`;
  const [verb, ...rest] = argv;
  const options: Options = {
    user: { type: 'string' }, group: { type: 'string' }, project: { type: 'string' }, domain: { type: 'string' },
    system: { type: 'boolean' }, role: { type: 'string' }, inherited: { type: 'boolean' }, effective: { type: 'boolean' },
  };
  const { values, positionals } = parse(rest, options, usage);
  const client = ctx.client();
  const columns = ['id', 'userId', 'groupId', 'projectId', 'domainId', 'system', 'roleId', 'inherited'];
  const fields = async () => ({
    userId: str(values.user) ?? '',
    groupId: str(values.group) ?? '',
    projectId: str(values.project) ?? '',
    domainId: str(values.domain) ?? '',
    system: Boolean(values.system),
    roleId: str(values.role) ? await resolveRole(ctx, values.role as string) : '',
  });
  if (verb === 'create') {
    const f = await fields();
    const assignment = Object.fromEntries(Object.entries({ ...f, inherited: Boolean(values.inherited) }).filter(([, v]) => v !== '' && v !== false));
    print(ctx.output, (await client.call('CreateRoleAssignment', { assignment })).assignment);
  } else if (verb === 'list') {
    const res = await client.call('ListRoleAssignments', { ...(await fields()), effective: Boolean(values.effective) });
    print(ctx.output, res.assignments, columns);
  } else if (verb === 'show' && positionals[0]) {
    print(ctx.output, (await client.call('GetRoleAssignment', { id: positionals[0] })).assignment);
  } else if (verb === 'delete' && positionals[0]) {
    await client.call('DeleteRoleAssignment', { id: positionals[0] });
    if (ctx.output === 'json') print(ctx.output, { deleted: positionals[0] });
    else console.log(`role assignment ${positionals[0]} deleted`);
  } else throw new UsageError(usage);
}

// ---- main ---------------------------------------------------------------------------------

export async function main(argv: string[]): Promise<number> {
  // Global options come before the command.
  let i = 0;
  const globals: Record<string, string> = {};
  while (i < argv.length && argv[i].startsWith('-')) {
    const a = argv[i];
    if (a === '-h' || a === '--help') {
      console.log(HELP);
      return EXIT_CODES.ok;
    }
    const [k, inline] = a.split(/=(.*)/s, 2);
    const key = k.replace(/^--/, '');
    if (!['url', 'ca', 'output', 'token'].includes(key)) {
      console.error(`strata: unknown option ${a}\n\n${HELP}`);
      return EXIT_CODES.usage;
    }
    globals[key] = inline ?? argv[++i];
    i++;
  }
  const [command, ...rest] = argv.slice(i);
  if (!command) {
    console.log(HELP);
    return EXIT_CODES.usage;
  }
  const output = (globals.output ?? 'table') as OutputFormat;
  if (output !== 'table' && output !== 'json') {
    console.error('strata: --output must be table or json');
    return EXIT_CODES.usage;
  }
  const saved = loadSaved();
  const url = globals.url ?? process.env.STRATA_URL ?? saved.url ?? `grpcs://127.0.0.1:${process.env.STRATA_API_PORT ?? 5050}`;
  const ca = globals.ca ?? process.env.STRATA_CA_CERT ?? saved.caCert ?? join(process.env.STRATA_STATE_DIR ?? '.strata', 'tls', 'ca.crt');
  const token = globals.token ?? process.env.STRATA_TOKEN ?? saved.token;
  let client: StrataClient | undefined;
  const ctx: Context = {
    output,
    url,
    ca,
    token,
    client: () => {
      if (!client) {
        if (url.startsWith('grpcs:') && !existsSync(ca)) throw new UsageError(`no CA certificate at ${ca}: pass --ca FILE (the cloud's <state dir>/tls/ca.crt)`);
        client = new StrataClient({ url, caCert: url.startsWith('grpcs:') ? readFileSync(ca) : undefined, token, timeoutMs: 30_000 });
      }
      return client;
    },
  };
  try {
    if (command === 'bootstrap') await bootstrapCommand(ctx, rest);
    else if (command === 'login') await loginCommand(ctx, rest);
    else if (command === 'logout') await logoutCommand(ctx, rest);
    else if (command === 'token') await tokenCommand(ctx, rest);
    else if (command === 'keys') await keysCommand(ctx, rest);
    else if (command === 'group' && rest[0] === 'member') await memberCommand(ctx, rest.slice(1));
    else if (command === 'role' && rest[0] === 'assignment') await assignmentCommand(ctx, rest.slice(1));
    else if (command in KINDS) await resourceCommand(ctx, command, rest);
    else if (COMPUTE_COMMANDS.includes(command)) return await computeCommand(ctx, command, rest);
    else if (NETWORK_COMMANDS.includes(command)) await networkCommand(ctx, command, rest);
    else if (BLOCK_COMMANDS.includes(command)) return await blockCommand(ctx, command, rest);
    else if (OBJECT_COMMANDS.includes(command)) return await objectStorageCommand(ctx, command, rest);
    else if (IMAGE_COMMANDS.includes(command)) return await imageCommand(ctx, command, rest);
    else if (AUDIT_COMMANDS.includes(command)) return await auditCommandOf(ctx, command, rest);
    else if (EVENTS_COMMANDS.includes(command)) return await eventsCommand(ctx, command, rest);
    else if (USAGE_COMMANDS.includes(command)) return await usageCommand(ctx, command, rest);
    else throw new UsageError(`unknown command ${command}\n\n${HELP}`);
    return EXIT_CODES.ok;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`strata: ${e.message}`);
      return EXIT_CODES.usage;
    }
    if (e instanceof ApiCallError) {
      const where = e.field ? ` (field ${e.field})` : e.state ? ` (state ${e.state})` : '';
      console.error(`strata: ${e.details}${where}`);
      if (e.code === 14) console.error(`strata: is the API up at ${url}?`);
      if (e.code === 16 && !token) console.error('strata: log in first: strata login --user NAME --password P');
      return GRPC_TO_EXIT[e.code] ?? EXIT_CODES.error;
    }
    console.error(`strata: ${(e as Error).message}`);
    return EXIT_CODES.error;
  } finally {
    client?.close();
  }
}

if (process.argv[1] && /strata\.mjs$|cli\/main\.ts$/.test(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
