/**
 * The runtime view against a real Python service instrumented the zero-code way (`opentelemetry-instrument`,
 * system metrics every second): the metrics requests the SDK exports to an OTLP sink are fed to a RuntimeView as
 * they arrive, and its figures are compared with what Linux says about the process (/proc) and with the
 * requests the test sent.
 */
import { expect } from 'chai';
import { instanceFigures } from '../../src/runtimeview/compute';
import { RuntimeView } from '../../src/runtimeview/view';
import type { ServiceRuntimeResponse } from '../../src/runtimeview/query';
import { protoType, TYPES } from '../../src/pdata/proto';
import { OtlpSink } from '../support/otlp-sink';
import { ProcSampler, readProc } from '../support/proc';
import { sumPoints } from '../support/metrics-scrape';
import { waitFor } from '../support/free-port';
import { startZeroCodeApp, type PythonApp } from '../support/python';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function get(app: PythonApp, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${app.baseUrl}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Waits until the sink holds at least `n` more metrics requests than `from`. */
async function exportsAfter(sink: OtlpSink, from: number, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (sink.metricsBodies().length < from + n) {
    if (Date.now() > deadline) throw new Error(`fewer than ${n} metrics exports in ${timeoutMs} ms`);
    await sleep(50);
  }
}

function zeroCodeEnv(sink: OtlpSink, service: string): Record<string, string> {
  return {
    OTEL_SERVICE_NAME: service,
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${sink.grpcPort}`,
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
    OTEL_BSP_SCHEDULE_DELAY: '500',
  };
}

/** Feeds the sink's metrics bodies to the view as they arrive; stopping feeds what came so far and says how many. */
function follow(sink: OtlpSink, view: RuntimeView): () => number {
  let fed = 0;
  const feed = (): void => {
    const bodies = sink.metricsBodies();
    for (; fed < bodies.length; fed++) view.offer(bodies[fed] as Buffer);
  };
  const timer = setInterval(feed, 20);
  return () => {
    clearInterval(timer);
    feed();
    return fed;
  };
}

describe('runtime view: a real Python service (opentelemetry-instrument, system metrics)', function () {
  this.timeout(180_000);
  let sink: OtlpSink;
  let app: PythonApp | undefined;

  before(async () => {
    sink = await new OtlpSink().start();
  });
  after(async () => {
    await app?.stop();
    await sink.stop();
  });

  it('CPU within 10 % of /proc/<pid>/stat for a route that burns CPU, RSS within 5 % of VmRSS, requests counted exactly', async () => {
    app = await startZeroCodeApp(zeroCodeEnv(sink, 'orders'));
    const pid = (JSON.parse((await get(app, '/healthz')).body) as { pid: number }).pid;
    const proc = new ProcSampler(pid, 50);
    const view = new RuntimeView({ windowsMs: [60_000, 300_000, 900_000, 3_600_000] });
    const stopFollowing = follow(sink, view);
    try {
      await exportsAfter(sink, 0, 2);
      const from = Date.now();
      for (let i = 0; i < 10; i++) expect((await get(app, `/orders/${i + 1}`)).status).to.equal(200);
      for (let i = 0; i < 5; i++) expect((await get(app, '/error')).status).to.equal(500);
      // 2.4 s of CPU: sixteen requests that each burn 150 ms of the request thread's CPU time (a count, not a
      // wall-clock span, so a loaded machine makes the burn slower, not smaller), with 40 MiB kept halfway.
      let burns = 0;
      const burn = async (n: number) => {
        for (let i = 0; i < n; i++) {
          expect((await get(app!, '/cpu?ms=150')).status).to.equal(200);
          burns++;
        }
      };
      await burn(8);
      // Well inside the window, so no export interval holding them is cut by its start.
      for (let i = 0; i < 3; i++) expect((await get(app, '/gc')).status).to.equal(200);
      expect((await get(app, '/memory?mb=40')).status).to.equal(200);
      await burn(8);
      // Two more exports after the last request, so the view has seen all of it.
      await exportsAfter(sink, sink.metricsBodies().length, 2);
      const fed = stopFollowing();
      const fedBodies = sink.metricsBodies().slice(0, fed);
      await view.drained();
      proc.stop();

      expect(view.stats).to.include({ dropped: 0, decodeErrors: 0 });
      const instances = [...view.state.instances.values()];
      expect(instances.map((i) => [i.service, i.source])).to.deep.equal([['orders', 'service.instance.id']]);
      const f = instanceFigures(instances[0]!, from, Date.now());
      if (f === undefined) throw new Error('no figures');

      // CPU: the same span of time measured by the kernel. The view's covered time ends at its last point.
      const end = f.lastPointMs;
      const start = end - f.coveredMs;
      expect(start).to.be.at.least(from - 1);
      const cpuSeconds = proc.cpuAt(end) - proc.cpuAt(start);
      // CPU time, whatever share of a core the machine gave the app: the kernel counted at least what the burns
      // (all after `from`, before `end`) asked for, less a clock tick at each end.
      expect(cpuSeconds, 'the burns fall inside the covered time').to.be.at.least(burns * 0.15 - 0.02);
      const expectedCores = cpuSeconds / ((end - start) / 1000);
      expect(f.cpuCores).to.be.a('number');
      expect(Math.abs((f.cpuCores as number) - expectedCores) / expectedCores, `view ${f.cpuCores} cores, /proc ${expectedCores}`).to.be.below(0.1);
      expect(f.cpuSource).to.equal('process.cpu.time');

      const atEnd = proc.nearest(end);
      expect(Math.abs((f.rssBytes as number) - atEnd.rssBytes) / atEnd.rssBytes, `view ${f.rssBytes} B, VmRSS ${atEnd.rssBytes} B`).to.be.below(0.05);
      expect(f.rssSlopeBytesPerMin, 'the 40 MiB kept by /memory makes RSS grow').to.be.above(0);
      expect(Math.abs((f.threads as number) - atEnd.threads)).to.be.at.most(2);
      expect(Math.abs((f.openFds as number) - atEnd.fds)).to.be.at.most(3);

      // Generation-2 collections: what the SDK exported over the covered time, the export interval that holds `from`
      // in proportion (the interpreter collects on its own too, more often the longer a loaded machine makes the
      // test, so the count is read from the exports, not guessed). The three gc.collect() calls are among them.
      const gc2 = sumPoints(fedBodies, 'cpython.gc.collections', { 'cpython.gc.generation': '2' });
      const firstIn = gc2.findIndex((p) => p.timeMs >= from);
      const [prev, first, lastGc] = [gc2[firstIn - 1], gc2[firstIn], gc2.at(-1)] as const;
      if (prev === undefined || first === undefined || lastGc === undefined) throw new Error(`gen-2 points around ${from}: ${JSON.stringify(gc2)}`);
      expect(lastGc.value - prev.value, 'the three gc.collect() calls exported').to.be.at.least(3);
      const exported = lastGc.value - first.value + ((first.value - prev.value) * (first.timeMs - from)) / (first.timeMs - prev.timeMs);
      const gen2 = ((f.gcByGeneration['2'] ?? 0) * f.coveredMs) / 60_000;
      expect(gen2).to.be.closeTo(exported, 0.001);
      expect(f.multiWriter).to.equal(false);
      expect(f.stale).to.equal(false);
      // The export interval is read from the points: the median gap between the last eleven exports' collection
      // times, as the SDK stamped them (never below the 1 s it waits between exports; longer on a loaded machine).
      const collected = [...new Set(sumPoints(fedBodies, 'process.cpu.time').map((p) => p.timeMs))];
      const last = collected.slice(-11);
      const gaps = last
        .slice(1)
        .map((t, i) => t - (last[i] as number))
        .sort((a, b) => a - b);
      const median =
        gaps.length % 2 === 1 ? (gaps[gaps.length >> 1] as number) : ((gaps[(gaps.length >> 1) - 1] as number) + (gaps[gaps.length >> 1] as number)) / 2;
      expect(f.intervalMs).to.be.closeTo(median, 0.01).and.at.least(1000);

      const route = (r: string) => f.routes.find((x) => x.route === r);
      expect(route('/orders/<int:order_id>')).to.include({ method: 'GET', requests: 10, errors_5xx: 0, metric: 'http.server.duration' });
      expect(route('/error')).to.include({ requests: 5, errors_5xx: 5, error_5xx_ratio: 1 });
      expect(route('/gc')).to.include({ requests: 3 });
      expect(route('/cpu')?.requests).to.equal(burns);

      // The API answer carries the contract's names.
      const res = view.query('/api/v1/services/orders/runtime', new URLSearchParams({ window: '1m' }));
      expect(res.status).to.equal(200);
      const body = res.body as { service: string; window: string; instances: Record<string, unknown>[] };
      expect(body).to.include({ service: 'orders', window: '1m' });
      expect(body.instances[0]).to.include.keys(
        'instance',
        'k8s',
        'cpu_cores',
        'memory_rss_bytes',
        'memory_rss_slope_bytes_per_min',
        'gc_collections_per_min',
        'gc_gen2_per_min',
        'threads',
        'open_fds',
        'last_seen',
        'stale',
      );
      expect(app.output()).not.to.match(/Failed to export|Exception while exporting/);
    } finally {
      stopFollowing();
      proc.stop();
      await app.stop();
      app = undefined;
    }
  });

  it('two processes whose resources name one instance (as before SDK 1.43) are flagged as two writers, not averaged', async () => {
    // Two real processes; their exports are rewritten to one service.instance.id, as an SDK without the
    // instance-id detector (or a pre-fork server's workers sharing a resource) would send them.
    sink.clear();
    const a = await startZeroCodeApp(zeroCodeEnv(sink, 'pair'));
    const b = await startZeroCodeApp(zeroCodeEnv(sink, 'pair'));
    try {
      const pids = await Promise.all([a, b].map(async (x) => (JSON.parse((await get(x, '/healthz')).body) as { pid: number }).pid));
      const samplers = pids.map((p) => new ProcSampler(p, 50));
      await exportsAfter(sink, 0, 4);
      const from = Date.now();
      const burn = async (x: PythonApp, ms: number) => {
        for (let i = 0; i < 8; i++) await get(x, `/cpu?ms=${ms}`);
      };
      await Promise.all([burn(a, 150), burn(b, 75)]);
      await exportsAfter(sink, sink.metricsBodies().length, 4);
      for (const s of samplers) s.stop();

      const type = protoType(TYPES.exportMetricsRequest);
      const view = new RuntimeView({ windowsMs: [60_000] });
      for (const body of sink.metricsBodies()) {
        const msg = type.toObject(type.decode(body), { longs: String }) as {
          resourceMetrics: { resource: { attributes: { key: string; value: { stringValue?: string } }[] } }[];
        };
        for (const rm of msg.resourceMetrics)
          for (const kv of rm.resource.attributes) if (kv.key === 'service.instance.id') kv.value = { stringValue: 'pod-a' };
        view.offer(type.encode(type.fromObject(msg)).finish());
      }
      await view.drained();
      const instances = [...view.state.instances.values()];
      expect(instances).to.have.length(1);
      const f = instanceFigures(instances[0]!, from, Date.now());
      if (f === undefined) throw new Error('no figures');
      expect(f.multiWriter).to.equal(true);
      expect(f.writers).to.equal(2);
      expect(f.rssBytes).to.equal(null);
      expect(f.threads).to.equal(null);
      // Their start times differ, so each writer's increments are its own: the CPU figure is the two processes' total.
      const end = f.lastPointMs;
      const start = Math.max(from, end - f.coveredMs);
      const total = samplers.reduce((sum, s) => sum + (s.cpuAt(end) - s.cpuAt(start)), 0) / ((end - start) / 1000);
      expect(f.cpuCores).to.be.a('number');
      expect(Math.abs((f.cpuCores as number) - total) / total, `view ${f.cpuCores}, /proc total ${total}`).to.be.below(0.15);
      const json = view.query('/api/v1/services/pair/runtime', new URLSearchParams()).body as {
        instances: { multi_writer: boolean; memory_rss_bytes: unknown }[];
      };
      expect(json.instances[0]).to.include({ multi_writer: true, memory_rss_bytes: null });
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it("gunicorn workers under opentelemetry-instrument: one instance each, reporting the arbiter's process, marked as one process", async () => {
    sink.clear();
    const g = await startZeroCodeApp(zeroCodeEnv(sink, 'prefork'), { gunicornWorkers: 2 });
    try {
      // Requests go to whichever worker accepts them; each worker counts its own in its HTTP histogram.
      for (let i = 0; i < 40; i++) expect((await get(g, `/orders/${i + 1}`)).status).to.equal(200);
      // The 40 may all land on one worker, and /healthz is not traced (OTEL_PYTHON_EXCLUDED_URLS), so each worker
      // is made to serve a traced route that names its pid (/cpu?ms=0) until both have: each then has HTTP server metrics.
      const workerPids = new Set<number>();
      for (let i = 0; i < 400 && workerPids.size < 2; i++) workerPids.add((JSON.parse((await get(g, '/cpu?ms=0')).body) as { pid: number }).pid);
      expect(workerPids.size, 'both workers served a traced request').to.equal(2);
      const since = Date.now();
      // The workers are the instances with HTTP server metrics (the arbiter serves no request).
      const view = new RuntimeView({ windowsMs: [60_000] });
      let fed = 0;
      const query = (): ServiceRuntimeResponse =>
        view.query('/api/v1/services/prefork/runtime', new URLSearchParams({ window: '1m' })).body as ServiceRuntimeResponse;
      const workers = (): string[] =>
        [...view.state.instances.values()].filter((i) => [...i.streams.values()].some((st) => st.role === 'http_old')).map((i) => i.instance);
      let seen = '';
      // Until each instance has exported since the requests (every request counted) and the view takes the two
      // workers for one process: they report the same state at two exports. The arbiter's state changes while it
      // collects its own metrics, so a worker reading it then may not agree; the exports that do agree come in time.
      await waitFor(
        async () => {
          const bodies = sink.metricsBodies();
          for (; fed < bodies.length; fed++) view.offer(bodies[fed] as Buffer);
          await view.drained();
          const body = query();
          const w = workers();
          seen = JSON.stringify({ workers: w, marks: (body.instances ?? []).map((i) => [i.instance, i.same_process_as, i.points]) });
          const [x, y] = w;
          const exportedSince = [...view.state.instances.values()].every((i) => [...i.streams.values()].some((st) => st.t.some((t) => t > since)));
          return body.instances.length === 3 &&
            exportedSince &&
            w.length === 2 &&
            body.instances.find((i) => i.instance === x)?.same_process_as.includes(y as string) === true &&
            body.instances.find((i) => i.instance === y)?.same_process_as.includes(x as string) === true
            ? true
            : undefined;
        },
        { timeoutMs: 60_000, what: 'the two workers marked as one process' },
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; instances: ${seen}`);
      });
      // opentelemetry-instrument replaced itself with gunicorn: the arbiter is the process started.
      const arbiterCpu = readProc(g.pid).cpuSeconds;
      const body = query();
      // The arbiter and two workers, each with its own service.instance.id (the SDK makes a new one after fork).
      expect(body.instances).to.have.length(3);
      expect(body.instances.every((i) => !i.multi_writer)).to.equal(true);
      // All three report the arbiter's process, so a mark is right between any two of them (the arbiter and a
      // worker agree at two exports now and then too).
      for (const i of body.instances) expect(i.same_process_as).not.to.include(i.instance);
      const lastCpu = (instance: string): number => {
        const inst = [...view.state.instances.values()].find((x) => x.instance === instance)!;
        let sum = 0;
        for (const st of inst.streams.values()) if (st.role === 'cpu') sum += st.v[st.v.length - 1] as number;
        return sum;
      };
      const ownCpu = Math.max(...[...workerPids].map((p) => readProc(p).cpuSeconds));
      for (const w of workers()) {
        // A forked worker's own CPU time starts at zero; what it reports is the arbiter's (interpreter start included).
        expect(Math.abs(lastCpu(w) - arbiterCpu), `${w} reports ${lastCpu(w)} s, the arbiter used ${arbiterCpu} s`).to.be.below(0.1);
        expect(lastCpu(w), `a worker used at most ${ownCpu} s`).to.be.above(ownCpu + 0.2);
      }
      // Every request counted once, by the worker that served it.
      expect(body.routes.find((r) => r.route === '/orders/<int:order_id>')?.metric?.requests).to.equal(40);
    } finally {
      await g.stop();
    }
  });
});
