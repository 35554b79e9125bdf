/**
 * The service graph: start and shutdown order, a failed start undone, the shutdown deadline, exporters and
 * connectors shared between pipelines, processors instantiated per pipeline, cycles through connectors, and the
 * fan-out's acknowledgement (a request is accepted only once every exporter of every pipeline accepted it).
 */
import { expect } from 'chai';
import pino from 'pino';
import { deferred, stateOf } from '../../test/support/deferred';
import { logsRequest, metricsRequest } from '../../test/support/signal-requests';
import { spanIds, traceRequest } from '../../test/support/trace-requests';
import { defaultRegistry } from '../components';
import { parseConfig, type PipelineConfig } from '../config/load';
import type { Component, ComponentKind, PipelineContext } from '../core/component';
import type { ConnectorFactory, ExporterFactory, ExtensionFactory, ProcessorFactory, ReceiverFactory } from '../consumer/factory';
import { AnySignalConsumer, forward, type SignalConsumers } from '../consumer/consumer';
import { LogsBatch } from '../pdata/logs-batch';
import { MetricsBatch } from '../pdata/metrics-batch';
import type { OtlpBatch } from '../pdata/otlp-batch';
import { PipelineError } from '../core/errors';
import { ConfigError, obj, str, type Field } from '../core/schema';
import { TraceBatch } from '../pdata/trace-batch';
import { Service } from './service';

const silent = pino({ level: 'silent' });

/** What every fake component does, in order, across the whole service: `start exporter fake/a`. */
let events: string[] = [];

/** A component of any kind and signal that records its lifecycle and what it consumed, with behaviour a test can change. */
class Fake extends AnySignalConsumer implements Component {
  readonly traces: TraceBatch[] = [];
  readonly metrics: MetricsBatch[] = [];
  readonly logs: LogsBatch[] = [];
  onStart: () => Promise<void> = async () => undefined;
  onShutdown: (signal?: AbortSignal) => Promise<void> = async () => undefined;
  onConsume: (batch: OtlpBatch) => Promise<void> = async () => undefined;
  isHealthy = true;
  constructor(
    readonly kind: ComponentKind,
    readonly id: string,
    readonly next: SignalConsumers = {},
    readonly tag?: string,
  ) {
    super();
  }
  async start(): Promise<void> {
    events.push(`start ${this.kind} ${this.id}`);
    await this.onStart();
  }
  async shutdown(signal?: AbortSignal): Promise<void> {
    events.push(`shutdown ${this.kind} ${this.id}`);
    await this.onShutdown(signal);
  }
  healthy(): boolean {
    return this.isHealthy;
  }
  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    // A tagging processor changes the batch in place, as resource processors do.
    if (this.tag !== undefined) for (let i = 0; i < batch.resourceCount; i++) batch.setResourceAttributes(i, [['team', this.tag]]);
    (this[batch.signal] as OtlpBatch[]).push(batch);
    await this.onConsume(batch);
    const next = this.next[batch.signal];
    if (next !== undefined) await forward(next, batch, ctx);
  }
  /** For a receiver: hand a request to the pipelines it feeds. */
  push(batch: OtlpBatch): Promise<void> {
    const next = this.next[batch.signal];
    if (next === undefined) throw new Error(`no ${batch.signal} pipeline`);
    return forward(next, batch, {});
  }
}

const noConfig = obj({}) as unknown as Field<Record<string, never>>;
let created: { kind: ComponentKind; id: string }[] = [];
const made = (f: Fake): Fake => (created.push({ kind: f.kind, id: f.id }), f);

const factories = [
  {
    kind: 'receiver',
    type: 'fake',
    configSchema: noConfig,
    signals: ['traces', 'metrics', 'logs'],
    create: (s, _c, next) => made(new Fake('receiver', s.id, next)),
  } satisfies ReceiverFactory<Record<string, never>>,
  {
    kind: 'processor',
    type: 'fake',
    configSchema: obj({ tag: str({ default: '' }) }),
    createTraces: (s, c, next) => made(new Fake('processor', s.id, { traces: next }, c.tag === '' ? undefined : c.tag)),
    createMetrics: (s, c, next) => made(new Fake('processor', s.id, { metrics: next }, c.tag === '' ? undefined : c.tag)),
    createLogs: (s, c, next) => made(new Fake('processor', s.id, { logs: next }, c.tag === '' ? undefined : c.tag)),
  } satisfies ProcessorFactory<{ tag: string }>,
  {
    kind: 'processor',
    type: 'tracesonly',
    configSchema: noConfig,
    createTraces: (s, _c, next) => made(new Fake('processor', s.id, { traces: next })),
  } satisfies ProcessorFactory<Record<string, never>>,
  {
    kind: 'exporter',
    type: 'fake',
    configSchema: noConfig,
    createTraces: (s) => made(new Fake('exporter', s.id)),
    createMetrics: (s) => made(new Fake('exporter', s.id)),
    createLogs: (s) => made(new Fake('exporter', s.id)),
  } satisfies ExporterFactory<Record<string, never>>,
  {
    kind: 'connector',
    type: 'fake',
    configSchema: noConfig,
    consumes: ['traces'],
    produces: ['traces', 'metrics'],
    create: (s, _c, next) => made(new Fake('connector', s.id, next)),
  } satisfies ConnectorFactory<Record<string, never>>,
  { kind: 'extension', type: 'fake', configSchema: noConfig, create: (s) => made(new Fake('extension', s.id)) } satisfies ExtensionFactory<
    Record<string, never>
  >,
];
const registry = defaultRegistry(factories);

function service(yaml: string): Service {
  return new Service(parseConfig(yaml, registry, {}), { logger: silent });
}

function batchOf(n: number, prefix = 1): TraceBatch {
  return TraceBatch.decode(traceRequest(spanIds(prefix, n)));
}

const get = (s: Service, kind: ComponentKind, id: string): Fake => {
  const c = s.components(kind).get(id);
  if (c === undefined) throw new Error(`no ${kind} ${id}; have ${[...s.components(kind).keys()].join(', ')}`);
  return c as Fake;
};

/** One of each kind: two pipelines joined by a connector. */
const graph = `
receivers: { fake: {} }
processors: { fake/p: {} }
exporters: { fake/a: {}, fake/b: {} }
connectors: { fake/c: {} }
extensions: { fake/x: {} }
service:
  extensions: [fake/x]
  pipelines:
    traces/in: { receivers: [fake], processors: [fake/p], exporters: [fake/a, fake/c] }
    traces/out: { receivers: [fake/c], exporters: [fake/b] }
`;

describe('pipeline service', () => {
  beforeEach(() => {
    events = [];
    created = [];
  });

  describe('lifecycle', () => {
    it('starts extensions, exporters, connectors, processors, then receivers, and shuts them down in the reverse order', async () => {
      const s = service(graph);
      expect(events).to.deep.equal([]); // building starts nothing
      await s.start();
      expect(events).to.deep.equal([
        'start extension fake/x',
        'start exporter fake/a',
        'start exporter fake/b',
        'start connector fake/c',
        'start processor fake/p',
        'start receiver fake',
      ]);
      events = [];
      await s.shutdown();
      expect(events.map((e) => e.split(' ')[1])).to.deep.equal(['receiver', 'processor', 'connector', 'exporter', 'exporter', 'extension']);
    });

    it('shuts one kind down completely before it begins the next (receivers drain before exporters stop)', async () => {
      const s = service(graph);
      await s.start();
      const receiverDone = deferred();
      get(s, 'receiver', 'fake').onShutdown = () => receiverDone.promise;
      events = [];
      const stopping = s.shutdown();
      expect(await stateOf(stopping)).to.equal('pending');
      expect(events).to.deep.equal(['shutdown receiver fake']);
      receiverDone.resolve();
      await stopping;
      expect(events).to.have.length(6);
    });

    it('undoes a failed start: what started is shut down in reverse, nothing else is touched, and the error is thrown', async () => {
      const s = service(graph);
      get(s, 'exporter', 'fake/b').onStart = () => Promise.reject(new Error('cannot listen'));
      let thrown: unknown;
      await s.start().catch((err: unknown) => (thrown = err));
      expect((thrown as Error).message).to.equal('cannot listen');
      expect(events).to.deep.equal([
        'start extension fake/x',
        'start exporter fake/a',
        'start exporter fake/b',
        'shutdown exporter fake/a',
        'shutdown extension fake/x',
      ]);
      expect(s.healthy()).to.equal(false);
    });

    it('aborts the signal components get once service.shutdown_timeout passes, and goes on to the next kind', async () => {
      const s = service(graph.replace('service:\n', 'service:\n  shutdown_timeout: 50ms\n'));
      await s.start();
      let seen: AbortSignal | undefined;
      // An exporter that drains until told to stop.
      get(s, 'exporter', 'fake/a').onShutdown = (signal) => {
        seen = signal;
        return new Promise((resolve) => signal?.addEventListener('abort', () => resolve()));
      };
      await s.shutdown();
      expect(seen?.aborted).to.equal(true);
      expect(events.at(-1)).to.equal('shutdown extension fake/x');
    });

    it('goes on shutting down past a component that fails to, and shuts down once however often it is asked', async () => {
      const s = service(graph);
      await s.start();
      get(s, 'connector', 'fake/c').onShutdown = () => Promise.reject(new Error('stuck'));
      events = [];
      await Promise.all([s.shutdown(), s.shutdown()]);
      await s.shutdown();
      expect(events).to.have.length(6);
      expect(events.at(-1)).to.equal('shutdown extension fake/x');
    });

    it('is healthy only while running and while every component says it is', async () => {
      const s = service(graph);
      expect(s.healthy()).to.equal(false);
      await s.start();
      expect(s.healthy()).to.equal(true);
      get(s, 'exporter', 'fake/b').isHealthy = false;
      expect(s.healthy()).to.equal(false);
      get(s, 'exporter', 'fake/b').isHealthy = true;
      expect(s.healthy()).to.equal(true);
      await s.shutdown();
      expect(s.healthy()).to.equal(false);
    });

    it('finds enabled extensions by id, and leaves configured but disabled ones and unused receivers out', () => {
      const s = service(
        graph
          .replace('extensions: { fake/x: {} }', 'extensions: { fake/x: {}, fake/off: {} }')
          .replace('receivers: { fake: {} }', 'receivers: { fake: {}, fake/unused: {} }'),
      );
      expect(s.getExtension('fake/x')).to.equal(get(s, 'extension', 'fake/x'));
      expect(s.getExtension('fake/off')).to.equal(undefined);
      expect([...s.components('receiver').keys()]).to.deep.equal(['fake']);
      expect(created.filter((c) => c.id === 'fake/off' || c.id === 'fake/unused')).to.deep.equal([]);
    });
  });

  describe('graph', () => {
    const twoPipelines = `
receivers: { fake: {} }
processors: { fake/count: {}, fake/a: { tag: a }, fake/b: { tag: b } }
exporters: { fake/shared: {}, fake/only-b: {} }
service:
  pipelines:
    traces/a: { receivers: [fake], processors: [fake/count, fake/a], exporters: [fake/shared] }
    traces/b: { receivers: [fake], processors: [fake/count, fake/b], exporters: [fake/shared, fake/only-b] }
    metrics: { receivers: [fake], exporters: [fake/shared] }
`;

    it('creates one exporter per id and signal, shared by the pipelines that list it', async () => {
      const s = service(twoPipelines);
      expect(created.filter((c) => c.kind === 'exporter')).to.deep.equal([
        { kind: 'exporter', id: 'fake/shared' },
        { kind: 'exporter', id: 'fake/only-b' },
        { kind: 'exporter', id: 'fake/shared' }, // the metrics one
      ]);
      expect([...s.components('exporter').keys()]).to.deep.equal(['fake/shared', 'fake/only-b', 'fake/shared#metrics']);
      await s.start();
      await get(s, 'receiver', 'fake').push(batchOf(3));
      expect(get(s, 'exporter', 'fake/shared').traces).to.have.length(2); // one per pipeline
      expect(get(s, 'exporter', 'fake/only-b').traces).to.have.length(1);
      await s.shutdown();
    });

    it('runs metrics and logs pipelines as traces ones: a processor per pipeline, an exporter per id and signal, each batch to the pipelines of its signal only', async () => {
      const s = service(`
receivers: { fake: {} }
processors: { fake/t: { tag: t }, fake/m: { tag: m } }
exporters: { fake/shared: {}, fake/logs: {} }
service:
  pipelines:
    traces: { receivers: [fake], processors: [fake/t], exporters: [fake/shared] }
    metrics: { receivers: [fake], processors: [fake/m], exporters: [fake/shared] }
    metrics/raw: { receivers: [fake], exporters: [fake/shared] }
    logs: { receivers: [fake], processors: [fake/t, fake/m], exporters: [fake/shared, fake/logs] }
`);
      expect([...s.components('exporter').keys()]).to.deep.equal(['fake/shared', 'fake/shared#metrics', 'fake/shared#logs', 'fake/logs#logs']);
      expect([...s.components('processor').keys()].sort()).to.deep.equal(['fake/m@logs', 'fake/m@metrics', 'fake/t@logs', 'fake/t@traces']);
      await s.start();
      const receiver = get(s, 'receiver', 'fake');
      await receiver.push(MetricsBatch.decode(metricsRequest(3)));
      await receiver.push(LogsBatch.decode(logsRequest(2)));
      const metricsOut = get(s, 'exporter', 'fake/shared#metrics');
      // One batch from each metrics pipeline (in either order): the processed one and the raw one.
      expect(metricsOut.metrics.map((b) => `${b.dataPointCount} ${String(b.resourceAttribute(0, 'team'))}`).sort()).to.deep.equal(['3 m', '3 undefined']);
      expect(metricsOut.traces.length + metricsOut.logs.length).to.equal(0);
      const logsOut = [get(s, 'exporter', 'fake/shared#logs'), get(s, 'exporter', 'fake/logs#logs')];
      for (const e of logsOut) expect(e.logs.map((b) => [b.logRecordCount, b.resourceAttribute(0, 'team')])).to.deep.equal([[2, 'm']]);
      expect(logsOut[0]!.logs[0]).to.not.equal(logsOut[1]!.logs[0]);
      expect(get(s, 'exporter', 'fake/shared').traces).to.have.length(0);
      await s.shutdown();
    });

    it('refuses, naming the YAML path, a component in a pipeline of a signal it does not support', () => {
      let err: unknown;
      try {
        service(`
receivers: { fake: {} }
processors: { tracesonly: {} }
exporters: { fake: {} }
connectors: { fake/c: {} }
service:
  pipelines:
    traces: { receivers: [fake], exporters: [fake/c] }
    metrics: { receivers: [fake], processors: [tracesonly], exporters: [fake, fake/c] }
    logs: { receivers: [fake/c], exporters: [fake] }
`);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(ConfigError);
      expect((err as ConfigError).issues).to.deep.equal([
        {
          path: 'service.pipelines.metrics.processors[0]',
          message: 'processor "tracesonly" is in a metrics pipeline but supports traces; list it in a traces pipeline instead',
        },
        {
          path: 'service.pipelines.metrics.exporters[1]',
          message: 'connector "fake/c" is in a metrics pipeline but consumes traces; list it in a traces pipeline instead',
        },
        {
          path: 'service.pipelines.logs.receivers[0]',
          message: 'connector "fake/c" is in a logs pipeline but produces traces and metrics; list it in a traces or metrics pipeline instead',
        },
      ]);
    });

    it('creates a processor per pipeline that lists it, and a change a processor makes in one pipeline is not seen in another', async () => {
      const s = service(twoPipelines);
      expect([...s.components('processor').keys()].sort()).to.deep.equal(['fake/a@traces/a', 'fake/b@traces/b', 'fake/count@traces/a', 'fake/count@traces/b']);
      await s.start();
      await get(s, 'receiver', 'fake').push(batchOf(3));
      expect(get(s, 'processor', 'fake/count@traces/a').traces).to.have.length(1);
      expect(get(s, 'processor', 'fake/count@traces/b').traces).to.have.length(1);
      const shared = get(s, 'exporter', 'fake/shared').traces;
      expect(shared.map((b) => b.resourceAttribute(0, 'team')).sort()).to.deep.equal(['a', 'b']);
      expect(shared.map((b) => b.spanCount)).to.deep.equal([3, 3]);
      // The two exporters of traces/b get batches of their own as well.
      expect(get(s, 'exporter', 'fake/only-b').traces[0]).to.not.equal(shared.find((b) => b.resourceAttribute(0, 'team') === 'b'));
      await s.shutdown();
    });

    it('creates a connector once, feeding every pipeline that receives from it', async () => {
      const s = service(`
receivers: { fake: {} }
exporters: { fake/x: {}, fake/y: {} }
connectors: { fake/c: {} }
service:
  pipelines:
    traces/in1: { receivers: [fake], exporters: [fake/c] }
    traces/in2: { receivers: [fake], exporters: [fake/c] }
    traces/out1: { receivers: [fake/c], exporters: [fake/x] }
    traces/out2: { receivers: [fake/c], exporters: [fake/y] }
`);
      expect(created.filter((c) => c.kind === 'connector')).to.deep.equal([{ kind: 'connector', id: 'fake/c' }]);
      await s.start();
      await get(s, 'receiver', 'fake').push(batchOf(2));
      expect(get(s, 'connector', 'fake/c').traces).to.have.length(2); // from in1 and in2
      expect(get(s, 'exporter', 'fake/x').traces).to.have.length(2);
      expect(get(s, 'exporter', 'fake/y').traces).to.have.length(2);
      await s.shutdown();
    });

    it('refuses to build a cycle through connectors, naming the pipeline where it closes', () => {
      // The loader reports such cycles (src/config/load.ts); this is the service's own guard, for a config built
      // by hand, which would otherwise recurse until the stack overflows.
      const config = parseConfig(
        `
receivers: { fake: {} }
exporters: { fake: {} }
connectors: { fake/c1: {}, fake/c2: {} }
service:
  pipelines:
    traces/a: { receivers: [fake], exporters: [fake/c1] }
    traces/b: { receivers: [fake/c1], exporters: [fake/c2] }
    traces/c: { receivers: [fake/c2], exporters: [fake] }
`,
        registry,
        {},
      );
      (config.pipelines[0] as PipelineConfig).receivers.push('fake/c2'); // traces/a → c1 → traces/b → c2 → traces/a
      let thrown: unknown;
      try {
        new Service(config, { logger: silent });
      } catch (err) {
        thrown = err;
      }
      expect(thrown).to.be.instanceOf(ConfigError);
      expect([...(thrown as ConfigError).issues]).to.deep.equal([{ path: 'service.pipelines.traces/a', message: 'is part of a cycle through connectors' }]);
    });
  });

  describe('acknowledgement', () => {
    const fanout = `
receivers: { fake: {} }
exporters: { fake/a1: {}, fake/a2: {}, fake/b: {} }
service:
  pipelines:
    traces/a: { receivers: [fake], exporters: [fake/a1, fake/a2] }
    traces/b: { receivers: [fake], exporters: [fake/b] }
`;

    it('accepts a request only once every exporter of every pipeline accepted it', async () => {
      const s = service(fanout);
      await s.start();
      const slow = deferred();
      get(s, 'exporter', 'fake/a2').onConsume = () => slow.promise;
      const push = get(s, 'receiver', 'fake').push(batchOf(4));
      expect(await stateOf(push)).to.equal('pending');
      expect(get(s, 'exporter', 'fake/a1').traces).to.have.length(1);
      expect(get(s, 'exporter', 'fake/b').traces).to.have.length(1);
      slow.resolve();
      expect(await stateOf(push)).to.equal('fulfilled');
      await s.shutdown();
    });

    it('refuses the whole request, retryably, when one exporter queue is full, but only after every other exporter settled', async () => {
      const s = service(fanout);
      await s.start();
      const full = new PipelineError('refused', 'sending queue of exporter fake/a1 is full (1 requests)', { retryAfterMs: 1000 });
      get(s, 'exporter', 'fake/a1').onConsume = () => Promise.reject(full);
      const slow = deferred();
      get(s, 'exporter', 'fake/b').onConsume = () => slow.promise;
      const push = get(s, 'receiver', 'fake').push(batchOf(2));
      expect(await stateOf(push)).to.equal('pending');
      slow.resolve();
      const err = await push.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.equal(full);
      expect((err as PipelineError).retryable).to.equal(true);
      expect(get(s, 'exporter', 'fake/a2').traces).to.have.length(1);
      expect(get(s, 'exporter', 'fake/b').traces).to.have.length(1);
      await s.shutdown();
    });

    it('passes a permanent refusal on as it is', async () => {
      const s = service(fanout);
      await s.start();
      get(s, 'exporter', 'fake/b').onConsume = () => Promise.reject(new PipelineError('malformed', 'bad'));
      const err = await get(s, 'receiver', 'fake')
        .push(batchOf(1))
        .then(
          () => undefined,
          (e: unknown) => e as PipelineError,
        );
      expect(err?.code).to.equal('malformed');
      expect(err?.retryable).to.equal(false);
      await s.shutdown();
    });
  });
});
