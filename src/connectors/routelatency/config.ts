/**
 * Config of the `routelatency` connector (route key and window keys; the metrics keys come later).
 * Key names follow the Collector's spanmetrics connector where they overlap (`dimensions`).
 */
import type { ConfigIssues } from '../../core/component';
import type { Field, Infer } from '../../config/schema';
import { duration, join, list, num, obj, optStr, parseDuration, refine, str } from '../../config/schema';
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

/** The keys; the lead adds the metrics keys here. */
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
    doc: 'Distinct routes kept per service; spans of further routes go to the service\'s `__other__` route.',
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
};

function validate(cfg: { windows: number[]; route_expiry: number }, path: string, issues: ConfigIssues): void {
  const largest = Math.max(...cfg.windows);
  if (Number.isFinite(largest) && cfg.route_expiry < largest) {
    issues.add(
      join(path, 'route_expiry'),
      `invalid value ${JSON.stringify(formatDuration(cfg.route_expiry))}; expected at least the largest window (${formatDuration(largest)})`,
    );
  }
}

export const routeLatencyConfigSchema = refine(obj(routeLatencyConfigFields, {
  doc: 'Per-route latency analysis of server spans: route keys, windows, cardinality bounds.',
}), validate);

export type RouteLatencyConfig = Infer<typeof routeLatencyConfigSchema>;

/** Cross-key checks, for a schema the lead extends from {@link routeLatencyConfigFields}. */
export const validateRouteLatencyConfig = validate;
