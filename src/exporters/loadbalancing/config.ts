/**
 * Config of the `loadbalancing` exporter (alias `load_balancing`), in the Collector's shape: `routing_key`, a
 * `resolver` (the same as routequery's cluster: static, dns, k8s; port 4317 by default) and `protocol.otlp` (the
 * `otlp` exporter's client keys, without an endpoint: the resolver supplies them). The sending queue and the
 * retries are the top-level `sending_queue` and `retry_on_failure`: routelens queues once, before routing, so a
 * request waiting in the queue or retrying goes to whichever backend owns its traces when it is sent.
 */
import { duration, num, obj, oneOf, optional, refine, type Field, type Infer } from '../../core/schema';
import { resolverSchema } from '../../discovery/config';
import { retrySchema, sendingQueueFields } from '../exporterhelper/config';
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

/**
 * `sending_queue.batch`, the Collector's exporterhelper batch settings (off unless the section is present, as
 * there), applied per backend after routing: the parts of successive requests bound for one backend travel in
 * one export call.
 */
const batchSchema = refine(
  obj(
    {
      flush_timeout: duration({
        default: '200ms',
        min: '1ms',
        doc: "A backend's parts are sent at the latest this long after the first of them was routed there.",
      }),
      min_size: num({ default: 8192, min: 0, integer: true, doc: "A backend's parts are sent as soon as they hold this many spans." }),
      max_size: num({
        default: 0,
        min: 0,
        integer: true,
        doc: "Most spans in one export call: a part that would take a backend's call past it goes in the next call (a part larger on its own is sent alone). 0: no maximum.",
      }),
      sizer: oneOf(['items'] as const, { default: 'items', doc: 'What min_size and max_size count: `items` (spans).' }),
    },
    {
      doc: 'Coalesce the parts bound for one backend across requests into one export call. Off unless present (`batch: {}` takes the defaults). A request leaves the queue once every call carrying its parts is delivered.',
    },
  ),
  (b, path, issues) => {
    if (b.max_size > 0 && b.max_size < b.min_size) issues.add(`${path}.max_size`, `must be 0 or at least min_size (${b.min_size})`);
  },
);

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
  sending_queue: obj({ ...sendingQueueFields, batch: optional(batchSchema) }),
  retry_on_failure: retrySchema,
  routing_grace: duration({
    default: '30s',
    min: '0s',
    doc: 'After the backends change, traces this exporter saw before the change keep going to their old backend for this long (so a trace in progress is not split); new traces go to the new owner at once. routelens only.',
  }),
});
export type BatchConfig = Infer<typeof batchSchema>;
export type LoadBalancingConfig = Infer<typeof loadBalancingConfigSchema>;
