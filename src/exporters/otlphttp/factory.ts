/** The `otlphttp` exporter (alias `otlp_http`): OTLP/HTTP protobuf traces, metrics and logs with a sending queue and retries. */
import { ClientAuthBinding } from '../../core/auth';
import type { CreateSettings } from '../../core/component';
import type { Signal } from '../../consumer/consumer';
import type { ExporterFactory } from '../../consumer/factory';
import { type OtlpExporter, queuedOtlpExporter } from '../exporterhelper/otlp-exporter';
import { otlpHttpExporterConfigSchema, type OtlpHttpExporterConfig } from './config';
import { HttpTransport } from './http-transport';

/** The URL of `signal`: its `<signal>_endpoint` as is, else `endpoint` + `/v1/<signal>` (the Collector's rule). */
export function signalUrl(config: OtlpHttpExporterConfig, signal: Signal): string | undefined {
  const explicit = config[`${signal}_endpoint`];
  if (explicit !== undefined && explicit !== '') return explicit;
  if (config.endpoint === '') return undefined;
  return `${config.endpoint.replace(/\/+$/, '')}/v1/${signal}`;
}

function checkSignal(config: OtlpHttpExporterConfig, signal: Signal): string | undefined {
  return signalUrl(config, signal) === undefined ? `has no URL for ${signal}: set endpoint or ${signal}_endpoint` : undefined;
}

function create(settings: CreateSettings, config: OtlpHttpExporterConfig, signal: Signal): OtlpExporter {
  const auth = new ClientAuthBinding(config.auth?.authenticator, `exporters.${settings.id}.auth.authenticator`);
  const transport = new HttpTransport({
    auth,
    url: signalUrl(config, signal) ?? '',
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
  createLogs: (settings, config) => create(settings, config, 'logs'),
  checkSignal,
};
