/**
 * Windows survive a replica that shuts down: on SIGTERM (here: its shutdown) a replica hands its open windows to
 * a peer, which adds them to its cluster-wide answers; a replica that joins later answers for the cluster at
 * once; a source that reaches a query twice (from its replica and from the peer that holds its hand-off) is
 * counted once. Also under `--workers 2`, where the primary hands off what its workers held when they stopped.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { clusterWorkload, encodeWorkload, replicaYaml, type ReplicaPorts, type WorkSpan } from '../support/cluster';
import { freePorts } from '../support/free-port';
import { startRoutelensChild } from '../support/routelens-child';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { postTraces } from '../support/trace-requests';
import type { RoutesResponse } from '../../src/connectors/routelatency/query';
import type { PeerStatus, StatesBody } from '../../src/extensions/routequery/cluster';

type ClusterRoutes = RoutesResponse & { partial: boolean; peers: PeerStatus[] };

const total = (r: RoutesResponse): number => r.routes.reduce((n, x) => n + x.count, 0);

async function clusterRoutes(url: string): Promise<ClusterRoutes> {
  const res = await fetch(`${url}/api/v1/routes?window=1m&limit=1000&scope=cluster`);
  expect(res.status).to.equal(200);
  return (await res.json()) as ClusterRoutes;
}

async function send(httpPort: number, spans: readonly WorkSpan[]): Promise<void> {
  for (let i = 0; i < spans.length; i += 100) {
    const r = await postTraces(`http://127.0.0.1:${httpPort}/v1/traces`, encodeWorkload(spans.slice(i, i + 100)));
    expect(r.status).to.equal(200);
  }
}

async function replicaPorts(n: number): Promise<ReplicaPorts[]> {
  const free = await freePorts(3 * n);
  return Array.from({ length: n }, (_, i) => ({ grpc: free[3 * i] as number, http: free[3 * i + 1] as number, query: free[3 * i + 2] as number }));
}

describe('cluster: windows handed off on shutdown', function () {
  this.timeout(60_000);

  it('a stopping replica hands its windows to a peer; a new replica answers for the cluster at once', async () => {
    const ports = await replicaPorts(3);
    const peers = ports.map((p) => `127.0.0.1:${p.query}`);
    const a = await startRoutelens(replicaYaml(ports[0] as ReplicaPorts, { peers }));
    const b = await startRoutelens(replicaYaml(ports[1] as ReplicaPorts, { peers }));
    let c: RunningRoutelens | undefined;
    try {
      const spans = clusterWorkload(7, { traces: 1500, routes: 20 });
      await send(a.httpPort(), spans.slice(0, 1000));
      await send(b.httpPort(), spans.slice(1000));
      const before = await clusterRoutes(b.queryUrl());
      expect(total(before)).to.equal(1500);

      await a.stop();
      expect(a.logs.some((l) => l.msg === 'Handed the open windows to a peer' && l.peer === peers[1])).to.equal(true);
      const after = await clusterRoutes(b.queryUrl());
      // a is still listed (static) and does not answer: partial, but its windows are there
      expect(after.partial).to.equal(true);
      expect(total(after)).to.equal(1500);
      const strip = (r: RoutesResponse): unknown => r.routes.map(({ rate_per_s: _r, ...rest }) => rest);
      expect(strip(after)).to.deep.equal(strip(before));

      // A replica started now answers for the cluster from its first query.
      c = await startRoutelens(replicaYaml(ports[2] as ReplicaPorts, { peers }));
      expect(total(await clusterRoutes(c.queryUrl()))).to.equal(1500);
    } finally {
      await b.stop();
      await c?.stop();
    }
  });

  it('a source reaching a query twice (its replica, and a peer holding its hand-off) is counted once', async () => {
    const ports = await replicaPorts(2);
    const peers = ports.map((p) => `127.0.0.1:${p.query}`);
    const a = await startRoutelens(replicaYaml(ports[0] as ReplicaPorts, { peers, handoff: false }));
    const b = await startRoutelens(replicaYaml(ports[1] as ReplicaPorts, { peers, handoff: false }));
    try {
      await send(a.httpPort(), clusterWorkload(8, { traces: 400, routes: 5 }));
      const states = (await (await fetch(`${a.queryUrl()}/internal/v1/states`)).json()) as StatesBody;
      expect(states.sources).to.have.length(1);
      const post = (body: unknown): Promise<Response> =>
        fetch(`${b.queryUrl()}/internal/v1/handoff`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
          body: zlib.gzipSync(JSON.stringify(body)),
        });
      expect((await post({ from: states.instance, sources: states.sources })).status).to.equal(200);
      // a hand-off from b to itself is refused; a malformed one too
      const bInstance = ((await (await fetch(`${b.queryUrl()}/internal/v1/states`)).json()) as StatesBody).instance;
      expect((await post({ from: bInstance, sources: states.sources })).status).to.equal(409);
      expect((await post({ from: 'x', sources: [{ source: 1 }] })).status).to.equal(400);
      // only POST: a GET is not taken for the states
      const got = await fetch(`${b.queryUrl()}/internal/v1/handoff`);
      expect([got.status, got.headers.get('allow'), await got.json()]).to.deep.equal([405, 'POST', { error: 'method GET not allowed' }]);
      // more spans on a after the copy: the newest snapshot of the source wins, nothing is doubled
      await send(a.httpPort(), clusterWorkload(9, { traces: 100, routes: 5 }));
      const r = await clusterRoutes(b.queryUrl());
      expect(r.partial).to.equal(false);
      expect(total(r)).to.equal(500);
      const fromB = r.peers.find((p) => p.self) as PeerStatus;
      expect(fromB.sources).to.equal(2); // its own and the copy of a's
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('under --workers 2 the primary hands off what its workers held when they stopped', async () => {
    const ports = await replicaPorts(2);
    const peers = ports.map((p) => `127.0.0.1:${p.query}`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-handoff-'));
    const b = await startRoutelens(replicaYaml(ports[1] as ReplicaPorts, { peers }));
    try {
      const a = await startRoutelensChild(path.join(dir, 'a.yaml'), replicaYaml(ports[0] as ReplicaPorts, { peers }), { workers: 2, name: 'routelens-a' });
      // separate connections: the primary spreads them over both workers
      const spans = clusterWorkload(10, { traces: 1200, routes: 12 });
      await send(ports[0]?.http as number, spans);
      const states = (await (await fetch(`http://127.0.0.1:${a.endpoints.routequery}/internal/v1/states`)).json()) as StatesBody;
      expect(states.sources).to.have.length(2);
      const exit = await a.proc.stop(20_000);
      expect(exit.code).to.equal(0);
      const r = await clusterRoutes(b.queryUrl());
      expect(total(r)).to.equal(1200);
      expect((r.peers.find((p) => p.self) as PeerStatus).sources).to.equal(3); // b, and a's two workers
    } finally {
      await b.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
