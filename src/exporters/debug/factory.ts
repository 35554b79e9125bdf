/**
 * The `debug` exporter: logs what arrives, for traces, metrics and logs. `basic` logs counts per batch; `normal`
 * adds one line per resource with its service and the names of its spans or metrics (or the severities of its log
 * records); `detailed` logs each batch as OTLP/JSON. For looking, not for production.
 */
import type { Component, CreateSettings, PipelineContext } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import { AnySignalConsumer, type Signal } from '../../consumer/consumer';
import { obj, oneOf, type Infer } from '../../core/schema';
import type { Counter } from '../../core/telemetry';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import { TYPES } from '../../pdata/proto';
import { toOtlpJsonObject } from '../../pdata/otlp-json';
import type { MetricsBatch } from '../../pdata/metrics-batch';
import type { TraceBatch } from '../../pdata/trace-batch';
import { UNIT_OF_SIGNAL } from '../exporterhelper/otlp-exporter';

export const debugExporterConfigSchema = obj({
  verbosity: oneOf(['basic', 'normal', 'detailed'] as const, { default: 'basic', doc: 'How much to log per batch.' }),
});
export type DebugExporterConfig = Infer<typeof debugExporterConfigSchema>;

const REQUEST_TYPE: Readonly<Record<Signal, string>> = {
  traces: TYPES.exportTraceRequest,
  metrics: TYPES.exportMetricsRequest,
  logs: TYPES.exportLogsRequest,
};

type Json = Record<string, unknown>;
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as Json[]) : []);

export class DebugExporter extends AnySignalConsumer implements Component {
  readonly #settings: CreateSettings;
  readonly #config: DebugExporterConfig;
  readonly #signal: Signal;
  readonly #sent: Counter;

  constructor(settings: CreateSettings, config: DebugExporterConfig, signal: Signal) {
    super();
    this.#settings = settings;
    this.#config = config;
    this.#signal = signal;
    const unit = UNIT_OF_SIGNAL[signal];
    this.#sent = settings.telemetry.counter(`otelcol_exporter_sent_${unit}`, `Number of ${unit} successfully sent to destination.`, { exporter: settings.id });
  }

  async start(): Promise<void> {}
  async shutdown(): Promise<void> {}

  async consume(batch: OtlpBatch, _ctx: PipelineContext): Promise<void> {
    const log = this.#settings.logger;
    this.#sent.add(batch.itemCount);
    if (this.#signal === 'traces') log.info({ resource_spans: batch.resourceCount, spans: batch.itemCount }, 'Traces');
    else if (this.#signal === 'metrics')
      log.info({ resource_metrics: batch.resourceCount, metrics: (batch as MetricsBatch).metricCount(), data_points: batch.itemCount }, 'Metrics');
    else log.info({ resource_logs: batch.resourceCount, log_records: batch.itemCount }, 'Logs');
    if (this.#config.verbosity === 'normal') this.#normal(batch);
    else if (this.#config.verbosity === 'detailed') {
      log.info(
        { request: toOtlpJsonObject(REQUEST_TYPE[this.#signal], batch.encode()) },
        `${this.#signal === 'traces' ? 'Traces' : this.#signal === 'metrics' ? 'Metrics' : 'Logs'} (detailed)`,
      );
    }
  }

  /** One line per resource: its service and up to 20 span or metric names, or its log records' severities. */
  #normal(batch: OtlpBatch): void {
    const log = this.#settings.logger;
    const service = (i: number): string => String(batch.resourceAttribute(i, 'service.name') ?? 'unknown_service');
    if (this.#signal === 'traces') {
      const names = new Map<number, Set<string>>();
      (batch as TraceBatch).forEachSpan((s) => {
        let n = names.get(s.resourceIndex);
        if (n === undefined) names.set(s.resourceIndex, (n = new Set()));
        if (n.size < 20) n.add(s.name);
      });
      for (const [i, n] of names) log.info({ resource: i, service: service(i), spans: batch.resourceItemCount(i), span_names: [...n] }, 'ResourceSpans');
      return;
    }
    const json = toOtlpJsonObject(REQUEST_TYPE[this.#signal], batch.encode());
    if (this.#signal === 'metrics') {
      list(json.resourceMetrics).forEach((rm, i) => {
        const names = list(rm.scopeMetrics).flatMap((sm) => list(sm.metrics).map((m) => String(m.name ?? '')));
        log.info(
          { resource: i, service: service(i), data_points: batch.resourceItemCount(i), metric_names: [...new Set(names)].slice(0, 20) },
          'ResourceMetrics',
        );
      });
      return;
    }
    list(json.resourceLogs).forEach((rl, i) => {
      const severities: Record<string, number> = {};
      for (const r of list(rl.scopeLogs).flatMap((sl) => list(sl.logRecords))) {
        const sev = String(r.severityText ?? r.severityNumber ?? 'UNSPECIFIED');
        severities[sev] = (severities[sev] ?? 0) + 1;
      }
      log.info({ resource: i, service: service(i), log_records: batch.resourceItemCount(i), severities }, 'ResourceLogs');
    });
  }
}

export const debugExporterFactory: ExporterFactory<DebugExporterConfig> = {
  kind: 'exporter',
  type: 'debug',
  configSchema: debugExporterConfigSchema,
  createTraces: (settings, config) => new DebugExporter(settings, config, 'traces'),
  createMetrics: (settings, config) => new DebugExporter(settings, config, 'metrics'),
  createLogs: (settings, config) => new DebugExporter(settings, config, 'logs'),
};
