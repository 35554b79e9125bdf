/**
 * tail_capture against a real routelatency connector fed the same spans (as a pipeline feeds both): slow traces
 * against the route's live p99, errors, the baseline and its weights, traces across batches, late spans, bounds.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import pino from 'pino';
import type { Component, Host } from '../../core/component';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import type { TracesConsumer } from '../../consumer/consumer';
import { routeLatencyConfigSchema } from '../../connectors/routelatency/config';
import { RouteLatencyConnector } from '../../connectors/routelatency/factory';
import { TYPES, protoType } from '../../pdata/proto';
import { traceRequestFromJson } from '../../pdata/otlp-json';
import { TraceBatch } from '../../pdata/trace-batch';
import { FakeClock } from '../../../test/support/route-spans';
import { BASE_MS, spanHex, traceBatch, traceHex, traceJson, type OtlpResourceSpec, type OtlpSpanSpec } from '../../../test/support/otlp-traces';
import { tailCaptureConfigSchema, type TailCaptureConfig } from './config';
import { REASON_ATTRIBUTE, TailCaptureProcessor, THRESHOLD_ATTRIBUTE, WEIGHT_ATTRIBUTE } from './processor';

interface ForwardedSpan {
  traceId: string;
  spanId: string;
  service: string;
  attributes: Record<string, unknown>;
}

function parseConfig(raw: unknown): TailCaptureConfig {
  const issues = new ConfigErrorList();
  const c = tailCaptureConfigSchema.parse(raw, 'processors.tail_capture', issues);
  expect(issues.items).to.deep.equal([]);
  return c;
}

class Collect implements TracesConsumer {
  readonly spans: ForwardedSpan[] = [];
  async consumeTraces(batch: TraceBatch): Promise<void> {
    const T = protoType(TYPES.exportTraceRequest);
    const req = T.toObject(T.decode(batch.encode()), { longs: String, bytes: String }) as {
      resourceSpans: {
        resource: { attributes: { key: string; value: Record<string, unknown> }[] };
        scopeSpans: { spans: { traceId: string; spanId: string; attributes?: { key: string; value: Record<string, unknown> }[] }[] }[];
      }[];
    };
    for (const rs of req.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue as string;
      for (const ss of rs.scopeSpans) {
        for (const s of ss.spans) {
          const attributes: Record<string, unknown> = {};
          for (const a of s.attributes ?? []) attributes[a.key] = Object.values(a.value)[0];
          this.spans.push({
            traceId: Buffer.from(s.traceId, 'base64').toString('hex'),
            spanId: Buffer.from(s.spanId, 'base64').toString('hex'),
            service,
            attributes,
          });
        }
      }
    }
  }
}

interface Rig {
  clock: FakeClock;
  connector: RouteLatencyConnector;
  tail: TailCaptureProcessor;
  out: Collect;
  /** Feeds a batch to both, as a pipeline with both does, then advances the clock. */
  send(batch: () => TraceBatch, advanceMs?: number): Promise<void>;
}

async function rig(raw: unknown, random: () => number = () => 0.5): Promise<Rig> {
  const clock = new FakeClock(BASE_MS);
  const settings = (id: string): { id: string; logger: pino.Logger; telemetry: Telemetry } => ({
    id,
    logger: pino({ level: 'silent' }),
    telemetry: new Telemetry(),
  });
  const connector = new RouteLatencyConnector(
    settings('routelatency'),
    routeLatencyConfigSchema.parse({}, 'c', new ConfigErrorList()),
    { traces: undefined, metrics: undefined },
    clock,
  );
  const out = new Collect();
  const tail = new TailCaptureProcessor(settings('tail_capture'), parseConfig(raw), out, { now: () => clock.now(), random });
  const host: Host = {
    getExtension: () => undefined,
    components: (kind) => (kind === 'connector' ? new Map<string, Component>([['routelatency', connector]]) : new Map()),
    healthy: () => true,
  };
  await tail.start(host);
  return {
    clock,
    connector,
    tail,
    out,
    async send(batch, advanceMs = 10) {
      await connector.consumeTraces(batch(), {});
      await tail.consumeTraces(batch(), {});
      clock.advance(advanceMs);
    },
  };
}

/** A request of GET /items/{id} lasting `ms`, with one DB child; `error` marks the child ERROR. */
function request(ms: number, error = false): OtlpSpanSpec[] {
  return [
    {
      id: 1,
      kind: 'server',
      name: 'GET /items/{id}',
      start: 0,
      end: ms,
      attrs: { 'http.method': 'GET', 'http.route': '/items/{id}', 'http.status_code': 200 },
    },
    { id: 2, parent: 1, kind: 'client', name: 'SELECT', start: 1, end: ms - 1, attrs: { 'db.system': 'sqlite' }, error },
  ];
}

/** One request carrying several traces' resources (each trace's resources in turn). */
function multiTraceBatch(traces: readonly { trace: number; resources: OtlpResourceSpec[] }[]): TraceBatch {
  const resourceSpans = traces.flatMap((t) => (JSON.parse(traceJson(t.trace, t.resources)) as { resourceSpans: unknown[] }).resourceSpans);
  return TraceBatch.decode(traceRequestFromJson(JSON.stringify({ resourceSpans })));
}

const onlyTraces = (out: Collect): string[] => [...new Set(out.spans.map((s) => s.traceId))];

describe('tail_capture', () => {
  it('keeps a whole trace slower than its route’s live p99, marked with weight 1 and the p99; drops the others', async () => {
    const r = await rig({ policies: [{ name: 'slow', type: 'route_latency', route_latency: { percentile: 99, window: '5m', min_requests: 20 } }] });
    for (let t = 1; t <= 100; t++) await r.send(() => traceBatch(t, [{ service: 'shop', spans: request(10 + (t % 10)) }]));
    await r.send(() => traceBatch(101, [{ service: 'shop', spans: request(500) }]));
    r.clock.advance(5000);
    r.tail.expire(r.clock.now());
    expect(onlyTraces(r.out)).to.deep.equal([traceHex(101)]);
    expect(r.out.spans.map((s) => s.spanId).sort()).to.deep.equal([spanHex(101, 1), spanHex(101, 2)]);
    for (const s of r.out.spans) {
      expect(s.attributes[WEIGHT_ATTRIBUTE]).to.equal(1);
      expect(s.attributes[REASON_ATTRIBUTE]).to.equal('slow');
      expect(s.attributes[THRESHOLD_ATTRIBUTE]).to.be.closeTo(19, 19 * 0.006);
      expect(s.service).to.equal('shop');
    }
    // the original attributes are still there
    expect(r.out.spans.find((s) => s.spanId === spanHex(101, 1))?.attributes['http.route']).to.equal('/items/{id}');
    expect(r.tail.stats()).to.deep.equal({ tracesInFlight: 0, spansInFlight: 0, retainedBytes: 0 });
    await r.tail.shutdown();
  });

  it('a route with too few requests has no trustworthy p99: nothing is slow yet', async () => {
    const r = await rig({ policies: [{ name: 'slow', type: 'route_latency' }] });
    for (let t = 1; t <= 5; t++) await r.send(() => traceBatch(t, [{ service: 'shop', spans: request(t === 5 ? 900 : 10) }]));
    r.clock.advance(6000);
    r.tail.expire(r.clock.now());
    expect(r.out.spans).to.deep.equal([]);
  });

  it('keeps a trace with an error span; a trace whose spans come in two batches is kept whole, the root arriving last', async () => {
    const r = await rig({ policies: [{ name: 'errors', type: 'status_code' }] });
    const spans = request(50, true);
    await r.send(() => traceBatch(7, [{ service: 'shop', spans: [spans[1] as OtlpSpanSpec] }]), 3000);
    r.tail.expire(r.clock.now());
    expect(r.out.spans).to.have.length(0);
    await r.send(() => traceBatch(7, [{ service: 'shop', spans: [spans[0] as OtlpSpanSpec] }]), 4999);
    r.tail.expire(r.clock.now());
    expect(r.out.spans).to.have.length(0);
    r.clock.advance(1);
    r.tail.expire(r.clock.now());
    expect(r.out.spans.map((s) => [s.spanId, s.attributes[REASON_ATTRIBUTE]])).to.deep.equal([
      [spanHex(7, 2), 'errors'],
      [spanHex(7, 1), 'errors'],
    ]);
  });

  it('late spans follow their trace’s decision: forwarded with a kept trace’s weight, dropped with a dropped trace', async () => {
    const r = await rig({ policies: [{ name: 'errors', type: 'status_code' }] });
    await r.send(() => traceBatch(1, [{ service: 'shop', spans: request(20, true) }]));
    await r.send(() => traceBatch(2, [{ service: 'shop', spans: request(20) }]));
    r.clock.advance(6000);
    r.tail.expire(r.clock.now());
    await r.send(() => traceBatch(1, [{ service: 'other', spans: [{ id: 9, parent: 2, kind: 'server', start: 2, end: 5 }] }]));
    await r.send(() => traceBatch(2, [{ service: 'other', spans: [{ id: 9, parent: 2, kind: 'server', start: 2, end: 5 }] }]));
    expect(r.out.spans.map((s) => [s.traceId, s.spanId, s.service])).to.deep.equal([
      [traceHex(1), spanHex(1, 1), 'shop'],
      [traceHex(1), spanHex(1, 2), 'shop'],
      [traceHex(1), spanHex(1, 9), 'other'],
    ]);
    expect(r.tail.stats().tracesInFlight).to.equal(0);
  });

  it('baseline: about K traces per route per minute, each weighted by how many it stands for', async () => {
    const draws = [0.99, 0.99, 0.99];
    let i = 0;
    const r = await rig({ policies: [{ name: 'baseline', type: 'baseline', baseline: { traces_per_minute: 2 } }] }, () => draws[i++] ?? 0.5);
    const minute = Math.ceil(BASE_MS / 60_000) * 60_000;
    r.clock.t = minute;
    // minute 1: 100 traces; with no earlier minute the probability is 2 over the traces so far: the first two are
    // kept whatever the draw, later ones with 2/n
    for (let t = 1; t <= 100; t++) await r.send(() => traceBatch(t, [{ service: 'shop', spans: request(10) }]), 100);
    r.clock.t = minute + 20_000;
    r.tail.expire(r.clock.now());
    expect(onlyTraces(r.out)).to.deep.equal([traceHex(1), traceHex(2)]);
    expect(r.out.spans.map((s) => s.attributes[WEIGHT_ATTRIBUTE])).to.deep.equal([1, 1, 1, 1]);
    // minute 2: probability 2/100 from minute 1's 100 traces: a draw under 0.02 keeps a trace, with weight 50
    r.clock.t = minute + 61_000;
    draws.push(...Array.from({ length: 100 - draws.length }, () => 0.5), 0.5, 0.01, 0.5);
    for (let t = 201; t <= 203; t++) await r.send(() => traceBatch(t, [{ service: 'shop', spans: request(10) }]), 100);
    r.clock.advance(6000);
    r.tail.expire(r.clock.now());
    expect(onlyTraces(r.out)).to.deep.equal([traceHex(1), traceHex(2), traceHex(202)]);
    expect(r.out.spans.filter((s) => s.traceId === traceHex(202)).map((s) => s.attributes[WEIGHT_ATTRIBUTE])).to.deep.equal([50, 50]);
  });

  it('bounds: past num_traces the oldest trace is decided at once', async () => {
    const r = await rig({ num_traces: 2, policies: [{ name: 'errors', type: 'status_code' }] });
    await r.send(() => traceBatch(1, [{ service: 'shop', spans: request(20, true) }]));
    await r.send(() => traceBatch(2, [{ service: 'shop', spans: request(20) }]));
    expect(r.out.spans).to.have.length(0);
    await r.send(() => traceBatch(3, [{ service: 'shop', spans: request(20) }]));
    expect(onlyTraces(r.out)).to.deep.equal([traceHex(1)]);
    expect(r.tail.stats().tracesInFlight).to.equal(2);
  });

  it('the in-flight gauges are one series per id, summed over its instances (one per pipeline), gone when all stop', async () => {
    const telemetry = new Telemetry();
    const make = (): TailCaptureProcessor =>
      new TailCaptureProcessor(
        { id: 'tail_capture', logger: pino({ level: 'silent' }), telemetry },
        parseConfig({ policies: [{ name: 'errors', type: 'status_code' }] }),
        new Collect(),
      );
    const [a, b] = [make(), make()];
    const host: Host = { getExtension: () => undefined, components: () => new Map(), healthy: () => true };
    await a.start(host);
    await b.start(host);
    await a.consumeTraces(traceBatch(1, [{ service: 'shop', spans: request(20) }]), {});
    await b.consumeTraces(traceBatch(2, [{ service: 'shop', spans: request(20) }]), {});
    await b.consumeTraces(traceBatch(3, [{ service: 'shop', spans: request(20) }]), {});
    const inFlight = (): number[][] =>
      telemetry
        .families()
        .filter((f) => f.name === 'routelens_tail_capture_traces_in_flight')
        .map((f) => f.samples.map((s) => s.value));
    expect(inFlight()).to.deep.equal([[3]]);
    await b.shutdown();
    expect(inFlight()).to.deep.equal([[1]]);
    await a.shutdown();
    expect(inFlight()).to.deep.equal([]);
  });

  it('a route_latency policy without a routelatency connector fails at start, naming what to do', async () => {
    const tail = new TailCaptureProcessor(
      { id: 'tail_capture', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
      parseConfig({}),
      new Collect(),
    );
    const host: Host = { getExtension: () => undefined, components: () => new Map(), healthy: () => true };
    let err: unknown;
    await tail.start(host).catch((e: unknown) => (err = e));
    expect(String(err)).to.contain(
      "route_latency and baseline policies need the routes' live latency: configure a routelatency connector in a traces pipeline",
    );
  });
  it('a request a decision wait old whose remaining spans belong to rootless traces is not pinned: they are copied out', async () => {
    const r = await rig({ decision_wait: '1s', max_trace_wait: '10s', policies: [{ name: 'errors', type: 'status_code' }] });
    const rooted = Array.from({ length: 40 }, (_, i) => ({ trace: 100 + i, resources: [{ service: 'shop', spans: request(20) }] }));
    const rootless = {
      trace: 7,
      resources: [
        { service: 'shop', attrs: { 'k8s.pod.name': 'shop-1' }, spans: [{ id: 3, parent: 99, kind: 'client' as const, start: 1, end: 4, error: true }] },
      ],
    };
    const batch = multiTraceBatch([...rooted.slice(0, 20), rootless, ...rooted.slice(20)]);
    const bytes = batch.byteLength;
    await r.tail.consumeTraces(batch, {});
    expect(r.tail.stats().retainedBytes).to.equal(bytes);
    r.clock.advance(1000);
    r.tail.expire(r.clock.now());
    expect(r.out.spans).to.have.length(0);
    const left = r.tail.stats();
    expect([left.tracesInFlight, left.spansInFlight]).to.deep.equal([1, 1]);
    expect(left.retainedBytes)
      .to.be.greaterThan(0)
      .and.lessThan(bytes / 10);
    r.clock.advance(9000);
    r.tail.expire(r.clock.now());
    expect(r.out.spans.map((s) => [s.traceId, s.spanId, s.service, s.attributes[REASON_ATTRIBUTE]])).to.deep.equal([
      [traceHex(7), spanHex(7, 3), 'shop', 'errors'],
    ]);
    expect(r.tail.stats()).to.deep.equal({ tracesInFlight: 0, spansInFlight: 0, retainedBytes: 0 });
  });

  it('property: every span of every kept trace is forwarded once, as received, whatever batches and copies carried it', async () => {
    const spanArb = fc.record({ kind: fc.constantFrom('client' as const, 'internal' as const), error: fc.boolean(), batch: fc.nat(3) });
    const traceArb = fc.record({
      rooted: fc.boolean(),
      rootBatch: fc.nat(3),
      rootError: fc.boolean(),
      service: fc.constantFrom('shop', 'users'),
      children: fc.array(spanArb, { maxLength: 5 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(traceArb, { minLength: 1, maxLength: 30 }), async (traces) => {
        const r = await rig({ decision_wait: '1s', max_trace_wait: '3s', policies: [{ name: 'errors', type: 'status_code' }] });
        const expected: string[] = [];
        const perBatch: { trace: number; resources: OtlpResourceSpec[] }[][] = [[], [], [], []];
        traces.forEach((t, i) => {
          const trace = i + 1;
          const specs: { spec: OtlpSpanSpec; batch: number }[] = [];
          if (t.rooted)
            specs.push({ spec: { id: 1, kind: 'server', start: 0, end: 30, error: t.rootError, attrs: { 'http.route': '/x' } }, batch: t.rootBatch });
          t.children.forEach((c, j) =>
            specs.push({
              spec: { id: 2 + j, parent: t.rooted ? 1 : 99, kind: c.kind, start: 1 + j, end: 2 + j, error: c.error, attrs: { n: j } },
              batch: c.batch,
            }),
          );
          const kept = specs.some((s) => s.spec.error === true);
          for (const s of specs) {
            (perBatch[s.batch] as { trace: number; resources: OtlpResourceSpec[] }[]).push({
              trace,
              resources: [{ service: t.service, attrs: { 'k8s.pod.name': `${t.service}-${trace}` }, spans: [s.spec] }],
            });
            if (kept) expected.push(`${traceHex(trace)} ${spanHex(trace, s.spec.id)} ${t.service} ${s.spec.attrs?.n ?? 'root'}`);
          }
        });
        // all within the decision wait: no span comes after its trace's decision
        for (const b of perBatch) if (b.length > 0) await r.send(() => multiTraceBatch(b), 200);
        for (let step = 0; step < 40; step++) {
          r.clock.advance(100);
          r.tail.expire(r.clock.now());
        }
        r.clock.advance(10_000);
        r.tail.expire(r.clock.now());
        const got = r.out.spans.map((s) => `${s.traceId} ${s.spanId} ${s.service} ${s.attributes.n ?? 'root'}`);
        expect(got.sort()).to.deep.equal(expected.sort());
        for (const s of r.out.spans) expect(s.attributes[REASON_ATTRIBUTE]).to.equal('errors');
        expect(r.tail.stats()).to.deep.equal({ tracesInFlight: 0, spansInFlight: 0, retainedBytes: 0 });
      }),
      { numRuns: 60 },
    );
  });
});
