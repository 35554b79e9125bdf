/** Config of the `otlphttp` exporter (alias `otlp_http`), in the Collector's shape. */
import { authSettingsSchema } from '../../config/auth';
import { tlsClientSchema } from '../../config/tls';
import { duration, obj, oneOf, optStr, record, refine, str, type Infer } from '../../core/schema';
import { retrySchema, sendingQueueSchema } from '../exporterhelper/config';

function checkUrl(v: string | undefined, path: string, issues: { add(p: string, m: string): void }): void {
  if (v === undefined || v === '') return;
  try {
    const u = new URL(v);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
  } catch {
    issues.add(path, `invalid value ${JSON.stringify(v)}; expected a URL such as "http://host:4318"`);
  }
}

export const otlpHttpExporterConfigSchema = refine(
  obj({
    endpoint: refine(str({ doc: 'Base URL; `/v1/traces`, `/v1/metrics` and `/v1/logs` are appended.' }), checkUrl),
    traces_endpoint: refine(optStr({ doc: 'Full URL for traces, used as is (overrides endpoint).' }), checkUrl),
    metrics_endpoint: refine(optStr({ doc: 'Full URL for metrics, used as is (overrides endpoint).' }), checkUrl),
    logs_endpoint: refine(optStr({ doc: 'Full URL for logs, used as is (overrides endpoint).' }), checkUrl),
    tls: tlsClientSchema,
    headers: record(str(), { doc: 'HTTP headers sent with every request.' }),
    compression: oneOf(['gzip', 'none', ''] as const, { default: 'gzip', doc: 'Request body compression.' }),
    encoding: oneOf(['proto'] as const, { default: 'proto', doc: 'Body encoding (protobuf).' }),
    timeout: duration({ default: '30s', doc: 'Deadline of one export attempt.' }),
    sending_queue: sendingQueueSchema,
    retry_on_failure: retrySchema,
    auth: authSettingsSchema,
  }),
  (c, path, issues) => {
    if (c.endpoint === '' && c.traces_endpoint === undefined && c.metrics_endpoint === undefined && c.logs_endpoint === undefined) {
      issues.add(`${path}.endpoint`, 'is required (or traces_endpoint / metrics_endpoint / logs_endpoint)');
    }
  },
);
export type OtlpHttpExporterConfig = Infer<typeof otlpHttpExporterConfigSchema>;
