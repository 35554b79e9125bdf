import { expect } from 'chai';
import { status } from '@grpc/grpc-js';
import { GrpcStatus, PipelineError, toGrpcStatus } from './errors';

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
