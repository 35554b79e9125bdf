import { expect } from 'chai';
import fc from 'fast-check';
import { metricsRequest, processMetrics, type MetricSpec, type ProcessSample } from '../../test/support/otlp-metrics';
import { instanceFigures } from './compute';
import { queryServiceRuntime } from './query';
import { RuntimeState } from './state';

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const MIN = 60_000;
const RES = { 'service.name': 'orders', 'service.instance.id': 'i-1' };

function sample(i: number, over: Partial<ProcessSample> = {}): ProcessSample {
  return {
    time: T0 + i * MIN,
    start: T0 - 1000,
    cpuUser: 10 + 6 * i,
    cpuSystem: 1 + 0.6 * i,
    rss: 100e6 + i * 1e6,
    threads: 9,
    fds: 12,
    gc: [100 + 30 * i, 10 + 3 * i, 1 + i],
    ...over,
  };
}

function feed(
  state: RuntimeState,
  samples: readonly ProcessSample[],
  resource: Record<string, string> = RES,
  extra: (s: ProcessSample) => MetricSpec[] = () => [],
): void {
  for (const s of samples) state.ingest(metricsRequest([{ attrs: resource, metrics: [...processMetrics(s), ...extra(s)] }]), s.time + 50);
}

function only(state: RuntimeState, fromMs: number, nowMs: number): NonNullable<ReturnType<typeof instanceFigures>> {
  expect(state.instances.size).to.equal(1);
  const f = instanceFigures([...state.instances.values()][0]!, fromMs, nowMs);
  if (f === undefined) throw new Error('no figures');
  return f;
}

describe('runtimeview: figures of one instance (known answers)', () => {
  it('CPU cores are CPU seconds over wall seconds, summed over user and system; levels are the last values', () => {
    const state = new RuntimeState();
    feed(
      state,
      [0, 1, 2, 3, 4, 5].map((i) => sample(i)),
    );
    // Window [T0, ∞): five intervals of 60 s, each +6 s user +0.6 s system → 6.6 / 60 = 0.11 cores.
    const f = only(state, T0, T0 + 5 * MIN + 100);
    expect(f.cpuCores).to.equal(0.11);
    expect(f.cpuSource).to.equal('process.cpu.time');
    expect(f.rssBytes).to.equal(105e6);
    expect(f.rssSlopeBytesPerMin).to.equal(1e6);
    expect(f.rssSlopePoints).to.equal(6);
    expect(f.threads).to.equal(9);
    expect(f.openFds).to.equal(12);
    expect(f.gcPerMin).to.equal(34);
    expect(f.gcGen2PerMin).to.equal(1);
    expect(f.gcByGeneration).to.deep.equal({ '0': 30, '1': 3, '2': 1 });
    expect(f.intervalMs).to.equal(MIN);
    expect(f.coveredMs).to.equal(5 * MIN);
    expect(f.points).to.equal(6);
    expect(f.multiWriter).to.equal(false);
    expect(f.stale).to.equal(false);
  });

  it('a window that starts inside an interval takes the part of its increment inside the window', () => {
    const state = new RuntimeState();
    // CPU +6 s in the first minute, +30 s in the second: from T0+30 s, 3 s + 30 s over 90 s.
    feed(state, [sample(0), sample(1), sample(2, { cpuUser: 46, cpuSystem: 2.2 })]);
    const f = only(state, T0 + 30_000, T0 + 2 * MIN);
    expect(f.cpuCores).to.equal(Number(((3 + 0.3 + 30 + 0.6) / 90).toPrecision(6)));
    expect(f.coveredMs).to.equal(90_000);
  });

  it('a restart (new start time after the last point) is a reset: its first point counts nothing for observable counters', () => {
    const state = new RuntimeState();
    const restart = T0 + 2 * MIN + 10_000;
    feed(state, [
      sample(0),
      sample(1),
      sample(2),
      // The new process's lifetime totals start near zero; only differences from here on are rates.
      sample(3, { start: restart, cpuUser: 2, cpuSystem: 0.5, gc: [5, 0, 0] }),
      sample(4, { start: restart, cpuUser: 8, cpuSystem: 1.1, gc: [35, 3, 1] }),
    ]);
    const f = only(state, T0, T0 + 4 * MIN);
    // (6.6 + 6.6 + 6.6) CPU seconds over the intervals 0–1, 1–2, 3–4 (3 minutes), the interval 2–3 unknown.
    expect(f.cpuCores).to.equal(0.11);
    expect(f.resets).to.equal(1);
    expect(f.multiWriter).to.equal(false);
    expect(f.rssBytes).to.equal(104e6);
    expect(f.gcPerMin).to.equal(34);
  });

  it('two processes writing one stream with interleaved start times are flagged, levels withheld, rates their total', () => {
    const state = new RuntimeState();
    const a = (i: number): ProcessSample => sample(i, { start: T0 - 1000 });
    const b = (i: number): ProcessSample => sample(i, { start: T0 - 500, time: T0 + i * MIN + 20_000, cpuUser: 5 + 12 * i, cpuSystem: 0, rss: 80e6 });
    feed(state, [a(0), b(0), a(1), b(1), a(2), b(2)]);
    const f = only(state, T0, T0 + 3 * MIN);
    expect(f.multiWriter).to.equal(true);
    expect(f.writers).to.equal(2);
    expect(f.rssBytes).to.equal(null);
    expect(f.threads).to.equal(null);
    expect(f.rssSlopeBytesPerMin).to.equal(null);
    // Writer a: 6.6 cores·min over 2 min; writer b: 12 per minute over 2 min; total over the union (T0 … T0+2m20s).
    expect(f.cpuCores).to.equal(Number(((2 * 6.6 + 2 * 12) / 140).toPrecision(6)));
  });

  it('two processes with one start time show as a decreasing monotonic sum: flagged, CPU withheld', () => {
    const state = new RuntimeState();
    const a = (i: number): ProcessSample => sample(i);
    const b = (i: number): ProcessSample => sample(i, { time: T0 + i * MIN + 20_000, cpuUser: 3 + 2 * i, cpuSystem: 0.2 });
    feed(state, [a(0), b(0), a(1), b(1), a(2), b(2)]);
    const f = only(state, T0, T0 + 3 * MIN);
    expect(f.multiWriter).to.equal(true);
    expect(f.cpuCores).to.equal(null);
    expect(f.gcPerMin).to.equal(null);
  });

  it('is stale after three export intervals without a request', () => {
    const state = new RuntimeState();
    feed(
      state,
      [0, 1, 2].map((i) => sample(i)),
    );
    const lastReceived = T0 + 2 * MIN + 50;
    expect(only(state, T0, lastReceived + 3 * MIN).stale).to.equal(false);
    expect(only(state, T0, lastReceived + 3 * MIN + 1).stale).to.equal(true);
  });

  it('falls back to the deprecated process.runtime.cpython metrics, reading only type=rss for memory', () => {
    const state = new RuntimeState();
    for (const i of [0, 1, 2]) {
      const s = sample(i);
      const pt = (value: number, attrs: Record<string, string>) => ({ start: s.start, time: s.time, value, int: false, attrs });
      state.ingest(
        metricsRequest([
          {
            attrs: RES,
            metrics: [
              {
                kind: 'sum',
                name: 'process.runtime.cpython.cpu_time',
                unit: 's',
                points: [pt(s.cpuUser, { type: 'user' }), pt(s.cpuSystem, { type: 'system' })],
              },
              {
                kind: 'sum',
                name: 'process.runtime.cpython.memory',
                unit: 'By',
                monotonic: false,
                points: [pt(s.rss, { type: 'rss' }), pt(s.rss * 9, { type: 'vms' })],
              },
              // Allocation counts, not collections: never read.
              { kind: 'sum', name: 'process.runtime.cpython.gc_count', unit: 'By', points: [pt(700 - 100 * i, { count: '0' })] },
            ],
          },
        ]),
        s.time,
      );
    }
    const f = only(state, T0, T0 + 2 * MIN);
    expect(f.cpuCores).to.equal(0.11);
    expect(f.cpuSource).to.equal('process.runtime.cpython.cpu_time');
    expect(f.rssBytes).to.equal(102e6);
    expect(f.memorySource).to.equal('process.runtime.cpython.memory');
    expect(f.gcPerMin).to.equal(null);
    expect(f.multiWriter).to.equal(false);
  });

  it('per route: requests and 5xx from the old-convention histogram, a new stream counting from its start time', () => {
    const state = new RuntimeState();
    const http = (s: ProcessSample): MetricSpec[] => {
      const i = Math.round((s.time - T0) / MIN);
      const attrs = (route: string, status: number) => ({ 'http.method': 'GET', 'http.target': route, 'http.status_code': status, 'http.host': 'h:1' });
      const pts = [{ start: T0 - 900, time: s.time, count: 60 * (i + 1), sum: 600 * (i + 1), attrs: attrs('/orders/<int:order_id>', 200) }];
      // /error first requested after T0+90 s: its stream starts then.
      if (i >= 2) pts.push({ start: T0 + 90_000, time: s.time, count: 15 * (i - 1), sum: 45 * (i - 1), attrs: attrs('/error', 500) });
      return [{ kind: 'histogram', name: 'http.server.duration', unit: 'ms', points: pts }];
    };
    feed(
      state,
      [0, 1, 2, 3].map((i) => sample(i)),
      RES,
      http,
    );
    const f = only(state, T0, T0 + 3 * MIN);
    expect(f.routes).to.deep.equal([
      {
        method: 'GET',
        route: '/error',
        requests: 30,
        rate_per_s: Number((30 / 180).toPrecision(6)),
        errors_5xx: 30,
        errors_5xx_per_s: Number((30 / 180).toPrecision(6)),
        error_5xx_ratio: 1,
        mean_ms: 3,
        metric: 'http.server.duration',
      },
      {
        method: 'GET',
        route: '/orders/<int:order_id>',
        requests: 180,
        rate_per_s: 1,
        errors_5xx: 0,
        errors_5xx_per_s: 0,
        error_5xx_ratio: 0,
        mean_ms: 10,
        metric: 'http.server.duration',
      },
    ]);
  });

  it('reads the new-convention histogram (seconds) instead of the old one when both are sent (http/dup)', () => {
    const state = new RuntimeState();
    const http = (s: ProcessSample): MetricSpec[] => {
      const n = 10 * (1 + Math.round((s.time - T0) / MIN));
      return [
        {
          kind: 'histogram',
          name: 'http.server.duration',
          unit: 'ms',
          points: [{ start: T0 - 900, time: s.time, count: n, sum: n * 20, attrs: { 'http.method': 'GET', 'http.target': '/x', 'http.status_code': 200 } }],
        },
        {
          kind: 'histogram',
          name: 'http.server.request.duration',
          unit: 's',
          points: [
            {
              start: T0 - 900,
              time: s.time,
              count: n,
              sum: n * 0.02,
              attrs: { 'http.request.method': 'GET', 'http.route': '/x', 'http.response.status_code': 200 },
            },
          ],
        },
      ];
    };
    feed(
      state,
      [0, 1, 2].map((i) => sample(i)),
      RES,
      http,
    );
    const f = only(state, T0, T0 + 2 * MIN);
    expect(f.routes).to.have.length(1);
    expect(f.routes[0]).to.include({ route: '/x', requests: 20, metric: 'http.server.request.duration', mean_ms: 20 });
  });
});

describe('runtimeview: instance identity', () => {
  it('keys on service.instance.id, else k8s.pod.uid, k8s.pod.name, host.name; k8s.* attributes are kept', () => {
    const state = new RuntimeState();
    const s = sample(0);
    feed(state, [s], { 'service.name': 'a', 'k8s.pod.uid': 'uid-1', 'k8s.pod.name': 'a-123', 'k8s.namespace.name': 'shop', 'host.name': 'node-1' });
    feed(state, [s], { 'service.name': 'a', 'k8s.pod.name': 'a-456', 'host.name': 'node-1' });
    feed(state, [s], { 'service.name': 'a', 'host.name': 'node-2' });
    feed(state, [s], { 'service.name': 'a', 'service.namespace': 'ns', 'service.instance.id': 'x', 'k8s.pod.uid': 'uid-9' });
    const got = [...state.instances.values()].map((i) => [i.namespace, i.source, i.instance]);
    expect(got).to.deep.equal([
      ['', 'k8s.pod.uid', 'uid-1'],
      ['', 'k8s.pod.name', 'a-456'],
      ['', 'host.name', 'node-2'],
      ['ns', 'service.instance.id', 'x'],
    ]);
    expect([...state.instances.values()][0]!.resource).to.include({ 'k8s.namespace.name': 'shop', 'k8s.pod.name': 'a-123', 'host.name': 'node-1' });
  });

  it('caps instances and streams per instance, counting what it refuses', () => {
    const state = new RuntimeState({ maxInstances: 2, maxStreamsPerInstance: 3 });
    let dropped = 0;
    for (const id of ['a', 'b', 'c']) {
      const r = state.ingest(metricsRequest([{ attrs: { 'service.name': 's', 'service.instance.id': id }, metrics: processMetrics(sample(0)) }]), T0);
      dropped += r.droppedPoints;
    }
    // Each export has 8 points in 8 streams: 5 refused per known instance, all 8 for the third.
    expect(state.instances.size).to.equal(2);
    expect(dropped).to.equal(5 + 5 + 8);
  });
});

describe('runtimeview: exports that repeat (the decoded resources and streams it reuses)', () => {
  const cpuMetric = (i: number, attrs: Record<string, string>[]): MetricSpec => ({
    kind: 'sum',
    name: 'process.cpu.time',
    unit: 's',
    monotonic: true,
    points: attrs.map((a, k) => ({ start: T0 - 1000, time: T0 + i * MIN, value: 10 + i * (k + 1), attrs: a })),
  });

  it('attributes in another order are the same stream, and a resource in another order the same instance', () => {
    const state = new RuntimeState();
    const res = [RES, { 'service.instance.id': 'i-1', 'service.name': 'orders', 'k8s.pod.name': 'p' }];
    for (let i = 0; i < 6; i++) {
      const attrs = i % 2 === 0 ? [{ 'cpu.mode': 'user', type: 'user' }] : [{ type: 'user', 'cpu.mode': 'user' }];
      state.ingest(metricsRequest([{ attrs: res[i % 2]!, metrics: [cpuMetric(i, attrs)] }]), T0 + i * MIN);
    }
    expect(state.instances.size).to.equal(1);
    const inst = [...state.instances.values()][0]!;
    expect(inst.resource).to.deep.equal({ 'k8s.pod.name': 'p' });
    expect(inst.lastReceivedMs).to.equal(T0 + 5 * MIN);
    expect([...inst.streams.values()].map((st) => st.t)).to.deep.equal([[0, 1, 2, 3, 4, 5].map((i) => T0 + i * MIN)]);
  });

  it('a stream swept away and exported again is recorded again, in a stream the instance holds', () => {
    const state = new RuntimeState({ maxWindowMs: 5 * MIN });
    const both = [{ type: 'user' }, { type: 'system' }];
    state.ingest(metricsRequest([{ attrs: RES, metrics: [cpuMetric(0, both)] }]), T0);
    // Later exports carry only the user stream: the system one ages out of the retention (5 + 10 min).
    for (let i = 1; i <= 20; i++) state.ingest(metricsRequest([{ attrs: RES, metrics: [cpuMetric(i, both.slice(0, 1))] }]), T0 + i * MIN);
    state.sweep(T0 + 20 * MIN);
    const inst = [...state.instances.values()][0]!;
    expect([...inst.streams.values()].map((st) => st.attrs['type'])).to.deep.equal(['user']);
    const r = state.ingest(metricsRequest([{ attrs: RES, metrics: [cpuMetric(21, both)] }]), T0 + 21 * MIN);
    expect(r.points).to.equal(2);
    const system = [...inst.streams.values()].find((st) => st.attrs['type'] === 'system');
    expect(system?.t).to.deep.equal([T0 + 21 * MIN]);
    // An instance swept away entirely comes back as a new one.
    state.sweep(T0 + 60 * MIN);
    expect(state.instances.size).to.equal(0);
    state.ingest(metricsRequest([{ attrs: RES, metrics: [cpuMetric(61, both)] }]), T0 + 61 * MIN);
    expect([...[...state.instances.values()][0]!.streams.values()].map((st) => st.t.length)).to.deep.equal([1, 1]);
  });

  it('points it does not keep stay unkept when they come again (memory type=vms), and do not create the instance', () => {
    const state = new RuntimeState();
    const vms: MetricSpec = { kind: 'sum', name: 'process.runtime.cpython.memory', points: [{ start: T0, time: T0 + MIN, value: 5, attrs: { type: 'vms' } }] };
    for (let i = 0; i < 3; i++) expect(state.ingest(metricsRequest([{ attrs: RES, metrics: [vms] }]), T0 + i).points).to.equal(0);
    expect(state.instances.size).to.equal(0);
  });
});

describe('runtimeview: snapshot and merge', () => {
  const sampleArb = fc.record({
    cpu: fc.array(fc.double({ min: 0, max: 5, noNaN: true }), { minLength: 2, maxLength: 40 }),
    restartAt: fc.option(fc.nat(39), { nil: undefined }),
    split: fc.array(fc.nat(2), { minLength: 40, maxLength: 40 }),
    intervalMs: fc.constantFrom(400, 1000, 10_000, 60_000),
  });

  it('merging the states of workers that each received some of the exports answers as one state that received all (property)', () => {
    fc.assert(
      fc.property(sampleArb, ({ cpu, restartAt, split, intervalMs }) => {
        const samples: ProcessSample[] = [];
        let user = 100;
        let start = T0 - 5000;
        cpu.forEach((d, i) => {
          const time = T0 + i * intervalMs;
          if (restartAt === i && i > 0) {
            start = time - intervalMs / 2;
            user = 0.5;
          } else user += d;
          samples.push({ time, start, cpuUser: user, cpuSystem: 0, rss: 1e8 + i * 4096, threads: 5 + (i % 3), fds: 10, gc: [i * 7, i, Math.floor(i / 4)] });
        });
        const windows = [60_000, 300_000, 900_000, 3_600_000];
        const whole = new RuntimeState({ maxWindowMs: 3_600_000 });
        feed(whole, samples);
        const workers = [0, 1, 2].map(() => new RuntimeState({ maxWindowMs: 3_600_000 }));
        samples.forEach((s, i) => feed(workers[split[i] as number]!, [s]));
        const merged = new RuntimeState({ maxWindowMs: 3_600_000 });
        for (const w of workers) merged.merge(JSON.parse(JSON.stringify(w.snapshot())));
        const now = (samples[samples.length - 1] as ProcessSample).time + 1000;
        for (const win of windows) {
          const a = queryServiceRuntime(whole, 'orders', win, now);
          const b = queryServiceRuntime(merged, 'orders', win, now);
          expect(b).to.deep.equal(a);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('keeps one point per spacing and start time per stream, with the same CPU figure as without thinning', () => {
    const dense = new RuntimeState({ spacingMs: 250 });
    const sparse = new RuntimeState({ spacingMs: 100, maxPointsPerStream: 100_000 }); // nothing thinned
    const samples = Array.from({ length: 1200 }, (_, i) => sample(0, { time: T0 + i * 100, cpuUser: 10 + i * 0.037, cpuSystem: 1 + i * 0.011 }));
    feed(dense, samples);
    feed(sparse, samples);
    const now = T0 + 1199 * 100;
    const kept = [...[...dense.instances.values()][0]!.streams.values()][0]!.t.filter((t) => t >= now - 60_000).length;
    expect(kept).to.be.at.most(241);
    expect(kept).to.be.at.least(240);
    const a = only(dense, now - 60_000, now);
    const b = only(sparse, now - 60_000, now);
    expect(a.cpuCores).to.be.closeTo(b.cpuCores as number, 1e-9);
    expect(a.cpuCores).to.be.closeTo(0.48, 1e-9);
    // The interval is read from the kept points: the spacing once exports come faster than it.
    expect(a.intervalMs).to.equal(250);
    expect(b.intervalMs).to.equal(100);
  });

  it('sweeps points older than the longest window plus a margin, and instances not heard of since', () => {
    const state = new RuntimeState({ maxWindowMs: 5 * MIN });
    feed(
      state,
      Array.from({ length: 30 }, (_, i) => sample(i)),
    );
    const now = T0 + 29 * MIN;
    state.sweep(now);
    const st = [...[...state.instances.values()][0]!.streams.values()][0]!;
    // Retention 5 + 10 min: points from T0+14m on, plus the one before.
    expect(st.t[0]).to.equal(T0 + 13 * MIN);
    state.sweep(now + 16 * MIN);
    expect(state.instances.size).to.equal(0);
  });
});
