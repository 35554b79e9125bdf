/**
 * Cluster-wide answers (`scope=cluster`) of three replicas with a static peer list, against one reference
 * process that received every span: spans are spread round-robin over the replicas, and every replica's cluster
 * answer must equal the reference's in every field but the time-dependent ones (generated_at, covered_s and
 * rate_per_s, which depend on when each process started), and equal each other's. A peer that does not answer
 * makes the answer `partial` and is named, never silently left out.
 */
import { expect } from 'chai';
import { freePorts, waitFor } from '../support/free-port';
import { clusterWorkload, encodeWorkload, replicaYaml, type ReplicaPorts, type WorkSpan } from '../support/cluster';
import { exactQuantile } from '../support/route-spans';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { postTraces } from '../support/trace-requests';
import { runRoutelensCli } from '../support/process';
import type { RouteJson, RoutesResponse, ServicesResponse, RouteDetailResponse } from '../../src/connectors/routelatency/query';
import { routePath } from '../../src/connectors/routelatency/query';
import type { PeerStatus } from '../../src/extensions/routequery/cluster';
import { relativeErrorAtScale, SKETCH_SCALE } from '../../src/pdata/expo-histogram';

type ClusterAnswer<T> = T & { scope: 'cluster'; partial: boolean; peers: PeerStatus[] };

async function getJson<T>(url: string, token?: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as T };
}

/** Everything of a route answer that does not depend on when the answering process started. */
function timeless(r: RouteJson): Omit<RouteJson, 'rate_per_s'> {
  const { rate_per_s: _rate, ...rest } = r;
  return rest;
}

async function send(rl: RunningRoutelens, spans: readonly WorkSpan[]): Promise<void> {
  const r = await postTraces(`http://127.0.0.1:${rl.httpPort()}/v1/traces`, encodeWorkload(spans));
  expect(r.status).to.equal(200);
}

describe('cluster-wide answers: three replicas, one reference', function () {
  this.timeout(60_000);
  const token = 'cluster-secret';
  let ports: ReplicaPorts[];
  let replicas: RunningRoutelens[];
  let reference: RunningRoutelens;
  let spans: WorkSpan[];
  const peers = (): string[] => ports.map((p) => `127.0.0.1:${p.query}`);

  before(async () => {
    const free = await freePorts(12);
    ports = [0, 1, 2].map((i) => ({ grpc: free[3 * i] as number, http: free[3 * i + 1] as number, query: free[3 * i + 2] as number }));
    replicas = [];
    for (const p of ports) replicas.push(await startRoutelens(replicaYaml(p, { peers: peers(), token, handoff: false })));
    reference = await startRoutelens(replicaYaml({ grpc: free[9] as number, http: free[10] as number, query: free[11] as number }, { token }));
    spans = clusterWorkload(30, { traces: 3000, routes: 40 });
    // Slots are by receive time: send everything early in one 10 s slot, so the replicas and the reference put
    // each span in the same slot (series and per-slot exemplars compare exactly).
    await new Promise((resolve) => setTimeout(resolve, (11_000 - (Date.now() % 10_000)) % 10_000));
    // Round-robin over the replicas in requests of 50 spans; the reference gets them all.
    for (let i = 0; i < spans.length; i += 50) {
      const chunk = spans.slice(i, i + 50);
      await send(replicas[(i / 50) % 3] as RunningRoutelens, chunk);
      await send(reference, chunk);
    }
  });

  after(async () => {
    for (const r of [...(replicas ?? []), reference]) await r?.stop();
  });

  it('every replica answers /api/v1/routes for the cluster exactly as the reference, and as each other', async () => {
    const ref = (await getJson<RoutesResponse>(`${reference.queryUrl()}/api/v1/routes?window=1m&sort=route&limit=1000`, token)).body;
    expect(ref.routes.length).to.equal(40);
    expect(ref.routes.reduce((n, r) => n + r.count, 0)).to.equal(3000);
    const answers: ClusterAnswer<RoutesResponse>[] = [];
    for (const [i, rl] of replicas.entries()) {
      const { status, body } = await getJson<ClusterAnswer<RoutesResponse>>(
        `${rl.queryUrl()}/api/v1/routes?window=1m&sort=route&limit=1000&scope=cluster`,
        token,
      );
      expect(status).to.equal(200);
      expect(body.scope).to.equal('cluster');
      expect(body.partial).to.equal(false);
      const self = peers()[i];
      expect(body.peers.map((p) => [p.peer, p.ok, p.error, p.self])).to.deep.equal([...peers()].sort().map((p) => [p, true, null, p === self]));
      expect(body.routes.map(timeless)).to.deep.equal(ref.routes.map(timeless));
      for (const r of body.routes) expect(r.rate_per_s).to.be.closeTo(r.count / body.covered_s, (r.count / body.covered_s) * 1e-5 + 1e-9);
      answers.push(body);
    }
    // Identical across replicas (the peers' self flags aside).
    for (const a of answers.slice(1)) expect(a.routes.map(timeless)).to.deep.equal((answers[0] as ClusterAnswer<RoutesResponse>).routes.map(timeless));
  });

  it('the merged percentiles are the exact ones within the sketch error', async () => {
    const { body } = await getJson<ClusterAnswer<RoutesResponse>>(`${replicas[1]?.queryUrl()}/api/v1/routes?window=5m&limit=1000&scope=cluster`, token);
    const bound = relativeErrorAtScale(SKETCH_SCALE);
    for (const r of body.routes) {
      const values = spans.filter((s) => s.service === r.service && s.route === r.route && s.method === r.method).map((s) => s.ms);
      values.sort((a, b) => a - b);
      expect(r.count).to.equal(values.length);
      for (const [q, got] of [
        [0.5, r.p50_ms],
        [0.99, r.p99_ms],
      ] as const) {
        const exact = exactQuantile(values, q);
        expect(Math.abs((got as number) - exact) / exact).to.be.at.most(bound * 1.0001);
      }
    }
  });

  it('services and one route (series and exemplars) for the cluster equal the reference; local answers stay local', async () => {
    const refServices = (await getJson<ServicesResponse>(`${reference.queryUrl()}/api/v1/services?window=1m`, token)).body;
    const services = (await getJson<ClusterAnswer<ServicesResponse>>(`${replicas[2]?.queryUrl()}/api/v1/services?window=1m&scope=cluster`, token)).body;
    const strip = (s: ServicesResponse['services'][number]): unknown => ({ ...s, rate_per_s: undefined });
    expect(services.services.map(strip)).to.deep.equal(refServices.services.map(strip));

    const one = spans[0] as WorkSpan;
    const p = `${routePath(one.service, one.method, one.route)}?window=1m`;
    const refRoute = (await getJson<RouteDetailResponse>(`${reference.queryUrl()}${p}`, token)).body;
    const route = (await getJson<ClusterAnswer<RouteDetailResponse>>(`${replicas[0]?.queryUrl()}${p}&scope=cluster`, token)).body;
    expect(timeless(route.route)).to.deep.equal(timeless(refRoute.route));
    // exemplars carry the time each process received the span: compare the spans and values
    const spansOf = (x: RouteDetailResponse): unknown => x.exemplars.map((e) => [e.trace_id, e.span_id, e.value_ms]);
    expect(spansOf(route)).to.deep.equal(spansOf(refRoute));
    expect(route.series.map((s) => ({ ...s, rate_per_s: 0 }))).to.deep.equal(refRoute.series.map((s) => ({ ...s, rate_per_s: 0 })));

    // scope=local (the default): a replica's own third
    const local = (await getJson<RoutesResponse>(`${replicas[0]?.queryUrl()}/api/v1/routes?window=1m&limit=1000`, token)).body;
    expect(local.routes.reduce((n, r) => n + r.count, 0)).to.equal(1000);
    expect(local).to.not.have.property('partial');
  });

  it("why a route is slow, for the cluster: the merged trace analysis equals the reference's", async () => {
    const one = spans[1] as WorkSpan;
    const q = `/api/v1/why?service=${encodeURIComponent(one.service)}&method=${one.method}&route=${encodeURIComponent(one.route)}&window=5m`;
    // Each process analyses a trace once it is complete (after a short wait): compare once all have.
    const strip = (b: Record<string, unknown>): Record<string, unknown> => {
      const { scope: _s, partial: _p, peers: _e, ...rest } = b;
      return rest;
    };
    const answers = await waitFor(
      async () => {
        const ref = await getJson<Record<string, unknown>>(`${reference.queryUrl()}${q}`, token);
        const cluster = await getJson<ClusterAnswer<Record<string, unknown>>>(`${replicas[1]?.queryUrl()}${q}&scope=cluster`, token);
        return ref.status === 200 && JSON.stringify(strip(cluster.body)) === JSON.stringify(ref.body) ? { ref, cluster } : undefined;
      },
      { timeoutMs: 30_000, what: 'the cluster why answer to equal the reference' },
    ).catch(async (err: unknown) => {
      const ref = await getJson<Record<string, unknown>>(`${reference.queryUrl()}${q}`, token);
      const cluster = await getJson<Record<string, unknown>>(`${replicas[1]?.queryUrl()}${q}&scope=cluster`, token);
      expect(strip(cluster.body)).to.deep.equal(ref.body);
      throw err;
    });
    expect(answers.cluster.body.partial).to.equal(false);
  });

  it("moves only what the query reads: a route list needs neither the trace analysis nor other windows' slots", async () => {
    interface Body {
      sources: { states: Record<string, { store: { routes: { route: string; rings: unknown[][] }[] }; analysis?: unknown; runtime?: unknown }> }[];
    }
    const states = async (query: string): Promise<{ bytes: number; state: Body['sources'][number]['states'][string] }> => {
      const text = await (await fetch(`${replicas[0]?.queryUrl()}/internal/v1/states${query}`, { headers: { authorization: `Bearer ${token}` } })).text();
      const body = JSON.parse(text) as Body;
      expect(body.sources).to.have.length(1);
      return { bytes: text.length, state: body.sources[0]?.states['routelatency'] as Body['sources'][number]['states'][string] };
    };
    const whole = await states('');
    const forRoutes = await states(`?path=/api/v1/routes&query=${encodeURIComponent('window=1m&limit=5')}&at=${Date.now()}`);
    expect(whole.state.analysis).to.not.equal(undefined);
    expect(forRoutes.state).to.not.have.property('analysis');
    expect(forRoutes.state).to.not.have.property('runtime');
    // Every route is listed (counts stay right), with slots in one tier only: the 1m window's.
    expect(forRoutes.state.store.routes.map((r) => r.route)).to.deep.equal(whole.state.store.routes.map((r) => r.route));
    const tiersWithSlots = (st: typeof whole.state): number[] =>
      [...new Set(st.store.routes.flatMap((r) => r.rings.flatMap((slots, i) => (slots.length > 0 ? [i] : []))))].sort();
    expect(tiersWithSlots(forRoutes.state)).to.have.length.at.most(1);
    expect(tiersWithSlots(whole.state).length).to.be.above(1);
    expect(forRoutes.bytes).to.be.below(whole.bytes);
  });

  it('asks itself over HTTP only until it knows its own address, then takes its state directly', async () => {
    const url = `${replicas[2]?.queryUrl()}/api/v1/routes?window=1m&limit=1&scope=cluster`;
    await getJson<ClusterAnswer<RoutesResponse>>(url, token);
    const { body } = await getJson<ClusterAnswer<RoutesResponse>>(url, token);
    expect(body.partial).to.equal(false);
    expect(body.peers.map((p) => [p.peer, p.self, p.bytes > 0])).to.deep.equal([...peers()].sort().map((p) => [p, p === peers()[2], p !== peers()[2]]));
  });

  it('documents scope in the OpenAPI document and refuses a bad scope', async () => {
    const doc = (await getJson<{ paths: Record<string, { get: { parameters: { name: string }[] } }> }>(`${replicas[0]?.queryUrl()}/api/v1/openapi.json`, token))
      .body;
    expect(doc.paths['/api/v1/routes']?.get.parameters.map((x) => x.name)).to.include('scope');
    const bad = await getJson<{ error: string }>(`${replicas[0]?.queryUrl()}/api/v1/routes?scope=everywhere`, token);
    expect(bad).to.deep.equal({ status: 400, body: { error: 'invalid scope; expected "local" or "cluster"' } });
    const noCluster = await getJson<{ error: string }>(`${reference.queryUrl()}/api/v1/routes?scope=cluster`, token);
    expect(noCluster.status).to.equal(400);
    expect(noCluster.body.error).to.match(/scope=cluster needs a cluster/);
    // the internal endpoint is behind the same auth
    expect((await fetch(`${replicas[0]?.queryUrl()}/internal/v1/states`)).status).to.equal(401);
  });

  it('`routelens routes --cluster` prints the merged table and says every peer answered', async () => {
    const out = await runRoutelensCli('routes', '--cluster', '--url', replicas[0]?.queryUrl() as string, '--token', token, '--window', '1m', '--limit', '1000');
    expect(out.status, out.stderr).to.equal(0);
    const rows = out.stdout.split('\n').filter((l) => /^svc-\d/.test(l));
    expect(rows).to.have.length(40);
    expect(out.stdout).to.match(/\ncluster: all 3 peers answered\n$/);
  });

  it('a peer that does not answer makes the answer partial and is named', async () => {
    const down = replicas[2] as RunningRoutelens;
    await down.stop();
    const out = await runRoutelensCli('routes', '--cluster', '--url', replicas[0]?.queryUrl() as string, '--token', token);
    expect(out.status, out.stderr).to.equal(0);
    expect(out.stdout).to.include(`PARTIAL: 2 of 3 peers answered; missing:\n  ${peers()[2]}: `);
    const { body } = await getJson<ClusterAnswer<RoutesResponse>>(`${replicas[0]?.queryUrl()}/api/v1/routes?window=1m&limit=1000&scope=cluster`, token);
    expect(body.partial).to.equal(true);
    const missing = body.peers.find((p) => p.peer === peers()[2]) as PeerStatus;
    expect(missing.ok).to.equal(false);
    expect(missing.error).to.match(/ECONNREFUSED/);
    expect(body.routes.reduce((n, r) => n + r.count, 0)).to.equal(2000);
  });
});

describe('cluster-wide answers: peers with other credentials', function () {
  this.timeout(30_000);
  it('a peer refusing the credentials is reported with its HTTP status', async () => {
    const free = await freePorts(6);
    const a: ReplicaPorts = { grpc: free[0] as number, http: free[1] as number, query: free[2] as number };
    const b: ReplicaPorts = { grpc: free[3] as number, http: free[4] as number, query: free[5] as number };
    const peers = [`127.0.0.1:${a.query}`, `127.0.0.1:${b.query}`];
    const ra = await startRoutelens(replicaYaml(a, { peers, token: 'one', handoff: false }));
    const rb = await startRoutelens(replicaYaml(b, { peers, token: 'two', handoff: false }));
    try {
      const { body } = await getJson<ClusterAnswer<RoutesResponse>>(`${ra.queryUrl()}/api/v1/routes?scope=cluster`, 'one');
      expect(body.partial).to.equal(true);
      const byPeer = Object.fromEntries(body.peers.map((p) => [p.peer, [p.ok, p.error, p.self]]));
      expect(byPeer).to.deep.equal({
        [peers[0] as string]: [true, null, true],
        [peers[1] as string]: [false, 'HTTP 401: invalid authorization header', false],
      });
    } finally {
      await ra.stop();
      await rb.stop();
    }
  });
});
