/**
 * Self-telemetry: the registry (counters, gauges, collectors, before-scrape hooks) and its rendering in the
 * Prometheus text format 0.0.4 and OpenMetrics 1.0, checked against known text, read back by a parser for any
 * label value, and linted by the real promtool.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { parseExposition } from '../../test/support/metrics-scrape';
import { prometheusBinary } from '../../test/support/prometheus';
import { Telemetry, labelKey, renderPrometheus, type MetricFamily } from './telemetry';

/** A registry with one of everything, and the two renderings of it expected byte for byte. */
function everything(): Telemetry {
  const t = new Telemetry();
  const c = t.counter('requests', 'Requests handled.', { code: '200' });
  c.add(2);
  c.add();
  t.counter('requests', 'ignored: the first help stays', { code: '500' });
  t.gauge('temperature', 'Line one\nline two \\ "done".', { path: 'C:\\dir "q"\nx' }, () => 1.5);
  t.collector((): MetricFamily[] => [
    {
      name: 'latency_seconds',
      help: 'Latency.',
      type: 'histogram',
      unit: 'seconds',
      samples: [
        { suffix: '_bucket', labels: { le: '0.1' }, value: 1, exemplar: { labels: { trace_id: 'abc' }, value: 0.05, timestampS: 1_700_000_000.1234 } },
        { suffix: '_bucket', labels: { le: '+Inf' }, value: 2 },
        { suffix: '_sum', labels: {}, value: 0.3 },
        { suffix: '_count', labels: {}, value: 2 },
      ],
    },
    {
      name: 'special',
      help: 'Special values.',
      type: 'gauge',
      samples: [
        { suffix: '', labels: { v: 'nan' }, value: NaN },
        { suffix: '', labels: { v: 'inf' }, value: Infinity },
        { suffix: '', labels: { v: '-inf' }, value: -Infinity },
      ],
    },
  ]);
  return t;
}

const TEXT_0_0_4 = `# HELP requests_total Requests handled.
# TYPE requests_total counter
requests_total{code="200"} 3
requests_total{code="500"} 0
# HELP temperature Line one\\nline two \\\\ "done".
# TYPE temperature gauge
temperature{path="C:\\\\dir \\"q\\"\\nx"} 1.5
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_sum 0.3
latency_seconds_count 2
# HELP special Special values.
# TYPE special gauge
special{v="nan"} NaN
special{v="inf"} +Inf
special{v="-inf"} -Inf
`;

const OPENMETRICS = `# HELP requests Requests handled.
# TYPE requests counter
requests_total{code="200"} 3
requests_total{code="500"} 0
# HELP temperature Line one\\nline two \\\\ \\"done\\".
# TYPE temperature gauge
temperature{path="C:\\\\dir \\"q\\"\\nx"} 1.5
# HELP latency_seconds Latency.
# TYPE latency_seconds histogram
# UNIT latency_seconds seconds
latency_seconds_bucket{le="0.1"} 1 # {trace_id="abc"} 0.05 1700000000.123
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_sum 0.3
latency_seconds_count 2
# HELP special Special values.
# TYPE special gauge
special{v="nan"} NaN
special{v="inf"} +Inf
special{v="-inf"} -Inf
# EOF
`;

/** Families with arbitrary label values (quotes, backslashes, newlines, any Unicode) and values. */
const families = fc
  .uniqueArray(fc.constantFrom('a', 'b_bytes', 'c_seconds', 'd_requests'), { minLength: 1, maxLength: 4 })
  .chain((names) =>
    fc.tuple(
      ...names.map((name) =>
        fc.record({
          name: fc.constant(name),
          help: fc
            .array(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 4 }), fc.constantFrom('"', '\\', '\n', '\\n', '\\"')), { maxLength: 8 })
            .map((parts) => `Help ${parts.join('')}`),
          type: fc.constantFrom<'counter' | 'gauge'>('counter', 'gauge'),
          samples: fc.uniqueArray(
            fc.record({
              labels: fc.dictionary(fc.constantFrom('route', 'service', 'method'), fc.string({ unit: 'grapheme', maxLength: 12 }), { maxKeys: 3 }),
              value: fc.oneof(fc.double(), fc.integer()),
            }),
            { selector: (s) => labelKey(s.labels), maxLength: 4 },
          ),
        }),
      ),
    ),
  )
  .map((fams) =>
    fams.map((f): MetricFamily => ({
      ...f,
      samples: f.samples.map((s) => ({ suffix: f.type === 'counter' ? '_total' : '', labels: s.labels, value: s.value })),
    })),
  );

function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return prometheusBinary().then(
    (bin) =>
      new Promise((resolve) => {
        const child = execFile(path.join(path.dirname(bin), 'promtool'), ['check', 'metrics'], (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : ((err as { code?: number }).code ?? -1), output: stdout + stderr }),
        );
        child.stdin?.end(text);
      }),
  );
}

describe('telemetry registry', () => {
  it('gives one series per name and label set, whatever the label order, and sums counters by label subset', () => {
    const t = new Telemetry();
    const a = t.counter('spans', 'Spans.', { exporter: 'otlp', outcome: 'sent' });
    const b = t.counter('spans', 'Spans.', { outcome: 'sent', exporter: 'otlp' });
    t.counter('spans', 'Spans.', { exporter: 'otlp', outcome: 'failed' }).add(5);
    t.counter('spans', 'Spans.', { exporter: 'jaeger', outcome: 'sent' }).add(7);
    a.add(2);
    b.add();
    expect([a.value(), b.value()]).to.deep.equal([3, 3]);
    expect(t.counterValue('spans', { exporter: 'otlp', outcome: 'sent' })).to.equal(3);
    expect(t.counterValue('spans', { exporter: 'otlp' })).to.equal(8);
    expect(t.counterValue('spans')).to.equal(15);
    expect(t.counterValue('nothing')).to.equal(0);
    expect(t.families()[0]?.samples).to.have.length(3);
  });

  it('keys label sets apart whatever their values hold (a client sends route and service names)', () => {
    // Values with the separators a naive key would use.
    const a = { route: '/a\u0000service=x', service: 'y' };
    const b = { route: '/a', service: 'x\u0000service=y' };
    expect(labelKey(a)).to.not.equal(labelKey(b));
    const t = new Telemetry();
    t.counter('requests', 'Requests.', a).add(1);
    t.counter('requests', 'Requests.', b).add(2);
    expect(t.families()[0]?.samples.map((s) => [s.labels, s.value])).to.deep.equal([
      [a, 1],
      [b, 2],
    ]);
    const labels = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'a=', '\u0000'), fc.string({ unit: 'binary', maxLength: 6 }), { maxKeys: 3 });
    fc.assert(
      fc.property(labels, labels, (x, y) => {
        const same = Object.keys(x).length === Object.keys(y).length && Object.entries(x).every(([k, v]) => y[k] === v);
        expect(labelKey(x) === labelKey(y)).to.equal(same);
      }),
      { numRuns: 2000 },
    );
  });

  it('reads gauges and collectors at each scrape, after the before-scrape hooks ran', async () => {
    const t = new Telemetry();
    let level = 1;
    const order: string[] = [];
    t.gauge('level', 'Level.', {}, () => (order.push('gauge'), level));
    t.beforeScrape(async () => {
      await new Promise((r) => setImmediate(r));
      order.push('hook');
      level = 2;
    });
    t.collector(() => (order.push('collector'), [{ name: 'x', help: 'X.', type: 'gauge', samples: [{ suffix: '', labels: {}, value: level * 10 }] }]));
    const fams = await t.scrape();
    expect(order).to.deep.equal(['hook', 'gauge', 'collector']);
    expect(fams.map((f) => [f.name, f.samples[0]?.value])).to.deep.equal([
      ['level', 2],
      ['x', 20],
    ]);
    level = 3;
    expect(t.families()[0]?.samples[0]?.value).to.equal(3);
  });

  it('refuses a gauge series registered again with another reading; the same reading again changes nothing', () => {
    const t = new Telemetry();
    const read = (): number => 1;
    t.gauge('queue_size', 'Queue size.', { exporter: 'otlp' }, read);
    t.gauge('queue_size', 'Queue size.', { exporter: 'otlp' }, read);
    expect(() => t.gauge('queue_size', 'Queue size.', { exporter: 'otlp' }, () => 2)).to.throw(
      'gauge queue_size{exporter="otlp"} is already registered with another reading',
    );
    t.gauge('queue_size', 'Queue size.', { exporter: 'jaeger' }, () => 3);
    expect(renderPrometheus(t.families())).to.equal(
      '# HELP queue_size Queue size.\n# TYPE queue_size gauge\nqueue_size{exporter="otlp"} 1\nqueue_size{exporter="jaeger"} 3\n',
    );
  });

  it('registers a gauge series again once the first is removed (a component stopped and created again)', () => {
    const t = new Telemetry();
    const remove = t.gauge('in_flight', 'In flight.', { processor: 'p' }, () => 1);
    remove();
    expect(t.families()).to.deep.equal([]);
    t.gauge('in_flight', 'In flight.', { processor: 'p' }, () => 2);
    remove(); // removing twice leaves the new series alone
    expect(t.families().map((f) => f.samples.map((s) => s.value))).to.deep.equal([[2]]);
  });

  it('refuses a counter or gauge name taken by the other type, as named or as the 0.0.4 format writes it', () => {
    const t = new Telemetry();
    t.counter('spans', 'Spans.');
    t.gauge('level', 'Level.', {}, () => 1);
    t.gauge('sent_total', 'Sent.', {}, () => 1);
    expect(() => t.gauge('spans', 'Spans.', {}, () => 1)).to.throw('cannot register gauge spans: the counter spans is registered');
    expect(() => t.gauge('spans_total', 'Spans.', {}, () => 1)).to.throw('cannot register gauge spans_total: the counter spans is registered');
    expect(() => t.counter('level', 'Level.')).to.throw('cannot register counter level: the gauge level is registered');
    expect(() => t.counter('sent', 'Sent.')).to.throw('cannot register counter sent: the gauge sent_total is registered');
    expect(t.families().map((f) => `${f.type} ${f.name}`)).to.deep.equal(['counter spans', 'gauge level', 'gauge sent_total']);
  });

  it('writes families of one name from several collectors as one family, and refuses them under two types', () => {
    const t = new Telemetry();
    const fam = (connector: string, type: MetricFamily['type'] = 'gauge'): MetricFamily => ({
      name: 'routes',
      help: 'Routes.',
      type,
      samples: [{ suffix: '', labels: { connector }, value: connector.length }],
    });
    t.collector(() => [fam('a')]);
    t.collector(() => [fam('bb')]);
    expect(renderPrometheus(t.families())).to.equal('# HELP routes Routes.\n# TYPE routes gauge\nroutes{connector="a"} 1\nroutes{connector="bb"} 2\n');
    t.collector(() => [fam('ccc', 'counter')]);
    expect(() => t.families()).to.throw('metric family routes (counter) clashes with the gauge routes');
  });

  it('never writes a family name twice, whatever is registered in whatever order (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('counter' as const), name: fc.constantFrom('a', 'b', 'a_total'), label: fc.constantFrom('x', 'y') }),
      fc.record({
        kind: fc.constant('gauge' as const),
        name: fc.constantFrom('a', 'b', 'a_total'),
        label: fc.constantFrom('x', 'y'),
        reading: fc.constantFrom(0, 1),
      }),
    );
    const readings = [(): number => 0, (): number => 1];
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), fc.boolean(), (ops, openMetrics) => {
        const t = new Telemetry();
        for (const o of ops) {
          try {
            if (o.kind === 'counter') t.counter(o.name, 'Help.', { l: o.label }).add();
            else t.gauge(o.name, 'Help.', { l: o.label }, readings[o.reading] as () => number);
          } catch (err) {
            expect((err as Error).message).to.match(/^(cannot register|gauge .* is already registered)/);
          }
        }
        // The strict parser refuses a second TYPE line for a name and a series written twice.
        const parsed = parseExposition(renderPrometheus(t.families(), openMetrics));
        expect(parsed.samples.length).to.equal(new Set(parsed.samples.map((s) => `${s.name} ${JSON.stringify(s.labels)}`)).size);
      }),
      { numRuns: 500 },
    );
  });
});

describe('Prometheus and OpenMetrics rendering', () => {
  it('renders the text format 0.0.4: counters named with _total, help and label values escaped, no exemplars', () => {
    expect(renderPrometheus(everything().families())).to.equal(TEXT_0_0_4);
  });

  it('renders OpenMetrics 1.0: counter families named without _total, units, exemplars with millisecond timestamps, # EOF', () => {
    expect(renderPrometheus(everything().families(), true)).to.equal(OPENMETRICS);
  });

  it('reads back every label value, sample value and help text as it was, in both formats', () => {
    fc.assert(
      fc.property(families, fc.boolean(), (fams, openMetrics) => {
        const parsed = parseExposition(renderPrometheus(fams, openMetrics));
        // -0 is written as 0.
        const expected = fams.flatMap((f) => f.samples.map((s) => ({ name: `${f.name}${s.suffix}`, labels: s.labels, value: s.value === 0 ? 0 : s.value })));
        expect(parsed.samples.map((s) => ({ name: s.name, labels: s.labels, value: s.value }))).to.deep.equal(expected);
        expect(parsed.eof).to.equal(openMetrics);
        // HELP texts too, unescaped as each format says (OpenMetrics escapes `"`; 0.0.4 must not).
        const head = (f: MetricFamily): string => (!openMetrics && f.type === 'counter' ? `${f.name}_total` : f.name);
        expect(Object.fromEntries(parsed.helps)).to.deep.equal(Object.fromEntries(fams.map((f) => [head(f), f.help])));
      }),
      { numRuns: 300 },
    );
  });

  it('passes promtool check metrics, for the known families and for random ones', async function () {
    this.timeout(120_000);
    const known = await promtoolCheck(TEXT_0_0_4);
    expect(known, known.output).to.deep.include({ code: 0 });
    const samples = fc.sample(families, { numRuns: 30, seed: 26 });
    for (const fams of samples) {
      const r = await promtoolCheck(renderPrometheus(fams));
      expect(r, `${r.output}\n${renderPrometheus(fams)}`).to.deep.include({ code: 0 });
    }
  });
});
