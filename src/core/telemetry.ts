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
  readonly #gauges = new Map<string, { help: string; series: Map<string, { labels: Labels; read: () => number }> }>();
  readonly #collectors: Collector[] = [];
  readonly #beforeScrape: (() => Promise<void>)[] = [];

  /**
   * A monotonically increasing counter. `name` carries no `_total`; it is added when rendering. Asking again for a
   * name and label set gives the same series (components of one id in several pipelines count together).
   */
  counter(name: string, help: string, labels: Labels = {}): Counter {
    let fam = this.#counters.get(name);
    if (fam === undefined) {
      this.#refuseClash(name, 'counter');
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

  /**
   * A gauge read at scrape time. Registering a name and label set again with the same `read` changes nothing;
   * with another `read` it is refused (two readings of one series would be two samples of it in the exposition).
   * Returns a function that removes the series, for a component that stops and may be created again.
   */
  gauge(name: string, help: string, labels: Labels, read: () => number): () => void {
    let fam = this.#gauges.get(name);
    if (fam === undefined) {
      this.#refuseClash(name, 'gauge');
      fam = { help, series: new Map() };
      this.#gauges.set(name, fam);
    }
    const key = labelKey(labels);
    const existing = fam.series.get(key);
    if (existing !== undefined && existing.read !== read) {
      throw new Error(`gauge ${name}${formatLabels(labels)} is already registered with another reading: remove it first, or give it other labels`);
    }
    const series = existing ?? { labels, read };
    fam.series.set(key, series);
    const family = fam;
    return () => {
      if (family.series.get(key) === series) family.series.delete(key);
      if (family.series.size === 0 && this.#gauges.get(name) === family) this.#gauges.delete(name);
    };
  }

  /**
   * A new counter or gauge name must not be taken by the other type: neither the family name (OpenMetrics writes a
   * counter `x` as family `x`) nor the name the text format 0.0.4 writes (`x_total` for that counter).
   */
  #refuseClash(name: string, type: 'counter' | 'gauge'): void {
    const other = type === 'counter' ? 'gauge' : 'counter';
    const taken =
      type === 'counter' ? [name, `${name}_total`].find((n) => this.#gauges.has(n)) : [name, name.replace(/_total$/, '')].find((n) => this.#counters.has(n));
    if (taken !== undefined) throw new Error(`cannot register ${type} ${name}: the ${other} ${taken} is registered, and both would be written as one family`);
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

  /**
   * Every family, once: families of one name (registered, or from several collectors, e.g. one per connector id)
   * are written as one, their samples together. Families of different types under one name cannot be written at
   * all, and are an error.
   */
  families(): MetricFamily[] {
    const byName = new Map<string, MetricFamily>();
    // The text format 0.0.4 names a counter family with `_total`: a counter `x` and a gauge `x_total` are one name there.
    const byWritten = new Map<string, MetricFamily>();
    const add = (f: MetricFamily): void => {
      const prev = byName.get(f.name) ?? byWritten.get(writtenName(f));
      if (prev === undefined) {
        const fam = { ...f, samples: [...f.samples] };
        byName.set(f.name, fam);
        byWritten.set(writtenName(f), fam);
      } else if (prev.type !== f.type || prev.name !== f.name) {
        throw new Error(`metric family ${f.name} (${f.type}) clashes with the ${prev.type} ${prev.name}: they would be written as one family`);
      } else {
        prev.samples.push(...f.samples);
      }
    };
    for (const [name, fam] of this.#counters) {
      add({ name, help: fam.help, type: 'counter', samples: [...fam.series.values()].map((s) => ({ suffix: '_total', labels: s.labels, value: s.value })) });
    }
    for (const [name, fam] of this.#gauges) {
      add({ name, help: fam.help, type: 'gauge', samples: [...fam.series.values()].map((s) => ({ suffix: '', labels: s.labels, value: s.read() })) });
    }
    for (const c of this.#collectors) for (const f of c()) add(f);
    return [...byName.values()];
  }
}

/** The name of a family's `# TYPE` line in the text format 0.0.4 (counters with `_total`). */
function writtenName(f: MetricFamily): string {
  return f.type === 'counter' ? `${f.name}_total` : f.name;
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
