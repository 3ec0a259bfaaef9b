// The compute API's client of the host agents' ComputeAgentService (agents/compute/console.server.ts):
// a server's console comes from the agent of its host, at the endpoint the host registered, as
// Nova's API asks the compute host. One channel per endpoint, kept until close().
import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { clientConstructor } from '../grpc/service-definition.js';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';

export const COMPUTE_AGENT_SERVICE = 'strata.compute.v1.ComputeAgentService';

type Stub = Client & { GetConsoleOutput: (req: unknown, options: { deadline: number }, cb: (err: ServiceError | null, res: { output: string; host: string }) => void) => void };

export class AgentCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
    this.name = 'AgentCallError';
  }
}

export class AgentConsoleClient {
  private readonly stubs = new Map<string, Stub>();
  private closed = false;

  /** timeoutMs: how long one call may take (an unreachable agent fails sooner: UNAVAILABLE). */
  constructor(private readonly timeoutMs = 5000) {}

  private stub(endpoint: string): Stub {
    if (this.closed) throw new AgentCallError(1, 'the compute API is closing');
    let s = this.stubs.get(endpoint);
    if (!s) {
      const Ctor = clientConstructor(protoRoot(), COMPUTE_AGENT_SERVICE);
      s = new Ctor(endpoint, credentials.createInsecure()) as unknown as Stub;
      this.stubs.set(endpoint, s);
    }
    return s;
  }

  /** The last `length` lines (0: all the agent keeps) of the instance's console, from the agent at `endpoint`. */
  consoleOutput(endpoint: string, instanceId: string, length = 0): Promise<{ output: string; host: string }> {
    return new Promise((resolve, reject) => {
      this.stub(endpoint).GetConsoleOutput({ instanceId, length }, { deadline: Date.now() + this.timeoutMs }, (err, res) =>
        err ? reject(new AgentCallError(err.code, err.details || err.message)) : resolve(res),
      );
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.stubs.values()) s.close();
    this.stubs.clear();
  }
}
