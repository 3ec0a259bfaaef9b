// The billing subscriber (`npm run billing`): a process of its own that subscribes to the usage-
// bearing events of the cloud (SubscriptionService, with an admin or service token), meters them
// with the same UsageMeter as the usage read model, prices the usage with a rate card file and
// writes invoices per project and month, to its own SQLite file and as JSON files. Each batch of
// events is committed with the subscription cursor after it in one transaction, so a restart (or
// a kill at any instant) resumes exactly where the ledger stands: nothing lost, nothing twice.
// Prints "ready" once subscribed; SIGTERM/SIGINT commit what was received and end cleanly.
//
// Environment:
//   STRATA_URL                 the API (default: the last `strata login`'s URL, or grpcs://127.0.0.1:5050)
//   STRATA_CA_CERT             its CA certificate (default: the last login's, or .strata/tls/ca.crt)
//   STRATA_TOKEN               a token (admin, all projects); or STRATA_USER + STRATA_PASSWORD with
//                              STRATA_PROJECT (name, in STRATA_PROJECT_DOMAIN, default Default) or
//                              STRATA_PROJECT_ID (logs in again when the token expires); else the
//                              token `strata login` saved
//   STRATA_BILLING_DB          the ledger (default .strata/billing.db)
//   STRATA_BILLING_RATES       the rate card JSON file (see agents/billing/rate-card.example.json)
//   STRATA_BILLING_OUT         where invoice files go (default .strata/invoices)
//   STRATA_BILLING_BATCH       events per transaction at most (default 500)
//   STRATA_BILLING_INVOICE_MS  invoices rewritten at most this often (default 1000), and when caught up
//   STRATA_METERING_BILL       the cloud's metering policy, as the cloud takes it (stopped,shelved; default
//                              none): which states bill besides the running ones
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseRateCard, RateCardError } from '../../domains/metering/billing.js';
import { meteringPolicyFrom } from '../../domains/metering/usage.js';
import { ApiCallError, StrataClient } from '../../cli/client.js';
import { Biller, BILLING_DOMAINS, BILLING_EVENT_TYPES, type StreamedEventMessage } from './biller.js';

const env = process.env;
const fail = (message: string): never => {
  console.error(`billing: ${message}`);
  process.exit(2);
};

interface Saved {
  url?: string;
  caCert?: string;
  token?: string;
}
const saved: Saved = (() => {
  try {
    return JSON.parse(readFileSync(join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'strata', 'credentials.json'), 'utf8')) as Saved;
  } catch {
    return {};
  }
})();

const url = env.STRATA_URL ?? saved.url ?? `grpcs://127.0.0.1:${env.STRATA_API_PORT ?? 5050}`;
const ca = env.STRATA_CA_CERT ?? saved.caCert ?? join(env.STRATA_STATE_DIR ?? '.strata', 'tls', 'ca.crt');
const ratesPath = env.STRATA_BILLING_RATES ?? fail('STRATA_BILLING_RATES: the rate card file is required (see agents/billing/rate-card.example.json)');
let card;
try {
  card = parseRateCard(JSON.parse(readFileSync(ratesPath, 'utf8')));
} catch (e) {
  fail(e instanceof RateCardError ? `${ratesPath}: ${e.message}` : `${ratesPath}: ${(e as Error).message}`);
}
const positive = (name: string, fallback: number) => {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  return Number.isInteger(n) && n > 0 ? n : fail(`${name}: a positive integer, not "${v}"`);
};
const batchSize = positive('STRATA_BILLING_BATCH', 500);
const invoiceMs = positive('STRATA_BILLING_INVOICE_MS', 1000);
const dbPath = env.STRATA_BILLING_DB ?? join(env.STRATA_STATE_DIR ?? '.strata', 'billing.db');
const outDir = env.STRATA_BILLING_OUT ?? join(env.STRATA_STATE_DIR ?? '.strata', 'invoices');

// The cloud's STRATA_METERING_BILL, read as the cloud reads it (infra/main.ts).
let policy;
try {
  policy = meteringPolicyFrom(env.STRATA_METERING_BILL ?? '');
} catch (e) {
  fail(`STRATA_METERING_BILL: ${(e as Error).message}`);
}
const biller = new Biller({ dbPath, outDir, card: card!, policy });
biller.sweepOutDir();
// The files and the invoice tables follow the ledger as committed (a killed process may have left them behind).
biller.writeInvoices();

const client = new StrataClient({ url, caCert: ca.length > 0 && url.startsWith('grpcs:') ? ca : undefined });

async function login(): Promise<string> {
  const password = env.STRATA_PASSWORD;
  if (!env.STRATA_USER || !password) throw new Error('no token: set STRATA_TOKEN, or STRATA_USER and STRATA_PASSWORD (with STRATA_PROJECT or STRATA_PROJECT_ID), or `strata login` first');
  const scope = env.STRATA_PROJECT_ID ? { projectId: env.STRATA_PROJECT_ID } : env.STRATA_PROJECT ? { project: { name: env.STRATA_PROJECT, domainName: env.STRATA_PROJECT_DOMAIN ?? 'Default' } } : undefined;
  const res = await client.call('IssueToken', { password: { userName: env.STRATA_USER, domainName: env.STRATA_USER_DOMAIN ?? 'Default', password }, ...(scope ? { scope } : {}) });
  return res.token as string;
}
let token = env.STRATA_TOKEN ?? (env.STRATA_USER ? '' : saved.token ?? '');
const canLogin = Boolean(env.STRATA_USER && env.STRATA_PASSWORD) && !env.STRATA_TOKEN;

let stopping = false;
let cancel: (() => void) | undefined;
let ready = false;
let flushTimer: NodeJS.Timeout | undefined;
let invoiceTimer: NodeJS.Timeout | undefined;
let lastInvoicesAt = 0;

/** Batches committed since the invoices were last written. */
let dirty = false;

function invoicesSoon(now = false): void {
  if (!dirty) return;
  if (now || Date.now() - lastInvoicesAt >= invoiceMs) {
    dirty = false;
    clearTimeout(invoiceTimer);
    invoiceTimer = undefined;
    lastInvoicesAt = Date.now();
    biller.writeInvoices();
  } else invoiceTimer ??= setTimeout(() => {
    invoiceTimer = undefined;
    invoicesSoon(true);
  }, invoiceMs - (Date.now() - lastInvoicesAt));
}

function flush(): void {
  clearTimeout(flushTimer);
  flushTimer = undefined;
  if (biller.flush()) {
    dirty = true;
    invoicesSoon();
  }
}

/** An error of ours while taking a message (a payload we cannot meter, a failed commit): the stream is cancelled and the process stops. */
let fatal: Error | undefined;

function onMessage(m: { event?: StreamedEventMessage; progress?: { cursor: string; caughtUp: boolean } }): void {
  if (stopping || fatal) return;
  try {
    take(m);
  } catch (e) {
    fatal = e as Error;
    cancel?.();
  }
}

function take(m: { event?: StreamedEventMessage; progress?: { cursor: string; caughtUp: boolean } }): void {
  if (m.event) {
    biller.event(m.event);
    if (biller.pendingEvents >= batchSize) flush();
    else flushTimer ??= setTimeout(flush, 50);
  } else if (m.progress) {
    biller.progress(m.progress.cursor);
    flush();
    if (m.progress.caughtUp) invoicesSoon(true);
    if (!ready) {
      ready = true;
      console.log(`ready (${BILLING_EVENT_TYPES.length} event types of ${BILLING_DOMAINS.join(', ')}; ${biller.cursor ? 'resuming from the saved cursor' : 'from the start of the log'})`);
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(): Promise<void> {
  let backoff = 250;
  while (!stopping) {
    try {
      if (!token) token = await login();
      const request = {
        domains: BILLING_DOMAINS,
        eventTypes: BILLING_EVENT_TYPES,
        ...(biller.cursor ? { cursor: biller.cursor } : { position: 'START_POSITION_EARLIEST' }),
      };
      const s = client.stream('Subscribe', request, onMessage, token);
      cancel = s.cancel;
      await s.done;
      if (fatal) throw fatal;
      backoff = 250;
    } catch (e) {
      const err = e as ApiCallError;
      // A bad payload (or a failed batch) is not the network's: stop rather than miscount.
      if (fatal) throw fatal;
      if (!(err instanceof ApiCallError)) throw e;
      if (err.code === 16 && canLogin) token = ''; // UNAUTHENTICATED: the token expired; log in again
      else if (err.code === 16 || err.code === 7) throw new Error(`the subscription was refused (${err.details}): billing needs an admin or service token for every project`);
      // INVALID_ARGUMENT: the saved cursor is not this cloud's (a log started over?); resuming elsewhere would miscount.
      else if (err.code === 3) throw new Error(`the subscription was refused (${err.details}): is ${dbPath} from another cloud? A fresh database replays the log`);
      if (!stopping) console.error(`billing: the subscription ended (${err.details ?? err.message}); resuming from the last committed cursor`);
    } finally {
      cancel = undefined;
    }
    // What came before the stream ended is committed, so the next one resumes right after it.
    flush();
    if (stopping) return;
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 5_000);
  }
}

async function stop(code = 0): Promise<never> {
  stopping = true;
  cancel?.();
  try {
    flush();
    invoicesSoon(true);
    biller.close();
  } catch (e) {
    console.error(`billing: at exit: ${(e as Error).message}`);
    code ||= 1;
  }
  client.close();
  process.exit(code);
}

process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

run().then(
  () => undefined,
  (e: Error) => {
    console.error(`billing: ${e.message}`);
    void stop(1);
  },
);
