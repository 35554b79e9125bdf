/**
 * The data plane's JavaScript without the network: decode (validate) the benchmark's pooled requests, run the
 * route analysis over their spans and build the parts the exporter writes, as the pipeline does per request.
 * CPU per span with little noise, for changes to pdata and routelatency whose effect the end-to-end benchmark
 * (±10 % between runs on this machine) cannot resolve. No collector, no sockets, no API server. A second
 * figure is the k8sattributes enrichment per request (the benchmark's association and metadata, its pods fed
 * to the processor directly): decode + enrich + encodeParts minus decode + encodeParts.
 *
 *   npm run bench:hot-path [-- --rounds 7 --requests 4000]
 */
import { RouteStore } from '../src/connectors/routelatency/store';
import { TraceBatch } from '../src/pdata/trace-batch';
import { K8S_METADATA } from './configs';
import { workloadEnrichment } from './kube-objects';
import { SPANS_PER_REQUEST, buildPool, type Pool, type PooledRequest } from './workload';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

function main(): void {
  const rounds = option('rounds', 7);
  const requests = option('requests', 4000);
  const pool = buildPool(64);
  const store = new RouteStore({});
  // as the connector passes it: spans of other kinds are counted per service, by kind, without being read
  const recordSkipped = (service: string, counts: Uint32Array): void => store.recordSkipped(service, counts);
  let bytes = 0;
  const runRequests = (n: number): void => {
    for (let i = 0; i < n; i++) {
      const req = pool.requests[i % pool.requests.length];
      if (req === undefined) throw new Error('empty request pool');
      const batch = TraceBatch.decode(req.bytes);
      const now = Date.now();
      batch.forEachSpan((span) => void store.record(span, now), { kinds: store.kindMask, skipped: recordSkipped });
      for (const p of batch.encodeParts()) bytes += p.length;
    }
  };
  runRequests(requests / 2); // warm-up: JIT and route creation
  const perSpan: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const cpu0 = process.cpuUsage();
    runRequests(requests);
    const cpu = process.cpuUsage(cpu0);
    perSpan.push(((cpu.user + cpu.system) * 1000) / (requests * SPANS_PER_REQUEST));
  }
  perSpan.sort((a, b) => a - b);
  const median = perSpan[Math.floor(perSpan.length / 2)] as number;
  console.log(
    `decode + route analysis + encodeParts: median ${median.toFixed(0)} ns CPU per span over ${rounds} rounds of ` +
      `${requests} requests × ${SPANS_PER_REQUEST} spans (min ${(perSpan[0] as number).toFixed(0)}, max ${(perSpan[perSpan.length - 1] as number).toFixed(0)}); ` +
      `${store.stats().routes} routes, ${(bytes / 1e9).toFixed(2)} GB of parts`,
  );
  enrichment(pool, rounds, requests);
}

/** CPU µs per request of k8sattributes' enrich, configured as the benchmark configures it. */
function enrichment(pool: Pool, rounds: number, requests: number): void {
  const processor = workloadEnrichment();
  const ctx = { clientAddress: '127.0.0.1' };
  let bytes = 0;
  const run = (n: number, enrich: boolean): number => {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const batch = TraceBatch.decode((pool.requests[i % pool.requests.length] as PooledRequest).bytes);
      if (enrich) processor.enrich(batch, ctx);
      for (const p of batch.encodeParts()) bytes += p.length;
    }
    const cpu = process.cpuUsage(cpu0);
    return (cpu.user + cpu.system) / n;
  };
  const probe = TraceBatch.decode((pool.requests[0] as PooledRequest).bytes);
  processor.enrich(probe, ctx);
  if (probe.resourceAttribute(0, 'k8s.deployment.name') === undefined) throw new Error('enrichment found no pod: the workload and its pods disagree');
  run(requests / 2, true);
  run(requests / 2, false);
  const perRequest: number[] = [];
  for (let r = 0; r < rounds; r++) perRequest.push(run(requests, true) - run(requests, false));
  perRequest.sort((a, b) => a - b);
  console.log(
    `k8sattributes enrich (${probe.resourceCount} resources by k8s.pod.ip, ${K8S_METADATA.length} attributes each): median ` +
      `${(perRequest[Math.floor(perRequest.length / 2)] as number).toFixed(1)} µs CPU per request over ${rounds} rounds ` +
      `(min ${(perRequest[0] as number).toFixed(1)}, max ${(perRequest[perRequest.length - 1] as number).toFixed(1)}); ${(bytes / 1e9).toFixed(2)} GB of parts`,
  );
}

main();
