/**
 * The `debug` exporter: logs what arrives. `basic` logs counts per batch; `normal` adds one line per resource
 * with its service and span names; `detailed` logs each batch as OTLP/JSON. For looking, not for production.
 */
import type { Component } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import type { MetricsConsumer, TracesConsumer } from '../../consumer/consumer';
import { obj, oneOf, type Infer } from '../../core/schema';
import { TYPES } from '../../pdata/proto';
import { toOtlpJsonObject } from '../../pdata/otlp-json';
import type { TraceBatch } from '../../pdata/trace-batch';

export const debugExporterConfigSchema = obj({
  verbosity: oneOf(['basic', 'normal', 'detailed'] as const, { default: 'basic', doc: 'How much to log per batch.' }),
});
export type DebugExporterConfig = Infer<typeof debugExporterConfigSchema>;

export const debugExporterFactory: ExporterFactory<DebugExporterConfig> = {
  kind: 'exporter',
  type: 'debug',
  configSchema: debugExporterConfigSchema,
  createTraces(settings, config): Component & TracesConsumer {
    const log = settings.logger;
    const sent = settings.telemetry.counter('otelcol_exporter_sent_spans', 'Number of spans successfully sent to destination.', { exporter: settings.id });
    return {
      async start() {},
      async shutdown() {},
      async consumeTraces(batch: TraceBatch) {
        sent.add(batch.spanCount);
        log.info({ resource_spans: batch.resourceCount, spans: batch.spanCount }, 'Traces');
        if (config.verbosity === 'normal') {
          const perResource = new Map<number, { service: string; names: Set<string> }>();
          batch.forEachSpan((s) => {
            let r = perResource.get(s.resourceIndex);
            if (r === undefined) perResource.set(s.resourceIndex, (r = { service: s.service, names: new Set() }));
            if (r.names.size < 20) r.names.add(s.name);
          });
          for (const [i, r] of perResource)
            log.info({ resource: i, service: r.service, spans: batch.resourceSpanCount(i), span_names: [...r.names] }, 'ResourceSpans');
        } else if (config.verbosity === 'detailed') {
          log.info({ request: toOtlpJsonObject(TYPES.exportTraceRequest, batch.encode()) }, 'Traces (detailed)');
        }
      },
    };
  },
  createMetrics(settings, config): Component & MetricsConsumer {
    const log = settings.logger;
    return {
      async start() {},
      async shutdown() {},
      async consumeMetrics(request: Uint8Array) {
        const json = toOtlpJsonObject(TYPES.exportMetricsRequest, request) as { resourceMetrics?: { scopeMetrics?: { metrics?: unknown[] }[] }[] };
        const metrics = (json.resourceMetrics ?? []).flatMap((r) => r.scopeMetrics ?? []).flatMap((s) => s.metrics ?? []).length;
        log.info({ metrics }, 'Metrics');
        if (config.verbosity === 'detailed') log.info({ request: json }, 'Metrics (detailed)');
      },
    };
  },
};
