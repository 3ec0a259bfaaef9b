// The strata CLI run as a user runs it, against a test cloud: a process of its own (async on
// purpose: the test's process hosts the deciders that answer it), with a private config home and
// the cloud's URL, CA and a token from the environment.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

const CLI = new URL('../../cli/strata.mjs', import.meta.url).pathname;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliCloud {
  url: string;
  tls: { caCertPath: string };
}

export interface CliRunner {
  /** The config home the CLI runs with (HOME and XDG_CONFIG_HOME), for files a test writes there. */
  config: string;
  strata(args: string[], token: string): Promise<Run>;
  /** The JSON a successful `--output json` run printed (fails the test with its stderr otherwise). */
  json(r: Run): any;
}

/** A runner for the cloud `cloud()` returns once the test has started it. */
export function cliRunner(name: string, cloud: () => CliCloud): CliRunner {
  const config = mkdtempSync(join(tmpdir(), `strata-cli-${name}-`));
  return {
    config,
    strata: (args, token) =>
      new Promise((resolve) => {
        const c = cloud();
        execFile(
          process.execPath,
          [CLI, ...args],
          { env: { PATH: process.env.PATH ?? '', HOME: config, XDG_CONFIG_HOME: config, STRATA_URL: c.url, STRATA_CA_CERT: c.tls.caCertPath, STRATA_TOKEN: token }, timeout: 90_000 },
          (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      }),
    json: (r) => {
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    },
  };
}
