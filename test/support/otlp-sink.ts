/**
 * A test OTLP destination (gRPC and HTTP) that records every request it accepts, decoded by the protobufjs
 * reference codec. It can be told to fail (retryably or not), and stopped and restarted on the same ports.
 */
import * as grpc from '@grpc/grpc-js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as zlib from 'node:zlib';
import { TYPES } from '../../src/pdata/proto';
import { toOtlpJsonObject } from '../../src/pdata/otlp-json';

export interface SinkRequest {
  transport: 'grpc' | 'http';
  path: string;
  body: Buffer;
  headers: Record<string, string>;
}

export interface OtlpJsonSpan {
  traceId: string;
  spanId: string;
  name: string;
  kind?: number;
  attributes?: { key: string; value: Record<string, unknown> }[];
  [k: string]: unknown;
}

const identity = (b: Buffer): Buffer => b;

export class OtlpSink {
  readonly requests: SinkRequest[] = [];
  /** When set, requests are answered with this failure instead of being recorded. */
  failWith: { grpcCode: grpc.status; httpStatus: number } | undefined;
  /** Requests that arrived while paused, waiting to be recorded and answered. */
  readonly #held: (() => void)[] = [];
  #paused = false;
  /** Answer each accepted request this long after recording it (a slow destination: sends stay in flight). */
  answerDelayMs = 0;
  #grpc: grpc.Server | undefined;
  #http: http.Server | undefined;
  grpcPort = 0;
  httpPort = 0;

  get grpcEndpoint(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }
  get httpEndpoint(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  /** Listen on `host` (default 127.0.0.1; 0.0.0.0 for clients in containers). */
  async start(opts: { host?: string } = {}): Promise<this> {
    const host = opts.host ?? '127.0.0.1';
    const grpcServer = new grpc.Server();
    const later = (fn: () => void): void => {
      if (this.#paused) this.#held.push(fn);
      else fn();
    };
    const handler = (path: string) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      later(() => {
        if (this.failWith !== undefined) return cb({ code: this.failWith.grpcCode, details: 'sink told to fail' });
        this.requests.push({
          transport: 'grpc',
          path,
          body: call.request,
          headers: Object.fromEntries(Object.entries(call.metadata.getMap()).map(([k, v]) => [k, String(v)])),
        });
        if (this.answerDelayMs > 0) setTimeout(() => cb(null, Buffer.alloc(0)), this.answerDelayMs);
        else cb(null, Buffer.alloc(0));
      });
    for (const [svc, path] of [
      ['trace', '/opentelemetry.proto.collector.trace.v1.TraceService/Export'],
      ['metrics', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export'],
      ['logs', '/opentelemetry.proto.collector.logs.v1.LogsService/Export'],
    ] as const) {
      grpcServer.addService(
        {
          Export: {
            path,
            requestStream: false,
            responseStream: false,
            requestSerialize: identity,
            requestDeserialize: identity,
            responseSerialize: identity,
            responseDeserialize: identity,
          },
        },
        { Export: handler(svc === 'trace' ? '/v1/traces' : `/v1/${svc}`) },
      );
    }
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(`${host}:${this.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.#grpc = grpcServer;
    const httpServer = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        later(() => {
          if (this.failWith !== undefined) {
            res.writeHead(this.failWith.httpStatus, { 'retry-after': '1' });
            res.end();
            return;
          }
          let body = Buffer.concat(chunks);
          if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
          this.requests.push({
            transport: 'http',
            path: req.url ?? '',
            body,
            headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])),
          });
          const answer = (): void => {
            res.writeHead(200, { 'content-type': 'application/x-protobuf' });
            res.end();
          };
          if (this.answerDelayMs > 0) setTimeout(answer, this.answerDelayMs);
          else answer();
        }),
      );
    });
    await new Promise<void>((resolve) => httpServer.listen(this.httpPort, host, () => resolve()));
    this.httpPort = (httpServer.address() as AddressInfo).port;
    this.#http = httpServer;
    return this;
  }

  /** Hold every request that arrives (unrecorded, unanswered) until resume(): a backend that stalls. */
  pause(): void {
    this.#paused = true;
  }

  /** Record and answer the held requests, and the next ones at once. */
  resume(): void {
    this.#paused = false;
    for (const fn of this.#held.splice(0)) fn();
  }

  /** Requests held by pause(). */
  get heldCount(): number {
    return this.#held.length;
  }

  async stop(): Promise<void> {
    const g = this.#grpc;
    const h = this.#http;
    this.#grpc = undefined;
    this.#http = undefined;
    g?.forceShutdown();
    if (h !== undefined) {
      h.closeAllConnections();
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
  }

  /** All recorded trace requests decoded as OTLP/JSON objects. */
  traceRequests(transport?: 'grpc' | 'http'): Record<string, unknown>[] {
    return this.requests
      .filter((r) => r.path === '/v1/traces' && (transport === undefined || r.transport === transport))
      .map((r) => toOtlpJsonObject(TYPES.exportTraceRequest, r.body));
  }

  /** Every span received, with its resource attributes attached as `resource`. */
  spans(transport?: 'grpc' | 'http'): (OtlpJsonSpan & { resource: Record<string, unknown>; scope: Record<string, unknown> })[] {
    const out: (OtlpJsonSpan & { resource: Record<string, unknown>; scope: Record<string, unknown> })[] = [];
    for (const req of this.traceRequests(transport)) {
      for (const rs of (req.resourceSpans ?? []) as {
        resource?: Record<string, unknown>;
        scopeSpans?: { scope?: Record<string, unknown>; spans?: OtlpJsonSpan[] }[];
      }[]) {
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) out.push({ ...s, resource: rs.resource ?? {}, scope: ss.scope ?? {} });
      }
    }
    return out;
  }

  /** The bodies of the metrics requests received (ExportMetricsServiceRequest bytes), in arrival order. */
  metricsBodies(transport?: 'grpc' | 'http'): Buffer[] {
    return this.requests.filter((r) => r.path === '/v1/metrics' && (transport === undefined || r.transport === transport)).map((r) => r.body);
  }

  /** The bodies of every logs request received (protobuf). */
  logsBodies(transport?: 'grpc' | 'http'): Buffer[] {
    return this.requests.filter((r) => r.path === '/v1/logs' && (transport === undefined || r.transport === transport)).map((r) => r.body);
  }

  spanCount(transport?: 'grpc' | 'http'): number {
    return this.spans(transport).length;
  }

  clear(): void {
    this.requests.length = 0;
  }
}

/** Attributes of an OTLP/JSON span or resource as a plain map of AnyValue objects. */
export function attrMap(attrs: { key: string; value: Record<string, unknown> }[] | undefined): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const a of attrs ?? []) out[a.key] = a.value;
  return out;
}
