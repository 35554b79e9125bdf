/**
 * Config of the `routelatency` connector: route key and window keys, and the `metrics` section (Prometheus
 * series on /metrics, OTLP metrics to metrics pipelines). Key names follow the Collector's spanmetrics connector
 * where they overlap (`dimensions`, `namespace`, `unit`, `aggregation_temporality`).
 */
import type { ConfigIssues } from '../../core/schema';
import type { Field, Infer } from '../../core/schema';
import { bool, duration, join, list, num, obj, oneOf, optional, optStr, parseDuration, refine, str } from '../../core/schema';
import { formatDuration, slotSizeFor } from './window';

export const SPAN_KIND_NAMES = [
  'SPAN_KIND_UNSPECIFIED',
  'SPAN_KIND_INTERNAL',
  'SPAN_KIND_SERVER',
  'SPAN_KIND_CLIENT',
  'SPAN_KIND_PRODUCER',
  'SPAN_KIND_CONSUMER',
] as const;
export type SpanKindName = (typeof SPAN_KIND_NAMES)[number];

/** A span kind written `SERVER` or `SPAN_KIND_SERVER` (any case), normalised to `SPAN_KIND_SERVER`. */
function spanKind(): Field<SpanKindName> {
  const expected = `one of ${SPAN_KIND_NAMES.join(', ')} (the SPAN_KIND_ prefix may be left out)`;
  return {
    expected,
    parse(raw, path, issues) {
      if (typeof raw === 'string') {
        const u = raw.trim().toUpperCase();
        const full = (u.startsWith('SPAN_KIND_') ? u : `SPAN_KIND_${u}`) as SpanKindName;
        if (SPAN_KIND_NAMES.includes(full)) return full;
      }
      issues.add(path, `invalid value ${raw === null || raw === undefined ? 'null' : JSON.stringify(raw)}; expected ${expected}`);
      return 'SPAN_KIND_UNSPECIFIED';
    },
  };
}

/** Reports a missing (absent or null) key; otherwise the field parses as usual. */
function required<T>(field: Field<T>): Field<T> {
  return {
    ...field,
    parse(raw, path, issues) {
      if (raw === undefined || raw === null) {
        const dot = path.lastIndexOf('.');
        issues.add(path, `missing required key ${JSON.stringify(path.slice(dot + 1))}`);
      }
      return field.parse(raw, path, issues);
    },
  };
}

const DEFAULT_WINDOWS_MS = [60_000, 300_000, 900_000, 3_600_000];

/** A window duration: a valid duration that the slot planner can serve (checked once, on the raw text). */
function windowDuration(): Field<number> {
  const base = duration();
  return {
    ...base,
    parse(raw, path, issues) {
      if (raw === null || raw === undefined) {
        issues.add(path, `invalid value null; expected ${base.expected}`);
        return 0;
      }
      const ms = base.parse(raw, path, issues);
      if (typeof raw === 'string' && parseDuration(raw) !== undefined) {
        const slot = slotSizeFor(ms);
        if (typeof slot === 'string') issues.add(path, `invalid window ${JSON.stringify(raw)}: ${slot}`);
      }
      return ms;
    },
  };
}

const windowsField: Field<number[]> = {
  ...list(windowDuration(), { default: DEFAULT_WINDOWS_MS, minItems: 1, unique: true }),
  defaultText: '["1m", "5m", "15m", "1h"]',
  doc: 'Query windows. Each must be at least 10s and a multiple of 10s (1m above 10m, 5m above 1h, 15m above 5h, 1h above 15h); at most 60h.',
};

const dimensionField = obj({
  name: required(str({ nonEmpty: true, doc: 'Attribute name, looked up in span attributes, then resource attributes.' })),
  default: optStr({ doc: 'Value used when the attribute is absent; without it the dimension is left out for that span.' }),
});

const templatingRuleField = refine(
  obj({
    pattern: required(str({ nonEmpty: true, doc: 'JavaScript regular expression matched against the whole path (all matches replaced).' })),
    replacement: str({ default: '{id}', doc: 'Replacement text; `$1` etc. refer to groups.' }),
  }),
  (rule, path, issues) => {
    if (rule.pattern === '') return; // reported by the field
    try {
      new RegExp(rule.pattern, 'g');
    } catch (e) {
      issues.add(join(path, 'pattern'), `invalid regular expression ${JSON.stringify(rule.pattern)}: ${(e as Error).message}`);
    }
  },
);

/** The Collector spanmetrics connector's default histogram buckets, in ms. */
export const SPANMETRICS_DEFAULT_BUCKETS_MS: readonly number[] = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000];
/**
 * Default buckets of `routelens_route_duration_seconds`, in ms: the OpenTelemetry HTTP semantic conventions'
 * advisory buckets of `http.server.request.duration` (0.005 … 10 s), so dashboards made for SDK HTTP metrics fit.
 */
export const ROUTE_DEFAULT_BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10_000];

export const AGGREGATION_TEMPORALITIES = ['AGGREGATION_TEMPORALITY_CUMULATIVE', 'AGGREGATION_TEMPORALITY_DELTA'] as const;

function msText(ms: number): string {
  return ms < 1000 || ms % 1000 !== 0 ? `${ms}ms` : `${ms / 1000}s`;
}

/** Histogram bounds written as durations (`2ms`, `1.4s`): strictly ascending and positive. */
function bucketList(defaultMs: readonly number[], doc: string): Field<number[]> {
  const base = list(duration(), { default: [...defaultMs] });
  return {
    ...refine(base, (bounds, path, issues) => {
      bounds.forEach((b, i) => {
        if (!(b > 0)) issues.add(`${path}[${i}]`, 'invalid bucket bound 0; expected a positive duration');
        else if (i > 0 && !(b > (bounds[i - 1] as number)))
          issues.add(`${path}[${i}]`, `invalid bucket bound ${JSON.stringify(msText(b))}; bounds must be strictly ascending`);
      });
    }),
    defaultText: JSON.stringify(defaultMs.map(msText)),
    doc,
  };
}

/** The `metrics` section. */
export const routeLatencyMetricsFields = {
  namespace: str({
    default: 'traces.span.metrics',
    doc: 'Namespace of the spanmetrics-compatible series, as in spanmetrics; dots become underscores on /metrics (`traces_span_metrics_calls_total`, `traces_span_metrics_duration_milliseconds_bucket`). Empty: `calls_total`, `duration_milliseconds_bucket`.',
  }),
  unit: oneOf(['ms', 's'] as const, {
    default: 'ms',
    doc: 'Unit of the spanmetrics-compatible duration histogram (suffix `_milliseconds` or `_seconds`) and of the OTLP exponential histograms.',
  }),
  explicit_buckets: bucketList(
    SPANMETRICS_DEFAULT_BUCKETS_MS,
    'Bucket bounds (durations such as `2ms`, `1.4s`) of the spanmetrics-compatible duration histogram, rendered in `unit`; default: the Collector spanmetrics defaults.',
  ),
  route_buckets: bucketList(
    ROUTE_DEFAULT_BUCKETS_MS,
    'Bucket bounds (durations) of `routelens_route_duration_seconds`; default: the OpenTelemetry HTTP semconv advisory buckets of `http.server.request.duration`.',
  ),
  summary_window: {
    ...optional(
      duration({
        doc: 'Window of the `routelens_route_latency_seconds` quantiles (label `window`); must be one of `windows`. Unset: 5m when it is one of `windows`, else the first window.',
      }),
    ),
    defaultText: '"5m"',
  },
  exemplars: bool({
    default: true,
    doc: 'Keep the latest span per histogram bucket (refreshed at most once a second) and show it as an OpenMetrics exemplar (`trace_id`, `span_id`) when the scraper asks for OpenMetrics.',
  }),
  flush_interval: duration({
    default: '60s',
    min: '100ms',
    doc: 'How often OTLP metrics are sent to the metrics pipelines the connector feeds (and once more on shutdown).',
  }),
  aggregation_temporality: oneOf(AGGREGATION_TEMPORALITIES, {
    default: 'AGGREGATION_TEMPORALITY_CUMULATIVE',
    doc: 'Temporality of the OTLP metrics: cumulative since the route appeared, or delta since the previous flush.',
  }),
};

const metricsField = obj(routeLatencyMetricsFields, {
  doc: "Metrics of the routes: spanmetrics-compatible and routelens series on the routequery extension's /metrics, and OTLP exponential histograms sent every `flush_interval` to the metrics pipelines the connector feeds.",
});

/** The `analysis` section: live trace analysis (why is this route slow). */
export const routeLatencyAnalysisFields = {
  enabled: bool({
    default: true,
    doc: 'Assemble traces and analyse every request of the routes (`GET /api/v1/why`). `false` turns it off: no span is copied, nothing is held.',
  }),
  decision_wait: duration({
    default: '2s',
    doc: 'How long after a request span arrives its analysis waits for the rest of its subtree (spans of its own service, which its exporter sends no later than the request span; the wait absorbs reordering between concurrent exports). At most 10s.',
  }),
  max_trace_wait: duration({
    default: '15s',
    doc: 'Spans not yet used by an analysed request are kept until their trace has had no new span for this long (a request span may come in its service’s next export, 5 s later with the SDK defaults); then they are counted as orphans or unrooted and dropped.',
  }),
  max_traces: num({
    integer: true,
    min: 1,
    default: 200_000,
    doc: 'Traces held at once, a backstop: max_memory_mib is the bound that normally applies. Beyond it the oldest is analysed at once (counted as evicted).',
  }),
  max_spans_per_trace: num({ integer: true, min: 1, default: 1000, doc: 'Spans held per trace; further spans are dropped (counted).' }),
  max_memory_mib: num({
    min: 1,
    default: 64,
    doc: 'Estimated memory of the held span records, MiB; beyond it the oldest traces are analysed at once (counted).',
  }),
  max_clock_skew: duration({
    default: '10s',
    doc: 'Largest clock-skew correction applied to a span from another host; larger ones are not applied (counted).',
  }),
  max_routes: num({ integer: true, min: 1, default: 10_000, doc: 'Routes analysed; requests of further routes are counted, not analysed.' }),
  n_plus_one: obj(
    {
      min_repeats: num({
        integer: true,
        min: 2,
        default: 5,
        doc: 'Repeats of one statement (or HTTP call template) under one parent needed for an N+1 (Sentry: 5).',
      }),
      min_total: duration({ default: '50ms', doc: 'Union of the repeats’ intervals needed (Sentry: 50ms).' }),
    },
    { doc: 'N+1 thresholds.' },
  ),
};

const analysisField = refine(
  obj(routeLatencyAnalysisFields, {
    doc: 'Live trace analysis: where each route’s time goes, statements, N+1, slow vs fast requests, versions (see src/analysis/README.md).',
  }),
  (a, path, issues) => {
    if (a.decision_wait > 10_000)
      issues.add(join(path, 'decision_wait'), `invalid value ${JSON.stringify(formatDuration(a.decision_wait))}; expected at most 10s`);
    if (a.max_trace_wait < a.decision_wait)
      issues.add(
        join(path, 'max_trace_wait'),
        `invalid value ${JSON.stringify(formatDuration(a.max_trace_wait))}; expected at least decision_wait (${formatDuration(a.decision_wait)})`,
      );
  },
);

/** The keys. */
export const routeLatencyConfigFields = {
  windows: windowsField,
  dimensions: refine(
    list(dimensionField, {
      default: [],
      doc: 'Extra route-key dimensions, like spanmetrics `dimensions`: `{name, default?}`.',
    }),
    (dims, path, issues) => {
      const seen = new Set<string>();
      dims.forEach((d, i) => {
        if (d.name !== '' && seen.has(d.name)) issues.add(`${path}[${i}].name`, `duplicate dimension ${JSON.stringify(d.name)}`);
        seen.add(d.name);
      });
    },
  ),
  span_kinds: list(spanKind(), {
    default: ['SPAN_KIND_SERVER', 'SPAN_KIND_CONSUMER'],
    minItems: 1,
    unique: true,
    doc: 'Span kinds that count as route requests.',
  }),
  max_routes_per_service: num({
    integer: true,
    min: 1,
    default: 1000,
    doc: "Distinct routes kept per service; spans of further routes go to the service's `__other__` route.",
  }),
  route_expiry: duration({
    default: '2h',
    min: '1m',
    doc: 'A route with no span for this long is dropped. Must be at least the largest window.',
  }),
  templating: list(templatingRuleField, {
    default: [],
    doc: 'Rules applied to raw paths before the built-in id rules (digits, UUIDs, long hex … → `{id}`).',
  }),
  metrics: metricsField,
  analysis: analysisField,
};

/** Labels the metrics set themselves; a dimension must not map to one of them. */
export const RESERVED_METRIC_LABELS: readonly string[] = [
  'service_name',
  'span_name',
  'span_kind',
  'status_code',
  'http_method',
  'http_route',
  'status_class',
  'window',
  'quantile',
  'le',
];

/** A Prometheus label name from an attribute name, as the Collector's Prometheus exporter does it. */
export function promLabelName(name: string): string {
  let s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (/^[0-9]/.test(s)) s = `key_${s}`;
  if (s.startsWith('__')) s = `key${s}`;
  return s === '' ? 'key_' : s;
}

function validate(
  cfg: { windows: number[]; route_expiry: number; dimensions?: { name: string }[]; metrics?: { summary_window?: number | undefined } },
  path: string,
  issues: ConfigIssues,
): void {
  const largest = Math.max(...cfg.windows);
  if (Number.isFinite(largest) && cfg.route_expiry < largest) {
    issues.add(
      join(path, 'route_expiry'),
      `invalid value ${JSON.stringify(formatDuration(cfg.route_expiry))}; expected at least the largest window (${formatDuration(largest)})`,
    );
  }
  if (cfg.metrics?.summary_window !== undefined && !cfg.windows.includes(cfg.metrics.summary_window)) {
    issues.add(
      join(join(path, 'metrics'), 'summary_window'),
      `invalid value ${JSON.stringify(formatDuration(cfg.metrics.summary_window))}; expected one of the windows (${cfg.windows.map(formatDuration).join(', ')})`,
    );
  }
  const labels = new Map<string, string>();
  (cfg.dimensions ?? []).forEach((d, i) => {
    if (d.name === '') return;
    const label = promLabelName(d.name);
    const at = `${join(path, 'dimensions')}[${i}].name`;
    if (RESERVED_METRIC_LABELS.includes(label)) {
      issues.add(at, `dimension ${JSON.stringify(d.name)} would be the metric label ${JSON.stringify(label)}, which routelens sets itself`);
    } else if (labels.has(label) && labels.get(label) !== d.name) {
      issues.add(at, `dimensions ${JSON.stringify(labels.get(label))} and ${JSON.stringify(d.name)} would both be the metric label ${JSON.stringify(label)}`);
    }
    labels.set(label, d.name);
  });
}

export const routeLatencyConfigSchema = refine(
  obj(routeLatencyConfigFields, {
    doc: 'Per-route latency analysis of server spans: route keys, windows, cardinality bounds.',
  }),
  validate,
);

export type RouteLatencyConfig = Infer<typeof routeLatencyConfigSchema>;

/** Cross-key checks, for a schema the lead extends from {@link routeLatencyConfigFields}. */
export const validateRouteLatencyConfig = validate;
