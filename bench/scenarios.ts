/**
 * What a benchmark scenario is: a load source, a request shape, a rate and a pipeline shape. The three standard
 * scenarios (`rate10k`, `rate50k`, `saturation`: 512-span requests from bench/loadgen.ts on the full pipeline) keep
 * their names; every other scenario is named by what it is:
 *
 *   <source><spans per request>-<rate>-<pipeline>     e.g. lg10-10k-bare, tg100-50k-full, lg100-sat-bare
 *
 *   source    lg = bench/loadgen.ts (Python-shaped spans, a marker per request for latency)
 *             tg = telemetrygen, the Collector's own load generator (scripts/build-telemetrygen.sh)
 *   rate      1k, 10k, 50k spans/s (open loop), or sat (closed loop: 16 calls outstanding over 4 connections;
 *             loadgen only)
 *   pipeline  full = otlp → k8sattributes → [otlp/sink, routelatency]; bare = otlp → [otlp/sink, routelatency]
 *
 * The shape matrix (`--matrix`) is every combination below, narrowed by --sources, --shapes, --rates, --pipelines.
 *
 * Metrics and logs (`metrics10k`, `metrics50k`, `logs10k`, `logs50k`): Python-shaped requests from loadgen
 * (bench/signals-workload.ts) at 10k or 50k data points or log records per second, on otlp → k8sattributes →
 * otlp/sink in both collectors; the `spans` figures of those rows count data points or log records.
 *
 * Traces beside metrics and logs (`rate10k-beside`, `rate50k-beside`): the standard scenario, plus metrics and logs
 * pipelines in both collectors (otlp → the traces pipeline's processors → the sink) and two more generators sending
 * one data point and one log record per 10 spans. The trace figures are read as in the standard scenario (CPU per
 * span then includes the other signals' work); the items beside are counted apart.
 */
import type { PipelineShape } from './configs';
import type { StartArgs } from './loadgen';
import type { AppSignal } from './signals-workload';
import { SPANS_PER_REQUEST } from './workload';

export type Source = 'loadgen' | 'telemetrygen';

export interface Scenario {
  name: string;
  label: string;
  /** The signal sent: traces, or the metrics or logs of a Python service (items then count as spans). */
  signal: 'traces' | AppSignal;
  source: Source;
  spansPerRequest: number;
  pipeline: PipelineShape;
  /** Offered spans/s; undefined at saturation. */
  spansPerSec: number | undefined;
  /** The loadgen's arguments (telemetrygen derives its own from spansPerSec and spansPerRequest). */
  gen: Omit<StartArgs, 'target'>;
  /**
   * Warm-up this scenario needs at least, seconds, whatever --warmup says: the why pipelines hold every trace for
   * a decision wait, so what they hold grows for that long before it is steady.
   */
  minWarmupS?: number;
  /**
   * Metrics and logs sent to the same collector at the same time by generators of their own (the `-beside`
   * scenarios): the trace figures are read as usual, and these items are counted apart at the sink.
   */
  beside?: BesideLoad[];
}

/** A Python service's metrics or logs offered beside a trace load. */
export interface BesideLoad {
  signal: AppSignal;
  itemsPerSec: number;
  itemsPerRequest: number;
}

/** Names of the standard scenarios, in their table order. */
export const STANDARD_SCENARIOS = ['rate10k', 'rate50k', 'saturation'] as const;

/**
 * The "why" scenarios (issue 28 item 10): the standard 512-span requests at 10k and 50k spans/s on the `why`
 * pipelines (trace analysis and tail_capture against span_metrics and tail_sampling), with fresh trace ids per
 * send so that traces do not repeat while a decision waits.
 */
export const WHY_SCENARIOS = ['why10k', 'why50k'] as const;
/** The decision wait of both collectors' tail samplers in the why scenarios (bench/configs.ts). */
export const WHY_DECISION_WAIT_S = 10;

const RATES: Record<string, number | undefined> = { '1k': 1_000, '10k': 10_000, '50k': 50_000, sat: undefined };
const SOURCE_PREFIX: Record<string, Source> = { lg: 'loadgen', tg: 'telemetrygen' };

/** Outstanding calls the loadgen allows in rate mode: fewer for the 4 MB agent batches, so its pool stays small. */
function rateConcurrency(spansPerRequest: number): number {
  return spansPerRequest >= 4096 ? 8 : 32;
}

function make(source: Source, spansPerRequest: number, rate: string, pipeline: PipelineShape, name?: string): Scenario {
  if (!(rate in RATES)) throw new Error(`unknown rate ${rate}; known: ${Object.keys(RATES).join(', ')}`);
  const spansPerSec = RATES[rate];
  if (spansPerSec === undefined && source === 'telemetrygen') {
    throw new Error('telemetrygen has no saturation scenario: its one batch processor sends one request at a time, so it measures its own round trip');
  }
  const gen: Omit<StartArgs, 'target'> =
    spansPerSec === undefined
      ? { mode: 'saturate', concurrency: 16, channels: 4 }
      : { mode: 'rate', spansPerSec, concurrency: rateConcurrency(spansPerRequest), channels: 2 };
  const rateLabel = spansPerSec === undefined ? 'saturation' : `${rate} spans/s`;
  const label =
    name !== undefined
      ? name === 'saturation'
        ? 'saturation'
        : rateLabel
      : `${source === 'loadgen' ? 'lg' : 'tg'} ${spansPerRequest} × ${rateLabel} ${pipeline}`;
  return {
    name: name ?? `${source === 'loadgen' ? 'lg' : 'tg'}${spansPerRequest}-${rate}-${pipeline}`,
    label,
    signal: 'traces',
    source,
    spansPerRequest,
    pipeline,
    spansPerSec,
    gen,
  };
}

/** Data points in one export of the fixture's Python process (bench/signals-workload.ts). */
export const METRIC_POINTS_PER_REQUEST = 159;
/** Log records per request: a busy service's batch (the SDK exports every second, up to 512 records). */
export const LOG_RECORDS_PER_REQUEST = 128;

/** The metrics and logs scenarios, in their table order. */
export const SIGNAL_SCENARIOS = ['metrics10k', 'metrics50k', 'logs10k', 'logs50k'] as const;

function signalScenario(signal: AppSignal, rate: '10k' | '50k'): Scenario {
  const itemsPerRequest = signal === 'metrics' ? METRIC_POINTS_PER_REQUEST : LOG_RECORDS_PER_REQUEST;
  const perSec = RATES[rate] as number;
  return {
    name: `${signal}${rate}`,
    label: `${signal} ${rate} ${signal === 'metrics' ? 'points' : 'records'}/s`,
    signal,
    source: 'loadgen',
    spansPerRequest: itemsPerRequest,
    pipeline: 'full',
    spansPerSec: perSec,
    gen: { mode: 'rate', spansPerSec: perSec, concurrency: 32, channels: 2 },
  };
}

/** The standard trace scenarios with a Python fleet's metrics and logs beside them, in their table order. */
export const BESIDE_SCENARIOS = ['rate10k-beside', 'rate50k-beside'] as const;

/**
 * Beside every 10 spans/s, one metric point/s and one log record/s: a zero-code Python service exports ~160 points
 * a minute and logs at a fraction of its request rate, so this is a generous share of the other two signals.
 */
const BESIDE_SHARE = 0.1;

function besideScenario(base: 'rate10k' | 'rate50k'): Scenario {
  const sc = scenarioByName(base);
  const itemsPerSec = (sc.spansPerSec as number) * BESIDE_SHARE;
  return {
    ...sc,
    name: `${base}-beside`,
    label: `${sc.label} + metrics, logs`,
    beside: [
      { signal: 'metrics', itemsPerSec, itemsPerRequest: METRIC_POINTS_PER_REQUEST },
      { signal: 'logs', itemsPerSec, itemsPerRequest: LOG_RECORDS_PER_REQUEST },
    ],
  };
}

/** The scenario a name stands for (a standard name, or `<source><spans>-<rate>-<pipeline>`). */
export function scenarioByName(name: string): Scenario {
  if (name === 'rate10k-beside' || name === 'rate50k-beside') return besideScenario(name === 'rate10k-beside' ? 'rate10k' : 'rate50k');
  const sig = /^(metrics|logs)(10k|50k)$/.exec(name);
  if (sig !== null) return signalScenario(sig[1] as AppSignal, sig[2] as '10k' | '50k');
  if (name === 'rate10k') return make('loadgen', SPANS_PER_REQUEST, '10k', 'full', name);
  if (name === 'rate50k') return make('loadgen', SPANS_PER_REQUEST, '50k', 'full', name);
  if (name === 'saturation') return make('loadgen', SPANS_PER_REQUEST, 'sat', 'full', name);
  if (name === 'why10k' || name === 'why50k') {
    const sc = make('loadgen', SPANS_PER_REQUEST, name === 'why10k' ? '10k' : '50k', 'why', name);
    return { ...sc, label: `${sc.label} why`, gen: { ...sc.gen, freshTraceIds: true }, minWarmupS: WHY_DECISION_WAIT_S + 5 };
  }
  const m = /^(lg|tg)(\d+)-(1k|10k|50k|sat)-(full|bare)$/.exec(name);
  if (m === null) {
    throw new Error(
      `unknown scenario ${name}: expected one of ${[...STANDARD_SCENARIOS, ...WHY_SCENARIOS, ...SIGNAL_SCENARIOS, ...BESIDE_SCENARIOS].join(', ')} or <lg|tg><spans>-<1k|10k|50k|sat>-<full|bare>, e.g. tg100-10k-bare`,
    );
  }
  const spans = Number(m[2]);
  if (!Number.isInteger(spans) || spans < 1 || spans > 8192) throw new Error(`scenario ${name}: spans per request must be 1–8192`);
  return make(SOURCE_PREFIX[m[1] as string] as Source, spans, m[3] as string, m[4] as PipelineShape);
}

export interface MatrixFilter {
  sources: Source[];
  shapes: number[];
  rates: string[];
  pipelines: PipelineShape[];
}

export const MATRIX_DEFAULT: MatrixFilter = {
  sources: ['loadgen', 'telemetrygen'],
  shapes: [10, 100, 512, 8192],
  rates: ['1k', '10k', '50k', 'sat'],
  pipelines: ['bare', 'full'],
};

/**
 * The shape matrix: requests of 10, 100 and 512 spans (what SDKs send at low and normal traffic) and 8192 (a
 * Collector agent's batch), at 1k, 10k and 50k spans/s, on both pipelines, from both load sources. Left out, and
 * why:
 * - 8192-span requests at 1k spans/s (one request every 8 s: a 20 s window would hold two or three);
 * - 8192-span requests from telemetrygen (its batch processor caps a batch at its queue of 2048 spans);
 * - telemetrygen at saturation (see `make`), and loadgen saturation for 10- and 8192-span requests (the harness,
 *   not the collector, limits 10-span requests; the standard `saturation` covers the large ones).
 */
export function matrixScenarios(f: MatrixFilter): Scenario[] {
  const out: Scenario[] = [];
  for (const pipeline of f.pipelines) {
    for (const source of f.sources) {
      for (const shape of f.shapes) {
        for (const rate of f.rates) {
          if (shape >= 4096 && (rate === '1k' || rate === 'sat' || source === 'telemetrygen')) continue;
          if (rate === 'sat' && (source === 'telemetrygen' || shape < 100)) continue;
          out.push(make(source, shape, rate, pipeline));
        }
      }
    }
  }
  return out;
}

/**
 * How telemetrygen offers a scenario's load. One process has one batch span processor, and that sends one request
 * at a time; small requests at a high rate need several processes (as a fleet of quiet pods is several clients).
 * Its rate limiter waits for every span and keeps no credit (a burst of 1): each late wake-up is lost rate, so the
 * load is spread over goroutines that each wait 5 ms between spans.
 */
export interface TelemetrygenPlan {
  processes: number;
  workersPerProcess: number;
  /** spans/s of each worker */
  ratePerWorker: number;
  args: (endpoint: string) => string[];
}

/** Requests a second one telemetrygen process is asked to send at most. */
const TG_REQUESTS_PER_PROCESS = 250;
const TG_SPANS_PER_WORKER = 200;
/** Children per trace, as the issue that asked for this source measured it: 11 spans per trace. */
export const TG_CHILD_SPANS = 10;

export function telemetrygenPlan(sc: Scenario): TelemetrygenPlan {
  const rate = sc.spansPerSec ?? 0;
  const processes = Math.min(16, Math.max(1, Math.ceil(rate / sc.spansPerRequest / TG_REQUESTS_PER_PROCESS)));
  const workersPerProcess = Math.max(1, Math.ceil(rate / processes / TG_SPANS_PER_WORKER));
  const ratePerWorker = rate / processes / workersPerProcess;
  return {
    processes,
    workersPerProcess,
    ratePerWorker,
    args: (endpoint) => [
      'traces',
      '--otlp-endpoint',
      endpoint,
      '--otlp-insecure',
      '--duration',
      'inf',
      '--workers',
      String(workersPerProcess),
      '--rate',
      String(ratePerWorker),
      '--child-spans',
      String(TG_CHILD_SPANS),
      '--batch-size',
      String(sc.spansPerRequest),
      // Two attributes of its own on every span (network.peer.address, peer.service) and two here: 4 per span.
      // The route and method make its SERVER spans count for routelatency and span_metrics.
      '--telemetry-attributes',
      'http.request.method="GET"',
      '--telemetry-attributes',
      'http.route="/tg/{id}"',
      // One of the workload's pods, so that k8sattributes on the full pipeline finds and adds its metadata.
      '--otlp-attributes',
      'k8s.pod.ip="10.42.1.10"',
      '--allow-export-failures',
    ],
  };
}
