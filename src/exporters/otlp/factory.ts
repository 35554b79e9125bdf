/** The `otlp` exporter (alias `otlp_grpc`): OTLP over gRPC with a sending queue and retries. */
import { ClientAuthBinding } from '../../core/auth';
import type { CreateSettings } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import { type OtlpExporter, queuedOtlpExporter } from '../exporterhelper/otlp-exporter';
import { otlpExporterConfigSchema, type OtlpExporterConfig } from './config';
import { GrpcTransport } from './grpc-transport';

const TRACE_METHOD = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';
const METRICS_METHOD = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

function create(settings: CreateSettings, config: OtlpExporterConfig, signal: 'traces' | 'metrics'): OtlpExporter {
  const auth = new ClientAuthBinding(config.auth?.authenticator, `exporters.${settings.id}.auth.authenticator`);
  const transport = new GrpcTransport({
    auth,
    endpoint: config.endpoint,
    tls: config.tls,
    headers: config.headers,
    compression: config.compression,
    method: signal === 'traces' ? TRACE_METHOD : METRICS_METHOD,
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
};
