/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The page routequery serves at `/`, in a real headless Chromium (Debian's package, driven by playwright-core):
 * real spans from the OpenTelemetry JS SDK through the OTLP receiver, a bearer token in front of the API, and
 * the page checked against the API it reads: table values, sorting, filtering, paging, a route's charts and its
 * Jaeger links, the "why is a route missing" counts, no request to another origin and no CSP violation. The
 * offline file of `routelens analyze --html` is opened from disk and checked the same way. Screenshots are kept
 * under test-artifacts/page/ for a person to look at.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import * as grpc from '@grpc/grpc-js';
import type { BrowserContext, Page, Response } from 'playwright-core';
import { rng } from '../support/route-spans';
import type { CoverageResponse, RouteDetailResponse, RoutesResponse } from '../../src/connectors/routelatency/query';
import type { WhyAnswer } from '../../src/analysis/why';
import { pageWeight } from '../../src/extensions/routequery/page-assets';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { artifactDir, launchChromium, type RunningBrowser } from '../support/browser';
import { repoRoot } from '../support/process';
import { waitFor } from '../support/free-port';
import { readExportLog, startZeroCodeApp } from '../support/python';
import { protoType, TYPES } from '../../src/pdata/proto';
import { sumPoints } from '../support/metrics-scrape';

const TOKEN = 'page-test-token-1f9c';
const JAEGER = 'http://127.0.0.1:16686';

function msToHr(ms: number): [number, number] {
  const ns = Math.round(ms * 1e6);
  return [Math.floor(ns / 1e9), ns % 1e9];
}

function cli(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot(), 'bin/routelens.js'), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

interface Sent {
  /** Trace id of the slowest span of GET /orders/{id}. */
  slowestOrderTrace: string;
  clientSpans: number;
  internalSpans: number;
  urlPathSpans: number;
}

/** Real spans through the SDK: two services, routes named by http.route and by fallbacks, CLIENT and INTERNAL spans. */
async function sendSpans(grpcPort: number): Promise<Sent> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${TOKEN}`);
  const providers: BasicTracerProvider[] = [];
  const providerOf = new Map<Tracer, BasicTracerProvider>();
  /** Exported and acknowledged, and later than the analysis's next tick (250 ms). */
  const flushed = async (tracer: Tracer): Promise<void> => {
    await providerOf.get(tracer)?.forceFlush();
    await new Promise((resolve) => setTimeout(resolve, 300));
  };
  const tracerOf = (service: string, resource: Attributes = {}): Tracer => {
    const p = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': service, ...resource }),
      spanProcessors: [
        new BatchSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${grpcPort}`, metadata: md }), {
          maxExportBatchSize: 512,
          maxQueueSize: 10_000,
          scheduledDelayMillis: 50,
        }),
      ],
    });
    providers.push(p);
    const tracer = p.getTracer('page-test');
    providerOf.set(tracer, p);
    return tracer;
  };
  const shop = tracerOf('shop');
  const users = tracerOf('users');
  const r = rng(29);
  const now = Date.now() - 2000;
  const server = (tracer: Tracer, name: string, ms: number, attributes: Record<string, string | number>, error = false): Span => {
    const start = now - ms - r() * 1000;
    const span = tracer.startSpan(name, { kind: SpanKind.SERVER, startTime: msToHr(start), attributes });
    if (error) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end(msToHr(start + ms));
    return span;
  };
  for (let i = 0; i < 300; i++) {
    const err = i % 25 === 0;
    server(
      shop,
      'GET /orders/{id}',
      20 + r() * 60 + (i % 50 === 7 ? 400 : 0),
      { 'http.route': '/orders/{id}', 'http.request.method': 'GET', 'http.response.status_code': err ? 500 : 200 },
      err,
    );
  }
  const slowest = server(shop, 'GET /orders/{id}', 2400, { 'http.route': '/orders/{id}', 'http.request.method': 'GET', 'http.response.status_code': 200 });
  const postOrderClientSpans = await postOrders(r, now);
  for (let i = 0; i < 400; i++)
    server(shop, 'GET /health', 0.5 + r(), { 'http.route': '/health', 'http.request.method': 'GET', 'http.response.status_code': 200 });
  const urlPathSpans = 40;
  for (let i = 0; i < urlPathSpans; i++)
    server(shop, 'GET', 5 + r() * 10, { 'url.path': `/items/${1000 + i}`, 'http.request.method': 'GET', 'http.response.status_code': 200 });
  for (let i = 0; i < 6; i++) server(shop, 'GET', 1, { 'url.path': '/wp-login.php', 'http.request.method': 'GET', 'http.response.status_code': 404 });
  const lonelyClientSpans = 50;
  for (let i = 0; i < lonelyClientSpans; i++) shop.startSpan('SELECT shop.orders', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }).end();
  const internalSpans = 12;
  for (let i = 0; i < internalSpans; i++) shop.startSpan('render', { kind: SpanKind.INTERNAL }).end();
  for (let i = 0; i < 200; i++)
    server(
      users,
      'GET /users/{id}',
      8 + r() * 30,
      { 'http.route': '/users/{id}', 'http.request.method': 'GET', 'http.response.status_code': i % 40 === 0 ? 503 : 200 },
      i % 40 === 0,
    );
  for (let i = 0; i < 30; i++) server(users, 'users.Users/Get', 3 + r() * 4, { 'rpc.system': 'grpc' });
  for (const p of providers) {
    await p.forceFlush();
    await p.shutdown();
  }
  return { slowestOrderTrace: slowest.spanContext().traceId, clientSpans: lonelyClientSpans + postOrderClientSpans, internalSpans, urlPathSpans };

  /**
   * POST /orders with its subtree, so the trace analysis has every part to show: each request inserts the order
   * and calls the users service; version 1.4.0 serves the first half, then 1.5.0 the second, and in six requests
   * of 1.5.0, all on node-3, the order's items are read one by one (an N+1 that makes them the slowest, though
   * not slower than GET /orders/{id}'s p99). Returns the CLIENT spans sent.
   */
  async function postOrders(r: () => number, now: number): Promise<number> {
    const at = (version: string, node: string) => tracerOf('shop', { 'service.version': version, 'k8s.node.name': node });
    const v14 = at('1.4.0', 'node-1');
    const v15 = at('1.5.0', 'node-1');
    const v15node3 = at('1.5.0', 'node-3');
    let clients = 0;
    const db = { 'db.system': 'postgresql', 'db.namespace': 'shop', 'server.address': 'shop-db', 'server.port': 5432 };
    for (let i = 0; i < 120; i++) {
      // 1.4.0 is analysed first (versions are ordered by when they were first seen)
      if (i === 60) await flushed(v14);
      const nPlusOne = i >= 60 && i % 10 === 5;
      const tracer = i < 60 ? v14 : nPlusOne ? v15node3 : v15;
      const ms = nPlusOne ? 330 + r() * 40 : 150 + r() * 150;
      const start = now - ms - (i < 60 ? 1500 : 0) - r() * 1000;
      const request = tracer.startSpan(
        'POST /orders',
        {
          kind: SpanKind.SERVER,
          startTime: msToHr(start),
          attributes: { 'http.route': '/orders', 'http.request.method': 'POST', 'http.response.status_code': i % 10 === 0 ? 409 : 201 },
        },
        ROOT_CONTEXT,
      );
      const parent = trace.setSpan(ROOT_CONTEXT, request);
      let t = start + 2;
      const child = (name: string, childMs: number, attributes: Attributes): void => {
        clients++;
        tracer.startSpan(name, { kind: SpanKind.CLIENT, startTime: msToHr(t), attributes }, parent).end(msToHr(t + childMs));
        t += childMs + 0.5;
      };
      child('INSERT shop.orders', 3 + r() * 5, { ...db, 'db.query.text': 'INSERT INTO orders (customer_id, total) VALUES ($1, $2)' });
      child('GET', 10 + r() * 20, {
        'http.request.method': 'GET',
        'url.full': `http://users:8080/users/${1000 + i}`,
        'server.address': 'users',
        'server.port': 8080,
        'http.response.status_code': 200,
      });
      if (nPlusOne)
        for (let k = 0; k < 12; k++)
          child('SELECT shop.order_items', 15 + r() * 5, { ...db, 'db.query.text': 'SELECT * FROM order_items WHERE order_id = $1' });
      request.end(msToHr(start + ms));
    }
    return clients;
  }
}

async function api<T>(rl: RunningRoutelens, pathAndQuery: string): Promise<T> {
  const res = await fetch(`${rl.queryUrl()}${pathAndQuery}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status, pathAndQuery).to.equal(200);
  return (await res.json()) as T;
}

/** The rows of the routes table as the page shows them: keys and the raw values in data-value attributes. */
async function tableRows(page: Page): Promise<{ service: string; method: string; route: string; values: Record<string, string> }[]> {
  return page.$$eval('table.routes tbody tr[data-route]', (trs) =>
    trs.map((tr) => {
      const el = tr as HTMLElement;
      const values: Record<string, string> = {};
      for (const td of el.querySelectorAll<HTMLElement>('td[data-col]')) values[td.dataset.col as string] = td.dataset.value ?? td.textContent ?? '';
      return { service: el.dataset.service ?? '', method: el.dataset.method ?? '', route: el.dataset.route ?? '', values };
    }),
  );
}

function expectRowsEqualApi(rows: Awaited<ReturnType<typeof tableRows>>, body: RoutesResponse): void {
  expect(rows.map((r) => `${r.service} ${r.method} ${r.route}`)).to.deep.equal(body.routes.map((r) => `${r.service} ${r.method} ${r.route}`));
  rows.forEach((row, i) => {
    const r = body.routes[i] as RoutesResponse['routes'][number];
    const v = row.values;
    const at = `${r.method} ${r.route}`;
    expect(Number(v.count), at).to.equal(r.count);
    expect(Number(v.rate), at).to.equal(r.rate_per_s);
    expect(Number(v.errors), at).to.equal(r.error_count);
    expect(v.p50 === '' ? null : Number(v.p50), at).to.equal(r.p50_ms);
    expect(v.p95 === '' ? null : Number(v.p95), at).to.equal(r.p95_ms);
    expect(v.p99 === '' ? null : Number(v.p99), at).to.equal(r.p99_ms);
    if (r.p95_ms !== null) expect(Number(v.impact), at).to.be.closeTo(r.rate_per_s * r.p95_ms, 1e-9 * r.rate_per_s * r.p95_ms);
  });
}

/** The last 200 answer each page received from each path of the API (kept from `trackAnswers` on). */
const lastAnswers = new WeakMap<Page, Map<string, Response>>();

function trackAnswers(page: Page): void {
  const last = new Map<string, Response>();
  lastAnswers.set(page, last);
  page.on('response', (res) => {
    if (res.status() === 200) last.set(new URL(res.url()).pathname, res);
  });
}

/**
 * Pauses the page's live updates and waits until it is drawn, so that no poll redraws a table between the answer a
 * test reads and what it reads on the page (rates move with time). Returns the last answer the page received from
 * `pathname`: the one drawn. `resumeLive` turns polling back on.
 */
async function pauseLive(page: Page, pathname: string): Promise<Response> {
  // an answer on its way when the button is pressed is still drawn: wait for the page to be ready after it
  if ((await page.$('#live[aria-pressed="true"]')) !== null) await page.click('#live');
  await page.waitForFunction(
    () => document.documentElement.dataset.ready !== undefined && document.getElementById('live')?.getAttribute('aria-pressed') === 'false',
  );
  const last = lastAnswers.get(page)?.get(pathname);
  if (last === undefined) throw new Error(`no answer from ${pathname}`);
  return last;
}

async function resumeLive(page: Page): Promise<void> {
  if ((await page.$('#live[aria-pressed="false"]')) !== null) await page.click('#live');
}

/** Waits for the page's next answer from a path of the API (with its query) and returns it. */
function nextApi(page: Page, pathPrefix: string, where: (u: URL) => boolean = () => true): Promise<Response> {
  return page.waitForResponse((res) => {
    const u = new URL(res.url());
    return u.pathname === pathPrefix && where(u) && res.status() === 200;
  });
}

/**
 * For each chart under `selector`, how many pixels of its canvas have the colour of the given series (a CSS
 * variable of the page): a chart that drew only its axes has none.
 */
async function seriesPixels(page: Page, charts: Record<string, string>): Promise<Record<string, number>> {
  return page.evaluate((wanted) => {
    const out: Record<string, number> = {};
    for (const [id, cssVar] of Object.entries(wanted)) {
      const canvas = document.querySelector<HTMLCanvasElement>(`#${id} canvas`);
      const ctx = canvas?.getContext('2d');
      if (canvas === null || canvas === undefined || ctx === null || ctx === undefined) {
        out[id] = -1;
        continue;
      }
      const probe = document.createElement('span');
      probe.style.color = getComputedStyle(document.documentElement).getPropertyValue(cssVar).trim();
      document.body.appendChild(probe);
      const m = /(\d+), (\d+), (\d+)/.exec(getComputedStyle(probe).color);
      probe.remove();
      const [r, g, b] = m === null ? [0, 0, 0] : [Number(m[1]), Number(m[2]), Number(m[3])];
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (
          (data[i + 3] as number) > 200 &&
          Math.abs((data[i] as number) - r) + Math.abs((data[i + 1] as number) - g) + Math.abs((data[i + 2] as number) - b) < 30
        )
          n++;
      }
      out[id] = n;
    }
    return out;
  }, charts);
}

const ROUTE_CHARTS = { 'chart-latency': '--c-p99', 'chart-distribution': '--c-bar', 'chart-rate': '--c-rate', 'chart-status': '--c-2xx' };

function expectDrawn(pixels: Record<string, number>): void {
  for (const [id, n] of Object.entries(pixels)) expect(n, `pixels of the series colour in #${id}`).to.be.greaterThan(10);
}

/** The rows of a table the page marked with data-part: per cell (data-col) its raw value (data-value) or its text. */
async function partRows(page: Page, host: string, part: string): Promise<Record<string, string>[]> {
  return page.$$eval(`${host} table[data-part="${part}"] tbody tr`, (trs) =>
    trs.map((tr) => {
      const row: Record<string, string> = {};
      for (const td of tr.querySelectorAll<HTMLElement>('td[data-col]')) row[td.dataset.col as string] = td.dataset.value ?? td.textContent ?? '';
      return row;
    }),
  );
}

/** A value as the page writes it into data-value: null and absent as ''. */
const cellValue = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

/** Each table of the why panel as it must read for this answer (the page shows 10 statements, calls, findings at most). */
function whyRows(a: WhyAnswer): Record<string, Record<string, string>[]> {
  const pick = <T extends object>(rows: readonly T[], keys: readonly (keyof T & string)[]): Record<string, string>[] =>
    rows.map((r) => Object.fromEntries(keys.map((k) => [k, cellValue(r[k])])));
  return {
    breakdown: pick(a.breakdown, ['category', 'target', 'share', 'p50_ms', 'p95_ms', 'p99_ms']),
    statements: pick(a.statements.slice(0, 10), ['fingerprint', 'calls_per_request', 'p95_ms', 'p99_ms', 'share', 'example_trace_id']),
    outbound: pick(a.outbound.slice(0, 10), ['fingerprint', 'calls_per_request', 'p95_ms', 'p99_ms', 'share', 'example_trace_id']),
    n_plus_one: pick(a.n_plus_one, ['kind', 'fingerprint', 'repeats', 'requests_share', 'cost_ms', 'example_trace_id']),
    slow_vs_fast: a.slow_vs_fast.slice(0, 10).map((x) =>
      x.kind === 'attribute'
        ? {
            difference: `${x.attribute}=${x.value}`,
            slow: `${x.slow_count}/${x.slow_requests}`,
            fast: `${x.fast_count}/${x.fast_requests}`,
            ratio: cellValue(x.ratio),
            p_value: String(x.p_value),
          }
        : {
            difference: x.fingerprint,
            slow: `${x.slow_calls_per_request}/${x.slow_requests}`,
            fast: `${x.fast_calls_per_request}/${x.fast_requests}`,
            ratio: cellValue(x.ratio),
            p_value: String(x.p_value),
          },
    ),
    versions: a.versions.map((v) => ({
      version: v.version,
      count: String(v.count),
      p95_ms: cellValue(v.p95_ms),
      p99_ms: cellValue(v.p99_ms),
      p95_change: cellValue(v.vs_previous?.p95_change),
      p99_change: cellValue(v.vs_previous?.p99_change),
      significant: cellValue(v.vs_previous?.significant),
    })),
  };
}

/** The why panel of `page` shows `a`: its summary, and every table cell by cell. */
async function expectWhyShown(page: Page, a: WhyAnswer): Promise<void> {
  await page.waitForSelector('#why .summary');
  expect(await page.$eval('#why .summary', (e) => e.textContent)).to.equal(a.summary);
  const want = whyRows(a);
  for (const [part, rows] of Object.entries(want)) expect(await partRows(page, '#why', part), part).to.deep.equal(rows);
}

/** The answer has something in every part of the analysis the page shows (else the page test would test less). */
function expectEveryPart(a: WhyAnswer): void {
  for (const part of ['breakdown', 'statements', 'outbound', 'n_plus_one', 'slow_vs_fast'] as const) expect(a[part].length, part).to.be.greaterThan(0);
  expect(a.breakdown.map((b) => b.category)).to.include.members(['db', 'http', 'self']);
  expect(a.n_plus_one.map((n) => n.fingerprint)).to.deep.equal(['SELECT * FROM order_items WHERE order_id = ?']);
  expect(a.n_plus_one[0]?.repeats).to.equal(12);
  expect(a.slow_vs_fast.some((x) => x.kind === 'attribute' && x.attribute === 'k8s.node.name' && x.value === 'node-3')).to.equal(true);
  // newest first
  expect(a.versions.map((v) => v.version)).to.deep.equal(['1.5.0', '1.4.0']);
  expect(a.versions[0]?.vs_previous?.version).to.equal('1.4.0');
}

/** A dotted field of an answer (`metric.rate_per_s`), as the page writes it into data-value. */
function field(o: unknown, dotted: string): string {
  let v: unknown = o;
  for (const k of dotted.split('.')) v = v === null || v === undefined ? undefined : (v as Record<string, unknown>)[k];
  return cellValue(v);
}

describe('the page (real Chromium)', function () {
  this.timeout(180_000);
  let rl: RunningRoutelens;
  let tmp: string;
  let chrome: RunningBrowser;
  let context: BrowserContext;
  let page: Page;
  let sent: Sent;
  const shots = artifactDir('page');
  const foreign: string[] = [];
  const cspViolations: string[] = [];
  const consoleErrors: string[] = [];

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-page-'));
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, TOKEN);
    rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
connectors:
  routelatency: {}
exporters:
  file:
    path: ${tmp}/capture.jsonl
extensions:
  bearertokenauth: { filename: ${tokenFile} }
  routequery: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth }, jaeger_url: '${JAEGER}' }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [routelatency, file]
    metrics:
      receivers: [otlp]
      exporters: [routelatency]
`);
    sent = await sendSpans(rl.grpcPort());
    chrome = await launchChromium();
    context = await chrome.browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
    const origin = new URL(rl.queryUrl()).origin;
    context.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('file:')) foreign.push(u);
    });
    page = await context.newPage();
    trackAnswers(page);
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
      else if (m.type() === 'error' && !/401 \(Unauthorized\)/.test(m.text())) consoleErrors.push(`${m.text()} ${m.location().url}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(String(e)));
  });

  after(async () => {
    await context?.close();
    await chrome?.close();
    await rl?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the page with a strict CSP, within 100 KB gzipped, and keeps the API behind the token', async () => {
    const res = await fetch(`${rl.queryUrl()}/`, { headers: { 'accept-encoding': 'gzip' } });
    expect(res.status).to.equal(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).to.include("default-src 'none'");
    expect(csp).to.include("script-src 'self'");
    expect(csp).to.include("style-src 'self'");
    expect(csp).to.not.include('unsafe');
    const html = await res.text();
    expect(html).to.not.match(/<script>|<style>| style=| on[a-z]+=/);
    const weight = pageWeight();
    expect(weight.gzipBytes).to.be.lessThan(100 * 1024);
    expect((await fetch(`${rl.queryUrl()}/api/v1/routes`)).status).to.equal(401);
    expect((await fetch(`${rl.queryUrl()}/api/v1/settings`)).status).to.equal(401);
  });

  it('asks for the token, then shows every route as the API answers, and refuses a wrong token', async () => {
    await page.goto(`${rl.queryUrl()}/`);
    await page.waitForSelector('#token-dialog[open]');
    await page.screenshot({ path: path.join(shots, '01-token.png') });
    await page.fill('#token-input', 'wrong-token');
    await page.click('#token-dialog button[type=submit]');
    await page.waitForFunction(() => document.getElementById('token-hint')?.textContent === 'The token was refused.');
    const first = nextApi(page, '/api/v1/routes');
    await page.fill('#token-input', TOKEN);
    await page.click('#token-dialog button[type=submit]');
    await first;
    await page.waitForSelector('table.routes tbody tr[data-route]');
    const body = (await (await pauseLive(page, '/api/v1/routes')).json()) as RoutesResponse;
    expect(body.total).to.equal(7);
    expectRowsEqualApi(await tableRows(page), body);
    // sorted by p99: the slowest p99 first
    expect(body.routes[0]?.route).to.equal('/orders/{id}');
    // the same figures as an independent request (rates move with time; counts and percentiles do not)
    const direct = await api<RoutesResponse>(rl, '/api/v1/routes?window=5m&limit=100');
    expect(direct.routes.map((r) => [r.route, r.count, r.p50_ms, r.p95_ms, r.p99_ms])).to.deep.equal(
      body.routes.map((r) => [r.route, r.count, r.p50_ms, r.p95_ms, r.p99_ms]),
    );
    expect(await page.evaluate(() => sessionStorage.getItem('routelens.token'))).to.equal(TOKEN);
    await page.screenshot({ path: path.join(shots, '02-routes.png'), fullPage: true });
    // live updates stay paused for the next test
  });

  it('sorts by each key and filters by service and search, as the API does', async () => {
    // Paused (the token test left it so): each answer below is the one drawn, not a poll's.
    await pauseLive(page, '/api/v1/routes');
    try {
      for (const key of ['rate', 'errors', 'impact', 'p95']) {
        const answer = nextApi(page, '/api/v1/routes', (u) => u.searchParams.get('sort') === key);
        await page.selectOption('#f-sort', key);
        const body = (await (await answer).json()) as RoutesResponse;
        await page.waitForFunction((k) => document.querySelector(`th[data-sort="${k}"]`)?.getAttribute('aria-sort') === 'descending', key);
        await page.waitForFunction((n) => document.querySelectorAll('table.routes tbody tr[data-route]').length === n, body.routes.length);
        expectRowsEqualApi(await tableRows(page), body);
      }
      // a column header sorts too
      const byRate = nextApi(page, '/api/v1/routes', (u) => u.searchParams.get('sort') === 'rate');
      await page.click('th[data-sort="rate"] button');
      const rateBody = (await (await byRate).json()) as RoutesResponse;
      const rates = rateBody.routes.map((r) => r.rate_per_s);
      expect(rates).to.deep.equal([...rates].sort((a, b) => b - a));
      expect(rateBody.routes[0]?.route).to.equal('/health');

      const onlyUsers = nextApi(page, '/api/v1/routes', (u) => u.searchParams.get('service') === 'users');
      await page.selectOption('#f-service', 'users');
      const usersBody = (await (await onlyUsers).json()) as RoutesResponse;
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLElement>('table.routes tbody tr[data-route]')].every((tr) => tr.dataset.service === 'users'),
      );
      expect(usersBody.routes.map((r) => r.route).sort()).to.deep.equal(['/users/{id}', 'users.Users/Get']);
      expectRowsEqualApi(await tableRows(page), usersBody);

      await page.selectOption('#f-service', '');
      const searched = nextApi(page, '/api/v1/routes', (u) => u.searchParams.get('search') === 'orders');
      await page.fill('#f-search', 'orders');
      const ordersBody = (await (await searched).json()) as RoutesResponse;
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLElement>('table.routes tbody tr[data-route]')].every((tr) => (tr.dataset.route ?? '').includes('orders')),
      );
      expect(ordersBody.routes.map((r) => `${r.method} ${r.route}`).sort()).to.deep.equal(['GET /orders/{id}', 'POST /orders']);
      expect(page.url()).to.include('search=orders');
      await page.screenshot({ path: path.join(shots, '03-search.png') });
    } finally {
      await resumeLive(page);
    }
  });

  it('draws a route: latency over time, rates, status classes and the distribution, and links the slowest trace to Jaeger', async () => {
    const detail = nextApi(page, '/api/v1/routes/shop/GET/orders/%7Bid%7D'.replace('/orders', '//orders'));
    await page.click('table.routes a[href*="route=%2Forders%2F%7Bid%7D"]');
    const body = (await (await detail).json()) as RouteDetailResponse;
    await page.waitForSelector('#exemplars a.trace');
    await page.waitForFunction(() => document.querySelectorAll('.charts canvas').length >= 4);
    expectDrawn(await seriesPixels(page, ROUTE_CHARTS));
    const links = await page.$$eval('#exemplars a.trace', (as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(links[0]).to.equal(`${JAEGER}/trace/${sent.slowestOrderTrace}`);
    expect(links).to.deep.equal(body.exemplars.map((x) => `${JAEGER}/trace/${x.trace_id}`));
    expect(body.distribution?.counts.reduce((a, b) => a + b, 0)).to.equal(body.route.count);
    const stat = await page.$eval('[data-stat="p99"] .stat-value', (e) => e.textContent);
    expect(stat).to.not.equal('–');
    expect(await page.$eval('[data-stat="count"] .stat-value', (e) => e.textContent?.replace(/\s/g, ''))).to.equal(String(body.route.count));
    await page.waitForSelector('#why p, #why table');
    await page.screenshot({ path: path.join(shots, '04-route.png'), fullPage: true });
  });

  it('shows a service: its routes merged over time and its routes by impact', async () => {
    await page.click('nav.crumbs a[href^="#/service"]');
    await page.waitForSelector('#runtime p, #runtime table');
    await page.waitForFunction(() => document.querySelectorAll('.charts canvas').length >= 2);
    expectDrawn(await seriesPixels(page, { 'chart-service-latency': '--c-p99', 'chart-service-rate': '--c-rate' }));
    const routes = await page.$$eval('table.routes tbody tr[data-route]', (trs) => trs.map((tr) => (tr as HTMLElement).dataset.route));
    expect(routes).to.include.members(['/orders/{id}', '/orders', '/health', '/items/{id}', '__unmatched__']);
    await page.screenshot({ path: path.join(shots, '05-service.png'), fullPage: true });
  });

  it('says why routes are missing: spans skipped by kind, route sources, __unmatched__', async () => {
    const answer = nextApi(page, '/api/v1/coverage');
    await page.click('header nav a[data-nav="missing"]');
    const c = (await (await answer).json()) as CoverageResponse;
    const shop = c.services.find((s) => s.service === 'shop');
    expect(shop?.skipped_spans).to.deep.equal({ SPAN_KIND_INTERNAL: sent.internalSpans, SPAN_KIND_CLIENT: sent.clientSpans });
    expect(shop?.route_sources['url.path']).to.equal(sent.urlPathSpans);
    expect(shop?.route_sources.unmatched).to.equal(6);
    expect(c.services.find((s) => s.service === 'users')?.route_sources.span_name_fallback).to.equal(30);
    await page.waitForSelector('#coverage tr[data-service="shop"]');
    const text = await page.$eval('#coverage tr[data-service="shop"]', (e) => e.textContent ?? '');
    expect(text).to.include('SPAN_KIND_CLIENT').and.include(String(sent.clientSpans)).and.include('url.path');
    await page.waitForSelector('#intake table');
    expect(await page.$eval('#intake', (e) => e.textContent)).to.include('otlp (grpc)');
    await page.screenshot({ path: path.join(shots, '06-missing.png'), fullPage: true });
  });

  it('shows where the time goes as GET /api/v1/why answers it: every part, cell by cell, for a route with real subtrees', async () => {
    // Each request is analysed a decision wait after its span arrived.
    const whyOf = (method: string, route: string) =>
      api<WhyAnswer>(rl, `/api/v1/why?service=shop&method=${method}&route=${encodeURIComponent(route)}&window=5m`);
    await waitFor(async () => ((await whyOf('POST', '/orders')).analysed === 120 ? true : undefined), { timeoutMs: 20_000, what: 'POST /orders analysed' });
    for (const [method, route] of [
      ['POST', '/orders'],
      ['GET', '/orders/{id}'],
    ] as const) {
      const answered = nextApi(page, '/api/v1/why', (u) => u.searchParams.get('method') === method);
      await page.goto(`${rl.queryUrl()}/#/route?service=shop&method=${method}&route=${encodeURIComponent(route)}`);
      const answer = (await (await answered).json()) as WhyAnswer;
      expect(answer).to.include({ service: 'shop', method, route, window: '5m' });
      if (method === 'POST') expectEveryPart(answer);
      else expect(answer.breakdown.map((b) => b.category)).to.deep.equal(['self']);
      await expectWhyShown(page, answer);
      const examples = [...answer.statements, ...answer.n_plus_one, ...answer.outbound].map((x) => `${JAEGER}/trace/${x.example_trace_id}`);
      const links = await page.$$eval('#why a.trace', (as) => as.map((a) => (a as HTMLAnchorElement).href));
      expect(links).to.deep.equal(examples);
      await page.screenshot({ path: path.join(shots, method === 'POST' ? '04c-why-subtrees.png' : '04b-why.png'), fullPage: true });
    }
  });

  it('says so when a service has no runtime metrics', async () => {
    const body = await api<{ instances: unknown[] }>(rl, '/api/v1/services/shop/runtime?window=5m');
    expect(body.instances).to.deep.equal([]);
    await page.goto(`${rl.queryUrl()}/#/service?service=shop`);
    await page.waitForSelector('#runtime p');
    expect(await page.$eval('#runtime', (e) => e.textContent)).to.match(/No runtime metrics/);
  });

  it('shows a real Python service’s runtime (opentelemetry-instrument, system metrics) as the API answers it', async function () {
    this.timeout(240_000);
    // The app's own process, traced and measured the zero-code way, exporting metrics every second through the
    // receiver's metrics pipeline into the runtime view (and its spans through the traces pipeline).
    const exportLog = fs.mkdtempSync(path.join(tmp, 'python-exports-'));
    const python = await startZeroCodeApp(
      {
        OTEL_SERVICE_NAME: 'orders',
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${rl.grpcPort()}`,
        OTEL_EXPORTER_OTLP_HEADERS: `authorization=Bearer%20${TOKEN}`,
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        OTEL_BSP_SCHEDULE_DELAY: '200',
        OTEL_LOGS_EXPORTER: 'none',
        OTEL_EXPERIMENTAL_RESOURCE_DETECTORS: 'process',
        // a quarter of the traces: the metrics still count every request, so the panel shows the gap
        OTEL_TRACES_SAMPLER: 'traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0.25',
      },
      { exportLogDir: exportLog },
    );
    try {
      const get = async (p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> => {
        const res = await fetch(`${python.baseUrl}${p}`, { headers });
        return { status: res.status, body: await res.text() };
      };
      const pid = (JSON.parse((await get('/healthz')).body) as { pid: number }).pid;
      // The first export of the system metrics' process totals counts nothing (a start, not an increment): the
      // load comes after it.
      await waitFor(async () => (readExportLog(exportLog, 'metrics').filter((e) => e.ok).length >= 2 ? true : undefined), {
        timeoutMs: 30_000,
        what: 'two metrics exports',
      });
      // Each order comes with its trace id, so the sampler's choice is known: traceidratio keeps a trace when the
      // low 64 bits of its id are below a quarter of 2^64, here every fourth order (15 of 60). The spans expected are
      // then a number, not whatever the exporter has sent so far.
      const SAMPLED_ORDERS = 15;
      for (let i = 1; i <= 60; i++) {
        const traceId = `${i.toString(16).padStart(16, '0')}${i % 4 === 0 ? '1' : 'c'}${i.toString(16).padStart(15, '0')}`;
        const traceparent = `00-${traceId}-${i.toString(16).padStart(16, '0')}-01`;
        expect((await get(`/orders/${i}`, { traceparent })).status).to.equal(200);
      }
      for (let i = 0; i < 5; i++) expect((await get('/error')).status).to.equal(500);
      for (let i = 0; i < 2; i++) expect((await get('/gc')).status).to.equal(200);
      expect((await get('/memory?mb=32')).status).to.equal(200);
      for (let i = 0; i < 4; i++) expect((await get('/cpu?ms=150')).status).to.equal(200);
      const ORDERS = '/orders/<int:order_id>';
      type Runtime = {
        instances: (Record<string, unknown> & { instance: string; resource: Record<string, string>; stale: boolean })[];
        routes: {
          method: string;
          route: string;
          metric: { requests: number; errors_5xx: number } | null;
          spans: { count: number } | null;
          diverges: boolean | null;
        }[];
      };
      // The server spans of GET /orders/{id} the app's sampler kept, as its exporter sent them.
      const sampled = (): number => {
        const type = protoType(TYPES.exportTraceRequest);
        let n = 0;
        for (const e of readExportLog(exportLog, 'traces')) {
          if (!e.ok) continue;
          const msg = type.toObject(type.decode(e.request)) as {
            resourceSpans?: { scopeSpans?: { spans?: { kind?: number; attributes?: { key: string; value: { stringValue?: string } }[] }[] }[] }[];
          };
          for (const rs of msg.resourceSpans ?? [])
            for (const ss of rs.scopeSpans ?? [])
              for (const sp of ss.spans ?? []) if (sp.kind === 2 && sp.attributes?.some((a) => a.key === 'http.route' && a.value.stringValue === ORDERS)) n++;
        }
        return n;
      };
      // Once the metrics counted every request and the sampled spans (as the app's exporter sent them) are in.
      let seen = '';
      await waitFor(
        async () => {
          const b = await api<Runtime>(rl, '/api/v1/services/orders/runtime?window=5m');
          const orders = b.routes.find((r) => r.route === ORDERS);
          const error = b.routes.find((r) => r.route === '/error');
          const requests = (route: string): number | undefined => b.routes.find((r) => r.route === route)?.metric?.requests;
          const others = { '/gc': requests('/gc'), '/memory': requests('/memory'), '/cpu': requests('/cpu') };
          seen = JSON.stringify({ orders, error, others, sampled: sampled() });
          // Every request sent counted: an export may fall between two of them.
          return orders?.metric?.requests === 60 &&
            orders.spans?.count === SAMPLED_ORDERS &&
            sampled() === SAMPLED_ORDERS &&
            error?.metric?.errors_5xx === 5 &&
            others['/gc'] === 2 &&
            others['/memory'] === 1 &&
            others['/cpu'] === 4
            ? b
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, what: 'the runtime view counting the requests sent' },
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; last seen ${seen}`);
      });

      // The panel holds the last answer the page received: polling is paused once it is drawn.
      let last: Promise<Runtime> | undefined;
      const onResponse = (res: Response): void => {
        if (new URL(res.url()).pathname === '/api/v1/services/orders/runtime' && res.status() === 200) last = res.json() as Promise<Runtime>;
      };
      page.on('response', onResponse);
      await page.goto(`${rl.queryUrl()}/#/service?service=orders`);
      await page.waitForSelector('#runtime table[data-part="instances"]');
      await page.click('#live');
      await page.waitForFunction(
        () => document.documentElement.dataset.ready !== undefined && document.getElementById('live')?.getAttribute('aria-pressed') === 'false',
      );
      page.off('response', onResponse);
      const body = await (last as Promise<Runtime>);

      // The instance is the app's process, with every runtime figure present.
      expect(body.instances).to.have.length(1);
      const inst = body.instances[0] as Runtime['instances'][number];
      expect(inst.resource['process.pid']).to.equal(String(pid));
      expect(inst.stale).to.equal(false);
      const INSTANCE_COLS = [
        'instance',
        'cpu_cores',
        'memory_rss_bytes',
        'memory_rss_slope_bytes_per_min',
        'gc_collections_per_min',
        'gc_gen2_per_min',
        'threads',
        'open_fds',
        'last_seen',
      ];
      for (const k of INSTANCE_COLS.slice(1, -1)) expect(inst[k], k).to.be.a('number');
      expect(inst.memory_rss_bytes as number).to.be.above(20 * 1024 * 1024);
      expect(await partRows(page, '#runtime', 'instances')).to.deep.equal(
        body.instances.map((i) => Object.fromEntries(INSTANCE_COLS.map((k) => [k, field(i, k)]))),
      );
      const instanceText = (await page.$eval('#runtime table[data-part="instances"] tbody tr', (e) => e.textContent)) ?? '';
      expect(instanceText).to.include(inst.instance).and.include(`pid ${pid}`).and.not.include('stale');
      // Generation-2 collections over the covered time (from the app's first export to the last the view holds), as
      // the app exported them: the two gc.collect() calls and whatever the interpreter collected on its own, which
      // is more the longer a loaded machine makes the test, so the count is read from the exports.
      const gc2 = sumPoints(
        readExportLog(exportLog, 'metrics')
          .filter((e) => e.ok)
          .map((e) => e.request),
        'cpython.gc.collections',
        { 'cpython.gc.generation': '2' },
      );
      const firstGc = gc2[0];
      if (firstGc === undefined) throw new Error('no generation-2 point exported');
      const coveredEnd = firstGc.timeMs + (inst.covered_s as number) * 1000;
      const lastGc = gc2.reduce((best, p) => (Math.abs(p.timeMs - coveredEnd) < Math.abs(best.timeMs - coveredEnd) ? p : best));
      expect(Math.abs(lastGc.timeMs - coveredEnd), 'an export ends the covered time').to.be.below(5);
      expect(lastGc.value - firstGc.value, 'the two gc.collect() calls exported').to.be.at.least(2);
      expect((inst.gc_gen2_per_min as number) * ((inst.covered_s as number) / 60)).to.be.closeTo(lastGc.value - firstGc.value, 0.01);

      const ROUTE_COLS = ['metric.requests', 'spans.count', 'span_to_metric_ratio', 'metric.error_5xx_ratio', 'diverges'];
      const shown = body.routes.filter((r) => r.metric !== null);
      expect(shown.map((r) => r.route)).to.include.members([ORDERS, '/error', '/gc', '/memory', '/cpu']);
      expect(await partRows(page, '#runtime', 'runtime-routes')).to.deep.equal(
        shown.map((r) => ({ route: `${r.method} ${r.route}`, ...Object.fromEntries(ROUTE_COLS.map((k) => [k, field(r, k)])) })),
      );
      // Every request counted by the metrics, a quarter of them by the spans: the gap the panel flags.
      const orders = body.routes.find((r) => r.route === ORDERS);
      expect(orders?.metric?.requests).to.equal(60);
      expect(orders?.spans?.count).to.equal(SAMPLED_ORDERS).and.equal(sampled());
      expect(orders?.diverges).to.equal(true);
      const flagged = await page.$$eval('#runtime table[data-part="runtime-routes"] tbody tr', (trs) =>
        trs.filter((tr) => tr.querySelector('.badge') !== null).map((tr) => tr.querySelector('td')?.textContent),
      );
      expect(flagged).to.deep.equal(['GET /orders/<int:order_id>']);
      await page.screenshot({ path: path.join(shots, '05b-runtime.png'), fullPage: true });
    } finally {
      if ((await page.$('#live[aria-pressed="false"]')) !== null) await page.click('#live');
      await python.stop();
    }
  });

  it('is usable from the keyboard, in the dark theme, and updates without a reload', async () => {
    await page.goto(`${rl.queryUrl()}/#/routes`);
    await page.waitForSelector('table.routes tbody tr[data-route]');
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('f-search');
    await page.keyboard.press('Escape');
    await page.click('#theme'); // auto → light
    await page.click('#theme'); // light → dark
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).to.equal('dark');
    const bg = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    expect(bg).to.equal('rgb(17, 20, 24)');
    // a poll comes within the interval without any action
    await nextApi(page, '/api/v1/routes');
    await page.waitForSelector('table.routes tbody tr[data-route]');
    await page.screenshot({ path: path.join(shots, '07-dark.png'), fullPage: true });
    await page.goto(`${rl.queryUrl()}/#/route?service=shop&method=GET&route=%2Forders%2F%7Bid%7D`);
    await page.waitForFunction(() => document.querySelectorAll('.charts canvas').length >= 4);
    await page.waitForSelector('#exemplars a.trace');
    await page.screenshot({ path: path.join(shots, '08-route-dark.png'), fullPage: true });
    await page.click('#theme'); // dark → auto
  });

  it('passes axe-core (WCAG 2 A and AA) on every view, light and dark', async () => {
    const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
    const found: string[] = [];
    const backgrounds = new Set<string>();
    for (const theme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: theme });
      for (const view of ['#/routes', '#/route?service=shop&method=GET&route=%2Forders%2F%7Bid%7D', '#/services', '#/service?service=shop', '#/missing']) {
        await page.goto(`${rl.queryUrl()}/${view}`);
        await page.waitForFunction(() => document.documentElement.dataset.ready !== undefined && document.querySelector('main h1') !== null);
        await page.waitForTimeout(200);
        // evaluated through the DevTools protocol, which the page's CSP does not govern
        await page.evaluate(axeSource);
        const result = await page.evaluate(async () => {
          type Rule = { id: string; impact: string; nodes: { target: string[] }[] };
          const axe = (window as unknown as { axe: { run(ctx: Document, o: unknown): Promise<{ violations: Rule[]; passes: Rule[] }> } }).axe;
          const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
          const where = (v: Rule): string =>
            v.nodes
              .slice(0, 3)
              .map((n) => n.target.join(' '))
              .join(', ');
          return {
            passes: r.passes.length,
            violations: r.violations.map((v) => `${v.id} (${v.impact}): ${where(v)}`),
            background: getComputedStyle(document.documentElement).backgroundColor,
          };
        });
        expect(result.passes, `rules axe found satisfied on ${view}`).to.be.greaterThan(10);
        backgrounds.add(result.background);
        for (const v of result.violations) found.push(`${theme} ${view}: ${v}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    expect([...backgrounds].sort()).to.deep.equal(['rgb(17, 20, 24)', 'rgb(255, 255, 255)']);
    expect(found).to.deep.equal([]);
  });

  it('made no request to another origin and broke no CSP rule', () => {
    expect(foreign).to.deep.equal([]);
    expect(cspViolations).to.deep.equal([]);
    expect(consoleErrors).to.deep.equal([]);
  });

  it('`routelens analyze --html` writes the same page with the data inside, readable from disk, why answers included', async () => {
    const capture = path.join(tmp, 'capture.jsonl');
    const out = path.join(tmp, 'offline.html');
    const run = await cli('analyze', capture, '--html', out);
    expect(run.status, run.stderr).to.equal(0);
    const json = await cli('analyze', capture, '--json', '--limit', '10000');
    const offline = JSON.parse(json.stdout) as RoutesResponse;
    const whyRun = await cli('analyze', capture, '--why', '--json');
    expect(whyRun.status, whyRun.stderr).to.equal(0);
    const whys = (JSON.parse(whyRun.stdout) as { routes: WhyAnswer[] }).routes;
    const whyOf = (service: string, method: string, route: string): WhyAnswer | undefined =>
      whys.find((w) => w.service === service && w.method === method && w.route === route);

    // The file embeds the why answer of every route it holds, equal to `analyze --why`'s.
    const html = fs.readFileSync(out, 'utf8');
    const m = /<script type="application\/json" id="routelens-data">(.*?)<\/script>/s.exec(html);
    const data = JSON.parse(m?.[1] ?? 'null') as { routes: RoutesResponse; answers: Record<string, unknown> };
    const embedded = Object.entries(data.answers).filter(([k]) => k.startsWith('api/v1/why?'));
    expect(embedded.map(([k]) => k).sort()).to.deep.equal(
      [
        ...new Set(
          data.routes.routes.map(
            (r) => `api/v1/why?${new URLSearchParams({ service: r.service, method: r.method === '' ? '-' : r.method, route: r.route }).toString()}`,
          ),
        ),
      ].sort(),
    );
    for (const [, answer] of embedded) {
      const a = answer as WhyAnswer;
      expect(a, `${a.service} ${a.method} ${a.route}`).to.deep.equal(whyOf(a.service, a.method, a.route));
    }

    const p = await context.newPage();
    const errors: string[] = [];
    p.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    p.on('pageerror', (e) => errors.push(String(e)));
    await p.goto(`file://${out}`);
    await p.waitForSelector('table.routes tbody tr[data-route]');
    const rows = await tableRows(p);
    const byKey = new Map(offline.routes.map((r) => [`${r.service} ${r.method} ${r.route}`, r]));
    expect(rows.length).to.equal(offline.routes.length);
    for (const row of rows) {
      const r = byKey.get(`${row.service} ${row.method} ${row.route}`);
      expect(r, row.route).to.not.equal(undefined);
      expect(Number(row.values.count)).to.equal(r?.count);
      expect(Number(row.values.p99)).to.equal(r?.p99_ms);
    }
    await p.screenshot({ path: path.join(shots, '09-offline.png'), fullPage: true });
    await p.click('table.routes a[href*="route=%2Forders%2F%7Bid%7D"]');
    await p.waitForFunction(() => document.querySelectorAll('.charts canvas').length >= 4);
    expectDrawn(await seriesPixels(p, ROUTE_CHARTS));
    await expectWhyShown(p, whyOf('shop', 'GET', '/orders/{id}') as WhyAnswer);
    await p.screenshot({ path: path.join(shots, '10-offline-route.png'), fullPage: true });

    // where the time goes, statements, outbound calls, N+1, slow vs fast and versions, as on the live page
    const post = whyOf('shop', 'POST', '/orders') as WhyAnswer;
    expectEveryPart(post);
    expect(post.window).to.equal('capture');
    await p.goto(`file://${out}#/route?service=shop&method=POST&route=%2Forders`);
    await expectWhyShown(p, post);
    await p.screenshot({ path: path.join(shots, '11-offline-why.png'), fullPage: true });
    expect(errors).to.deep.equal([]);
    await p.close();
  });
});
