/**
 * The errors catalogue: every refusal that crosses a component boundary is a PipelineError carrying whether
 * the sender may retry. Receivers map it to gRPC codes and HTTP statuses (see `toGrpcStatus`/`toHttpStatus`).
 */
/**
 * gRPC status codes (grpc/doc/statuscodes.md; the enum maps numbers back to names too: `GrpcStatus[14]` is
 * 'UNAVAILABLE'). Defined here rather than imported from @grpc/grpc-js, which nothing else at run time needs and
 * whose loading alone costs ≈ 13 MiB of RSS (docs/decisions/0005-grpc-on-node-http2.md).
 */
export enum GrpcStatus {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

export type ErrorCode =
  | 'malformed' // the request cannot be decoded: permanent, INVALID_ARGUMENT / 400
  | 'too_large' // over a size limit: permanent, RESOURCE_EXHAUSTED / 413
  | 'unauthenticated' // UNAUTHENTICATED / 401
  | 'unsupported_media_type' // HTTP 415
  | 'refused' // pipeline refused the data (memory limiter, queue full): retryable, UNAVAILABLE / 503
  | 'unavailable' // downstream or component not available: retryable
  | 'shutting_down' // the service is stopping: retryable
  | 'internal'; // a bug: permanent, INTERNAL / 500

const retryableCodes: ReadonlySet<ErrorCode> = new Set(['refused', 'unavailable', 'shutting_down']);

/** An error that crosses a component boundary. */
export class PipelineError extends Error {
  readonly code: ErrorCode;
  /** Suggested client back-off before retrying, in milliseconds (retryable errors only). */
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipelineError';
    this.code = code;
    this.retryAfterMs = retryableCodes.has(code) ? (options?.retryAfterMs ?? 1000) : undefined;
  }
  get retryable(): boolean {
    return retryableCodes.has(this.code);
  }
}

/** Wrap anything thrown into a PipelineError (unknown errors are internal and permanent). */
export function asPipelineError(err: unknown): PipelineError {
  if (err instanceof PipelineError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PipelineError('internal', message, { cause: err });
}

export function toGrpcStatus(err: PipelineError): GrpcStatus {
  switch (err.code) {
    case 'malformed':
      return GrpcStatus.INVALID_ARGUMENT;
    case 'too_large':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'unauthenticated':
      return GrpcStatus.UNAUTHENTICATED;
    case 'unsupported_media_type':
      return GrpcStatus.INVALID_ARGUMENT;
    case 'refused':
    case 'unavailable':
    case 'shutting_down':
      return GrpcStatus.UNAVAILABLE;
    case 'internal':
      return GrpcStatus.INTERNAL;
  }
}

export function toHttpStatus(err: PipelineError): number {
  switch (err.code) {
    case 'malformed':
      return 400;
    case 'too_large':
      return 413;
    case 'unauthenticated':
      return 401;
    case 'unsupported_media_type':
      return 415;
    case 'refused':
    case 'unavailable':
    case 'shutting_down':
      return 503;
    case 'internal':
      return 500;
  }
}
