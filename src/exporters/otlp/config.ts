/** Config of the `otlp` (gRPC) exporter, in the Collector's shape. */
import { authSettingsSchema } from '../../config/auth';
import { tlsClientSchema } from '../../config/tls';
import { duration, obj, oneOf, record, refine, str, type Infer } from '../../core/schema';
import { retrySchema, sendingQueueSchema } from '../exporterhelper/config';

export const otlpExporterConfigSchema = obj({
  endpoint: refine(str({ nonEmpty: true, doc: 'Destination `host:port` (or `http://host:port` for plaintext, `https://…` for TLS).' }), (v, path, issues) => {
    const hostPort = v.replace(/^https?:\/\//, '');
    if (v !== '' && !/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(hostPort))
      issues.add(path, `invalid value ${JSON.stringify(v)}; expected an endpoint "host:port"`);
  }),
  tls: tlsClientSchema,
  headers: record(str(), { doc: 'gRPC metadata sent with every request.' }),
  compression: oneOf(['gzip', 'none', ''] as const, { default: 'gzip', doc: 'Request compression.' }),
  timeout: duration({ default: '5s', doc: 'Deadline of one export attempt.' }),
  balancer_name: oneOf(['pick_first', 'round_robin'] as const, {
    default: 'round_robin',
    doc: "gRPC load balancing: `round_robin` (the Collector's default since 0.103) spreads calls over every address the endpoint resolves to; `pick_first` uses one connection.",
  }),
  sending_queue: sendingQueueSchema,
  retry_on_failure: retrySchema,
  auth: authSettingsSchema,
});
export type OtlpExporterConfig = Infer<typeof otlpExporterConfigSchema>;
