/** The `otlp` exporter (alias `otlp_grpc`): OTLP traces, metrics and logs over gRPC with a sending queue and retries. */
import { ClientAuthBinding } from '../../core/auth';
import type { CreateSettings } from '../../core/component';
import type { Signal } from '../../consumer/consumer';
import type { ExporterFactory } from '../../consumer/factory';
import { type OtlpExporter, queuedOtlpExporter } from '../exporterhelper/otlp-exporter';
import { otlpExporterConfigSchema, type OtlpExporterConfig } from './config';
import { GrpcTransport } from '../exporterhelper/grpc-transport';

/** The OTLP gRPC method of each signal. */
const METHODS: Readonly<Record<Signal, string>> = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
};

function create(settings: CreateSettings, config: OtlpExporterConfig, signal: Signal): OtlpExporter {
  const auth = new ClientAuthBinding(config.auth?.authenticator, `exporters.${settings.id}.auth.authenticator`);
  const transport = new GrpcTransport({
    auth,
    endpoint: config.endpoint,
    tls: config.tls,
    headers: config.headers,
    compression: config.compression,
    method: METHODS[signal],
    balancer: config.balancer_name,
  });
  return queuedOtlpExporter(settings, config, signal, transport, auth);
}

export const otlpExporterFactory: ExporterFactory<OtlpExporterConfig> = {
  kind: 'exporter',
  type: 'otlp',
  configSchema: otlpExporterConfigSchema,
  createTraces: (settings, config) => create(settings, config, 'traces'),
  createMetrics: (settings, config) => create(settings, config, 'metrics'),
  createLogs: (settings, config) => create(settings, config, 'logs'),
};
