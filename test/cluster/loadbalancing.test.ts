/**
 * The `loadbalancing` exporter in a running routelens, sending to test backends (OtlpSink): every span of a trace
 * reaches one backend and nothing is lost or doubled; a backend that fails gets its share again once it is back
 * while the others keep receiving; a ring change under load (EndpointSlices of the fake API server changing)
 * splits no trace, and new traces reach a backend that joined.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultRegistry } from '../../src/components';
import { parseConfig } from '../../src/config/load';
import { type ConfigError } from '../../src/core/schema';
import { clusterWorkload, encodeWorkload, type WorkSpan } from '../support/cluster';
import { FakeKubeApi, makeEndpointSlice } from '../support/fake-kube-api';
import { freePort, waitFor } from '../support/free-port';
import { OtlpSink } from '../support/otlp-sink';
import { rng } from '../support/route-spans';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { startRoutelensChild, type RoutelensChild } from '../support/routelens-child';
import { postTraces } from '../support/trace-requests';

/**
 * The agent's config. Its send deadline is long: on a starved machine a backend may answer a call after a short
 * deadline, and the retry that follows delivers the part twice (at least once), while these tests count exactly.
 */
function agentYaml(resolver: string, extra = ''): string {
  return `receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
exporters:
  loadbalancing:
    resolver: ${resolver}
    protocol:
      otlp:
        tls: { insecure: true }
        timeout: 30s
    retry_on_failure: { initial_interval: 100ms, max_interval: 500ms, max_elapsed_time: 0s }${extra}
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces: { receivers: [otlp], exporters: [loadbalancing] }
`;
}

/** Spans of many traces, shuffled and cut into requests: a trace's spans arrive in several requests. */
function shuffledRequests(spans: readonly WorkSpan[], seed: number, perRequest: number): WorkSpan[][] {
  const r = rng(seed);
  const s = [...spans];
  for (let i = s.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [s[i], s[j]] = [s[j] as WorkSpan, s[i] as WorkSpan];
  }
  const out: WorkSpan[][] = [];
  for (let i = 0; i < s.length; i += perRequest) out.push(s.slice(i, i + perRequest));
  return out;
}

async function post(rl: RunningRoutelens, spans: readonly WorkSpan[]): Promise<void> {
  const r = await postTraces(`http://127.0.0.1:${rl.httpPort()}/v1/traces`, encodeWorkload(spans));
  expect(r.status, r.body.toString()).to.equal(200);
}

/** Trace id (hex) → the backends its spans reached; and the number of spans each backend received. */
function whereTracesWent(sinks: readonly OtlpSink[]): { traces: Map<string, Set<number>>; perSink: number[]; spanIds: string[] } {
  const traces = new Map<string, Set<number>>();
  const spanIds: string[] = [];
  const perSink = sinks.map((sink, i) => {
    const spans = sink.spans();
    for (const s of spans) {
      let set = traces.get(s.traceId);
      if (set === undefined) traces.set(s.traceId, (set = new Set()));
      set.add(i);
      spanIds.push(s.spanId);
    }
    return spans.length;
  });
  return { traces, perSink, spanIds };
}

const splitTraces = (traces: Map<string, Set<number>>): string[] => [...traces].filter(([, s]) => s.size > 1).map(([t]) => t);

describe('loadbalancing exporter: config', () => {
  const parse = (yaml: string): void => void parseConfig(yaml, defaultRegistry(), {});
  it('takes the Collector shape, the load_balancing alias, and says where the queue and endpoint go', () => {
    expect(() => parse(agentYaml('{ static: { hostnames: [a:4317] } }'))).to.not.throw();
    expect(() => parse(agentYaml('{ static: { hostnames: [a:4317] } }').replace(/loadbalancing/g, 'load_balancing'))).to.not.throw();
    const bad = agentYaml('{ dns: { hostname: gw } }').replace(
      'tls: { insecure: true }',
      'tls: { insecure: true }\n        endpoint: x:1\n        sending_queue: { queue_size: 5 }',
    );
    let err: ConfigError | undefined;
    try {
      parse(bad);
    } catch (e) {
      err = e as ConfigError;
    }
    expect(err?.issues.map((i) => i.path)).to.deep.equal([
      'exporters.loadbalancing.protocol.otlp.endpoint',
      'exporters.loadbalancing.protocol.otlp.sending_queue',
    ]);
    expect(err?.message).to.include('the resolver supplies the endpoints');
    expect(err?.message).to.include('routelens queues once, before routing');
  });
});

describe('loadbalancing exporter: routing by trace id', function () {
  this.timeout(90_000);
  let sinks: OtlpSink[];
  let agent: RunningRoutelens;

  beforeEach(async () => {
    sinks = [];
    for (let i = 0; i < 3; i++) sinks.push(await new OtlpSink().start());
  });
  afterEach(async () => {
    await agent?.stop();
    for (const s of sinks) await s.stop();
  });

  it('sends every span of a trace to one backend, loses and doubles nothing, spreads the traces', async () => {
    agent = await startRoutelens(agentYaml(`{ static: { hostnames: [${sinks.map((s) => s.grpcEndpoint).join(', ')}] } }`));
    const spans = clusterWorkload(41, { traces: 3000, routes: 30, clientsPerTrace: 4 });
    for (const req of shuffledRequests(spans, 1, 300)) await post(agent, req);
    await waitFor(async () => (sinks.reduce((n, s) => n + s.spanCount(), 0) >= spans.length ? true : undefined), {
      timeoutMs: 30_000,
      what: 'every span delivered',
    });
    const { traces, perSink, spanIds } = whereTracesWent(sinks);
    const retries = agent.logs.filter((l) => l.msg === 'Exporting to a backend failed; will retry, routed again');
    expect(spanIds.length, `spans delivered; the agent's retries: ${JSON.stringify(retries)}`).to.equal(spans.length);
    expect(new Set(spanIds).size).to.equal(spans.length);
    expect(traces.size).to.equal(3000);
    expect(splitTraces(traces)).to.deep.equal([]);
    for (const n of perSink) expect(n / (spans.length / 3)).to.be.within(0.85, 1.15);
  });

  it('routing_key service: every span of a service to one backend', async () => {
    agent = await startRoutelens(
      agentYaml(`{ static: { hostnames: [${sinks.map((s) => s.grpcEndpoint).join(', ')}] } }`).replace('resolver:', 'routing_key: service\n    resolver:'),
    );
    const spans = clusterWorkload(42, { traces: 600, routes: 30, services: 12 });
    for (const req of shuffledRequests(spans, 2, 100)) await post(agent, req);
    await waitFor(async () => (sinks.reduce((n, s) => n + s.spanCount(), 0) >= spans.length ? true : undefined), {
      timeoutMs: 30_000,
      what: 'every span delivered',
    });
    const byService = new Map<string, Set<number>>();
    sinks.forEach((s, i) => {
      for (const sp of s.spans()) {
        const svc = (sp.resource.attributes as { key: string; value: { stringValue: string } }[]).find((a) => a.key === 'service.name')?.value
          .stringValue as string;
        byService.set(svc, (byService.get(svc) ?? new Set()).add(i));
      }
    });
    expect(byService.size).to.equal(12);
    for (const [svc, set] of byService) expect(set.size, svc).to.equal(1);
  });

  it('a failing backend gets its share once it is back; the others keep receiving meanwhile', async () => {
    agent = await startRoutelens(agentYaml(`{ static: { hostnames: [${sinks.map((s) => s.grpcEndpoint).join(', ')}] } }`));
    (sinks[1] as OtlpSink).failWith = { grpcCode: grpc.status.UNAVAILABLE, httpStatus: 503 };
    const spans = clusterWorkload(43, { traces: 900, routes: 10, clientsPerTrace: 1 });
    for (const req of shuffledRequests(spans, 3, 100)) await post(agent, req);
    // the healthy backends get everything of theirs while the third refuses
    await waitFor(async () => ((sinks[0] as OtlpSink).spanCount() > 0 && (sinks[2] as OtlpSink).spanCount() > 0 ? true : undefined), {
      timeoutMs: 20_000,
      what: 'the healthy backends receiving',
    });
    const metrics = await agent.metricsText();
    expect(metrics).to.match(/otelcol_loadbalancer_backend_outcome_total\{[^}]*success="false"[^}]*\} [1-9]/);
    (sinks[1] as OtlpSink).failWith = undefined;
    await waitFor(async () => (sinks.reduce((n, s) => n + s.spanCount(), 0) >= spans.length ? true : undefined), {
      timeoutMs: 30_000,
      what: 'every span delivered',
    });
    const { traces, spanIds } = whereTracesWent(sinks);
    expect(new Set(spanIds).size).to.equal(spans.length);
    expect(splitTraces(traces)).to.deep.equal([]);
  });
});

/** Each part sent alone, and coalesced per backend across requests (`sending_queue.batch`). */
const sendModes = [
  { name: '', queue: '' },
  { name: ', parts coalesced per backend', queue: ', batch: { flush_timeout: 50ms }' },
];

for (const mode of sendModes)
  describe(`loadbalancing exporter: ring changes under load (k8s resolver)${mode.name}`, function () {
    this.timeout(120_000);
    let api: FakeKubeApi;
    let sinks: OtlpSink[];
    let agent: RunningRoutelens | undefined;

    before(async () => {
      api = await FakeKubeApi.start();
    });
    after(async () => {
      await agent?.stop();
      for (const s of sinks ?? []) await s.stop();
      await api?.close();
    });

    it('no trace is split and nothing is lost when a backend joins and another leaves; new traces reach the newcomer', async () => {
      // Three backends on one port of three loopback addresses, as pods of a Service are.
      let port = 0;
      for (let attempt = 0; attempt < 10 && sinks === undefined; attempt++) {
        port = await freePort();
        const started: OtlpSink[] = [];
        try {
          for (const ip of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
            const s = new OtlpSink();
            s.grpcPort = port;
            started.push(await s.start({ host: ip }));
          }
          sinks = started;
        } catch {
          for (const s of started) await s.stop();
        }
      }
      const slice = (ips: { ip: string; ready?: boolean; serving?: boolean; terminating?: boolean }[]) =>
        makeEndpointSlice({ name: 'gw-1', service: 'gw', namespace: 'obs', endpoints: ips, ports: [{ name: 'otlp-grpc', port }] });
      api.add('endpointslices', slice([{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }]));
      const kubeconfig = api.writeKubeconfig();
      agent = await startRoutelens(
        agentYaml(`{ k8s: { service: gw.obs, ports: [${port}], auth_type: kubeConfig, kube_config_path: ${kubeconfig} } }`).replace(
          'retry_on_failure:',
          `routing_grace: 20s\n    sending_queue: { queue_size: 1000${mode.queue} }\n    retry_on_failure:`,
        ),
      );
      await waitFor(async () => (agent?.logs.some((l) => l.msg === 'Load balancing backends changed') ? true : undefined), {
        timeoutMs: 10_000,
        what: 'backends',
      });

      // Traces in progress: each trace sends one span per step, over many steps, while the ring changes twice.
      const traces = 400;
      const steps = 12;
      const spans = clusterWorkload(44, { traces: traces * 2, routes: 8, clientsPerTrace: steps - 1 });
      const firstHalf = spans.filter((_, i) => Math.floor(i / steps) < traces);
      const secondHalf = spans.filter((_, i) => Math.floor(i / steps) >= traces);
      const step = (list: WorkSpan[], k: number): WorkSpan[] => list.filter((_, i) => i % steps === k);
      /** Until the agent has taken `n` rings in all (the first one included). */
      const rings = (n: number): Promise<true> =>
        waitFor(async () => ((agent?.logs.filter((l) => l.msg === 'Load balancing backends changed').length ?? 0) >= n ? true : undefined), {
          timeoutMs: 30_000,
          what: `ring ${n}`,
        });
      for (let k = 0; k < steps; k++) {
        if (k === 4)
          api.modify(
            'endpointslices',
            'obs',
            'gw-1',
            (o) => void (o.endpoints = slice([{ ip: '127.0.0.1' }, { ip: '127.0.0.2' }, { ip: '127.0.0.3' }]).endpoints),
          );
        if (k === 8)
          api.modify(
            'endpointslices',
            'obs',
            'gw-1',
            (o) =>
              void (o.endpoints = slice([
                { ip: '127.0.0.1', ready: false, serving: true, terminating: true },
                { ip: '127.0.0.2' },
                { ip: '127.0.0.3' },
              ]).endpoints),
          );
        // Each change is in the agent's ring before the next step is sent, however slow the machine.
        if (k === 4) await rings(2);
        if (k === 8) await rings(3);
        await post(agent, step(firstHalf, k));
      }
      // Traces that start after both changes.
      for (let k = 0; k < steps; k++) await post(agent, step(secondHalf, k));
      await waitFor(async () => (sinks.reduce((n, s) => n + s.spanCount(), 0) >= spans.length ? true : undefined), {
        timeoutMs: 30_000,
        what: 'every span delivered',
      });
      const { traces: where, spanIds } = whereTracesWent(sinks);
      expect(new Set(spanIds).size).to.equal(spans.length);
      expect(splitTraces(where)).to.deep.equal([]);
      // New traces go to the current members only: the newcomer gets some, the terminating one none.
      const newTraceIds = new Set(secondHalf.map((s) => s.traceId));
      const newOn = [0, 1, 2].map((i) => [...where].filter(([t, set]) => newTraceIds.has(t) && set.has(i)).length);
      expect(newOn[0]).to.equal(0);
      expect(newOn[2]).to.be.greaterThan(traces / 4);
      const metrics = await agent.metricsText();
      expect(metrics).to.match(/otelcol_loadbalancer_num_backend_updates_total\{[^}]*\} 3/);
    });
  });

for (const mode of sendModes)
  describe(`loadbalancing exporter: persistent queue across kill -9 (child process)${mode.name}`, function () {
    this.timeout(120_000);
    it('every acknowledged span reaches its backend after a crash and restart, no trace split', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-lb-crash-'));
      const sinks = [await new OtlpSink().start(), await new OtlpSink().start()];
      let child: RoutelensChild | undefined;
      try {
        const yaml = agentYaml(
          `{ static: { hostnames: [${sinks.map((s) => s.grpcEndpoint).join(', ')}] } }`,
          `\n    sending_queue: { storage: file_storage${mode.queue} }`,
        )
          .replace('extensions:\n', `extensions:\n  file_storage: { directory: ${path.join(dir, 'queue')} }\n`)
          .replace('extensions: [routequery]', 'extensions: [file_storage, routequery]');
        // One backend holds every request unanswered: its parts stay in flight, their requests in the queue.
        (sinks[1] as OtlpSink).pause();
        child = await startRoutelensChild(path.join(dir, 'agent.yaml'), yaml, { name: 'routelens-lb-1' });
        const spans = clusterWorkload(45, { traces: 500, routes: 5, clientsPerTrace: 3 });
        for (const req of shuffledRequests(spans, 4, 100)) {
          const r = await postTraces(`http://127.0.0.1:${child.endpoints['otlp/http']}/v1/traces`, encodeWorkload(req));
          expect(r.status).to.equal(200);
        }
        await waitFor(async () => ((sinks[1] as OtlpSink).heldCount > 0 && (sinks[0] as OtlpSink).spanCount() > 0 ? true : undefined), {
          timeoutMs: 20_000,
          what: 'parts delivered to one backend and held by the other',
        });
        await child.proc.kill9();
        // The held requests die with the backend: only the restarted agent's queue can deliver those spans.
        const port = (sinks[1] as OtlpSink).grpcPort;
        await (sinks[1] as OtlpSink).stop();
        const fresh = new OtlpSink();
        fresh.grpcPort = port;
        sinks[1] = await fresh.start();
        child = await startRoutelensChild(path.join(dir, 'agent.yaml'), yaml, { name: 'routelens-lb-2' });
        const want = new Set(spans.map((s) => s.spanId));
        await waitFor(
          async () => {
            const got = new Set(sinks.flatMap((s) => s.spans().map((x) => x.spanId)));
            return [...want].every((id) => got.has(id)) ? true : undefined;
          },
          { timeoutMs: 60_000, what: 'every acknowledged span delivered after the restart' },
        );
        // At least once: parts delivered before the crash may come again, to the same backend.
        expect(splitTraces(whereTracesWent(sinks).traces)).to.deep.equal([]);
      } finally {
        if (child?.proc.running) await child.proc.stop();
        for (const s of sinks) await s.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
