import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import * as YAML from 'yaml';
import { otelcolYaml, ROUTELENS_PIPELINES, ROUTELENS_WHY_PIPELINE, WHY_NUM_TRACES, withAppSignalPipelines, type CollectorEnv } from '../../bench/configs';
import { defaultRegistry } from '../../src/components';
import { parseConfig } from '../../src/config/load';
import { MATRIX_DEFAULT, matrixScenarios, scenarioByName, telemetrygenPlan, TG_CHILD_SPANS } from '../../bench/scenarios';
import { acceptedSpansOf } from '../../bench/telemetrygen';
import { buildPool, resourcesPerRequest } from '../../bench/workload';
import { countSpans, MARKER_MAGIC, traceIdOffsets } from '../../bench/wire';
import { TraceBatch } from '../../src/pdata/trace-batch';

describe('bench scenarios', () => {
  it('keeps the standard scenarios as they were: 512-span loadgen requests on the full pipeline', () => {
    assert.deepEqual(
      ['rate10k', 'rate50k', 'saturation'].map((n) => {
        const sc = scenarioByName(n);
        return [sc.name, sc.label, sc.source, sc.spansPerRequest, sc.pipeline, sc.gen];
      }),
      [
        ['rate10k', '10k spans/s', 'loadgen', 512, 'full', { mode: 'rate', spansPerSec: 10_000, concurrency: 32, channels: 2 }],
        ['rate50k', '50k spans/s', 'loadgen', 512, 'full', { mode: 'rate', spansPerSec: 50_000, concurrency: 32, channels: 2 }],
        ['saturation', 'saturation', 'loadgen', 512, 'full', { mode: 'saturate', concurrency: 16, channels: 4 }],
      ],
    );
  });

  it('reads what a matrix name says', () => {
    const sc = scenarioByName('tg100-50k-bare');
    assert.deepEqual(
      [sc.source, sc.spansPerRequest, sc.spansPerSec, sc.pipeline, sc.label],
      ['telemetrygen', 100, 50_000, 'bare', 'tg 100 × 50k spans/s bare'],
    );
    const big = scenarioByName('lg8192-10k-full');
    assert.deepEqual([big.source, big.spansPerRequest, big.gen.concurrency], ['loadgen', 8192, 8]);
    for (const bad of ['tg100-sat-bare', 'lg0-10k-bare', 'lg100-20k-bare', 'lg100-10k', 'rate5k', 'lg9000-10k-full']) {
      assert.throws(() => scenarioByName(bad), Error, bad);
    }
  });

  it('names every matrix scenario so that the name reads back as the same scenario', () => {
    const all = matrixScenarios(MATRIX_DEFAULT);
    assert.equal(all.length, 44);
    assert.equal(new Set(all.map((s) => s.name)).size, all.length);
    for (const sc of all) assert.deepEqual(scenarioByName(sc.name), sc);
    // The left-out combinations stay out.
    assert.ok(!all.some((s) => s.spansPerRequest === 8192 && (s.source === 'telemetrygen' || s.spansPerSec === 1_000)));
    assert.ok(!all.some((s) => s.source === 'telemetrygen' && s.spansPerSec === undefined));
    const narrowed = matrixScenarios({ sources: ['telemetrygen'], shapes: [10], rates: ['10k'], pipelines: ['full'] });
    assert.deepEqual(
      narrowed.map((s) => s.name),
      ['tg10-10k-full'],
    );
  });

  it('plans telemetrygen so that its processes and workers offer the scenario rate', () => {
    fc.assert(
      fc.property(fc.constantFrom(10, 100, 512), fc.constantFrom('1k', '10k', '50k'), (shape, rate) => {
        const sc = scenarioByName(`tg${shape}-${rate}-bare`);
        const p = telemetrygenPlan(sc);
        assert.ok(Math.abs(p.processes * p.workersPerProcess * p.ratePerWorker - (sc.spansPerSec as number)) < 1e-6);
        assert.ok(p.ratePerWorker <= 200);
        assert.ok(p.processes >= 1 && p.processes <= 16);
        const args = p.args('127.0.0.1:4317');
        assert.equal(args[args.indexOf('--batch-size') + 1], String(shape));
        assert.equal(args[args.indexOf('--child-spans') + 1], String(TG_CHILD_SPANS));
        assert.equal(args[args.indexOf('--otlp-endpoint') + 1], '127.0.0.1:4317');
      }),
    );
  });

  it('sums the accepted-spans counter in both collectors’ renderings and only that counter', () => {
    const routelens = [
      '# TYPE otelcol_receiver_accepted_spans_total counter',
      'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 1200',
      'otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 34',
      'otelcol_receiver_accepted_spans_totalish 99',
      'otelcol_receiver_refused_spans_total{receiver="otlp",transport="grpc"} 5',
    ].join('\n');
    assert.equal(acceptedSpansOf(routelens), 1234);
    const otelcol = 'otelcol_receiver_accepted_spans{receiver="otlp",transport="grpc"} 1928\notelcol_receiver_failed_spans{receiver="otlp"} 0\n';
    assert.equal(acceptedSpansOf(otelcol), 1928);
    assert.equal(acceptedSpansOf('otelcol_receiver_accepted_spans 7 1700000000000\n'), 7);
    assert.equal(acceptedSpansOf('# nothing received yet\n'), null);
  });

  it('builds requests of any shape with exactly that many spans, one marker, and as many resources as it says', () => {
    for (const spans of [1, 10, 100, 129, 512, 8192]) {
      const pool = buildPool(spans === 8192 ? 2 : 4, 7, spans);
      for (const req of pool.requests) {
        assert.equal(req.spans, spans);
        const markers: number[] = [];
        const counted = countSpans(req.bytes, (seq) => markers.push(seq), false);
        assert.deepEqual([counted.spans, counted.resources, markers.length], [spans, resourcesPerRequest(spans), 1]);
      }
    }
  });
});

describe('bench: traces beside metrics and logs', () => {
  const env: CollectorEnv = { grpcPort: 4317, sinkPort: 4999, kubeconfig: '/tmp/kubeconfig', adminPort: 8888, metricsPort: 8889 };
  type Pipelines = Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }>;
  const pipelinesOf = (yaml: string): Pipelines => (YAML.parse(yaml) as { service: { pipelines: Pipelines } }).service.pipelines;

  it('names the standard trace scenario it extends and offers one point and one record per 10 spans', () => {
    for (const [name, base] of [
      ['rate10k-beside', 'rate10k'],
      ['rate50k-beside', 'rate50k'],
    ] as const) {
      const sc = scenarioByName(name);
      const { beside, ...rest } = sc;
      const { name: _n, label: _l, ...same } = rest;
      const { name: _bn, label: _bl, ...baseSame } = scenarioByName(base);
      assert.deepEqual(same, baseSame);
      assert.deepEqual(
        beside?.map((b) => [b.signal, b.itemsPerSec]),
        [
          ['metrics', (sc.spansPerSec as number) / 10],
          ['logs', (sc.spansPerSec as number) / 10],
        ],
      );
    }
  });

  it('adds metrics and logs pipelines with the traces pipeline’s receivers and processors and its sink, in both collectors', () => {
    const configs: [string, string, string][] = [
      ...ROUTELENS_PIPELINES.filter((p) => p.name === 'full' || p.name === 'bare').map((p): [string, string, string] => [
        `routelens ${p.name}`,
        p.yaml(env),
        'otlp/sink',
      ]),
      ['otelcol full', otelcolYaml(env, 'full'), 'otlp_grpc/sink'],
      ['otelcol bare', otelcolYaml(env, 'bare'), 'otlp_grpc/sink'],
    ];
    for (const [what, yaml, sink] of configs) {
      const before = pipelinesOf(yaml);
      const after = pipelinesOf(withAppSignalPipelines(yaml));
      const traces = before['traces'];
      assert.ok(traces !== undefined, what);
      const expected = { receivers: traces.receivers, ...(traces.processors === undefined ? {} : { processors: traces.processors }), exporters: [sink] };
      assert.deepEqual(after, { ...before, 'metrics/app': expected, 'logs/app': expected }, what);
    }
  });

  it('gives routelens a config it accepts', () => {
    for (const p of ROUTELENS_PIPELINES.filter((p) => p.name === 'full' || p.name === 'bare')) {
      const cfg = parseConfig(withAppSignalPipelines(p.yaml(env)), defaultRegistry(), {});
      assert.deepEqual(cfg.pipelines.map((x) => `${x.id} ${x.signal}`).sort(), ['logs/app logs', 'metrics/app metrics', 'traces traces'], p.name);
    }
  });
});

describe('bench: the why scenarios (issue 28)', () => {
  const env: CollectorEnv = { grpcPort: 1, sinkPort: 2, kubeconfig: '/k', adminPort: 3, metricsPort: 4 };

  it('run the standard requests at 10k and 50k spans/s with fresh trace ids and a warm-up past the decision wait', () => {
    for (const [name, rate] of [
      ['why10k', 10_000],
      ['why50k', 50_000],
    ] as const) {
      const sc = scenarioByName(name);
      assert.deepEqual([sc.pipeline, sc.spansPerRequest, sc.spansPerSec, sc.gen.freshTraceIds], ['why', 512, rate, true], name);
      assert.ok((sc.minWarmupS ?? 0) > 10, name);
    }
  });

  it('gives routelens a config it accepts: routelatency with analysis on feeding tail_capture', () => {
    const cfg = parseConfig(ROUTELENS_WHY_PIPELINE.yaml(env), defaultRegistry(), {});
    const sampled = cfg.pipelines.find((p) => p.id === 'traces/sampled');
    assert.deepEqual([sampled?.receivers, sampled?.processors, sampled?.exporters], [['routelatency'], ['tail_capture'], ['otlp/sink']]);
    const doc = YAML.parse(ROUTELENS_WHY_PIPELINE.yaml(env)) as {
      processors: { tail_capture: Record<string, unknown> };
      connectors: { routelatency: Record<string, unknown> };
    };
    assert.equal(doc.connectors.routelatency['analysis'], undefined, 'analysis keeps its default (on)');
    assert.deepEqual(doc.processors.tail_capture, { decision_wait: '10s', max_trace_wait: '10s', num_traces: WHY_NUM_TRACES });
  });

  it('gives both tail samplers the same wait and trace bound, and the standard pipelines analysis off', () => {
    const oc = YAML.parse(otelcolYaml(env, 'why')) as { processors: { tail_sampling: { decision_wait: string; num_traces: number } } };
    assert.deepEqual([oc.processors.tail_sampling.decision_wait, oc.processors.tail_sampling.num_traces], ['10s', WHY_NUM_TRACES]);
    for (const p of ROUTELENS_PIPELINES.filter((x) => x.name === 'full' || x.name === 'bare')) {
      const doc = YAML.parse(p.yaml(env)) as { connectors: { routelatency: { analysis?: { enabled?: boolean } } } };
      assert.equal(doc.connectors.routelatency.analysis?.enabled, false, p.name);
    }
  });

  it('fresh trace ids: every span’s trace id is rewritten, the marker’s left alone', () => {
    const req = buildPool(2).requests[0];
    assert.ok(req !== undefined);
    const offsets = traceIdOffsets(req.bytes);
    let spans = 0;
    let marker = 0;
    TraceBatch.decode(req.bytes).forEachSpan(() => void spans++);
    for (let i = 0; i + 8 <= req.bytes.length; i++) if (req.bytes.compare(MARKER_MAGIC, 0, 8, i, i + 8) === 0) marker++;
    assert.deepEqual([offsets.length, marker], [spans - 1, 1]);
    const copy = Buffer.from(req.bytes);
    for (const off of offsets) copy.writeUInt32BE(0xdeadbeef, off + 12);
    const ids = new Set<string>();
    const words = new Uint32Array(8);
    TraceBatch.decode(copy).forEachSpan((s) => {
      s.readIdWords(words);
      if (words[0] !== MARKER_MAGIC.readUInt32BE(0)) ids.add((words[3] as number).toString(16));
    });
    assert.deepEqual([...ids], ['deadbeef']);
  });
});
