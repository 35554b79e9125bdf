import { expect } from 'chai';
import fc from 'fast-check';
import { TYPES, protoType } from './proto';
import { decodePartialSuccess, decodeRetryInfo, decodeRpcStatus, encodeRetryInfo, encodeRpcStatus } from './rpc-status';

// protobufjs, loaded from proto/, is the reference for the hand-written codec.
const Status = protoType(TYPES.rpcStatus);
const RetryInfo = protoType(TYPES.retryInfo);
const RETRY_INFO_URL = 'type.googleapis.com/google.rpc.RetryInfo';

const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const text = fc.string({ unit: 'grapheme', maxLength: 60 });
/** Delays as the receiver sets them (whole ms) up to a day, and any int64-safe seconds with any nanos. */
const retryDelay = fc.record({ seconds: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }), nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }) });
const otherDetail = fc.record({ typeUrl: fc.constantFrom('type.googleapis.com/google.rpc.ErrorInfo', '', 'x'), value: fc.uint8Array({ maxLength: 20 }) });

function viaProtobufjs(code: number, message: string, details: { typeUrl: string; value: Uint8Array }[]): Uint8Array {
  return Status.encode(Status.create({ code, message, details })).finish();
}

describe('pdata/rpc-status: google.rpc.Status, RetryInfo and partial_success against protobufjs', () => {
  it('encodeRpcStatus writes what protobufjs reads back as the same Status and RetryInfo (property)', () => {
    fc.assert(
      fc.property(int32, text, fc.option(fc.integer({ min: 0, max: 86_400_000 }), { nil: undefined }), (code, message, retryAfterMs) => {
        const o = Status.toObject(Status.decode(encodeRpcStatus(code, message, retryAfterMs)), { longs: Number, defaults: true }) as {
          code: number;
          message: string;
          details: { typeUrl: string; value: Uint8Array }[];
        };
        expect(o.code).to.equal(code);
        expect(o.message).to.equal(message);
        if (retryAfterMs === undefined) {
          expect(o.details).to.deep.equal([]);
          return;
        }
        expect(o.details.map((d) => d.typeUrl)).to.deep.equal([RETRY_INFO_URL]);
        const ri = RetryInfo.toObject(RetryInfo.decode((o.details[0] as { value: Uint8Array }).value), { longs: Number, defaults: true }) as {
          retryDelay: { seconds: number; nanos: number };
        };
        expect(ri.retryDelay.seconds * 1000 + ri.retryDelay.nanos / 1e6).to.equal(retryAfterMs);
      }),
      { numRuns: 500 },
    );
  });

  it('decodeRpcStatus reads what protobufjs writes, a RetryInfo among other details included (property)', () => {
    fc.assert(
      fc.property(
        int32,
        text,
        fc.array(otherDetail, { maxLength: 3 }),
        fc.option(retryDelay, { nil: undefined }),
        fc.nat(3),
        (code, message, others, delay, at) => {
          const details: { typeUrl: string; value: Uint8Array }[] = [...others];
          if (delay !== undefined)
            details.splice(Math.min(at, details.length), 0, {
              typeUrl: RETRY_INFO_URL,
              value: RetryInfo.encode(RetryInfo.create({ retryDelay: delay })).finish(),
            });
          const got = decodeRpcStatus(viaProtobufjs(code, message, details));
          expect(got).to.deep.equal({ code, message, retryAfterMs: delay === undefined ? undefined : delay.seconds * 1000 + delay.nanos / 1e6 });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('encodeRetryInfo and decodeRetryInfo agree with protobufjs both ways (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 86_400_000 }), retryDelay, (ms, delay) => {
        const ri = RetryInfo.toObject(RetryInfo.decode(encodeRetryInfo(ms)), { longs: Number, defaults: true }) as {
          retryDelay: { seconds: number; nanos: number };
        };
        expect(ri.retryDelay.seconds * 1000 + ri.retryDelay.nanos / 1e6).to.equal(ms);
        expect(decodeRetryInfo(RetryInfo.encode(RetryInfo.create({ retryDelay: delay })).finish())).to.equal(delay.seconds * 1000 + delay.nanos / 1e6);
      }),
      { numRuns: 300 },
    );
    expect(decodeRetryInfo(new Uint8Array(0))).to.equal(undefined);
  });

  it('decodePartialSuccess reads both response types as protobufjs writes them (property)', () => {
    const cases = [
      { type: protoType(TYPES.exportTraceResponse), key: 'rejectedSpans' },
      { type: protoType(TYPES.exportMetricsResponse), key: 'rejectedDataPoints' },
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...cases),
        fc.option(fc.record({ rejected: fc.integer({ min: 0, max: 2 ** 40 }), message: text }), { nil: undefined }),
        ({ type, key }, p) => {
          const bytes = type.encode(type.create(p === undefined ? {} : { partialSuccess: { [key]: p.rejected, errorMessage: p.message } })).finish();
          const want = p === undefined || (p.rejected === 0 && p.message === '') ? undefined : { rejected: p.rejected, message: p.message };
          expect(decodePartialSuccess(bytes)).to.deep.equal(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary or truncated bytes: a broken status reads as undefined (fuzz)', () => {
    const valid = encodeRpcStatus(14, 'unavailable', 1500);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.nat(valid.length).map((n) => valid.subarray(0, n)),
        ),
        (bytes) => {
          for (const decode of [decodeRpcStatus, decodeRetryInfo, decodePartialSuccess]) expect(() => decode(bytes)).not.to.throw();
        },
      ),
      { numRuns: 1000 },
    );
    // A length prefix running past the end is malformed, not a shorter message.
    expect(decodeRpcStatus(Uint8Array.of(0x12, 0x05, 0x61))).to.equal(undefined);
  });
});
