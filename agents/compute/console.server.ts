// What only a compute host can answer, served by its agent over gRPC (ComputeAgentService,
// proto/strata/compute/v1/agent_service.proto): today GetConsoleOutput, the guest's serial console
// from the host's driver, as Nova's API asks the compute host for it. The agent registers the
// address of this server as its host's endpoint (RegisterHost.endpoint); the compute API looks
// it up in its read model and calls here (api/compute/agent-console.ts).
//
// Plain gRPC with no token: the service is for the control plane, on loopback by default
// (STRATA_AGENT_LISTEN); put it on a trusted network only.
import { status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { COMPUTE_AGENT_SERVICE } from '../../api/compute/agent-console.js';
import { startGrpcServer, type GrpcServer } from '../../api/grpc/server.js';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { ComputeDriver } from './driver.js';

/** At most this many lines are asked for at once (Nova caps nothing; this keeps a reply bounded). */
const MAX_LENGTH = 1_000_000;

export interface ConsoleServerOptions {
  /** "host:port" to listen on; port 0: any free port. IPv6 hosts in brackets ("[::1]:0"). */
  listen: string;
  /** The endpoint others reach this server at; default: the listen address with the port bound (the machine's hostname for a wildcard address). */
  advertise?: string;
  /** The host of this agent that runs the instance, with its driver; undefined: none of them. */
  locate: (instanceId: string) => { hostId: string; driver: ComputeDriver } | undefined;
}

export interface ConsoleServer {
  /** What the agent registers: where the compute API calls it. */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** Splits "host:port" (or "[v6]:port"); throws naming the setting when it is not that. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new Error(`listen address must be host:port (port 0 for any free one), got "${listen}"`);
  return { host: m[1], port };
}

const WILDCARD = new Set(['0.0.0.0', '[::]', '[0:0:0:0:0:0:0:0]']);

type Req = { instanceId?: string; length?: number };

export async function startConsoleServer(o: ConsoleServerOptions): Promise<ConsoleServer> {
  const { host, port } = parseListen(o.listen);
  const implementation = {
    GetConsoleOutput: (call: ServerUnaryCall<Req, unknown>, callback: sendUnaryData<unknown>) => {
      const id = String(call.request.instanceId ?? '');
      const length = Number(call.request.length ?? 0);
      void (async () => {
        if (id === '') return callback({ code: status.INVALID_ARGUMENT, details: 'instance_id: is required' });
        if (!Number.isInteger(length) || length < 0 || length > MAX_LENGTH) {
          return callback({ code: status.INVALID_ARGUMENT, details: `length: must be between 0 and ${MAX_LENGTH}, got ${call.request.length}` });
        }
        const at = o.locate(id);
        // The driver has the last word: the log may place a guest here that the hypervisor lost.
        if (!at || !(await at.driver.list()).includes(id)) {
          return callback({ code: status.NOT_FOUND, details: `Instance ${id} is not on ${at ? `host ${at.hostId}` : 'any host of this agent'}` });
        }
        const output = await at.driver.consoleOutput(id, length || undefined);
        callback(null, { output, host: at.hostId });
      })().catch((e: Error) => callback({ code: status.INTERNAL, details: `console of ${id}: ${e.message}` }));
    },
  };
  const server: GrpcServer = await startGrpcServer({
    host,
    port,
    tls: 'insecure',
    root: protoRoot(),
    services: [{ name: COMPUTE_AGENT_SERVICE, implementation }],
  });
  const endpoint = o.advertise || `${WILDCARD.has(host) ? hostname() : host}:${server.port}`;
  return { endpoint, port: server.port, close: () => server.close(500) };
}
