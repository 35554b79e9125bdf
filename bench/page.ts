/// <reference lib="dom" />
/**
 * `npm run bench:page`: the page's weight (what a first visit downloads, raw and gzipped) and how long it takes to
 * show 10 000 routes in headless Chromium: routelens runs in this process, real spans arrive through its OTLP
 * receiver from the OpenTelemetry JS SDK (20 services × 500 routes), then the page is loaded `--runs` times.
 *
 *   --routes N    routes to create (default 10000)
 *   --runs N      page loads to time (default 7)
 *
 * First render = navigation start to the first table of routes drawn (the page sets `data-ready` when a refresh
 * has finished), as `performance.now()` in the page. Also the answer time of /api/v1/routes (sorting and paging
 * every route on the server) and of the route view. Figures on a shared machine are noisy: read them as orders
 * of magnitude.
 */
import { SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pageWeight } from '../src/extensions/routequery/page-assets';
import { launchChromium } from '../test/support/browser';
import { startRoutelens } from '../test/support/routelens';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? undefined : Number(process.argv[i + 1]);
  return v === undefined || !Number.isFinite(v) ? dflt : v;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function main(): Promise<void> {
  const routes = arg('routes', 10_000);
  const runs = arg('runs', 7);
  const services = 20;
  const perService = Math.ceil(routes / services);
  const rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0 }
connectors:
  routelatency: { max_routes_per_service: ${perService} }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [routelatency]
`);
  const t0 = Date.now();
  for (let s = 0; s < services; s++) {
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': `service-${s}` }),
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${rl.grpcPort()}` }), {
          maxExportBatchSize: 2048,
          maxQueueSize: 100_000,
          scheduledDelayMillis: 20,
        }),
      ],
    });
    const tracer = provider.getTracer('bench-page');
    for (let r = 0; r < perService && s * perService + r < routes; r++) {
      for (let k = 0; k < 3; k++) {
        const route = `/api/resource-${r}/{id}`;
        tracer
          .startSpan(`GET ${route}`, {
            kind: SpanKind.SERVER,
            attributes: { 'http.route': route, 'http.request.method': 'GET', 'http.response.status_code': 200 },
          })
          .end();
      }
    }
    await provider.forceFlush();
    await provider.shutdown();
  }
  const total = ((await (await fetch(`${rl.queryUrl()}/api/v1/routes?limit=1`)).json()) as { total: number }).total;
  process.stderr.write(`${total} routes from ${services} services sent in ${Date.now() - t0} ms\n`);

  const apiMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await (await fetch(`${rl.queryUrl()}/api/v1/routes?window=5m&sort=impact&limit=100`)).json();
    apiMs.push(performance.now() - t);
  }

  const chrome = await launchChromium();
  const firstRender: number[] = [];
  const routeView: number[] = [];
  let heapMb = 0;
  try {
    for (let i = 0; i < runs; i++) {
      const context = await chrome.browser.newContext({ viewport: { width: 1360, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${rl.queryUrl()}/`);
      await page.waitForFunction(
        () => document.documentElement.dataset.ready !== undefined && document.querySelectorAll('table.routes tbody tr[data-route]').length > 0,
      );
      firstRender.push(await page.evaluate(() => performance.now()));
      const t = Date.now();
      await page.click('table.routes tbody tr[data-route] a');
      await page.waitForFunction(
        () =>
          document.querySelectorAll('.charts canvas').length >= 4 &&
          document.documentElement.dataset.ready !== undefined &&
          document.querySelector('#exemplars')?.childElementCount !== 0,
      );
      routeView.push(Date.now() - t);
      heapMb = Math.max(
        heapMb,
        (await page.evaluate(() => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0)) / 2 ** 20,
      );
      await context.close();
    }
  } finally {
    await chrome.close();
    await rl.stop();
  }
  const w = pageWeight();
  const result = {
    routes: total,
    page: { files: w.files, bytes: w.bytes, gzip_bytes: w.gzipBytes },
    api_routes_ms_median: Number(median(apiMs).toFixed(1)),
    first_render_ms_median: Number(median(firstRender).toFixed(0)),
    first_render_ms: firstRender.map((x) => Math.round(x)),
    route_view_ms_median: median(routeView),
    js_heap_mib_max: Number(heapMb.toFixed(1)),
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(
    `page: ${w.files} files, ${(w.bytes / 1024).toFixed(1)} KiB, ${(w.gzipBytes / 1024).toFixed(1)} KiB gzipped; ${total} routes: first render ${result.first_render_ms_median} ms (median of ${runs}), /api/v1/routes ${result.api_routes_ms_median} ms, route view ${result.route_view_ms_median} ms\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
