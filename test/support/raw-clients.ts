/**
 * Raw OTLP clients for the end-to-end tests: an HTTP POST that always returns the status (even when the
 * server answers early and drops the connection), a gRPC unary call with identity serializers that returns
 * the status and trailers, and a builder of valid requests with known span ids.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { TYPES, protoType } from '../../src/pdata/proto';

export const TRACE_EXPORT = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
export const METRICS_EXPORT = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
export const LOGS_EXPORT = '/opentelemetry.proto.collector.logs.v1.LogsService/Export';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/**
 * POST (or another method) `body` and resolve with the response. With `chunked`, no content-length is sent.
 * Write errors after the response arrived (the server refused early and closed) are ignored.
 */
export function httpRequest(
  port: number,
  path: string,
  body: Uint8Array | string | undefined,
  headers: Record<string, string>,
  opts: { method?: string; chunked?: boolean } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    let responded = false;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'POST',
        agent,
        headers: { ...headers, ...(payload !== undefined && !opts.chunked ? { 'content-length': String(payload.length) } : {}) },
      },
      (res) => {
        responded = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', (err) => reject(err));
      },
    );
    req.on('error', (err) => {
      if (!responded) reject(err);
    });
    if (payload === undefined) req.end();
    else if (opts.chunked) {
      // Several writes so the body really goes out in chunks.
      for (let i = 0; i < payload.length; i += 16 * 1024) req.write(payload.subarray(i, i + 16 * 1024));
      req.end();
    } else req.end(payload);
  });
}

export interface GrpcResult {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata | undefined;
}

const identity = (b: Buffer): Buffer => b;

/** A raw OTLP/gRPC client (bytes in, status out). */
export class RawGrpcClient {
  readonly #client: grpc.Client;
  constructor(port: number, opts: { gzip?: boolean } = {}) {
    this.#client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.default_compression_algorithm': opts.gzip ? 2 : 0,
      'grpc.max_send_message_length': -1,
    });
  }
  /** Call `method` (the trace service's Export unless told otherwise) with `body` and `metadata`. */
  export(body: Uint8Array, timeoutMs = 10_000, method = TRACE_EXPORT, metadata = new grpc.Metadata()): Promise<GrpcResult> {
    const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return new Promise((resolve) => {
      this.#client.makeUnaryRequest(method, identity, identity, buf, metadata, { deadline: Date.now() + timeoutMs }, (err) => {
        if (err === null || err === undefined) resolve({ code: grpc.status.OK, details: '', metadata: undefined });
        else resolve({ code: err.code, details: err.details, metadata: err.metadata });
      });
    });
  }
  close(): void {
    this.#client.close();
  }
}

export interface BuiltRequest {
  bytes: Uint8Array;
  /** OTLP/JSON text of the same request (hex ids). */
  json: string;
  spanIds: string[];
}

/** A valid ExportTraceServiceRequest of `spans` spans for `service`, with fresh random ids. */
export function buildRequest(service: string, spans: number, extra: { resourceAttrs?: Record<string, string> } = {}): BuiltRequest {
  const traceId = randomBytes(16);
  const spanIds: string[] = [];
  const spanObjs = [];
  const start = 1_700_000_000_000_000_000n;
  for (let i = 0; i < spans; i++) {
    const id = randomBytes(8);
    spanIds.push(id.toString('hex'));
    spanObjs.push({
      traceId,
      spanId: id,
      name: `GET /items/{id}`,
      kind: 2,
      startTimeUnixNano: String(start + BigInt(i) * 1000n),
      endTimeUnixNano: String(start + BigInt(i) * 1000n + 5_000_000n),
      attributes: [
        { key: 'http.route', value: { stringValue: '/items/{id}' } },
        { key: 'http.response.status_code', value: { intValue: '200' } },
      ],
      status: { code: 1 },
    });
  }
  const resourceAttrs = [
    { key: 'service.name', value: { stringValue: service } },
    ...Object.entries(extra.resourceAttrs ?? {}).map(([key, v]) => ({ key, value: { stringValue: v } })),
  ];
  const obj = { resourceSpans: [{ resource: { attributes: resourceAttrs }, scopeSpans: [{ scope: { name: 'raw-client' }, spans: spanObjs }] }] };
  const T = protoType(TYPES.exportTraceRequest);
  const bytes = T.encode(T.fromObject(obj)).finish();
  const json = JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: resourceAttrs },
        scopeSpans: [
          { scope: { name: 'raw-client' }, spans: spanObjs.map((s) => ({ ...s, traceId: s.traceId.toString('hex'), spanId: s.spanId.toString('hex') })) },
        ],
      },
    ],
  });
  return { bytes, json, spanIds };
}

/** Poll `probe` every 25 ms until it returns true; throws with `what` after `timeoutMs`. */
export async function until(probe: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
