/**
 * The collector configurations the benchmark runs, as data. Change the routelens pipeline here:
 *
 *   ROUTELENS_PIPELINE = 'auto'   → the first entry of ROUTELENS_PIPELINES that `routelens validate` accepts
 *   ROUTELENS_PIPELINE = 'full'   → always the full pipeline (fails loudly if a component is missing)
 *
 * (or per run: `npm run bench -- --routelens-pipeline full`).
 *
 * Equivalence with the OpenTelemetry Collector (see bench/README.md for the reasons):
 * - receiver: OTLP gRPC only, on loopback;
 * - k8s enrichment: association by the resource attribute k8s.pod.ip, the Collector's default metadata
 *   (namespace, pod name/uid/start time, deployment name derived from the ReplicaSet name, node name), both
 *   waiting for the informers to sync before accepting data, both against the same fake API server;
 * - per-route latency: routelens' routelatency connector vs the Collector's spanmetrics connector (exponential
 *   histogram, 160 buckets, dimensions http.route, http.method, http.status_code) feeding a Prometheus
 *   exporter that nobody scrapes (routelens serves its metrics on /metrics the same way);
 * - export: OTLP gRPC to the counting sink, compression none (both default to gzip: on loopback that would
 *   mostly measure zlib), sending queue of 1000 requests with 32 consumers (the default 10 capped forwarding
 *   at 10 × 512 spans per sink round trip: with the sink sharing a saturated CPU with the generator that was
 *   below what routelens accepts on one core, so its queue filled for the harness's sake), retry on;
 * - no batch processor (routelens has none), no memory_limiter; the Collector's exporter-side batching is off
 *   by default in 0.161 (feature gate pkg.exporterhelper.queueBatchEnabled is alpha);
 * - self-telemetry on for both (the Collector's default "normal" level on a loopback port).
 */

import * as YAML from 'yaml';

/** Ports and files a collector instance is configured with. */
export interface CollectorEnv {
  grpcPort: number;
  sinkPort: number;
  kubeconfig: string;
  /** routelens: routequery extension; otelcol: its self-telemetry endpoint. */
  adminPort: number;
  /** otelcol: the Prometheus exporter of span metrics. */
  metricsPort: number;
}

export interface RoutelensPipeline {
  name: string;
  /** One line for the results table. */
  describe: string;
  yaml: (env: CollectorEnv) => string;
}

/** 'auto' or the name of one of ROUTELENS_PIPELINES. */
export const ROUTELENS_PIPELINE: string = 'auto';

/** The Collector's default extract.metadata (k8sattributes 1.0.0 / contrib 0.161.0). */
export const K8S_METADATA = ['k8s.namespace.name', 'k8s.pod.name', 'k8s.pod.uid', 'k8s.pod.start_time', 'k8s.deployment.name', 'k8s.node.name'];

const routelensReceiver = (e: CollectorEnv): string => `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${e.grpcPort}
`;

/**
 * The sink exporter, an entry under `exporters:`: the same settings for both collectors under each one's name for
 * its OTLP/gRPC exporter (routelens `otlp/sink`, the Collector `otlp_grpc/sink`).
 */
const sinkExporter = (name: string, e: CollectorEnv): string => `  ${name}:
    endpoint: 127.0.0.1:${e.sinkPort}
    tls:
      insecure: true
    compression: none
    sending_queue:
      enabled: true
      num_consumers: 32
      queue_size: 1000
    retry_on_failure:
      enabled: true
`;

const routelensExporter = (e: CollectorEnv): string => `exporters:
${sinkExporter('otlp/sink', e)}`;

const routelensK8s = (e: CollectorEnv): string => `processors:
  k8sattributes:
    auth_type: kubeConfig
    kube_config_path: ${JSON.stringify(e.kubeconfig)}
    wait_for_metadata: true
    wait_for_metadata_timeout: 30s
    pod_association:
      - sources:
          - from: resource_attribute
            name: k8s.pod.ip
    extract:
      metadata: [${K8S_METADATA.join(', ')}]
      deployment_name_from_replicaset: true
`;

const routelensExtension = (e: CollectorEnv): string => `extensions:
  routequery:
    endpoint: 127.0.0.1:${e.adminPort}
`;

/**
 * Traces both tail samplers hold (their defaults are 50000): the workload's requests carry about 3 spans per trace,
 * so 50k spans/s for a 10 s decision wait is about 165 000 traces, and neither should have to decide or drop early.
 * tail_capture's max_trace_wait is the decision wait too: tail_sampling decides every trace a decision wait after
 * its first span, root or not (the marker span of each request has a trace of its own, so its children have none).
 */
export const WHY_NUM_TRACES = 250_000;

/**
 * The "why" shape (issue 28): trace analysis on in routelatency (its default) and tail_capture forwarding only
 * whole slow, error and baseline traces to the sink, with the same decision wait as the Collector's tail_sampling
 * below. The sink then gets a sample: CPU per span is counted over the spans the collector accepted.
 */
export const ROUTELENS_WHY_PIPELINE: RoutelensPipeline = {
  name: 'why',
  describe: 'otlp → k8sattributes → routelatency (analysis) → tail_capture (decision_wait and max_trace_wait 10s, num_traces 250000) → otlp/sink',
  yaml: (e) => `${routelensReceiver(e)}${routelensK8s(e)}  tail_capture:
    decision_wait: 10s
    max_trace_wait: 10s
    num_traces: ${WHY_NUM_TRACES}
connectors:
  routelatency:
    windows: [1m, 5m, 1h]
${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [routelatency]
    traces/sampled:
      receivers: [routelatency]
      processors: [tail_capture]
      exporters: [otlp/sink]
`,
};

/** Tried in this order by 'auto' (which skips 'bare': that is the other pipeline shape, chosen per scenario). */
export const ROUTELENS_PIPELINES: readonly RoutelensPipeline[] = [
  {
    name: 'full',
    describe: 'otlp → k8sattributes → [otlp/sink, routelatency (analysis off)]',
    yaml: (e) => `${routelensReceiver(e)}${routelensK8s(e)}connectors:
  routelatency:
    windows: [1m, 5m, 1h]
    analysis: { enabled: false }
${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [otlp/sink, routelatency]
`,
  },
  {
    name: 'bare',
    describe: 'otlp → [otlp/sink, routelatency (analysis off)]',
    yaml: (e) => `${routelensReceiver(e)}connectors:
  routelatency:
    windows: [1m, 5m, 1h]
    analysis: { enabled: false }
${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/sink, routelatency]
`,
  },
  {
    name: 'k8s',
    describe: 'otlp → k8sattributes → otlp/sink (no routelatency yet)',
    yaml: (e) => `${routelensReceiver(e)}${routelensK8s(e)}${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [otlp/sink]
`,
  },
  {
    name: 'passthrough',
    describe: 'otlp → otlp/sink (no k8sattributes, no routelatency yet)',
    yaml: (e) => `${routelensReceiver(e)}${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/sink]
`,
  },
];

/**
 * The pipeline shapes a scenario runs: with Kubernetes enrichment, without (receive, forward, route latency), and
 * `why`: enrichment, route latency over every span, and tail sampling in front of the sink (routelens: trace
 * analysis and tail_capture; the Collector: span_metrics and tail_sampling with a latency policy).
 */
export type PipelineShape = 'full' | 'bare' | 'why';

export const OTELCOL_PIPELINE_DESCRIPTIONS: Record<PipelineShape, string> = {
  full: 'otlp → k8s_attributes → [otlp_grpc/sink, span_metrics → prometheus]',
  bare: 'otlp → [otlp_grpc/sink, span_metrics → prometheus]',
  why: 'otlp → k8s_attributes → [span_metrics → prometheus, forward → tail_sampling (latency 500 ms, errors, 0.1 %; decision_wait 10s, num_traces 250000) → otlp_grpc/sink]',
};
export const OTELCOL_PIPELINE_DESCRIPTION = OTELCOL_PIPELINE_DESCRIPTIONS.full;

/** The Collector's OTLP receiver and its k8s_attributes processor (`processors:` opened: more may follow). */
const otelcolReceiverAndK8s = (e: CollectorEnv): string => `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:${e.grpcPort}
processors:
  k8s_attributes:
    auth_type: kubeConfig
    passthrough: false
    wait_for_metadata: true
    wait_for_metadata_timeout: 30s
    pod_association:
      - sources:
          - from: resource_attribute
            name: k8s.pod.ip
    extract:
      metadata: [${K8S_METADATA.join(', ')}]
`;

/** The Collector's own telemetry: warn logs, "normal" metrics on the admin port (`service:` opened). */
const otelcolTelemetry = (e: CollectorEnv): string => `service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: ${e.adminPort}
`;

/** The OpenTelemetry Collector's config (component names as of 0.161: k8s_attributes, span_metrics, otlp_grpc). */
export function otelcolYaml(e: CollectorEnv, shape: PipelineShape = 'full'): string {
  const processors = shape === 'bare' ? '' : '\n      processors: [k8s_attributes]';
  const why = shape === 'why';
  const tailSampling = why
    ? `  tail_sampling:
    decision_wait: 10s
    num_traces: ${WHY_NUM_TRACES}
    policies:
      - name: slow
        type: latency
        latency: { threshold_ms: 500 }
      - name: errors
        type: status_code
        status_code: { status_codes: [ERROR] }
      - name: baseline
        type: probabilistic
        probabilistic: { sampling_percentage: 0.1 }
`
    : '';
  const pipelines = why
    ? `    traces:
      receivers: [otlp]${processors}
      exporters: [span_metrics, forward]
    traces/sampled:
      receivers: [forward]
      processors: [tail_sampling]
      exporters: [otlp_grpc/sink]`
    : `    traces:
      receivers: [otlp]${processors}
      exporters: [otlp_grpc/sink, span_metrics]`;
  return `${otelcolReceiverAndK8s(e)}${tailSampling}connectors:${why ? '\n  forward: {}' : ''}
  span_metrics:
    histogram:
      exponential:
        max_size: 160
    dimensions:
      - name: http.route
      - name: http.method
      - name: http.status_code
    metrics_flush_interval: 15s
exporters:
${sinkExporter('otlp_grpc/sink', e)}  prometheus:
    endpoint: 127.0.0.1:${e.metricsPort}
${otelcolTelemetry(e)}  pipelines:
${pipelines}
    metrics:
      receivers: [span_metrics]
      exporters: [prometheus]
`;
}

/**
 * Environment for the Collector process: one P for a per-core comparison; KUBECONFIG for kubeConfig auth.
 * KUBE_FEATURE_WatchListClient=false: client-go 0.37 (in k8sattributes 1.0.0) lists pods through a streaming
 * watch (`sendInitialEvents=true`) and waits for the "initial-events-end" bookmark, which the fake API server
 * (test/support/fake-kube-api.ts) does not send; without this the processor never syncs. The classic
 * list + watch it falls back to is what routelens' informers do as well.
 */
export function otelcolEnv(e: CollectorEnv, gomaxprocs: number): NodeJS.ProcessEnv {
  return { ...process.env, GOMAXPROCS: String(gomaxprocs), KUBECONFIG: e.kubeconfig, KUBE_FEATURE_WatchListClient: 'false' };
}

/**
 * The metrics and logs scenarios' pipeline, the same in both collectors: otlp → k8sattributes → otlp/sink for the
 * one signal (association by k8s.pod.ip, the default metadata, export as for traces).
 */
export const SIGNAL_PIPELINE_DESCRIPTION = 'otlp → k8sattributes → otlp/sink';

export function routelensSignalYaml(e: CollectorEnv, signal: 'metrics' | 'logs'): string {
  return `${routelensReceiver(e)}${routelensK8s(e)}${routelensExporter(e)}${routelensExtension(e)}service:
  extensions: [routequery]
  pipelines:
    ${signal}:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [otlp/sink]
`;
}

export function otelcolSignalYaml(e: CollectorEnv, signal: 'metrics' | 'logs'): string {
  return `${otelcolReceiverAndK8s(e)}exporters:
${sinkExporter('otlp_grpc/sink', e)}${otelcolTelemetry(e)}  pipelines:
    ${signal}:
      receivers: [otlp]
      processors: [k8s_attributes]
      exporters: [otlp_grpc/sink]
`;
}

/**
 * `yaml` (either collector's traces config) with pipelines `metrics/app` and `logs/app` beside its traces pipeline:
 * the same receivers and processors, and the sink exporter (the `-beside` scenarios). `/app`, because the
 * Collector's config already has a `metrics` pipeline (span_metrics → prometheus).
 */
export function withAppSignalPipelines(yaml: string): string {
  const doc = YAML.parse(yaml) as { service: { pipelines: Record<string, { receivers: string[]; processors?: string[]; exporters: string[] }> } };
  const traces = doc.service.pipelines['traces'];
  const sink = traces?.exporters.find((e) => e.endsWith('/sink'));
  if (traces === undefined || sink === undefined) throw new Error('withAppSignalPipelines: no traces pipeline exporting to a sink');
  for (const signal of ['metrics', 'logs']) {
    doc.service.pipelines[`${signal}/app`] = {
      receivers: traces.receivers,
      ...(traces.processors === undefined ? {} : { processors: traces.processors }),
      exporters: [sink],
    };
  }
  return YAML.stringify(doc);
}
