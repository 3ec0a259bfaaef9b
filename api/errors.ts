// The error mapping of architecture invariant 4: a rejection (or an API-side refusal) becomes a
// gRPC status with the same code, a message that names the field or state, and trailing
// metadata strata-field / strata-state for programs.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { Rejection, RejectionCode } from '../domains/kernel/rejection.js';
import { InvalidArgumentError } from '../domains/kernel/rejection.js';

export const GRPC_STATUS: Record<RejectionCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
  ABORTED: status.ABORTED,
  INTERNAL: status.INTERNAL,
  OUT_OF_RANGE: status.OUT_OF_RANGE,
  UNAVAILABLE: status.UNAVAILABLE,
};

/** A refusal of the API: thrown inside handlers, turned into a gRPC status at the edge. */
export class ApiError extends Error {
  constructor(readonly rejection: Rejection) {
    super(rejection.message);
    this.name = 'ApiError';
  }
}

export const refuse = (code: RejectionCode, message: string, extra: Partial<Rejection> = {}): ApiError =>
  new ApiError({ code, message, ...extra });

export const invalid = (field: string, message: string): ApiError =>
  new ApiError({ code: 'INVALID_ARGUMENT', field, message: `${field}: ${message}` });

/** Any error thrown by a handler, as a gRPC status. Unexpected errors are INTERNAL with no detail leaked. */
export function toServiceError(e: unknown): Partial<ServiceError> {
  let rejection: Rejection;
  if (e instanceof ApiError) rejection = e.rejection;
  else if (e instanceof InvalidArgumentError) rejection = { code: 'INVALID_ARGUMENT', field: e.field, message: e.message };
  else rejection = { code: 'INTERNAL', message: 'internal error; see the server log' };
  const metadata = new Metadata();
  if (rejection.field) metadata.set('strata-field', rejection.field);
  if (rejection.state) metadata.set('strata-state', rejection.state);
  return { code: GRPC_STATUS[rejection.code], details: rejection.message, metadata };
}
