/**
 * The extension's additions to the connector's OpenAPI document: the paths the extension answers itself (the page,
 * /healthz, /metrics, /api/v1/settings, /api/v1/intake, the document itself, the cluster's internal paths), the
 * `scope` parameter every query path takes and the fields a cluster-wide answer adds (see cluster.ts).
 */
import { HANDOFF_PATH, STATES_PATH } from './cluster';

const scopeParameter = {
  name: 'scope',
  in: 'query',
  required: false,
  description:
    "`local` (default): this process's data. `cluster`: every peer's data merged exactly (needs `cluster` in the routequery config); the answer adds `scope`, `partial` and `peers`.",
  schema: { type: 'string', enum: ['local', 'cluster'], default: 'local' },
};

const peerSchema = {
  type: 'object',
  required: ['peer', 'ok', 'error'],
  properties: {
    peer: { type: 'string', description: '`host:port` of the peer.' },
    ok: { type: 'boolean' },
    error: { type: 'string', nullable: true, description: 'Why the peer is missing from the answer.' },
    self: { type: 'boolean', description: 'The replica that answered.' },
    sources: { type: 'integer', description: 'Processes (workers) and handed-over windows the peer contributed.' },
    bytes: { type: 'integer', description: 'Bytes received from the peer.' },
  },
};

const json = (schema: string, description: string): Record<string, unknown> => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } },
});
const errorAnswer = (description: string): Record<string, unknown> => json('Error', description);
const unauthenticated = errorAnswer('Missing or refused credentials, when `auth.authenticator` is set (with `WWW-Authenticate: Bearer`).');
const count = { type: 'integer', minimum: 0 } as const;

/** The paths the extension serves itself, as OpenAPI path items. */
const extensionPaths: Record<string, Record<string, unknown>> = {
  '/': {
    get: {
      summary: 'The page (never behind auth: it holds no data and reads everything from /api/v1)',
      responses: { 200: { description: 'The page', content: { 'text/html': { schema: { type: 'string' } } } }, 304: { description: 'Not modified (ETag)' } },
    },
  },
  '/ui/{asset}': {
    get: {
      summary: "The page's scripts and stylesheets (never behind auth)",
      parameters: [{ name: 'asset', in: 'path', required: true, schema: { type: 'string', example: 'main.js' } }],
      responses: {
        200: { description: 'The asset', content: { 'text/javascript': { schema: { type: 'string' } }, 'text/css': { schema: { type: 'string' } } } },
        304: { description: 'Not modified (ETag)' },
        404: errorAnswer('No such asset.'),
      },
    },
  },
  '/healthz': {
    get: {
      summary: 'Health (never behind auth)',
      responses: { 200: json('Health', 'Every pipeline runs'), 503: json('Health', 'A pipeline does not run') },
    },
  },
  '/metrics': {
    get: {
      summary:
        'Self-telemetry and route metrics: the Prometheus text format 0.0.4, or OpenMetrics 1.0 (with exemplars) when Accept asks for application/openmetrics-text',
      responses: {
        200: {
          description: 'Metrics',
          content: {
            'text/plain; version=0.0.4': { schema: { type: 'string' } },
            'application/openmetrics-text; version=1.0.0': { schema: { type: 'string' } },
          },
        },
        401: unauthenticated,
      },
    },
  },
  '/api/v1/openapi.json': {
    get: {
      summary: 'This document',
      responses: { 200: { description: 'The OpenAPI 3.0 document', content: { 'application/json': { schema: { type: 'object' } } } }, 401: unauthenticated },
    },
  },
  '/api/v1/settings': {
    get: { summary: 'What the page needs to know of this configuration', responses: { 200: json('Settings', 'Settings'), 401: unauthenticated } },
  },
  '/api/v1/intake': {
    get: {
      summary: 'Data refused before routing, from self-telemetry (summed over workers): per receiver and transport, processor and exporter',
      responses: { 200: json('Intake', 'Intake counters since start'), 401: unauthenticated },
    },
  },
  [STATES_PATH]: {
    get: {
      summary: 'Between replicas of a cluster: the query state of this replica, for a peer to merge (gzip when accepted)',
      parameters: [
        {
          name: 'path',
          in: 'query',
          required: false,
          description: 'The query the state is for (its path): only what it reads is sent. Without it, the whole state.',
          schema: { type: 'string' },
        },
        { name: 'query', in: 'query', required: false, description: "That query's parameters, URL-encoded.", schema: { type: 'string' } },
        { name: 'at', in: 'query', required: false, description: 'When the asking replica sent the query (epoch ms, its clock).', schema: { type: 'integer' } },
      ],
      responses: { 200: json('QueryStates', 'The query state'), 401: unauthenticated, 404: errorAnswer('No cluster is configured.') },
    },
  },
  [HANDOFF_PATH]: {
    post: {
      summary: 'Between replicas of a cluster: the windows of a replica that is shutting down, kept for `handoff.retention`',
      requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/QueryStates' } } } },
      responses: {
        200: json('HandoffTaken', 'Kept'),
        400: errorAnswer('Not a hand-off.'),
        401: unauthenticated,
        404: errorAnswer('No cluster is configured.'),
        409: errorAnswer('The hand-off comes from this replica.'),
      },
    },
  },
};

const extensionSchemas: Record<string, unknown> = {
  QueryStates: {
    type: 'object',
    required: ['sources'],
    properties: {
      instance: { type: 'string', description: 'The replica answering (GET).' },
      from: { type: 'string', description: 'The replica handing off (POST).' },
      sources: {
        type: 'array',
        description: 'A snapshot per process (worker) and per window handed over by a peer that left.',
        items: {
          type: 'object',
          required: ['source', 'takenAtMs', 'states'],
          properties: { source: { type: 'string' }, takenAtMs: { type: 'number' }, states: { type: 'object', description: 'Query state by connector id.' } },
        },
      },
    },
  },
  HandoffTaken: { type: 'object', required: ['instance', 'accepted'], properties: { instance: { type: 'string' }, accepted: { type: 'integer' } } },
  Health: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok', 'unavailable'] } } },
  Settings: {
    type: 'object',
    required: ['jaeger_url'],
    properties: {
      jaeger_url: { type: 'string', nullable: true, description: '`jaeger_url` of the config: the page links each trace to `<jaeger_url>/trace/<trace id>`.' },
    },
  },
  Intake: {
    type: 'object',
    required: ['receivers', 'processors', 'exporters'],
    properties: {
      receivers: {
        type: 'array',
        items: {
          type: 'object',
          required: ['receiver', 'transport', 'accepted_spans', 'refused_spans', 'failed_spans', 'malformed_requests', 'unauthenticated_requests'],
          properties: {
            receiver: { type: 'string', example: 'otlp' },
            transport: { type: 'string', example: 'grpc' },
            accepted_spans: { ...count, description: 'otelcol_receiver_accepted_spans' },
            refused_spans: { ...count, description: 'otelcol_receiver_refused_spans: refused by the pipeline, the client may retry' },
            failed_spans: { ...count, description: 'otelcol_receiver_failed_spans' },
            malformed_requests: { ...count, description: 'routelens_receiver_malformed_requests' },
            unauthenticated_requests: { ...count, description: 'routelens_receiver_unauthenticated_requests' },
          },
        },
      },
      processors: {
        type: 'array',
        items: {
          type: 'object',
          required: ['processor', 'refused_spans'],
          properties: { processor: { type: 'string' }, refused_spans: { ...count, description: 'otelcol_processor_refused_spans' } },
        },
      },
      exporters: {
        type: 'array',
        items: {
          type: 'object',
          required: ['exporter', 'enqueue_failed_spans'],
          properties: { exporter: { type: 'string' }, enqueue_failed_spans: { ...count, description: 'otelcol_exporter_enqueue_failed_spans' } },
        },
      },
    },
  },
};

/**
 * The connector's document with the extension's own paths added, `scope` on every query operation and the
 * ClusterAnswer fields described; the connector's values are otherwise unchanged.
 */
export function routeQueryOpenapi(doc: unknown): unknown {
  const d = doc as { paths?: Record<string, Record<string, { parameters?: unknown[] }>>; components?: { schemas?: Record<string, unknown> } } | null;
  if (d === null || typeof d !== 'object' || d.paths === undefined) return doc;
  const paths: Record<string, Record<string, { parameters?: unknown[] }>> = {};
  for (const [p, ops] of Object.entries(d.paths)) {
    const out: Record<string, { parameters?: unknown[] }> = {};
    for (const [method, op] of Object.entries(ops)) {
      out[method] = { ...op, parameters: [...(op.parameters ?? []), scopeParameter] };
    }
    paths[p] = out;
  }
  Object.assign(paths, extensionPaths);
  const schemas = {
    ...(d.components?.schemas ?? {}),
    ...extensionSchemas,
    Peer: peerSchema,
    ClusterAnswer: {
      type: 'object',
      description: 'Fields a `scope=cluster` answer adds to the answer of the same path.',
      properties: {
        scope: { type: 'string', enum: ['cluster'] },
        partial: { type: 'boolean', description: 'True when a peer did not answer (or no peer was found): the numbers cover only the peers marked ok.' },
        peers: { type: 'array', items: { $ref: '#/components/schemas/Peer' } },
      },
    },
  };
  return { ...d, paths, components: { ...(d.components ?? {}), schemas } };
}
