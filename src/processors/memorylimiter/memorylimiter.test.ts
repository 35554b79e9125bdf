import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import pino from 'pino';
import { RecordingConsumer, logsRequest, metricsRequest } from '../../../test/support/signal-requests';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import { defaultRegistry } from '../../components';
import type { PipelineContext } from '../../core/component';
import type { TracesConsumer } from '../../consumer/consumer';
import { parseConfig } from '../../config/load';
import { ConfigError, ConfigErrorList } from '../../core/schema';
import { PipelineError } from '../../core/errors';
import { LogsBatch } from '../../pdata/logs-batch';
import { MetricsBatch } from '../../pdata/metrics-batch';
import { TraceBatch } from '../../pdata/trace-batch';
import { Telemetry } from '../../core/telemetry';
import { memoryLimiterConfigSchema, type MemoryLimiterConfig } from './config';
import { MemoryLimiterProcessor, memoryLimiterProcessorFactory, type MemorySources } from './factory';
import { MemoryChecker, availableMemoryBytes, computeLimits, readCgroupLimit } from './memory';

const silent = pino({ level: 'silent' });
const MiB = 1024 * 1024;

function config(raw: Record<string, unknown>): MemoryLimiterConfig {
  const issues = new ConfigErrorList();
  const c = memoryLimiterConfigSchema.parse(raw, 'processors.memory_limiter', issues);
  if (!issues.empty) throw new Error(issues.format());
  return c;
}

function configErrors(raw: Record<string, unknown>): string[] {
  const issues = new ConfigErrorList();
  memoryLimiterConfigSchema.parse(raw, 'processors.memory_limiter', issues);
  return issues.items.map((i) => `${i.path}: ${i.message}`);
}

describe('memory_limiter config', () => {
  it('applies the defaults: 1s checks, GC intervals 10s (soft) and 0s (hard)', () => {
    const c = config({ limit_mib: 100 });
    expect(c).to.include({
      check_interval: 1000,
      limit_mib: 100,
      spike_limit_mib: 0,
      min_gc_interval_when_soft_limited: 10_000,
      min_gc_interval_when_hard_limited: 0,
    });
  });

  it("reports the Collector's validation errors with their YAML paths", () => {
    expect(configErrors({})).to.deep.equal(["processors.memory_limiter: 'limit_mib' or 'limit_percentage' must be greater than zero"]);
    expect(configErrors({ limit_mib: 100, spike_limit_mib: 100 })).to.deep.equal([
      "processors.memory_limiter.spike_limit_mib: 'spike_limit_mib' must be smaller than 'limit_mib'",
    ]);
    expect(configErrors({ limit_percentage: 50, spike_limit_percentage: 60 })).to.deep.equal([
      "processors.memory_limiter.spike_limit_percentage: 'spike_limit_percentage' must be smaller than 'limit_percentage'",
    ]);
    expect(configErrors({ limit_mib: 100, check_interval: '0s' })).to.deep.equal([
      "processors.memory_limiter.check_interval: 'check_interval' must be greater than zero",
    ]);
    expect(configErrors({ limit_mib: 100, min_gc_interval_when_soft_limited: '1s', min_gc_interval_when_hard_limited: '2s' })).to.deep.equal([
      "processors.memory_limiter: 'min_gc_interval_when_soft_limited' should be larger than 'min_gc_interval_when_hard_limited'",
    ]);
    expect(configErrors({ limit_percentage: 101 })[0]).to.match(/limit_percentage: invalid value number 101/);
  });

  it('is registered as memory_limiter (and memorylimiter) and rejects unknown keys', () => {
    const yaml = (proc: string, extra = ''): string => `
receivers: { otlp: { protocols: { http: { endpoint: "127.0.0.1:0" } } } }
processors: { ${proc}: { limit_mib: 64${extra} } }
exporters: { debug: {} }
service: { pipelines: { traces: { receivers: [otlp], processors: [${proc}], exporters: [debug] } } }
`;
    expect(parseConfig(yaml('memory_limiter'), defaultRegistry(), {}).processors.get('memory_limiter')?.type).to.equal('memory_limiter');
    expect(parseConfig(yaml('memorylimiter'), defaultRegistry(), {}).processors.get('memorylimiter')?.type).to.equal('memory_limiter');
    expect(() => parseConfig(yaml('memory_limiter', ', limit_mb: 3'), defaultRegistry(), {})).to.throw(
      ConfigError,
      /processors\.memory_limiter\.limit_mb: unknown key "limit_mb"/,
    );
  });
});

describe('memory_limiter limits', () => {
  it('soft limit is the limit minus the spike, the spike 20 % of the limit by default', () => {
    expect(computeLimits(config({ limit_mib: 100 }), () => 0)).to.deep.equal({ hardBytes: 100 * MiB, softBytes: 80 * MiB });
    expect(computeLimits(config({ limit_mib: 100, spike_limit_mib: 30 }), () => 0)).to.deep.equal({ hardBytes: 100 * MiB, softBytes: 70 * MiB });
  });

  it('percentages are of the available memory; limit_mib wins when both are set', () => {
    const available = (): number => 1000 * MiB;
    expect(computeLimits(config({ limit_percentage: 50, spike_limit_percentage: 10 }), available)).to.deep.equal({
      hardBytes: 500 * MiB,
      softBytes: 400 * MiB,
    });
    expect(computeLimits(config({ limit_percentage: 50 }), available)).to.deep.equal({ hardBytes: 500 * MiB, softBytes: 400 * MiB });
    expect(computeLimits(config({ limit_mib: 10, limit_percentage: 50 }), available).hardBytes).to.equal(10 * MiB);
  });

  it('reads a cgroup limit, ignoring "max", garbage and limits above the machine\'s memory', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-cg-'));
    try {
      const f = (name: string, text: string): string => {
        fs.writeFileSync(path.join(dir, name), text);
        return path.join(dir, name);
      };
      expect(readCgroupLimit(f('a', '536870912\n'))).to.equal(512 * MiB);
      expect(readCgroupLimit(f('b', 'max\n'))).to.equal(undefined);
      expect(readCgroupLimit(path.join(dir, 'missing'))).to.equal(undefined);
      expect(availableMemoryBytes([f('c', 'max'), f('d', '536870912')])).to.deep.equal({ bytes: 512 * MiB, source: path.join(dir, 'd') });
      expect(availableMemoryBytes([f('e', String(os.totalmem() * 4))])).to.deep.equal({ bytes: os.totalmem(), source: 'total memory' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('v8FullGc: a forced collection without --expose-gc', () => {
  it('frees garbage in a node started without the flag, and leaves no global gc behind', () => {
    const script = `
      const { v8FullGc } = require(${JSON.stringify(require.resolve('../../v8/full-gc'))});
      const { oldGenerationUsed: oldUsed } = require(${JSON.stringify(require.resolve('../../v8/heap-trim'))});
      const before = typeof globalThis.gc;
      const gc = v8FullGc();
      let garbage = [];
      for (let i = 0; i < 300000; i++) garbage.push({ i, s: 'x' + i });
      gc(); // promotes the live array to the old generation
      const live = oldUsed();
      garbage = undefined;
      gc();
      process.stdout.write(JSON.stringify({ before, type: typeof gc, live, after: oldUsed(), global: typeof globalThis.gc }));
    `;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as Record<string, string | number>;
    expect(out.before).to.equal('undefined');
    expect(out.type).to.equal('function');
    expect(out.global).to.equal('undefined');
    expect((out.live as number) - (out.after as number), JSON.stringify(out)).to.be.greaterThan(8 * 1048576);
  });
});

describe('MemoryChecker', () => {
  function setup(
    gcFrees: number | undefined,
    soft = 80,
    hard = 100,
  ): { checker: MemoryChecker; mem: { used: number }; clock: { now: number }; gcs: () => number } {
    const mem = { used: 0 };
    const clock = { now: 0 };
    let gcs = 0;
    const checker = new MemoryChecker({
      hardBytes: hard,
      softBytes: soft,
      minGcSoftMs: 10_000,
      minGcHardMs: 0,
      read: () => mem.used,
      gc:
        gcFrees === undefined
          ? undefined
          : () => {
              gcs++;
              mem.used = Math.max(0, mem.used - gcFrees);
            },
      now: () => clock.now,
      logger: silent,
    });
    return { checker, mem, clock, gcs: () => gcs };
  }

  it('refuses at or above the soft limit and resumes below it', () => {
    const { checker, mem } = setup(undefined);
    mem.used = 79;
    checker.check();
    expect(checker.refusing).to.equal(false);
    mem.used = 80;
    checker.check();
    expect(checker.refusing).to.equal(true);
    mem.used = 120;
    checker.check();
    expect(checker.refusing).to.equal(true);
    mem.used = 10;
    checker.check();
    expect(checker.refusing).to.equal(false);
    expect(checker.peak).to.equal(120);
  });

  it('forces a GC above the soft limit at most once per soft interval, and accepts when it freed enough', () => {
    const { checker, mem, clock, gcs } = setup(5);
    mem.used = 90;
    checker.check(); // GC: 85, still above soft
    expect([gcs(), checker.refusing]).to.deep.equal([1, true]);
    clock.now = 9_999;
    checker.check(); // too soon for another soft GC
    expect([gcs(), checker.refusing]).to.deep.equal([1, true]);
    clock.now = 10_000;
    mem.used = 84;
    checker.check(); // GC: 79, below soft
    expect([gcs(), checker.refusing]).to.deep.equal([2, false]);
    expect(checker.usedAfterGc).to.equal(79);
  });

  it('forces a GC at every check above the hard limit (min interval 0)', () => {
    const { checker, mem, gcs } = setup(1);
    mem.used = 150;
    checker.check();
    checker.check();
    checker.check();
    expect(gcs()).to.equal(3);
    expect(checker.refusing).to.equal(true);
  });

  it('without an exposed GC only measures', () => {
    const { checker, mem } = setup(undefined);
    mem.used = 150;
    checker.check();
    expect(checker.refusing).to.equal(true);
    expect(checker.gcCount).to.equal(0);
  });
});

describe('MemoryLimiterProcessor', () => {
  class Sink implements TracesConsumer {
    spans = 0;
    async consumeTraces(batch: TraceBatch, _ctx: PipelineContext): Promise<void> {
      this.spans += batch.spanCount;
    }
  }

  function setup(): { telemetry: Telemetry; sink: Sink; mem: { used: number }; make: () => MemoryLimiterProcessor } {
    const telemetry = new Telemetry();
    const sink = new Sink();
    const mem = { used: 0 };
    const sources: MemorySources = { read: () => mem.used, available: () => 0, gc: () => undefined, now: () => 0 };
    const cfg = config({ limit_mib: 100, check_interval: '1h' });
    const make = (): MemoryLimiterProcessor => new MemoryLimiterProcessor({ id: 'memory_limiter', logger: silent, telemetry }, cfg, sink, sources);
    return { telemetry, sink, mem, make };
  }

  const batch = (n: number): TraceBatch => TraceBatch.decode(traceRequest(spanIds(1, n)));

  it('passes data on below the soft limit and refuses it, retryably and counted, above', async () => {
    const { telemetry, sink, mem, make } = setup();
    const p = make();
    mem.used = 10 * MiB;
    await p.start();
    await p.consumeTraces(batch(3), {});
    expect(sink.spans).to.equal(3);

    mem.used = 85 * MiB;
    p.checker?.check();
    const err = await p.consumeTraces(batch(4), {}).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(PipelineError);
    expect((err as PipelineError).code).to.equal('refused');
    expect((err as PipelineError).retryable).to.equal(true);
    expect((err as PipelineError).message).to.equal('data refused due to high memory usage');
    expect(sink.spans).to.equal(3);
    expect(telemetry.counterValue('otelcol_processor_refused_spans', { processor: 'memory_limiter' })).to.equal(4);

    mem.used = 50 * MiB;
    p.checker?.check();
    await p.consumeTraces(batch(2), {});
    expect(sink.spans).to.equal(5);
    await p.shutdown();
    await p.shutdown();
  });

  it('shares one checker between the pipelines that use the same processor id', async () => {
    const { make } = setup();
    const a = make();
    const b = make();
    await a.start();
    await b.start();
    expect(a.checker).to.not.equal(undefined);
    expect(a.checker).to.equal(b.checker);
    await a.shutdown();
    await b.shutdown();
    const c = make();
    await c.start();
    expect(c.checker).to.not.equal(a.checker);
    await c.shutdown();
  });

  it('refuses metrics and logs as it refuses spans, counting refused data points and log records', async () => {
    const { telemetry, mem } = setup();
    const sources: MemorySources = { read: () => mem.used, available: () => 0, gc: () => undefined, now: () => 0 };
    const cfg = config({ limit_mib: 100, check_interval: '1h' });
    const downstream = new RecordingConsumer();
    const settings = { id: 'memory_limiter', logger: silent, telemetry };
    const m = memoryLimiterProcessorFactory.createMetrics!(settings, cfg, downstream) as MemoryLimiterProcessor;
    const l = new MemoryLimiterProcessor(settings, cfg, downstream, sources);
    await l.start();
    await m.start();
    expect(m.checker).to.equal(l.checker); // one limiter per id, whatever the signal
    mem.used = 10 * MiB;
    l.checker?.check();
    await m.consumeMetrics(MetricsBatch.decode(metricsRequest(3)), {});
    await l.consumeLogs(LogsBatch.decode(logsRequest(2)), {});
    expect(downstream.batches.map((b) => [b.signal, b.itemCount])).to.deep.equal([
      ['metrics', 3],
      ['logs', 2],
    ]);
    mem.used = 90 * MiB;
    l.checker?.check();
    const refusal = (p: Promise<void>): Promise<unknown> =>
      p.then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(await refusal(m.consumeMetrics(MetricsBatch.decode(metricsRequest(5)), {}))).to.be.instanceOf(PipelineError);
    expect(await refusal(l.consumeLogs(LogsBatch.decode(logsRequest(7)), {}))).to.be.instanceOf(PipelineError);
    expect(downstream.batches).to.have.length(2);
    expect(telemetry.counterValue('otelcol_processor_refused_metric_points', { processor: 'memory_limiter' })).to.equal(5);
    expect(telemetry.counterValue('otelcol_processor_refused_log_records', { processor: 'memory_limiter' })).to.equal(7);
    expect(telemetry.counterValue('otelcol_processor_refused_spans', { processor: 'memory_limiter' })).to.equal(0);
    await m.shutdown();
    await l.shutdown();
  });

  it('is safe to shut down without start', async () => {
    const { make } = setup();
    await make().shutdown();
    expect(memoryLimiterProcessorFactory.type).to.equal('memory_limiter');
  });
});
