import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { GrpcStatus, PipelineError, asPipelineError, toGrpcStatus, toHttpStatus, type ErrorCode } from './errors';

describe('errors catalogue', () => {
  it("GrpcStatus has grpc-js's codes, numbers and names", () => {
    const theirs = Object.entries(status).filter(([k]) => Number.isNaN(Number(k)));
    const ours = Object.entries(GrpcStatus).filter(([k]) => Number.isNaN(Number(k)));
    expect(ours).to.deep.equal(theirs);
    expect(GrpcStatus[14]).to.equal('UNAVAILABLE');
  });

  it('maps retryable refusals to UNAVAILABLE and malformed data to INVALID_ARGUMENT', () => {
    expect(toGrpcStatus(new PipelineError('refused', 'queue full'))).to.equal(GrpcStatus.UNAVAILABLE);
    expect(toGrpcStatus(new PipelineError('malformed', 'bad'))).to.equal(GrpcStatus.INVALID_ARGUMENT);
  });
});

describe('error codes to statuses', () => {
  /** Every code: gRPC status, HTTP status, and whether the sender may retry (then after 1 s unless told). */
  const table: [ErrorCode, GrpcStatus, number, boolean][] = [
    ['malformed', GrpcStatus.INVALID_ARGUMENT, 400, false],
    ['too_large', GrpcStatus.RESOURCE_EXHAUSTED, 413, false],
    ['unauthenticated', GrpcStatus.UNAUTHENTICATED, 401, false],
    ['unsupported_media_type', GrpcStatus.INVALID_ARGUMENT, 415, false],
    ['refused', GrpcStatus.UNAVAILABLE, 503, true],
    ['unavailable', GrpcStatus.UNAVAILABLE, 503, true],
    ['shutting_down', GrpcStatus.UNAVAILABLE, 503, true],
    ['internal', GrpcStatus.INTERNAL, 500, false],
  ];

  it('maps every code as the table says, with a retry hint only where a retry may help', () => {
    for (const [code, grpcStatus, httpStatus, retryable] of table) {
      const e = new PipelineError(code, 'why');
      expect([code, toGrpcStatus(e), toHttpStatus(e), e.retryable, e.retryAfterMs]).to.deep.equal([
        code,
        grpcStatus,
        httpStatus,
        retryable,
        retryable ? 1000 : undefined,
      ]);
      expect(new PipelineError(code, 'why', { retryAfterMs: 250 }).retryAfterMs).to.equal(retryable ? 250 : undefined);
    }
  });

  it('wraps anything else thrown as an internal, permanent error that keeps the cause', () => {
    const cause = new TypeError('x is undefined');
    const e = asPipelineError(cause);
    expect([e.code, e.retryable, e.message, e.cause]).to.deep.equal(['internal', false, 'x is undefined', cause]);
    expect(asPipelineError('a string').message).to.equal('a string');
    const p = new PipelineError('refused', 'full');
    expect(asPipelineError(p)).to.equal(p);
  });
});
