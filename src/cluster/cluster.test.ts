/**
 * `--workers N`: what each worker runs (the pipelines without the query endpoint, with shared-out limits), how
 * many workers by default (cgroup CPU limits), and how the primary merges the workers' metric families.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultRegistry } from '../components';
import { parseConfig } from '../config/load';
import { labelKey, type MetricFamily, type MetricSample } from '../core/telemetry';
import { availableCpus, mergeFamilies, workerConfig } from './cluster';

const yaml = `
receivers:
  otlp: { protocols: { grpc: { endpoint: 127.0.0.1:0 } } }
processors:
  memory_limiter: { check_interval: 1s, limit_mib: 1000, spike_limit_mib: 200 }
exporters:
  otlp: { endpoint: 127.0.0.1:4317, sending_queue: { storage: file_storage } }
extensions:
  file_storage: { directory: /var/lib/routelens }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [file_storage, routequery]
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
`;

describe('workerConfig', () => {
  it('drops the query endpoint, gives each worker its own storage directory and 1/N of the memory limits', () => {
    const c = workerConfig(parseConfig(yaml, defaultRegistry(), {}), 1, 4);
    expect(c.enabledExtensions).to.deep.equal(['file_storage']);
    expect((c.extensions.get('file_storage')?.config as { directory: string }).directory).to.equal('/var/lib/routelens/worker-1');
    expect(c.processors.get('memory_limiter')?.config).to.include({ limit_mib: 250, spike_limit_mib: 50 });
  });

  it('shares out percentage limits too, keeps a bearertokenauth the pipelines use, and never goes below 1 MiB', () => {
    const c = workerConfig(
      parseConfig(
        `
receivers:
  otlp: { protocols: { grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } } } }
processors:
  memory_limiter: { check_interval: 1s, limit_percentage: 80, spike_limit_percentage: 20 }
  memory_limiter/tiny: { check_interval: 1s, limit_mib: 3, spike_limit_mib: 1 }
exporters:
  debug: {}
extensions:
  bearertokenauth: { token: secret }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery, bearertokenauth]
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter, memory_limiter/tiny], exporters: [debug] }
`,
        defaultRegistry(),
        {},
      ),
      3,
      4,
    );
    expect(c.enabledExtensions).to.deep.equal(['bearertokenauth']);
    expect(c.processors.get('memory_limiter')?.config).to.include({ limit_percentage: 20, spike_limit_percentage: 5, limit_mib: 0 });
    expect(c.processors.get('memory_limiter/tiny')?.config).to.include({ limit_mib: 1, spike_limit_mib: 0 });
  });

  it('returns a new config and leaves the one it is given as it was: each worker derives its own from the same one', () => {
    const given = parseConfig(yaml, defaultRegistry(), {});
    const configs = (c: typeof given): string =>
      JSON.stringify([c.enabledExtensions, ...[...c.processors, ...c.extensions].map(([id, cc]) => [id, cc.config])]);
    const before = configs(given);
    const first = workerConfig(given, 0, 4);
    expect(configs(given)).to.equal(before);
    const second = workerConfig(given, 1, 4);
    expect(configs(given)).to.equal(before);
    expect(first.processors.get('memory_limiter')?.config).to.include({ limit_mib: 250, spike_limit_mib: 50 });
    expect(second.processors.get('memory_limiter')?.config).to.include({ limit_mib: 250, spike_limit_mib: 50 });
    expect((first.extensions.get('file_storage')?.config as { directory: string }).directory).to.equal('/var/lib/routelens/worker-0');
    expect((second.extensions.get('file_storage')?.config as { directory: string }).directory).to.equal('/var/lib/routelens/worker-1');
  });

  it('leaves the limits alone for a single worker', () => {
    const c = workerConfig(parseConfig(yaml, defaultRegistry(), {}), 0, 1);
    expect(c.processors.get('memory_limiter')?.config).to.include({ limit_mib: 1000, spike_limit_mib: 200 });
  });
});

describe('availableCpus (default worker count)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-cgroup-'));
  const files = { v2: path.join(dir, 'cpu.max'), v1Quota: path.join(dir, 'cfs_quota_us'), v1Period: path.join(dir, 'cfs_period_us') };
  const write = (f: string, text: string | undefined): void => {
    if (text === undefined) fs.rmSync(f, { force: true });
    else fs.writeFileSync(f, text);
  };
  const cpus = (v2: string | undefined, quota: string | undefined, period: string | undefined, affinity: number): number => {
    write(files.v2, v2);
    write(files.v1Quota, quota);
    write(files.v1Period, period);
    return availableCpus(files, affinity).cpus;
  };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes a Kubernetes CPU limit (cgroup v2 or v1), rounded up, never above the affinity mask', () => {
    expect(cpus('100000 100000\n', undefined, undefined, 32)).to.equal(1); // limits.cpu: 1 on a 32-core node
    expect(cpus('150000 100000', undefined, undefined, 32)).to.equal(2); // 1500m
    expect(cpus('50000 100000', undefined, undefined, 32)).to.equal(1); // 500m: still one worker
    expect(cpus('800000 100000', undefined, undefined, 4)).to.equal(4); // limit above the CPUs
    expect(cpus(undefined, '200000', '100000', 16)).to.equal(2); // cgroup v1
  });

  it('says where the count came from, and prefers cgroup v2 to v1', () => {
    write(files.v2, '300000 100000');
    write(files.v1Quota, '100000');
    write(files.v1Period, '100000');
    expect(availableCpus(files, 8)).to.deep.equal({ cpus: 3, source: files.v2 });
    write(files.v2, 'max 100000'); // no v2 limit: a v1 one still counts
    expect(availableCpus(files, 8)).to.deep.equal({ cpus: 1, source: files.v1Quota });
    expect(availableCpus(files, 1)).to.deep.equal({ cpus: 1, source: 'CPU affinity' });
  });

  it('uses the affinity mask without a limit, and ignores garbage', () => {
    expect(cpus('max 100000', undefined, undefined, 6)).to.equal(6);
    expect(cpus(undefined, '-1', '100000', 6)).to.equal(6); // v1 unlimited
    expect(cpus(undefined, undefined, undefined, 3)).to.equal(3);
    expect(cpus('lots of cpus', 'x', 'y', 5)).to.equal(5);
    expect(cpus('0 100000', undefined, undefined, 5)).to.equal(5);
  });
});

describe("mergeFamilies (the primary's /metrics from the workers')", () => {
  const fam = (name: string, type: MetricFamily['type'], samples: MetricSample[], unit?: string): MetricFamily => ({
    name,
    help: `${name} help`,
    type,
    ...(unit === undefined ? {} : { unit }),
    samples,
  });
  const s = (suffix: string, labels: Record<string, string>, value: number, exemplar?: MetricSample['exemplar']): MetricSample => ({
    suffix,
    labels,
    value,
    ...(exemplar === undefined ? {} : { exemplar }),
  });

  const worker0 = [
    fam('spans', 'counter', [s('_total', { exporter: 'otlp' }, 3)]),
    fam('queue', 'gauge', [s('', { exporter: 'otlp' }, 2)]),
    fam(
      'latency_seconds',
      'histogram',
      [s('_bucket', { le: '1' }, 1, { labels: { trace_id: 'a' }, value: 0.5 }), s('_bucket', { le: '+Inf' }, 2), s('_sum', {}, 1.5), s('_count', {}, 2)],
      'seconds',
    ),
    fam('route_latency', 'summary', [s('', { quantile: '0.5' }, 10), s('', { quantile: '0.9' }, 12), s('_sum', {}, 20), s('_count', {}, 2)]),
  ];
  const worker1 = [
    fam('spans', 'counter', [s('_total', { exporter: 'jaeger' }, 1), s('_total', { exporter: 'otlp' }, 4)]),
    fam('queue', 'gauge', [s('', { exporter: 'otlp' }, 5)]),
    fam(
      'latency_seconds',
      'histogram',
      [s('_bucket', { le: '1' }, 3, { labels: { trace_id: 'b' }, value: 0.9 }), s('_bucket', { le: '+Inf' }, 4), s('_sum', {}, 2.5), s('_count', {}, 4)],
      'seconds',
    ),
    fam('route_latency', 'summary', [s('', { quantile: '0.5' }, 30), s('', { quantile: '0.9' }, 32), s('_sum', {}, 40), s('_count', {}, 2)]),
    fam('only_worker1', 'gauge', [s('', {}, 7)]),
  ];

  it('sums counters, gauges and histogram buckets by name, suffix and labels, keeps the largest exemplar, and replaces what was recomputed', () => {
    const recomputed = [fam('route_latency', 'summary', [s('', { quantile: '0.5' }, 17)])];
    expect(mergeFamilies([worker0, worker1], recomputed)).to.deep.equal([
      fam('spans', 'counter', [s('_total', { exporter: 'otlp' }, 7), s('_total', { exporter: 'jaeger' }, 1)]),
      fam('queue', 'gauge', [s('', { exporter: 'otlp' }, 7)]),
      fam(
        'latency_seconds',
        'histogram',
        [s('_bucket', { le: '1' }, 4, { labels: { trace_id: 'b' }, value: 0.9 }), s('_bucket', { le: '+Inf' }, 6), s('_sum', {}, 4), s('_count', {}, 6)],
        'seconds',
      ),
      // Quantiles cannot be summed: the recomputed one replaces the sum, one not recomputed is left out.
      fam('route_latency', 'summary', [s('', { quantile: '0.5' }, 17), s('_sum', {}, 60), s('_count', {}, 4)]),
      fam('only_worker1', 'gauge', [s('', {}, 7)]),
    ]);
  });

  it('changes nothing it was given', () => {
    const before = JSON.stringify([worker0, worker1]);
    mergeFamilies([worker0, worker1], [fam('spans', 'counter', [s('_total', { exporter: 'otlp' }, 100)])]);
    mergeFamilies([worker0, worker1]);
    expect(JSON.stringify([worker0, worker1])).to.equal(before);
  });

  it('keeps series apart whose label values hold separators (route and service names come from clients)', () => {
    const a = { route: '/a\u0000service=x', service: 'y' };
    const b = { route: '/a', service: 'x\u0000service=y' };
    const merged = mergeFamilies([[fam('requests', 'counter', [s('_total', a, 1)])], [fam('requests', 'counter', [s('_total', b, 2)])]]);
    expect(merged[0]?.samples).to.deep.equal([s('_total', a, 1), s('_total', b, 2)]);
  });

  it('for any workers: each series once, valued the sum over the workers, whatever their order', () => {
    const sample = fc.record({
      suffix: fc.constantFrom('', '_total', '_bucket'),
      labels: fc.dictionary(fc.constantFrom('route', 'le'), fc.constantFrom('/a', '/b', '1', '+Inf'), { maxKeys: 2 }),
      value: fc.integer({ min: 0, max: 1000 }),
    });
    const families = fc.uniqueArray(
      fc.record({
        name: fc.constantFrom('a', 'b', 'c'),
        type: fc.constantFrom<'counter' | 'gauge' | 'histogram'>('counter', 'gauge', 'histogram'),
        samples: fc.uniqueArray(sample, { selector: (x) => `${x.suffix}${labelKey(x.labels)}`, maxLength: 5 }),
      }),
      { selector: (f) => f.name, maxLength: 3 },
    );
    fc.assert(
      fc.property(fc.array(families, { minLength: 1, maxLength: 4 }), (workers) => {
        // The first worker to report a family sets its type for all (they run one config).
        const types = new Map<string, MetricFamily['type']>();
        const perWorker = workers.map((w) => w.map((f) => ({ ...f, help: f.name, type: types.get(f.name) ?? (types.set(f.name, f.type), f.type) })));
        const expected = new Map<string, number>();
        for (const w of perWorker)
          for (const f of w)
            for (const x of f.samples) {
              const key = `${f.name}${x.suffix}${labelKey(x.labels)}`;
              expected.set(key, (expected.get(key) ?? 0) + x.value);
            }
        const valuesOf = (merged: MetricFamily[]): Map<string, number> => {
          const out = new Map<string, number>();
          for (const f of merged)
            for (const x of f.samples) {
              const key = `${f.name}${x.suffix}${labelKey(x.labels)}`;
              expect(out.has(key), key).to.equal(false);
              out.set(key, x.value);
            }
          return out;
        };
        expect(valuesOf(mergeFamilies(perWorker))).to.deep.equal(expected);
        expect(valuesOf(mergeFamilies([...perWorker].reverse()))).to.deep.equal(expected);
      }),
      { numRuns: 300 },
    );
  });
});
