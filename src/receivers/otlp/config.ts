/** Config of the `otlp` receiver, in the Collector's shape: `protocols.grpc` and `protocols.http`. */
import { authSettingsSchema } from '../../config/auth';
import { tlsServerSchema } from '../../config/tls';
import { bool, duration, endpoint, num, obj, optional, refine, str, type Field, type Infer } from '../../core/schema';

export const grpcServerSchema = obj({
  endpoint: endpoint({ default: 'localhost:4317', doc: 'Listen address `host:port`. Use `0.0.0.0:4317` to accept other hosts (pods).' }),
  max_recv_msg_size_mib: num({
    default: 4,
    min: 0,
    doc: 'Largest accepted request (after decompression), MiB; larger ones get RESOURCE_EXHAUSTED. 0 means 4.',
  }),
  max_concurrent_streams: num({
    default: 0,
    min: 0,
    integer: true,
    doc: 'Concurrent streams per connection; streams beyond it are refused (REFUSED_STREAM). 0 means 1000.',
  }),
  include_metadata: bool({ default: false, doc: 'Pass request metadata (headers) to the pipeline context.' }),
  tls: tlsServerSchema,
  auth: authSettingsSchema,
});

function urlPath(def: string, what: string): Field<string> {
  return refine(str({ default: def, doc: `URL path for ${what} exports.` }), (v, path, issues) => {
    if (!v.startsWith('/')) issues.add(path, `invalid value ${JSON.stringify(v)}; expected a path starting with "/"`);
  });
}

export const httpServerSchema = obj({
  endpoint: endpoint({ default: 'localhost:4318', doc: 'Listen address `host:port`.' }),
  max_request_body_size: num({
    default: 20 * 1024 * 1024,
    min: 1,
    integer: true,
    doc: 'Largest accepted body in bytes, compressed and decompressed; larger ones get 413.',
  }),
  traces_url_path: urlPath('/v1/traces', 'trace'),
  metrics_url_path: urlPath('/v1/metrics', 'metrics'),
  logs_url_path: urlPath('/v1/logs', 'logs'),
  include_metadata: bool({ default: false, doc: 'Pass request headers to the pipeline context.' }),
  read_header_timeout: duration({ default: '1m', doc: 'Time allowed to receive request headers (slow clients are cut).' }),
  idle_timeout: duration({ default: '1m', doc: 'Keep-alive idle time before a connection is closed.' }),
  tls: tlsServerSchema,
  auth: authSettingsSchema,
});

export const otlpReceiverConfigSchema = refine(
  obj({
    protocols: obj({ grpc: optional(grpcServerSchema), http: optional(httpServerSchema) }),
  }),
  (c, path, issues) => {
    if (c.protocols.grpc === undefined && c.protocols.http === undefined) {
      issues.add(`${path}.protocols`, 'must enable at least one protocol: grpc or http');
    }
  },
);

export type OtlpReceiverConfig = Infer<typeof otlpReceiverConfigSchema>;
export type GrpcServerConfig = Infer<typeof grpcServerSchema>;
export type HttpServerConfig = Infer<typeof httpServerSchema>;
