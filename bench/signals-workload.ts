/**
 * Python-shaped metrics and logs requests for the `metrics*` and `logs*` scenarios, built from what a real
 * zero-code Python service exported (test/fixtures/python/zero-code-{metrics,logs}.json: examples/python/runtime_app.py
 * under `opentelemetry-instrument` with the system-metrics and logging instrumentations, SDK 1.45.1 / 0.66b1,
 * captured with test/python-e2e/pyhooks/export_log.py). A metrics request is one export of one process (one
 * resource, 34 metrics, 159 data points: process, CPython GC, host CPU/memory/disk/network and the Flask HTTP
 * server histograms); a logs request is one batch of the logging instrumentation (werkzeug access lines and
 * ERROR records with exception attributes and trace context).
 *
 * Each pooled request is the fixture with the resource of one of the workload's pods (service.name, k8s.pod.ip so
 * that k8sattributes finds the pod, a service.instance.id of its own) and its times moved to now; logs requests
 * repeat the fixture's records to `itemsPerRequest`. There is no marker: these scenarios have no latency figures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LogsBatch } from '../src/pdata/logs-batch';
import { MetricsBatch } from '../src/pdata/metrics-batch';
import { logsRequestFromJson, metricsRequestFromJson } from '../src/pdata/otlp-json';
import { PODS, type Pool } from './workload';

export type AppSignal = 'metrics' | 'logs';

const FIXTURES = path.resolve(__dirname, '..', '..', 'test', 'fixtures', 'python');

type Json = Record<string, unknown>;
interface KeyValue {
  key: string;
  value: Json;
}

function fixture(signal: AppSignal): Json {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, `zero-code-${signal}.json`), 'utf8')) as Json;
}

/** Move every `…UnixNano` of `v` by `deltaNs` (keeps the differences between them: start times, intervals). */
function shiftTimes(v: unknown, deltaNs: bigint): unknown {
  if (Array.isArray(v)) return v.map((x) => shiftTimes(x, deltaNs));
  if (v === null || typeof v !== 'object') return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v as Json))
    out[k] = k.endsWith('UnixNano') && typeof x === 'string' && x !== '0' ? String(BigInt(x) + deltaNs) : shiftTimes(x, deltaNs);
  return out;
}

function withResource(resource: Json, i: number): Json {
  const pod = PODS[i % PODS.length] as (typeof PODS)[number];
  const attrs = ((resource.attributes as KeyValue[] | undefined) ?? []).filter((a) => !['service.name', 'service.instance.id', 'k8s.pod.ip'].includes(a.key));
  return {
    ...resource,
    attributes: [
      ...attrs,
      { key: 'service.name', value: { stringValue: pod.service.name } },
      { key: 'service.instance.id', value: { stringValue: `${pod.name}-${i}` } },
      { key: 'k8s.pod.ip', value: { stringValue: pod.ip } },
    ],
  };
}

/**
 * `count` distinct requests of `signal`. Logs requests hold `itemsPerRequest` records (the fixture's, repeated);
 * metrics requests are one export each, whatever `itemsPerRequest` says.
 */
export function buildSignalPool(signal: AppSignal, count: number, itemsPerRequest: number): Pool {
  const base = fixture(signal);
  const now = BigInt(Date.now()) * 1_000_000n;
  const requests: Pool['requests'] = [];
  let items = 0;
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    let body: Uint8Array;
    if (signal === 'metrics') {
      const rm = (base.resourceMetrics as Json[])[0] as Json;
      const shifted = shiftTimes(rm, now - firstTime(rm) + BigInt(i) * 1_000_000n) as Json;
      body = metricsRequestFromJson(JSON.stringify({ resourceMetrics: [{ ...shifted, resource: withResource(rm.resource as Json, i) }] }));
      const n = MetricsBatch.decode(body).dataPointCount;
      requests.push({ bytes: Buffer.from(body), traceIdOffset: -1, spanIdOffset: -1, samples: [], spans: n, traceIds: [] });
      items += n;
    } else {
      const rl = (base.resourceLogs as Json[])[0] as Json;
      const sl = (rl.scopeLogs as Json[])[0] as Json;
      const records = sl.logRecords as Json[];
      const picked = Array.from({ length: itemsPerRequest }, (_, k) => records[(i + k) % records.length] as Json);
      const shifted = shiftTimes(picked, now - BigInt(String(records[0]?.timeUnixNano ?? now))) as Json[];
      body = logsRequestFromJson(
        JSON.stringify({ resourceLogs: [{ ...rl, resource: withResource(rl.resource as Json, i), scopeLogs: [{ ...sl, logRecords: shifted }] }] }),
      );
      const n = LogsBatch.decode(body).logRecordCount;
      requests.push({ bytes: Buffer.from(body), traceIdOffset: -1, spanIdOffset: -1, samples: [], spans: n, traceIds: [] });
      items += n;
    }
    bytes += body.length;
  }
  return { requests, spansPerRequest: items / count, routes: [], spanBytes: bytes / items, attributesPerSpan: 0 };
}

/** The time of the first data point of a ResourceMetrics (OTLP/JSON). */
function firstTime(rm: Json): bigint {
  for (const sm of rm.scopeMetrics as Json[])
    for (const m of sm.metrics as Json[])
      for (const k of ['sum', 'gauge', 'histogram'])
        for (const p of ((m[k] as Json | undefined)?.dataPoints as Json[] | undefined) ?? [])
          if (typeof p.timeUnixNano === 'string') return BigInt(p.timeUnixNano);
  return 0n;
}
