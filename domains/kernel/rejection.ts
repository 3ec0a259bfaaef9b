// A rejection is a returned value, never a thrown exception: deciders stay total and pure.

/** gRPC-aligned codes (architecture invariant 4). */
export type RejectionCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'RESOURCE_EXHAUSTED'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'ABORTED'
  | 'INTERNAL'
  // API-side only (never a decider's): a range outside an object, a backend that cannot answer.
  | 'OUT_OF_RANGE'
  | 'UNAVAILABLE';

export interface Rejection {
  code: RejectionCode;
  message: string;
  /** For INVALID_ARGUMENT: the offending field path. */
  field?: string;
  /** For FAILED_PRECONDITION: the state the aggregate was in. */
  state?: string;
}

export const invalidArgument = (field: string, message: string): Rejection => ({
  code: 'INVALID_ARGUMENT',
  field,
  message: `${field}: ${message}`,
});

export const failedPrecondition = (state: string, message: string): Rejection => ({
  code: 'FAILED_PRECONDITION',
  state,
  message,
});

/** Thrown by payload codecs only (decoding is not deciding); the runtime turns it into a rejection. */
export class InvalidArgumentError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InvalidArgumentError';
  }
}
