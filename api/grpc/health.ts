// gRPC health checking (grpc.health.v1): Check answers the status of a service ("" is the
// whole server); Watch streams it, first the current status, then every change.
import { status, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

type Req = { service: string };
type Res = { status: ServingStatus };

export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<ServerWritableStream<Req, Res>>>();

  setStatus(service: string, s: ServingStatus): void {
    this.statuses.set(service, s);
    for (const w of this.watchers.get(service) ?? []) w.write({ status: s });
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Every known service NOT_SERVING, and every Watch stream ended: the server is going away. */
  shutdown(): void {
    for (const service of this.statuses.keys()) this.setStatus(service, 'NOT_SERVING');
    for (const set of this.watchers.values()) for (const w of set) w.end();
    this.watchers.clear();
  }

  readonly implementation: UntypedServiceImplementation = {
    Check: (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const s = this.statuses.get(call.request.service ?? '');
      if (s === undefined) callback({ code: status.NOT_FOUND, details: `unknown service "${call.request.service}"` }, null);
      else callback(null, { status: s });
    },
    Watch: (call: ServerWritableStream<Req, Res>) => {
      const service = call.request.service ?? '';
      let set = this.watchers.get(service);
      if (!set) this.watchers.set(service, (set = new Set()));
      set.add(call);
      call.write({ status: this.statuses.get(service) ?? 'SERVICE_UNKNOWN' });
      call.on('cancelled', () => set.delete(call));
      call.on('close', () => set.delete(call));
    },
  };
}
