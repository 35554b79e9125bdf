/**
 * Config of the `tail_capture` processor, in the shape of the Collector's `tail_sampling`: `decision_wait`,
 * `num_traces`, `decision_cache`, and `policies` with a `name` and a `type` whose settings sit under a key of the
 * same name. Policy types: `route_latency` (the trace's root is slower than its route's live percentile),
 * `status_code`, `baseline` (K traces per route per minute).
 */
import { duration, join, list, num, obj, oneOf, optStr, refine, str, type Infer } from '../../core/schema';

export const POLICY_TYPES = ['route_latency', 'status_code', 'baseline'] as const;

const policyField = obj({
  name: str({ nonEmpty: true, doc: 'Name of the policy (its traces are counted and marked with it).' }),
  type: oneOf(POLICY_TYPES, { doc: 'route_latency, status_code or baseline.' }),
  route_latency: obj(
    {
      percentile: num({ min: 50, max: 99.99, default: 99, doc: 'Keep a trace whose root lasted longer than this percentile of its route.' }),
      window: duration({ default: '5m', doc: "The route's window the percentile is taken over; one of the routelatency connector's windows." }),
      min_requests: num({ integer: true, min: 1, default: 20, doc: 'Requests the route needs in the window before its percentile is trusted.' }),
    },
    { doc: 'Settings of a route_latency policy.' },
  ),
  status_code: obj(
    {
      status_codes: list(oneOf(['ERROR', 'OK', 'UNSET'] as const), {
        default: ['ERROR'],
        minItems: 1,
        doc: 'Keep a trace with a span of one of these statuses.',
      }),
    },
    { doc: 'Settings of a status_code policy.' },
  ),
  baseline: obj(
    {
      traces_per_minute: num({ min: 0, default: 2, doc: 'Traces kept per route per minute on average, at random among those no other policy kept.' }),
    },
    { doc: 'Settings of a baseline policy.' },
  ),
});

const DEFAULT_POLICIES = [
  {
    name: 'slow',
    type: 'route_latency' as const,
    route_latency: { percentile: 99, window: 300_000, min_requests: 20 },
    status_code: { status_codes: ['ERROR' as const] },
    baseline: { traces_per_minute: 2 },
  },
  {
    name: 'errors',
    type: 'status_code' as const,
    route_latency: { percentile: 99, window: 300_000, min_requests: 20 },
    status_code: { status_codes: ['ERROR' as const] },
    baseline: { traces_per_minute: 2 },
  },
  {
    name: 'baseline',
    type: 'baseline' as const,
    route_latency: { percentile: 99, window: 300_000, min_requests: 20 },
    status_code: { status_codes: ['ERROR' as const] },
    baseline: { traces_per_minute: 2 },
  },
];

export const tailCaptureConfigSchema = refine(
  obj(
    {
      decision_wait: duration({
        default: '5s',
        doc: "How long after a trace's root span arrives the trace is decided. Other services' spans come with their own exports (every 5 s with the SDK defaults) and end before the root, so they arrive within about that long after it. At most 60s.",
      }),
      max_trace_wait: duration({
        default: '30s',
        doc: "A trace whose root never arrives (its parent is outside, or in another routelens) is decided this long after its first span, from the spans it has (tail_sampling's decision_wait).",
      }),
      num_traces: num({ integer: true, min: 1, default: 50_000, doc: 'Traces held at once; beyond it the oldest is decided at once (counted).' }),
      max_spans_per_trace: num({ integer: true, min: 1, default: 5000, doc: 'Spans held per trace; further ones are dropped (counted).' }),
      max_memory_mib: num({
        min: 1,
        default: 512,
        doc: 'Received bytes held for undecided traces, MiB; beyond it the oldest traces are decided at once (counted).',
      }),
      routes_from: optStr({
        doc: 'The routelatency connector whose live per-route latency route_latency policies read (its id, e.g. `routelatency`). Unset: the only routelatency connector of the configuration.',
      }),
      decision_cache: obj(
        {
          sampled_cache_size: num({
            integer: true,
            min: 0,
            default: 100_000,
            doc: 'Kept trace ids remembered, so late spans of a kept trace are forwarded too (with its weight).',
          }),
          non_sampled_cache_size: num({
            integer: true,
            min: 0,
            default: 100_000,
            doc: 'Dropped trace ids remembered, so late spans of a dropped trace are dropped, not held.',
          }),
        },
        { doc: 'Decisions remembered for late spans, as tail_sampling’s.' },
      ),
      policies: {
        ...list(policyField, {
          default: DEFAULT_POLICIES,
          minItems: 1,
          doc: 'Evaluated in order; the first that keeps a trace names its reason. Default: slow (route_latency p99 over 5m), errors (status_code ERROR), baseline (2 per route per minute).',
        }),
        defaultText: '[slow: route_latency p99 5m, errors: status_code ERROR, baseline: 2 per minute]',
      },
    },
    {
      doc: 'Latency-aware tail capture: forwards whole traces slower than their route’s live percentile, with errors, and a baseline, each span marked with its sampling weight.',
    },
  ),
  (c, path, issues) => {
    if (c.decision_wait > 60_000) issues.add(join(path, 'decision_wait'), 'invalid value; expected at most 60s');
    if (c.max_trace_wait < c.decision_wait) issues.add(join(path, 'max_trace_wait'), 'invalid value; expected at least decision_wait');
    const names = new Set<string>();
    c.policies.forEach((p, i) => {
      if (names.has(p.name)) issues.add(`${path}.policies[${i}].name`, `duplicate policy name ${JSON.stringify(p.name)}`);
      names.add(p.name);
    });
  },
);

export type TailCaptureConfig = Infer<typeof tailCaptureConfigSchema>;
export type TailCapturePolicy = TailCaptureConfig['policies'][number];
