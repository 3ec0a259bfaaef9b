// The unary RPCs of a service, each wrapped the same way: a server span, the caller
// authenticated from the metadata, its policy rule enforced (on the target given, or by the
// handler once it knows the target: after the tenancy check), and any error turned into a gRPC
// status (an unexpected one logged, and INTERNAL without detail). An RPC without a policy rule
// is refused at start, so none ships unguarded.
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { ServerUnaryCall, sendUnaryData, UntypedServiceImplementation } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../domains/kernel/rejection.js';
import { tracer } from '../infra/telemetry/telemetry.js';
import type { Authenticator } from './auth/authenticator.js';
import { ApiError, toServiceError } from './errors.js';
import type { Caller, Policy, Target } from './policy/policy.js';
import type { Req, Res } from './request.js';

export type Enforce = (target: Target) => void;
export type UnaryHandler = (req: Req, c: Caller, enforce: Enforce) => Promise<Res>;
export type RegisterRpc = (name: string, handler: UnaryHandler, target?: (req: Req, c: Caller) => Target) => void;

export interface UnaryRpcOptions {
  /** "strata.block.v1.VolumeService": names the spans. */
  service: string;
  policy: Policy;
  /** The policy rule of an RPC ("volume:create_volume"). */
  ruleOf: (rpc: string) => string;
  authenticator: Authenticator;
  /** Where the handlers go. */
  impl: UntypedServiceImplementation;
  /** Prefixes the log line of an unexpected error ("block"). */
  label: string;
}

export function unaryRpcs(o: UnaryRpcOptions): RegisterRpc {
  return (name, handler, target) => {
    const rule = o.ruleOf(name);
    if (!o.policy.has(rule)) throw new Error(`RPC ${name} has no policy rule ${rule}`);
    o.impl[name] = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      const span = tracer().startSpan(`${o.service}/${name}`, { kind: SpanKind.SERVER, attributes: { 'rpc.method': name } });
      void context.with(trace.setSpan(context.active(), span), async () => {
        try {
          const c = o.authenticator.authenticate(call.metadata);
          span.setAttribute('strata.user_id', c.userId);
          const enforce: Enforce = (t) => o.policy.enforce(rule, c, t);
          if (target) enforce(target(call.request ?? {}, c));
          callback(null, await handler(call.request ?? {}, c, enforce));
        } catch (e) {
          const err = toServiceError(e);
          if (!(e instanceof ApiError) && !(e instanceof InvalidArgumentError)) console.error(`${o.label} ${name}:`, e);
          span.setStatus({ code: SpanStatusCode.ERROR, message: err.details });
          callback(err as never, null);
        } finally {
          span.end();
        }
      });
    };
  };
}
