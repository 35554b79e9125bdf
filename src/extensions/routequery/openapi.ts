/**
 * The extension's additions to the component's OpenAPI document: the `scope` parameter every path takes and the
 * fields a cluster-wide answer adds (see cluster.ts).
 */

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

/** The document with `scope` on every operation and the ClusterAnswer fields described; other values unchanged. */
export function withScopeParameter(doc: unknown): unknown {
  const d = doc as { paths?: Record<string, Record<string, { parameters?: unknown[] }>>; components?: { schemas?: Record<string, unknown> } } | null;
  if (d === null || typeof d !== 'object' || d.paths === undefined) return doc;
  const paths: Record<string, Record<string, { parameters?: unknown[] }>> = {};
  for (const [p, ops] of Object.entries(d.paths)) {
    const out: Record<string, { parameters?: unknown[] }> = {};
    for (const [method, op] of Object.entries(ops)) {
      out[method] = p === '/api/v1/openapi.json' ? op : { ...op, parameters: [...(op.parameters ?? []), scopeParameter] };
    }
    paths[p] = out;
  }
  const schemas = {
    ...(d.components?.schemas ?? {}),
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
