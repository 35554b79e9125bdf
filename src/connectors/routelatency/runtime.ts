/**
 * The routelatency connector's side of the runtime view (src/runtimeview): the span-based figures of a service's
 * routes that the runtime API sets beside the unsampled request counts of the metrics, and the view's counters.
 */
import type { MetricFamily } from '../../core/telemetry';
import type { SpanRouteFigures, SpanRoutes } from '../../runtimeview/query';
import type { RuntimeView } from '../../runtimeview/view';
import type { RouteEntry, RouteStore } from './store';

function finite(x: number): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : null;
}

/** Per (method, route) of a service, dimensions merged: count, rate, error rate, p95 and p99 over the window. */
export function spanRoutesOf(store: RouteStore): SpanRoutes {
  return (service, windowMs, nowMs) => {
    if (!store.services().some((s) => s.service === service)) return undefined;
    const win = store.resolveWindow(windowMs, nowMs);
    const groups = new Map<string, RouteEntry[]>();
    for (const e of store.entries()) {
      if (e.service !== service) continue;
      const key = JSON.stringify([e.method, e.route]);
      let list = groups.get(key);
      if (list === undefined) groups.set(key, (list = []));
      list.push(e);
    }
    const out: SpanRouteFigures[] = [];
    for (const list of groups.values()) {
      if (!store.hasData(list, win)) continue;
      const s = store.summarize(list, win);
      out.push({
        method: s.method,
        route: s.route,
        count: s.count,
        rate_per_s: finite(s.ratePerS) ?? 0,
        error_rate: finite(s.errorRate) ?? 0,
        p95_ms: finite(s.p95),
        p99_ms: finite(s.p99),
      });
    }
    return out;
  };
}

/** The view's counters and gauges for /metrics (summed over workers by the primary). */
export function runtimeViewFamilies(view: RuntimeView, connector: string): MetricFamily[] {
  const s = view.stats;
  const labels = (outcome: string) => ({ connector, outcome });
  return [
    {
      name: 'routelens_runtime_metrics_requests',
      help: 'Metrics requests offered to the runtime view, by outcome (dropped: its queue was full; malformed: it could not decode them). Forwarding is never affected.',
      type: 'counter',
      samples: [
        { suffix: '_total', labels: labels('accepted'), value: s.accepted },
        { suffix: '_total', labels: labels('dropped'), value: s.dropped },
        { suffix: '_total', labels: labels('malformed'), value: s.decodeErrors },
      ],
    },
    {
      name: 'routelens_runtime_metric_points',
      help: 'Allow-listed metric points recorded by the runtime view (refused: a cap on instances or streams was reached).',
      type: 'counter',
      samples: [
        { suffix: '_total', labels: labels('recorded'), value: s.points },
        { suffix: '_total', labels: labels('refused'), value: s.droppedPoints },
      ],
    },
    {
      name: 'routelens_runtime_instances',
      help: 'Service instances the runtime view holds.',
      type: 'gauge',
      samples: [{ suffix: '', labels: { connector }, value: view.state.instances.size }],
    },
  ];
}
