/**
 * Charts on uPlot (canvas): series over time and the latency distribution. Colours come from the page's CSS
 * variables, so light and dark themes need only a redraw.
 */

interface Chart {
  readonly root: HTMLElement;
  setData(data: uPlot.AlignedData): void;
  resize(width: number): void;
  destroy(): void;
}

interface SeriesSpec {
  label: string;
  /** Name of a CSS variable holding the colour, e.g. `--c-p99`. */
  color: string;
  /** Dashed line (for the less important series). */
  dash?: boolean;
  /** Draw as bars. */
  bars?: boolean;
}

const CHART_HEIGHT = 200;

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

function axisStyle(): Partial<uPlot.Axis> {
  const fg = cssVar('--muted');
  const grid = cssVar('--grid');
  return { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 }, font: '11px system-ui, sans-serif' };
}

function chartWidth(host: HTMLElement): number {
  return Math.max(280, Math.floor(host.clientWidth || host.parentElement?.clientWidth || 600));
}

/** A chart over time: x in Unix seconds, one y series per spec, values formatted with `fmt`. */
function timeChart(host: HTMLElement, specs: readonly SeriesSpec[], data: uPlot.AlignedData, fmt: (v: number) => string): Chart {
  const opts: uPlot.Options = {
    width: chartWidth(host),
    height: CHART_HEIGHT,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] } },
    axes: [
      { ...axisStyle(), space: 70, values: (_u, splits) => splits.map((v) => (v === null ? '' : fmtClock(v * 1000))) },
      { ...axisStyle(), size: 56, values: (_u, splits) => splits.map((v) => (v === null ? '' : fmt(v))) },
    ],
    series: [
      { label: 'time', value: (_u, v) => (v === null ? '–' : fmtClock(v * 1000)) },
      ...specs.map((s): uPlot.Series => ({
        label: s.label,
        stroke: cssVar(s.color),
        width: 1.5,
        ...(s.dash === true ? { dash: [4, 3] } : {}),
        ...(s.bars === true ? { fill: cssVar(s.color), paths: uPlot.paths.bars?.({ size: [0.7, 40] }) } : {}),
        spanGaps: false,
        points: { size: 5, fill: cssVar(s.color) },
        value: (_u, v) => (v === null ? '–' : fmt(v)),
      })),
    ],
  };
  const u = new uPlot(opts, data, host);
  return {
    root: host,
    setData: (d) => u.setData(d),
    resize: (w) => u.setSize({ width: Math.max(280, w), height: CHART_HEIGHT }),
    destroy: () => u.destroy(),
  };
}

/** Buckets per octave shown in the distribution (the sketch has 64; 8 keep bars readable). */
const DISPLAY_BUCKETS_PER_OCTAVE = 8;

/**
 * The sketch's buckets regrouped to 8 per octave: x = log2 of each bar's lower bound in ms, y = spans. The zero
 * bucket (0 ms spans) is left out of the bars; callers report it in words.
 */
function distributionBars(d: NonNullable<RouteDetail['distribution']>): [number[], number[]] {
  const group = Math.max(1, Math.pow(2, d.scale) / DISPLAY_BUCKETS_PER_OCTAVE);
  const perOctave = Math.pow(2, d.scale) / group;
  const bars = new Map<number, number>();
  d.counts.forEach((n, k) => {
    if (n === 0) return;
    const j = Math.floor((d.offset + k) / group);
    bars.set(j, (bars.get(j) ?? 0) + n);
  });
  if (bars.size === 0) return [[], []];
  const keys = [...bars.keys()];
  const lo = Math.min(...keys);
  const hi = Math.max(...keys);
  const xs: number[] = [];
  const ys: number[] = [];
  for (let j = lo; j <= hi; j++) {
    xs.push(j / perOctave);
    ys.push(bars.get(j) ?? 0);
  }
  return [xs, ys];
}

/** Round durations (1, 2, 5 × 10^k ms) as log2 positions between lo and hi. */
function logSplits(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = -3; e <= 7; e++) {
    for (const m of [1, 2, 5]) {
      const v = Math.log2(m * Math.pow(10, e));
      if (v >= lo && v <= hi) out.push(v);
    }
  }
  return out.length > 8 ? out.filter((_, i) => i % 2 === 0) : out;
}

interface Marker {
  label: string;
  ms: number | null;
}

interface DistributionChart extends Chart {
  /** New buckets and percentile markers. */
  update(d: NonNullable<RouteDetail['distribution']>, markers: Marker[]): void;
}

/** The latency distribution as bars on a log axis, with vertical markers at the given percentiles. */
function distributionChart(host: HTMLElement, d: NonNullable<RouteDetail['distribution']>, markers: Marker[]): DistributionChart {
  let marks = markers;
  const width = Math.pow(2, -d.scale) * Math.max(1, Math.pow(2, d.scale) / DISPLAY_BUCKETS_PER_OCTAVE);
  const opts: uPlot.Options = {
    width: chartWidth(host),
    height: CHART_HEIGHT,
    cursor: { drag: { x: false, y: false } },
    legend: { show: true },
    scales: {
      x: { time: false, range: (_u, min, max) => [min - width, max + 2 * width] },
      y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
    },
    axes: [
      {
        ...axisStyle(),
        splits: (_u, _i, min, max) => logSplits(min, max),
        values: (_u, splits) => splits.map((v) => fmtMs(Math.pow(2, v))),
      },
      { ...axisStyle(), size: 56, values: (_u, splits) => splits.map((v) => (v === null ? '' : fmtCount(v))) },
    ],
    series: [
      { label: 'latency from', value: (_u, v) => (v === null ? '–' : fmtMs(Math.pow(2, v))) },
      {
        label: 'spans',
        stroke: cssVar('--c-bar'),
        fill: cssVar('--c-bar-fill'),
        paths: uPlot.paths.bars?.({ size: [0.9, 60], align: 1 }),
        points: { show: false },
        value: (_u, v) => (v === null ? '–' : fmtCount(v)),
      },
    ],
    hooks: {
      draw: [
        (u) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.font = `${Math.round(11 * devicePixelRatio)}px system-ui, sans-serif`;
          ctx.textAlign = 'left';
          marks.forEach((m, i) => {
            if (m.ms === null || m.ms <= 0) return;
            const x = u.valToPos(Math.log2(m.ms), 'x', true);
            ctx.strokeStyle = cssVar(['--c-p50', '--c-p95', '--c-p99'][i] ?? '--c-p99');
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([4 * devicePixelRatio, 3 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillStyle = ctx.strokeStyle;
            ctx.fillText(m.label, x + 3 * devicePixelRatio, u.bbox.top + (12 + i * 13) * devicePixelRatio);
          });
          ctx.restore();
        },
      ],
    },
  };
  const u = new uPlot(opts, distributionBars(d), host);
  return {
    root: host,
    setData: (data) => u.setData(data),
    update: (next, m) => {
      marks = m;
      u.setData(distributionBars(next));
    },
    resize: (w) => u.setSize({ width: Math.max(280, w), height: CHART_HEIGHT }),
    destroy: () => u.destroy(),
  };
}
