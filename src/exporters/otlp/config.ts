/** Config of the `otlp` (gRPC) exporter, in the Collector's shape. */
import { obj, refine, str, type Infer } from '../../core/schema';
import { retrySchema, sendingQueueSchema } from '../exporterhelper/config';
import { otlpGrpcClientFields } from '../exporterhelper/otlp-config';

export const otlpExporterConfigSchema = obj({
  endpoint: refine(str({ nonEmpty: true, doc: 'Destination `host:port` (or `http://host:port` for plaintext, `https://…` for TLS).' }), (v, path, issues) => {
    const hostPort = v.replace(/^https?:\/\//, '');
    if (v !== '' && !/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d{1,5}$/.test(hostPort))
      issues.add(path, `invalid value ${JSON.stringify(v)}; expected an endpoint "host:port"`);
  }),
  tls: otlpGrpcClientFields.tls,
  headers: otlpGrpcClientFields.headers,
  compression: otlpGrpcClientFields.compression,
  timeout: otlpGrpcClientFields.timeout,
  balancer_name: otlpGrpcClientFields.balancer_name,
  sending_queue: sendingQueueSchema,
  retry_on_failure: retrySchema,
  auth: otlpGrpcClientFields.auth,
});
export type OtlpExporterConfig = Infer<typeof otlpExporterConfigSchema>;
