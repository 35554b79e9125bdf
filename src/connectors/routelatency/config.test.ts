import { expect } from 'chai';
import { ConfigErrorList } from '../../core/schema';
import { routeLatencyConfigSchema } from './config';
import type { RouteLatencyConfig } from './config';
import { RouteStore, routeStoreOptions } from './store';
import { ObjectSpanInput } from './span-input';
import { FakeClock } from '../../../test/support/route-spans';

const PATH = 'connectors.routelatency';

function parse(raw: unknown): { config: RouteLatencyConfig; errors: string[] } {
  const issues = new ConfigErrorList();
  const config = routeLatencyConfigSchema.parse(raw, PATH, issues);
  return { config, errors: issues.items.map((i) => `${i.path}: ${i.message}`) };
}

describe('routelatency config', () => {
  it('has the documented defaults', () => {
    const { config, errors } = parse(undefined);
    expect(errors).to.deep.equal([]);
    const { metrics, analysis, ...rest } = config;
    expect(rest).to.deep.equal({
      windows: [60_000, 300_000, 900_000, 3_600_000],
      dimensions: [],
      span_kinds: ['SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER'],
      max_routes_per_service: 1000,
      route_expiry: 7_200_000,
      templating: [],
    });
    expect(metrics.namespace).to.equal('traces.span.metrics'); // the metrics section: metrics.test.ts
    expect(analysis.enabled).to.equal(true); // the analysis section: analyzer.test.ts
  });

  it('reads every key, accepting SERVER and SPAN_KIND_SERVER forms', () => {
    const { config, errors } = parse({
      windows: ['30s', '10m', '2h'],
      dimensions: [{ name: 'deployment.environment' }, { name: 'region', default: 'none' }],
      span_kinds: ['SERVER', 'SPAN_KIND_CONSUMER', 'internal'],
      max_routes_per_service: 50,
      route_expiry: '3h',
      templating: [{ pattern: '^/static/.*', replacement: '/static/*' }, { pattern: '/u/[a-z]+' }],
    });
    expect(errors).to.deep.equal([]);
    expect(config.windows).to.deep.equal([30_000, 600_000, 7_200_000]);
    expect(config.dimensions).to.deep.equal([
      { name: 'deployment.environment', default: undefined },
      { name: 'region', default: 'none' },
    ]);
    expect(config.span_kinds).to.deep.equal(['SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER', 'SPAN_KIND_INTERNAL']);
    expect(config.templating).to.deep.equal([
      { pattern: '^/static/.*', replacement: '/static/*' },
      { pattern: '/u/[a-z]+', replacement: '{id}' },
    ]);
    expect(config.route_expiry).to.equal(10_800_000);
  });

  it('reports every problem with its YAML path', () => {
    const { errors } = parse({
      windows: ['1m', 'soon', '25s'],
      dimensions: [{ name: 'a' }, { name: 'a' }, { default: 'x' }, { name: '' }],
      span_kinds: ['SERVERS'],
      max_routes_per_service: 0,
      route_expiry: '30s',
      templating: [{ pattern: '(' }, { replacement: 'x' }],
      extra: true,
    });
    const expected = [
      `${PATH}.extra: unknown key "extra"`,
      `${PATH}.windows[1]: invalid value "soon"; expected a duration`,
      `${PATH}.dimensions[2].name: missing required key "name"`,
      `${PATH}.dimensions[3].name: invalid value ""; expected a non-empty string`,
      `${PATH}.dimensions[1].name: duplicate dimension "a"`,
      `${PATH}.span_kinds[0]: invalid value "SERVERS"; expected one of SPAN_KIND_UNSPECIFIED, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER, SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER (the SPAN_KIND_ prefix may be left out)`,
      `${PATH}.max_routes_per_service: invalid value number 0; expected an integer >= 1`,
      `${PATH}.route_expiry: invalid value "30s"; expected a duration of at least 1m`,
      `${PATH}.templating[0].pattern: invalid regular expression "("`,
      `${PATH}.templating[1].pattern: missing required key "pattern"`,
      `${PATH}.windows[2]: invalid window "25s": a window must be a multiple of 10s`,
    ];
    for (const e of expected)
      expect(
        errors.some((x) => x.startsWith(e)),
        `${e}\n in:\n${errors.join('\n')}`,
      ).to.equal(true);
    // each problem once: a malformed window is not reported again as window "0s"
    expect(errors.filter((x) => x.includes('windows[1]')).length).to.equal(1);
    expect(errors.filter((x) => x.includes('dimensions[3]')).length).to.equal(1);
  });

  it('route_expiry must cover the largest window', () => {
    expect(parse({ windows: ['5m', '2h'] }).errors).to.deep.equal([]);
    expect(parse({ windows: ['5m', '3h'] }).errors).to.deep.equal([`${PATH}.route_expiry: invalid value "2h"; expected at least the largest window (3h)`]);
  });

  it('feeds a RouteStore', () => {
    const { config } = parse({ windows: ['1m'], span_kinds: ['CLIENT'], max_routes_per_service: 1, route_expiry: '1m' });
    const store = new RouteStore(routeStoreOptions(config, new FakeClock(0)));
    expect(store.windowsMs).to.deep.equal([60_000]);
    expect(store.record(new ObjectSpanInput({ name: 'GET', kind: 'CLIENT', attributes: { 'http.url': 'http://x/a' } }))).to.equal(true);
    expect(store.record(new ObjectSpanInput({ name: 'GET', kind: 'CLIENT', attributes: { 'http.url': 'http://x/b' } }))).to.equal(true);
    expect(store.record(new ObjectSpanInput({ name: 'x', kind: 'SERVER' }))).to.equal(false);
    expect(store.stats()).to.include({ routes: 2, overflowSpans: 1 });
  });
});
