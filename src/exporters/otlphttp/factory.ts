/** The `otlphttp` exporter (alias `otlp_http`): OTLP/HTTP protobuf with a sending queue and retries. */
import { ClientAuthBinding } from '../../core/auth';
import type { CreateSettings } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import { type OtlpExporter, queuedOtlpExporter } from '../exporterhelper/otlp-exporter';
import { otlpHttpExporterConfigSchema, type OtlpHttpExporterConfig } from './config';
import { HttpTransport } from './http-transport';

function signalUrl(config: OtlpHttpExporterConfig, signal: 'traces' | 'metrics'): string {
  const explicit = signal === 'traces' ? config.traces_endpoint : config.metrics_endpoint;
  if (explicit !== undefined && explicit !== '') return explicit;
  return `${config.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
}

function create(settings: CreateSettings, config: OtlpHttpExporterConfig, signal: 'traces' | 'metrics'): OtlpExporter {
  const auth = new ClientAuthBinding(config.auth?.authenticator, `exporters.${settings.id}.auth.authenticator`);
  const transport = new HttpTransport({
    auth,
    url: signalUrl(config, signal),
    tls: config.tls,
    headers: config.headers,
    compression: config.compression,
  });
  return queuedOtlpExporter(settings, config, signal, transport, auth);
}

export const otlpHttpExporterFactory: ExporterFactory<OtlpHttpExporterConfig> = {
  kind: 'exporter',
  type: 'otlphttp',
  configSchema: otlpHttpExporterConfigSchema,
  createTraces: (settings, config) => create(settings, config, 'traces'),
  createMetrics: (settings, config) => create(settings, config, 'metrics'),
};
