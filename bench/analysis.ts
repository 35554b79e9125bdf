/**
 * What trace analysis and tail capture cost, in process, on the benchmark's pooled requests (512 Python-shaped
 * spans each, fresh trace ids per request as the `why` scenarios send them): CPU per span of the routelatency
 * connector with analysis off and on, and of tail_capture behind it; memory the analysis holds per trace in flight.
 * A virtual clock advances as a 50k spans/s load would (one request every 10.24 ms), so decision waits expire as
 * they would live. No sockets, no collector. The end-to-end figures are `npm run bench -- --scenarios why10k,why50k`.
 *
 *   npm run build && node --expose-gc dist/bench/analysis.js [--rounds 5 --requests 3000] [--only off,on,tail]
 */
import pino from 'pino';
import { ConfigErrorList } from '../src/core/schema';
import { Telemetry } from '../src/core/telemetry';
import type { Component, Host } from '../src/core/component';
import { routeLatencyConfigSchema } from '../src/connectors/routelatency/config';
import { RouteLatencyConnector } from '../src/connectors/routelatency/factory';
import { tailCaptureConfigSchema } from '../src/processors/tailcapture/config';
import { TailCaptureProcessor } from '../src/processors/tailcapture/processor';
import { TraceBatch } from '../src/pdata/trace-batch';
import { WHY_NUM_TRACES } from './configs';
import { SPANS_PER_REQUEST, buildPool } from './workload';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

const REQUEST_INTERVAL_MS = (SPANS_PER_REQUEST / 50_000) * 1000;
const gc = (globalThis as { gc?: () => void }).gc;

interface Setup {
  name: string;
  analysis: boolean;
  tail: boolean;
}

async function run(setup: Setup, rounds: number, requests: number): Promise<void> {
  const pool = buildPool(64);
  let now = Date.now();
  const clock = { now: () => now };
  const settings = (id: string): { id: string; logger: pino.Logger; telemetry: Telemetry } => ({
    id,
    logger: pino({ level: 'silent' }),
    telemetry: new Telemetry(),
  });
  let forwarded = 0;
  const tailConfig = tailCaptureConfigSchema.parse(
    { decision_wait: '10s', max_trace_wait: '10s', num_traces: WHY_NUM_TRACES },
    'tail_capture',
    new ConfigErrorList(),
  );
  const sink = { consumeTraces: async (b: TraceBatch): Promise<void> => void (forwarded += b.spanCount) };
  const tail = setup.tail ? new TailCaptureProcessor(settings('tail_capture'), tailConfig, sink, { now: clock.now }) : undefined;
  const connector = new RouteLatencyConnector(
    settings('routelatency'),
    routeLatencyConfigSchema.parse({ windows: ['1m', '5m', '1h'], analysis: { enabled: setup.analysis } }, 'routelatency', new ConfigErrorList()),
    { traces: tail, metrics: undefined },
    clock,
  );
  if (tail !== undefined) {
    const host: Host = {
      getExtension: () => undefined,
      components: (k) => new Map<string, Component>(k === 'connector' ? [['routelatency', connector]] : []),
      healthy: () => true,
    };
    await tail.start(host);
  }
  let seq = 0;
  const send = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const req = pool.requests[seq % pool.requests.length];
      if (req === undefined) throw new Error('empty pool');
      seq++;
      for (const off of req.traceIds) req.bytes.writeUInt32BE(seq >>> 0, off + 12);
      await connector.consumeTraces(TraceBatch.decode(req.bytes), {});
      now += REQUEST_INTERVAL_MS;
      if (seq % 25 === 0) {
        connector.analyzer?.expire(now);
        tail?.expire(now);
      }
    }
  };
  await send(requests); // warm-up: JIT, routes, steady state of what is held
  const perSpan: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    await send(requests);
    const cpu = process.cpuUsage(cpu0);
    perSpan.push(((cpu.user + cpu.system) * 1000) / (requests * SPANS_PER_REQUEST));
  }
  perSpan.sort((a, b) => a - b);
  const median = perSpan[Math.floor(perSpan.length / 2)] as number;
  gc?.();
  const heap = process.memoryUsage();
  const a = connector.analyzer?.stats();
  const t = tail?.stats();
  console.log(
    `${setup.name.padEnd(34)} median ${median.toFixed(0).padStart(5)} ns CPU per span (min ${(perSpan[0] as number).toFixed(0)}, max ${(perSpan[perSpan.length - 1] as number).toFixed(0)}); ` +
      `heap ${(heap.heapUsed / 2 ** 20).toFixed(1)} MiB + buffers ${(heap.arrayBuffers / 2 ** 20).toFixed(1)} MiB` +
      (a === undefined
        ? ''
        : `; analysis: ${a.tracesInFlight} traces / ${a.spansInFlight} spans in flight (est. ${(a.bytesInFlight / 2 ** 20).toFixed(1)} MiB), ${a.requestsAnalysed} requests analysed`) +
      (t === undefined ? '' : `; tail: ${t.tracesInFlight} traces held, ${(t.retainedBytes / 2 ** 20).toFixed(1)} MiB retained, ${forwarded} spans forwarded`),
  );
  await tail?.shutdown();
  await connector.shutdown();
}

async function main(): Promise<void> {
  const rounds = option('rounds', 5);
  const requests = option('requests', 3000);
  console.log(
    `${rounds} rounds of ${requests} requests × ${SPANS_PER_REQUEST} spans, virtual 50k spans/s${gc === undefined ? ' (run with --expose-gc for the heap figures)' : ''}`,
  );
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  for (const setup of [
    { key: 'off', name: 'routelatency, analysis off', analysis: false, tail: false },
    { key: 'on', name: 'routelatency, analysis on', analysis: true, tail: false },
    { key: 'tail', name: 'routelatency (analysis) + tail_capture', analysis: true, tail: true },
  ]) {
    if (only === undefined || only.split(',').includes(setup.key)) await run(setup, rounds, requests);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
