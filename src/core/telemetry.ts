/**
 * Self-telemetry: a small registry of counters and gauges rendered in the Prometheus text format on the
 * routequery extension's /metrics. Handles are created once per component (never per span), so recording
 * is an addition on a number.
 */

export type Labels = Readonly<Record<string, string>>;

export interface Counter {
  add(n?: number): void;
  value(): number;
}

/** A family of samples produced on demand (gauges read at scrape time, histograms from connectors). */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary';
  /** Optional unit, written as `# UNIT` in OpenMetrics. */
  unit?: string;
  samples: MetricSample[];
}

export interface MetricSample {
  /** Sample name suffix, e.g. `_bucket`, `_sum`, `_count`, `_total` or `` (none). */
  suffix: string;
  labels: Labels;
  value: number;
  /** OpenMetrics exemplar (rendered only in the OpenMetrics format). */
  exemplar?: { labels: Labels; value: number; timestampS?: number };
}

export type Collector = () => MetricFamily[];

interface CounterFamily {
  help: string;
  series: Map<string, { labels: Labels; value: number }>;
}

/** The identity of a label set, whatever the order of its keys. Quoted, so no value can pass for a separator. */
export function labelKey(labels: Labels): string {
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, labels[k]]),
  );
}

export class Telemetry {
  readonly #counters = new Map<string, CounterFamily>();
  readonly #gauges = new Map<string, { help: string; series: { labels: Labels; read: () => number }[] }>();
  readonly #collectors: Collector[] = [];
  readonly #beforeScrape: (() => Promise<void>)[] = [];

  /** A monotonically increasing counter. `name` carries no `_total`; it is added when rendering. */
  counter(name: string, help: string, labels: Labels = {}): Counter {
    let fam = this.#counters.get(name);
    if (fam === undefined) {
      fam = { help, series: new Map() };
      this.#counters.set(name, fam);
    }
    const key = labelKey(labels);
    let s = fam.series.get(key);
    if (s === undefined) {
      s = { labels, value: 0 };
      fam.series.set(key, s);
    }
    const series = s;
    return {
      add(n = 1) {
        series.value += n;
      },
      value: () => series.value,
    };
  }

  /** A gauge read at scrape time. */
  gauge(name: string, help: string, labels: Labels, read: () => number): void {
    let fam = this.#gauges.get(name);
    if (fam === undefined) {
      fam = { help, series: [] };
      this.#gauges.set(name, fam);
    }
    fam.series.push({ labels, read });
  }

  /** Register a producer of metric families (e.g. route latency histograms). */
  collector(fn: Collector): void {
    this.#collectors.push(fn);
  }

  /** Run `fn` before each scrape (e.g. to gather samples from worker processes). */
  beforeScrape(fn: () => Promise<void>): void {
    this.#beforeScrape.push(fn);
  }

  /** Families after running the before-scrape hooks. */
  async scrape(): Promise<MetricFamily[]> {
    await Promise.all(this.#beforeScrape.map((fn) => fn()));
    return this.families();
  }

  /** Sum of a counter over all series whose labels include `match`. */
  counterValue(name: string, match: Labels = {}): number {
    const fam = this.#counters.get(name);
    if (fam === undefined) return 0;
    let total = 0;
    for (const s of fam.series.values()) {
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }

  families(): MetricFamily[] {
    const out: MetricFamily[] = [];
    for (const [name, fam] of this.#counters) {
      out.push({
        name,
        help: fam.help,
        type: 'counter',
        samples: [...fam.series.values()].map((s) => ({ suffix: '_total', labels: s.labels, value: s.value })),
      });
    }
    for (const [name, fam] of this.#gauges) {
      out.push({
        name,
        help: fam.help,
        type: 'gauge',
        samples: fam.series.map((s) => ({ suffix: '', labels: s.labels, value: s.read() })),
      });
    }
    for (const c of this.#collectors) out.push(...c());
    return out;
  }
}

/** A label value, in both formats: `\\`, `\n` and `"` escaped. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/**
 * A HELP text. The text format 0.0.4 escapes `\\` and `\n` only (its spec names no other escape, and parsers of
 * it before UTF-8 names refuse `\"`); OpenMetrics writes it as an escaped-string, as label values: `"` is escaped
 * too.
 */
function escapeHelp(v: string, openMetrics: boolean): string {
  const text = v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return openMetrics ? text.replace(/"/g, '\\"') : text;
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(labels[k] as string)}"`).join(',')}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/**
 * Render families in the Prometheus text format 0.0.4, or OpenMetrics 1.0 (with exemplars and `# EOF`)
 * when `openMetrics` is set.
 */
export function renderPrometheus(families: MetricFamily[], openMetrics = false): string {
  const lines: string[] = [];
  for (const fam of families) {
    // OpenMetrics names a counter family without its `_total` suffix; the 0.0.4 text format with it.
    const head = !openMetrics && fam.type === 'counter' ? `${fam.name}_total` : fam.name;
    lines.push(`# HELP ${head} ${escapeHelp(fam.help, openMetrics)}`);
    lines.push(`# TYPE ${head} ${fam.type}`);
    if (openMetrics && fam.unit !== undefined) lines.push(`# UNIT ${head} ${fam.unit}`);
    for (const s of fam.samples) {
      let line = `${fam.name}${s.suffix}${formatLabels(s.labels)} ${formatValue(s.value)}`;
      if (openMetrics && s.exemplar !== undefined) {
        line += ` # ${formatLabels(s.exemplar.labels)} ${formatValue(s.exemplar.value)}`;
        if (s.exemplar.timestampS !== undefined) line += ` ${s.exemplar.timestampS.toFixed(3)}`;
      }
      lines.push(line);
    }
  }
  if (openMetrics) lines.push('# EOF');
  return lines.join('\n') + '\n';
}
