/**
 * gRPC calls over node:http2 with frames the test makes itself (any compressed flag, any declared length, any
 * grpc-encoding), reading back the HTTP status, headers, trailers, data and the grpc-status wherever it came (in
 * trailers, or in the headers of a trailers-only answer). Also a call the client cancels part way.
 */
import * as http2 from 'node:http2';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The 5-byte prefix (compressed flag, big-endian length) and the message; `declaredLength` may lie. */
export function grpcFrame(message: Uint8Array, opts: { compressed?: number; declaredLength?: number } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = opts.compressed ?? 0;
  prefix.writeUInt32BE(opts.declaredLength ?? message.length, 1);
  return Buffer.concat([prefix, message]);
}

export interface H2Answer {
  httpStatus: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  grpcStatus: number | undefined;
  /** grpc-message, percent-decoded. */
  grpcMessage: string | undefined;
  /** A header of the trailers, or of the headers of a trailers-only answer. */
  status(name: string): string | undefined;
}

export interface H2CallOptions {
  path?: string;
  headers?: Record<string, string>;
  /** Send only this many bytes of the body, then cancel the call (RST_STREAM CANCEL) and resolve undefined. */
  cancelAfterBytes?: number;
  /** Send the whole body, and cancel the call (RST_STREAM CANCEL) when this settles; resolve undefined. */
  cancelWhen?: Promise<unknown>;
}

/** One call on a connection of its own. Resolves with the answer, or undefined for a call the client cancelled. */
export function h2Call(port: number, body: Uint8Array, opts: H2CallOptions = {}): Promise<H2Answer | undefined> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': opts.path ?? TRACE_EXPORT_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...opts.headers,
    });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('close', () => {
      session.close();
      if (opts.cancelAfterBytes !== undefined || opts.cancelWhen !== undefined) return resolve(undefined);
      const pick = (name: string): string | undefined => {
        const v = trailers[name] ?? headers[name];
        return v === undefined ? undefined : String(v);
      };
      const code = pick('grpc-status');
      const message = pick('grpc-message');
      resolve({
        httpStatus: Number(headers[':status']),
        headers,
        trailers,
        data: Buffer.concat(chunks),
        grpcStatus: code === undefined ? undefined : Number(code),
        grpcMessage: message === undefined ? undefined : decodeURIComponent(message),
        status: pick,
      });
    });
    if (opts.cancelAfterBytes !== undefined) {
      req.write(Buffer.from(body.subarray(0, opts.cancelAfterBytes)), () => req.close(http2.constants.NGHTTP2_CANCEL));
    } else {
      req.end(Buffer.from(body));
      const cancel = (): void => req.close(http2.constants.NGHTTP2_CANCEL);
      opts.cancelWhen?.then(cancel, cancel);
    }
  });
}
