/**
 * The Collector's process metrics (`otelcol_process_*`, the names its dashboards and alerts use), read at scrape
 * time: resident memory, CPU seconds, V8 heap in use and reserved, uptime. With `--workers N` each worker
 * reports its own resources and /metrics sums them (the primary, which only answers queries, is not counted);
 * uptime comes from the primary alone (a sum of uptimes means nothing).
 */
import { processHeapTrimmer } from '../v8/heap-trim';
import type { Telemetry } from '../core/telemetry';

export function registerProcessMetrics(t: Telemetry, opts: { resources: boolean; uptime: boolean }): void {
  if (opts.resources) registerResources(t);
  if (!opts.uptime) return;
  t.collector(() => [
    {
      name: 'otelcol_process_uptime_seconds',
      help: 'Uptime of the process [s].',
      type: 'counter',
      unit: 'seconds',
      samples: [{ suffix: '_total', labels: {}, value: process.uptime() }],
    },
  ]);
}

function registerResources(t: Telemetry): void {
  t.collector(() => {
    const trim = processHeapTrimmer();
    if (trim === undefined) return [];
    return [
      {
        name: 'routelens_process_heap_trims',
        help: 'Incremental full garbage collections V8 ran when asked at a light load, to keep the heap near its live size (v8/heap-trim.ts).',
        type: 'counter' as const,
        samples: [{ suffix: '_total', labels: {}, value: trim.collections }],
      },
    ];
  });
  t.gauge('otelcol_process_memory_rss_bytes', 'Total physical memory (resident set size) [bytes].', {}, () => process.memoryUsage.rss());
  t.gauge('otelcol_process_runtime_heap_alloc_bytes', 'Bytes of allocated heap objects (V8 heap used) [bytes].', {}, () => process.memoryUsage().heapUsed);
  t.gauge('otelcol_process_runtime_total_sys_memory_bytes', 'Memory reserved by the runtime: V8 heap and external buffers [bytes].', {}, () => {
    const m = process.memoryUsage();
    return m.heapTotal + m.external;
  });
  t.collector(() => {
    const cpu = process.cpuUsage();
    return [
      {
        name: 'otelcol_process_cpu_seconds',
        help: 'Total CPU user and system time in seconds [s].',
        type: 'counter' as const,
        unit: 'seconds',
        samples: [{ suffix: '_total', labels: {}, value: (cpu.user + cpu.system) / 1e6 }],
      },
    ];
  });
}
