/**
 * The OTLP/gRPC client keys of the `otlp` exporter besides its endpoint and queue, shared with the
 * `loadbalancing` exporter's `protocol.otlp` (which sends to endpoints its resolver finds).
 */
import { authSettingsSchema } from '../../config/auth';
import { tlsClientSchema } from '../../config/tls';
import { duration, oneOf, record, str } from '../../core/schema';

export const otlpGrpcClientFields = {
  tls: tlsClientSchema,
  headers: record(str(), { doc: 'gRPC metadata sent with every request.' }),
  compression: oneOf(['gzip', 'none', ''] as const, { default: 'gzip', doc: 'Request compression.' }),
  timeout: duration({ default: '5s', doc: 'Deadline of one export attempt.' }),
  balancer_name: oneOf(['pick_first', 'round_robin'] as const, {
    default: 'round_robin',
    doc: "gRPC load balancing: `round_robin` (the Collector's default since 0.103) spreads calls over every address the endpoint resolves to; `pick_first` uses one connection.",
  }),
  auth: authSettingsSchema,
};
