/** The Collector's process metrics, under their names, read at scrape time. */
import { expect } from 'chai';
import { Telemetry } from '../core/telemetry';
import { processHeapTrimmer } from '../v8/heap-trim';
import { registerProcessMetrics } from './process-metrics';

function byName(t: Telemetry): Map<string, { type: string; unit: string | undefined; values: number[] }> {
  return new Map(t.families().map((f) => [f.name, { type: f.type, unit: f.unit, values: f.samples.map((s) => s.value) }]));
}

describe('process metrics', () => {
  it('a worker reports its resources under the Collector names; the primary only its uptime', () => {
    const worker = new Telemetry();
    registerProcessMetrics(worker, { resources: true, uptime: false });
    expect([...byName(worker).keys()].sort()).to.deep.equal([
      'otelcol_process_cpu_seconds',
      'otelcol_process_memory_rss_bytes',
      'otelcol_process_runtime_heap_alloc_bytes',
      'otelcol_process_runtime_total_sys_memory_bytes',
      // Only where the heap trimmer runs (main and workers start it; nothing in a test process does).
      ...(processHeapTrimmer() === undefined ? [] : ['routelens_process_heap_trims']),
    ]);
    const primary = new Telemetry();
    registerProcessMetrics(primary, { resources: false, uptime: true });
    expect([...byName(primary).keys()]).to.deep.equal(['otelcol_process_uptime_seconds']);
  });

  it('reads the values at each scrape: memory and heap as the process sees them, CPU and uptime never going back', () => {
    const t = new Telemetry();
    registerProcessMetrics(t, { resources: true, uptime: true });
    const first = byName(t);
    const rss = first.get('otelcol_process_memory_rss_bytes')?.values[0] as number;
    const heap = first.get('otelcol_process_runtime_heap_alloc_bytes')?.values[0] as number;
    const sys = first.get('otelcol_process_runtime_total_sys_memory_bytes')?.values[0] as number;
    expect(rss).to.be.greaterThan(heap);
    expect(sys).to.be.at.least(heap);
    expect(first.get('otelcol_process_cpu_seconds')).to.deep.include({ type: 'counter', unit: 'seconds' });
    expect(first.get('otelcol_process_uptime_seconds')).to.deep.include({ type: 'counter', unit: 'seconds' });
    let spin = 0;
    for (let i = 0; i < 5e6; i++) spin += i;
    expect(spin).to.be.greaterThan(0);
    const second = byName(t);
    for (const name of ['otelcol_process_cpu_seconds', 'otelcol_process_uptime_seconds']) {
      expect(second.get(name)?.values[0] as number, name).to.be.greaterThan(first.get(name)?.values[0] as number);
    }
    expect(second.get('otelcol_process_uptime_seconds')?.values[0] as number).to.be.at.most(process.uptime());
  });
});
