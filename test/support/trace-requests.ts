/**
 * Hand-built OTLP trace requests with span ids the test chooses, and a small OTLP/HTTP client that reports
 * the status instead of retrying, for tests that need to see every answer.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { traceRequestFromJson } from '../../src/pdata/otlp-json';

/** `n` distinct 16-hex-digit span ids, unique per `prefix` (0..65535). */
export function spanIds(prefix: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix.toString(16).padStart(4, '0')}${(i + 1).toString(16).padStart(12, '0')}`);
}

/** An encoded ExportTraceServiceRequest with one SERVER span per id (in one trace), each padded with `padBytes`. */
export function traceRequest(ids: readonly string[], opts: { service?: string; padBytes?: number } = {}): Uint8Array {
  const pad = opts.padBytes ? 'x'.repeat(opts.padBytes) : undefined;
  const traceId = `${(ids[0] ?? '0').padEnd(16, '0')}${'a'.repeat(16)}`;
  const spans = ids.map((id, i) => ({
    traceId,
    spanId: id,
    name: `GET /items/{id}`,
    kind: 2,
    startTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n),
    endTimeUnixNano: String(1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n + 5_000_000n),
    attributes: [{ key: 'http.route', value: { stringValue: '/items/{id}' } }, ...(pad === undefined ? [] : [{ key: 'pad', value: { stringValue: pad } }])],
  }));
  return traceRequestFromJson(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: opts.service ?? 'reliability-test' } }] },
          scopeSpans: [{ scope: { name: 'routelens-test' }, spans }],
        },
      ],
    }),
  );
}

export interface PostResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** POST an OTLP/HTTP protobuf body once (no retry) and return the answer; network errors reject. */
export function postTraces(url: string, body: Uint8Array, opts: { headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<PostResult> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-protobuf', 'content-length': body.byteLength, ...opts.headers },
        ...(opts.agent === undefined ? {} : { agent: opts.agent }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
