/**
 * Config of the `loadbalancing` exporter (alias `load_balancing`), in the Collector's shape: `routing_key`, a
 * `resolver` (the same as routequery's cluster: static, dns, k8s; port 4317 by default) and `protocol.otlp` (the
 * `otlp` exporter's client keys, without an endpoint: the resolver supplies them). The sending queue and the
 * retries are the top-level `sending_queue` and `retry_on_failure`: routelens queues once, before routing, so a
 * request waiting in the queue or retrying goes to whichever backend owns its traces when it is sent.
 */
import { duration, obj, oneOf, optional, type Field, type Infer } from '../../core/schema';
import { resolverSchema } from '../../discovery/config';
import { retrySchema, sendingQueueSchema } from '../exporterhelper/config';
import { otlpGrpcClientFields } from '../exporterhelper/otlp-config';

/** A key the Collector has under `protocol.otlp` that routelens takes at the top level instead. */
function movedToTopLevel(key: string, why: string): Field<undefined> {
  return {
    expected: 'nothing (set it at the top level)',
    doc: `Not here: ${why}`,
    parse(raw, path, issues) {
      if (raw !== undefined && raw !== null) issues.add(path, `set ${key} at the top level of the loadbalancing exporter: ${why}`);
      return undefined;
    },
  };
}

const queueWhy = 'routelens queues once, before routing, so that queued and retried data goes to the current owner of its traces';

export const loadBalancingConfigSchema = obj({
  routing_key: oneOf(['traceID', 'service'] as const, {
    default: 'traceID',
    doc: '`traceID`: every span of a trace to one backend (trace analysis, tail sampling). `service`: every span of a service to one backend.',
  }),
  resolver: resolverSchema({ defaultPort: 4317, portDoc: 'Port added to the addresses found. Default 4317 (OTLP/gRPC).' }),
  protocol: obj({
    otlp: obj({
      endpoint: movedToTopLevel('endpoint', 'the resolver supplies the endpoints'),
      tls: otlpGrpcClientFields.tls,
      headers: otlpGrpcClientFields.headers,
      compression: otlpGrpcClientFields.compression,
      timeout: otlpGrpcClientFields.timeout,
      auth: otlpGrpcClientFields.auth,
      sending_queue: movedToTopLevel('sending_queue', queueWhy),
      retry_on_failure: movedToTopLevel('retry_on_failure', queueWhy),
    }),
  }),
  timeout: optional(duration({ doc: 'Deadline of one send to a backend. Default `protocol.otlp.timeout` (5s).' })),
  sending_queue: sendingQueueSchema,
  retry_on_failure: retrySchema,
  routing_grace: duration({
    default: '30s',
    min: '0s',
    doc: 'After the backends change, traces this exporter saw before the change keep going to their old backend for this long (so a trace in progress is not split); new traces go to the new owner at once. routelens only.',
  }),
});
export type LoadBalancingConfig = Infer<typeof loadBalancingConfigSchema>;
