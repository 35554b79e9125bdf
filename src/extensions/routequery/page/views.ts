/**
 * The page's views, each built once and refreshed in place by the poller: routes, one route, services, one
 * service, and why a route is missing. Every figure comes from /api/v1; nothing is computed here but formatting
 * and the impact (rate × p95) the API sorts by.
 */

interface View {
  readonly el: HTMLElement;
  readonly title: string;
  refresh(): Promise<void>;
  resize?(): void;
  destroy?(): void;
}

const PAGE_SIZE = 100;
const DEFAULT_RELATIVE_ERROR = 0.005415;

const SORTS: readonly { key: string; label: string }[] = [
  { key: 'p99', label: 'p99' },
  { key: 'p95', label: 'p95' },
  { key: 'rate', label: 'rate' },
  { key: 'errors', label: 'errors' },
  { key: 'impact', label: 'impact (rate × p95)' },
];

const SOURCE_HELP: Record<string, string> = {
  'http.route': 'from the http.route attribute the framework set',
  span_name: 'no http.route: taken from a span name like "GET /users/{id}"',
  'url.path': 'no http.route: the request path (url.path), with ids templated',
  'http.target': 'no http.route: the request target (http.target, old semantic conventions), with ids templated',
  'url.full': 'no http.route: the path of url.full, with ids templated',
  'http.url': 'no http.route: the path of http.url (old semantic conventions), with ids templated',
  span_name_fallback: 'no HTTP attributes at all: the span name (gRPC, messaging, jobs)',
  unmatched: '404 without http.route: nothing in the app matched the path (scanners, typos)',
  overflow: 'the service reached max_routes_per_service: further routes are counted here',
};

function routeHref(service: string, method: string, route: string): string {
  return navHref('route', { service, method: method === '' ? '-' : method, route });
}

function serviceHref(service: string): string {
  return navHref('service', { service });
}

function methodLabel(m: string): string {
  return m === '' ? '' : `${m} `;
}

/** A percentile cell: the value, with its bound and sample count for pointers and screen readers. */
function percentileCell(name: string, q: number, ms: number | null, n: number, relErr: number): HTMLTableCellElement {
  const few = ms !== null && isMaxOnly(q, n);
  const title =
    ms === null
      ? `${name}: no spans`
      : `${name} ${fmtMs(ms)} ${fmtError(relErr)} from ${fmtCount(n)} span${n === 1 ? '' : 's'}${few ? ` (fewer than ${Math.ceil(1 / (1 - q))}: the slowest span)` : ''}`;
  return h(
    'td',
    { class: `num${few ? ' few' : ''}`, 'data-col': name, 'data-value': ms === null ? '' : String(ms), title },
    fmtMs(ms),
    few ? h('span', { 'aria-hidden': 'true' }, '*') : null,
    srOnly(` ${fmtError(relErr)}, n ${n}`),
  );
}

function sourceBadge(source: string): HTMLElement | null {
  if (source === 'http.route') return null;
  return h('span', { class: `badge${source === 'overflow' || source === 'unmatched' ? ' warn' : ''}`, title: SOURCE_HELP[source] ?? source }, source);
}

function errorsCell(r: { error_count: number; error_rate: number }): HTMLTableCellElement {
  return h(
    'td',
    { class: `num${r.error_rate >= 0.01 ? ' bad' : ''}`, 'data-col': 'errors', 'data-value': String(r.error_count) },
    fmtCount(r.error_count),
    h('span', { class: 'muted' }, ` ${fmtPct(r.error_rate)}`),
  );
}

/** The routes table body for a page of routes. */
function routeRows(routes: readonly RouteJson[], relErr: number, showService: boolean): HTMLTableRowElement[] {
  const maxImpact = Math.max(0, ...routes.map(impactOf));
  return routes.map((r) => {
    const imp = impactOf(r);
    const bar = h('span', { class: 'impact-bar', 'aria-hidden': 'true' });
    bar.style.width = `${maxImpact > 0 && imp > 0 ? Math.max(2, Math.round((imp / maxImpact) * 100)) : 0}%`;
    const dims = Object.entries(r.dimensions)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return h(
      'tr',
      { 'data-service': r.service, 'data-method': r.method, 'data-route': r.route },
      h(
        'th',
        { scope: 'row', class: 'route' },
        h('a', { href: routeHref(r.service, r.method, r.route) }, h('span', { class: 'method' }, methodLabel(r.method)), r.route),
        ' ',
        sourceBadge(r.route_source),
        dims === '' ? null : h('span', { class: 'dims muted' }, ` ${dims}`),
      ),
      showService ? h('td', { 'data-col': 'service' }, h('a', { href: serviceHref(r.service) }, r.service)) : null,
      h('td', { class: 'num', 'data-col': 'count', 'data-value': String(r.count) }, fmtCount(r.count)),
      h('td', { class: 'num', 'data-col': 'rate', 'data-value': String(r.rate_per_s) }, fmtRate(r.rate_per_s)),
      errorsCell(r),
      percentileCell('p50', 0.5, r.p50_ms, r.count, relErr),
      percentileCell('p95', 0.95, r.p95_ms, r.count, relErr),
      percentileCell('p99', 0.99, r.p99_ms, r.count, relErr),
      h(
        'td',
        { class: 'num impact', 'data-col': 'impact', 'data-value': imp < 0 ? '' : String(imp), title: 'rate × p95: request time spent per second' },
        bar,
        h('span', null, fmtImpact(imp < 0 ? null : imp)),
      ),
    );
  });
}

/** The table of routes with sortable headers; `onSort` is called with a sort key. */
function routesTable(
  showService: boolean,
  sort: string,
  onSort: ((key: string) => void) | undefined,
): { table: HTMLTableElement; caption: HTMLElement; body: HTMLTableSectionElement; setSort(key: string): void } {
  const caption = h('caption');
  const body = h('tbody');
  const th = (label: string, key: string | undefined, cls = 'num'): HTMLTableCellElement => {
    const cell = h('th', { scope: 'col', class: cls, 'data-sort': key });
    if (key !== undefined && onSort !== undefined) cell.appendChild(h('button', { type: 'button', class: 'sort', onclick: () => onSort(key) }, label));
    else cell.textContent = label;
    return cell;
  };
  const head = h(
    'tr',
    null,
    th('Route', undefined, 'route'),
    showService ? th('Service', undefined, '') : null,
    h('th', { scope: 'col', class: 'num', title: 'spans in the window (the sample count of every percentile)' }, 'n'),
    th('Rate/s', 'rate'),
    th('Errors', 'errors'),
    th('p50', undefined),
    th('p95', 'p95'),
    th('p99', 'p99'),
    th('Impact', 'impact'),
  );
  const table = h('table', { class: 'routes' }, caption, h('thead', null, head), body);
  const setSort = (key: string): void => {
    for (const cell of head.querySelectorAll('th')) {
      if (cell.dataset.sort === key) cell.setAttribute('aria-sort', 'descending');
      else cell.removeAttribute('aria-sort');
    }
  };
  setSort(sort);
  return { table, caption, body, setSort };
}

function label(text: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { for: control.id }, text);
}

// ---- routes -------------------------------------------------------------------------------------------------

function routesView(p: URLSearchParams): View {
  const state = {
    service: p.get('service') ?? '',
    search: p.get('search') ?? '',
    sort: p.get('sort') ?? 'p99',
    offset: Math.max(0, Number(p.get('offset') ?? 0) || 0),
  };
  const serviceSel = h('select', { id: 'f-service' }, h('option', { value: '' }, 'all services'));
  const search = h('input', {
    id: 'f-search',
    type: 'search',
    placeholder: 'route, method or service  (press /)',
    value: state.search,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const sortSel = h('select', { id: 'f-sort' }, ...SORTS.map((s) => h('option', { value: s.key }, s.label)));
  sortSel.value = state.sort;
  const prev = h('button', { type: 'button', id: 'page-prev' }, '← previous');
  const next = h('button', { type: 'button', id: 'page-next' }, 'next →');
  const range = h('span', { id: 'page-range', class: 'muted' });
  const t = routesTable(true, state.sort, (key) => {
    sortSel.value = key;
    state.sort = key;
    state.offset = 0;
    changed(true);
  });
  const el = h(
    'section',
    { class: 'view' },
    h('h1', null, 'Routes'),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: (e: Event) => e.preventDefault() },
      h('span', { class: 'field' }, label('Service', serviceSel), serviceSel),
      h('span', { class: 'field grow' }, label('Search', search), search),
      h('span', { class: 'field' }, label('Sort by', sortSel), sortSel),
    ),
    h('div', { class: 'table-wrap' }, t.table),
    h('nav', { class: 'pager', 'aria-label': 'Pages of routes' }, prev, range, next),
  );
  let knownServices = '';
  let total = 0;

  const changed = (announce: boolean): void => {
    replaceNav('routes', {
      service: state.service,
      search: state.search,
      sort: state.sort === 'p99' ? undefined : state.sort,
      offset: state.offset || undefined,
    });
    t.setSort(state.sort);
    void view.refresh().then(() => {
      if (announce) say(`${fmtCount(total)} routes, sorted by ${state.sort}`);
    });
  };
  serviceSel.addEventListener('change', () => {
    state.service = serviceSel.value;
    state.offset = 0;
    changed(true);
  });
  sortSel.addEventListener('change', () => {
    state.sort = sortSel.value;
    state.offset = 0;
    changed(true);
  });
  let debounce: number | undefined;
  search.addEventListener('input', () => {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => {
      state.search = search.value.trim();
      state.offset = 0;
      changed(true);
    }, 200);
  });
  prev.addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE_SIZE);
    changed(true);
  });
  next.addEventListener('click', () => {
    state.offset += PAGE_SIZE;
    changed(true);
  });

  const view: View = {
    el,
    title: 'Routes',
    async refresh() {
      const [routes, services] = await Promise.all([
        app.api.get<RoutesResponse>('api/v1/routes', {
          window: app.window,
          service: state.service,
          search: state.search,
          sort: state.sort,
          limit: PAGE_SIZE,
          offset: state.offset,
        }),
        app.api.get<ServicesResponse>('api/v1/services', { window: app.window }),
      ]);
      noteWindows(routes);
      const names = services.services.map((s) => s.service);
      if (state.service !== '' && !names.includes(state.service)) names.push(state.service);
      if (names.join('\u0000') !== knownServices) {
        knownServices = names.join('\u0000');
        setChildren(serviceSel, h('option', { value: '' }, 'all services'), ...names.map((n) => h('option', { value: n }, n)));
        serviceSel.value = state.service;
      }
      const relErr = routes.relative_error ?? DEFAULT_RELATIVE_ERROR;
      total = routes.total ?? routes.routes.length;
      const from = total === 0 ? 0 : state.offset + 1;
      const to = state.offset + routes.routes.length;
      const sortLabel = SORTS.find((s) => s.key === state.sort)?.label ?? state.sort;
      setChildren(
        t.caption,
        `Routes with spans in the last ${routes.window}, by ${sortLabel}: ${fmtCount(from)}–${fmtCount(to)} of ${fmtCount(total)}. `,
        h(
          'span',
          { class: 'muted' },
          `Every percentile is within ${fmtError(relErr)} of the exact value; n is its sample count (* fewer spans than the percentile needs: the slowest span).`,
        ),
      );
      if (routes.routes.length === 0) {
        t.body.replaceChildren(
          h(
            'tr',
            null,
            h(
              'td',
              { colspan: '9', class: 'empty' },
              total === 0 && state.search === '' && state.service === '' ? emptyHint(routes.window) : 'No route matches.',
            ),
          ),
        );
      } else t.body.replaceChildren(...routeRows(routes.routes, relErr, true));
      setChildren(range, `${fmtCount(from)}–${fmtCount(to)} of ${fmtCount(total)}`);
      prev.disabled = state.offset === 0;
      next.disabled = to >= total;
    },
  };
  return view;
}

function emptyHint(window: string): HTMLElement {
  return h(
    'span',
    null,
    `No server spans in the last ${window}. Send traces to the OTLP receiver (gRPC :4317, HTTP :4318) — or see `,
    h('a', { href: navHref('missing', {}) }, 'why a route is missing'),
    '.',
  );
}

// ---- one route ----------------------------------------------------------------------------------------------

function statCard(title: string, value: string, detail: string, key: string): HTMLElement {
  return h(
    'div',
    { class: 'stat', 'data-stat': key },
    h('div', { class: 'stat-title' }, title),
    h('div', { class: 'stat-value' }, value),
    h('div', { class: 'stat-detail muted' }, detail),
  );
}

function figure(title: string, id: string): { fig: HTMLElement; plot: HTMLElement; note: HTMLElement } {
  const plot = h('div', { class: 'plot', id, role: 'img', 'aria-label': title });
  const note = h('p', { class: 'muted note' });
  return { fig: h('figure', { class: 'chart' }, h('figcaption', null, title), plot, note), plot, note };
}

/** One sentence for screen readers: the range and the latest value of a series. */
function describe(name: string, values: readonly (number | null)[], fmt: (v: number) => string): string {
  const vs = values.filter((v): v is number => v !== null);
  if (vs.length === 0) return `${name}: no data`;
  return `${name} from ${fmt(Math.min(...vs))} to ${fmt(Math.max(...vs))}, latest ${fmt(vs[vs.length - 1] as number)}`;
}

function seriesX(series: readonly SlotJson[]): number[] {
  return series.map((s) => Date.parse(s.start) / 1000);
}

const STATUS_SPECS: SeriesSpec[] = [
  { label: '2xx', color: '--c-2xx' },
  { label: '3xx', color: '--c-3xx' },
  { label: '4xx', color: '--c-4xx' },
  { label: '5xx', color: '--c-5xx' },
];

class ChartSet {
  readonly #charts = new Map<string, Chart>();

  /** Create the chart on first data, later only set its data. */
  time(id: string, host: HTMLElement, specs: readonly SeriesSpec[], data: uPlot.AlignedData, fmt: (v: number) => string): void {
    const c = this.#charts.get(id);
    if (c === undefined) this.#charts.set(id, timeChart(host, specs, data, fmt));
    else c.setData(data);
  }

  distribution(id: string, host: HTMLElement, d: NonNullable<RouteDetail['distribution']>, markers: Marker[]): void {
    const c = this.#charts.get(id) as DistributionChart | undefined;
    if (c === undefined) this.#charts.set(id, distributionChart(host, d, markers));
    else c.update(d, markers);
  }

  resize(): void {
    for (const c of this.#charts.values()) c.resize(c.root.clientWidth);
  }

  destroy(): void {
    for (const c of this.#charts.values()) c.destroy();
    this.#charts.clear();
  }
}

function routeView(p: URLSearchParams): View {
  const service = p.get('service') ?? '';
  const methodParam = p.get('method') ?? '-';
  const method = methodParam === '-' ? '' : methodParam;
  const route = p.get('route') ?? '';
  const name = `${methodLabel(method)}${route}`;
  const stats = h('div', { class: 'stats', id: 'route-stats' });
  const source = h('p', { class: 'muted', id: 'route-source' });
  const lat = figure('Latency over time: p50, p95, p99', 'chart-latency');
  const rate = figure('Requests and errors per second', 'chart-rate');
  const status = figure('Responses by status class per slot', 'chart-status');
  const dist = figure('Latency distribution in the window, with p50, p95 and p99', 'chart-distribution');
  const exemplars = h('div', { id: 'exemplars' });
  const why = h('div', { id: 'why' });
  const charts = new ChartSet();
  const el = h(
    'section',
    { class: 'view' },
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: navHref('routes', {}) }, 'Routes'),
      ' › ',
      h('a', { href: serviceHref(service) }, service),
      ' › ',
      h('span', { 'aria-current': 'page' }, name),
    ),
    h('h1', null, h('span', { class: 'method' }, methodLabel(method)), route, h('span', { class: 'muted h1-sub' }, ` ${service}`)),
    source,
    stats,
    h('div', { class: 'charts' }, lat.fig, dist.fig, rate.fig, status.fig),
    h('section', { 'aria-labelledby': 'ex-title' }, h('h2', { id: 'ex-title' }, 'Slowest traces in the window'), exemplars),
    h('section', { 'aria-labelledby': 'why-title' }, h('h2', { id: 'why-title' }, 'Where the time goes'), why),
  );

  return {
    el,
    title: name,
    resize: () => charts.resize(),
    destroy: () => charts.destroy(),
    async refresh() {
      const path = routeApiPath(service, method, route);
      const d = await app.api.get<RouteDetail>(path, { window: app.window });
      const r = d.route;
      const relErr = d.relative_error ?? DEFAULT_RELATIVE_ERROR;
      const pct = (label: string, q: number, v: number | null): HTMLElement =>
        statCard(
          label,
          fmtMs(v),
          v === null ? 'no spans' : `${fmtError(relErr)} · n ${fmtCount(r.count)}${isMaxOnly(q, r.count) ? ' · the slowest span' : ''}`,
          label,
        );
      setChildren(
        stats,
        statCard('Requests', fmtCount(r.count), `${fmtRate(r.rate_per_s)}/s over ${d.window}`, 'count'),
        statCard('Errors', fmtCount(r.error_count), `${fmtPct(r.error_rate)} (status ERROR or HTTP ≥ 500)`, 'errors'),
        pct('p50', 0.5, r.p50_ms),
        pct('p95', 0.95, r.p95_ms),
        pct('p99', 0.99, r.p99_ms),
        pct('p99.9', 0.999, r.p999_ms),
        statCard('Max', fmtMs(r.max_ms), `min ${fmtMs(r.min_ms)} · mean ${fmtMs(r.mean_ms)}`, 'max'),
        statCard(
          'Status classes',
          Object.entries(r.status_classes)
            .map(([k, v]) => `${k} ${fmtCount(v)}`)
            .join(' · ') || '–',
          'HTTP responses in the window',
          'status',
        ),
      );
      setChildren(source, `Route from ${r.route_source}`, SOURCE_HELP[r.route_source] === undefined ? '' : ` — ${SOURCE_HELP[r.route_source]}`, '.');

      const x = seriesX(d.series);
      const p50 = d.series.map((s) => s.p50_ms);
      const p95 = d.series.map((s) => s.p95_ms);
      const p99 = d.series.map((s) => s.p99_ms);
      charts.time(
        'latency',
        lat.plot,
        [
          { label: 'p50', color: '--c-p50', dash: true },
          { label: 'p95', color: '--c-p95' },
          { label: 'p99', color: '--c-p99' },
        ],
        [x, p50, p95, p99],
        fmtMs,
      );
      lat.plot.setAttribute(
        'aria-label',
        `Latency over the last ${d.window} in ${d.slot_s}-second slots. ${describe('p99', p99, fmtMs)}; ${describe('p95', p95, fmtMs)}; ${describe('p50', p50, fmtMs)}.`,
      );
      const rates = d.series.map((s) => s.rate_per_s);
      const errs = d.series.map((s) => (s.count === 0 ? 0 : (s.rate_per_s * s.error_count) / s.count));
      charts.time(
        'rate',
        rate.plot,
        [
          { label: 'requests/s', color: '--c-rate' },
          { label: 'errors/s', color: '--c-5xx' },
        ],
        [x, rates, errs],
        fmtRate,
      );
      rate.plot.setAttribute('aria-label', `${describe('Requests per second', rates, fmtRate)}; ${describe('errors per second', errs, fmtRate)}.`);
      const classes = STATUS_SPECS.map((s) => d.series.map((slot) => slot.status_classes?.[s.label] ?? 0));
      charts.time('status', status.plot, STATUS_SPECS, [x, ...classes], (v) => fmtCount(v));
      status.plot.setAttribute('aria-label', STATUS_SPECS.map((s, i) => describe(`${s.label} per slot`, classes[i] ?? [], fmtCount)).join('; '));
      setChildren(status.note, Object.keys(r.status_classes).length === 0 ? 'These spans carry no HTTP status (gRPC, messaging).' : '');

      if (d.distribution !== undefined) {
        const markers: Marker[] = [
          { label: 'p50', ms: r.p50_ms },
          { label: 'p95', ms: r.p95_ms },
          { label: 'p99', ms: r.p99_ms },
        ];
        charts.distribution('distribution', dist.plot, d.distribution, markers);
        dist.plot.setAttribute(
          'aria-label',
          `Latency distribution of ${fmtCount(r.count)} spans: p50 ${fmtMs(r.p50_ms)}, p95 ${fmtMs(r.p95_ms)}, p99 ${fmtMs(r.p99_ms)}, max ${fmtMs(r.max_ms)}.`,
        );
        setChildren(
          dist.note,
          `Bars: 8 per doubling of latency, from the sketch's 64.${d.distribution.zero_count > 0 ? ` ${fmtCount(d.distribution.zero_count)} spans took 0 ms.` : ''}`,
        );
      }
      await settingsReady();
      renderExemplars(exemplars, d);
      await renderWhy(why, service, method, route);
    },
  };
}

function traceLink(traceId: string): HTMLElement {
  const base = app.settings?.jaeger_url;
  if (base === null || base === undefined || base === '') return h('code', null, traceId);
  return h(
    'a',
    { href: `${base.replace(/\/+$/, '')}/trace/${traceId}`, target: '_blank', rel: 'noopener noreferrer', class: 'trace' },
    h('code', null, traceId),
  );
}

function renderExemplars(host: HTMLElement, d: RouteDetail): void {
  if (d.exemplars.length === 0) {
    setChildren(host, h('p', { class: 'muted' }, 'No trace ids kept in this window (spans without trace and span ids are not kept).'));
    return;
  }
  const noJaeger = app.settings?.jaeger_url === null || app.settings?.jaeger_url === undefined;
  setChildren(
    host,
    h(
      'table',
      { class: 'exemplars' },
      h('caption', { class: 'sr-only' }, 'Slowest spans with their trace ids'),
      h(
        'thead',
        null,
        h('tr', null, h('th', { scope: 'col' }, 'Trace'), h('th', { scope: 'col', class: 'num' }, 'Duration'), h('th', { scope: 'col' }, 'Ended')),
      ),
      h(
        'tbody',
        null,
        ...d.exemplars.map((x) =>
          h('tr', null, h('td', null, traceLink(x.trace_id)), h('td', { class: 'num' }, fmtMs(x.value_ms)), h('td', null, fmtClock(x.time))),
        ),
      ),
    ),
    noJaeger
      ? h(
          'p',
          { class: 'muted' },
          app.api.live
            ? 'Set jaeger_url in the routequery extension to link these to Jaeger.'
            : 'Write this file with routelens analyze --html OUT --jaeger-url URL to link these to Jaeger.',
        )
      : null,
  );
}

// ---- "why": the trace analysis answers (GET /api/v1/why) --------------------------------------------------

interface WhyResponse {
  count?: number;
  analysed?: number;
  summary?: string;
  breakdown?: {
    category: string;
    target?: string;
    share: number;
    p50_ms: number | null;
    p95_ms: number | null;
    p99_ms: number | null;
    critical_path_share?: number;
  }[];
  statements?: {
    fingerprint: string;
    db_system?: string;
    calls_per_request: number;
    p50_ms: number | null;
    p95_ms: number | null;
    p99_ms: number | null;
    share: number;
    example_trace_id?: string;
  }[];
  outbound?: { fingerprint: string; calls_per_request: number; p95_ms: number | null; p99_ms: number | null; share: number; example_trace_id?: string }[];
  n_plus_one?: { kind: string; fingerprint: string; repeats: number; requests_share: number; cost_ms: number; example_trace_id?: string }[];
  slow_vs_fast?: (
    | {
        kind: 'attribute';
        attribute: string;
        value: string;
        slow_count: number;
        slow_requests: number;
        fast_count: number;
        fast_requests: number;
        ratio: number | null;
        p_value: number;
      }
    | {
        kind: 'statement';
        fingerprint: string;
        slow_calls_per_request: number;
        fast_calls_per_request: number;
        slow_requests: number;
        fast_requests: number;
        ratio: number | null;
        p_value: number;
      }
    | { kind?: undefined }
  )[];
  versions?: {
    version: string;
    count: number;
    p95_ms: number | null;
    p99_ms: number | null;
    vs_previous?: { version: string; p95_change: number | null; p99_change: number | null; p_value: number; significant: boolean } | null;
  }[];
}

function notAvailable(host: HTMLElement, what: string, err: unknown): void {
  const status = err instanceof ApiError ? err.status : 0;
  const reason =
    status === 404 ? `${what} is not available from this routelens.` : `${what} could not be read: ${err instanceof Error ? err.message : String(err)}`;
  setChildren(host, h('p', { class: 'unavailable', 'data-unavailable': 'true' }, reason));
}

/** A cell showing `text` for a raw value of the API's answer, kept in data-value (what the browser test compares). */
interface ValueCell {
  text: string | Node;
  value: string | number | boolean | null | undefined;
}

type Cell = string | Node | ValueCell;

function val(value: ValueCell['value'], text: string | Node): ValueCell {
  return { text, value };
}

function isValueCell(c: Cell): c is ValueCell {
  return typeof c === 'object' && !(c instanceof Node);
}

/**
 * A plain table. `part` names it (data-part) and `keys` name its columns (data-col on each cell, the field of
 * the API's answer the column shows), so tests can read it back.
 */
function simpleTable(
  caption: string,
  head: readonly string[],
  rows: readonly (readonly Cell[])[],
  numeric: readonly boolean[] = [],
  opts: { part?: string; keys?: readonly (string | null)[] } = {},
): HTMLTableElement {
  const cell = (c: Cell, i: number): HTMLTableCellElement =>
    h(
      'td',
      {
        class: numeric[i] === true ? 'num' : '',
        'data-col': opts.keys?.[i] ?? undefined,
        'data-value': isValueCell(c) ? (c.value === null || c.value === undefined ? '' : String(c.value)) : undefined,
      },
      isValueCell(c) ? c.text : c,
    );
  return h(
    'table',
    { class: 'plain', 'data-part': opts.part },
    h('caption', null, caption),
    h('thead', null, h('tr', null, ...head.map((t, i) => h('th', { scope: 'col', class: numeric[i] === true ? 'num' : '' }, t)))),
    h('tbody', null, ...rows.map((r) => h('tr', null, ...r.map(cell)))),
  );
}

/** An object of unknown shape as `key value` pairs (slow-vs-fast and version findings). */
function looseRow(o: unknown): string {
  if (o === null || typeof o !== 'object') return String(o);
  return Object.entries(o as Record<string, unknown>)
    .map(
      ([k, v]) =>
        `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? fmtCount(v) : String(Number(v.toPrecision(3)))) : typeof v === 'object' ? JSON.stringify(v) : String(v)}`,
    )
    .join(' · ');
}

async function renderWhy(host: HTMLElement, service: string, method: string, route: string): Promise<void> {
  let w: WhyResponse;
  try {
    w = await app.api.get<WhyResponse>('api/v1/why', { service, method, route, window: app.window });
  } catch (err) {
    if (err instanceof AuthRequired) throw err;
    notAvailable(host, 'Trace analysis (GET /api/v1/why)', err);
    return;
  }
  const ms = (v: number | null): ValueCell => val(v, fmtMs(v));
  const pct = (v: number): ValueCell => val(v, fmtPct(v));
  const example = (id: string | undefined): ValueCell => val(id, id === undefined ? '' : traceLink(id));
  const parts: Node[] = [];
  if (w.summary !== undefined) parts.push(h('p', { class: 'summary' }, w.summary));
  if (w.breakdown !== undefined && w.breakdown.length > 0) {
    parts.push(
      simpleTable(
        'Where the time goes (share of request time)',
        ['Category', 'Target', 'Share', 'p50', 'p95', 'p99'],
        w.breakdown.map((b) => [b.category, b.target ?? '', pct(b.share), ms(b.p50_ms), ms(b.p95_ms), ms(b.p99_ms)]),
        [false, false, true, true, true, true],
        { part: 'breakdown', keys: ['category', 'target', 'share', 'p50_ms', 'p95_ms', 'p99_ms'] },
      ),
    );
  }
  if (w.statements !== undefined && w.statements.length > 0) {
    parts.push(
      simpleTable(
        'Slow statements (by share of the route’s time)',
        ['Statement', 'Calls/request', 'p95', 'p99', 'Share', 'Example'],
        w.statements
          .slice(0, 10)
          .map((x) => [
            h('code', { class: 'sql' }, x.fingerprint),
            val(x.calls_per_request, num3(x.calls_per_request)),
            ms(x.p95_ms),
            ms(x.p99_ms),
            pct(x.share),
            example(x.example_trace_id),
          ]),
        [false, true, true, true, true, false],
        { part: 'statements', keys: ['fingerprint', 'calls_per_request', 'p95_ms', 'p99_ms', 'share', 'example_trace_id'] },
      ),
    );
  }
  if (w.n_plus_one !== undefined && w.n_plus_one.length > 0) {
    parts.push(
      simpleTable(
        'N+1 patterns',
        ['Kind', 'Repeated', 'Repeats', 'Requests', 'Cost', 'Example'],
        w.n_plus_one.map((n) => [
          n.kind,
          h('code', { class: 'sql' }, n.fingerprint),
          val(n.repeats, fmtCount(n.repeats)),
          pct(n.requests_share),
          ms(n.cost_ms),
          example(n.example_trace_id),
        ]),
        [false, false, true, true, true, false],
        { part: 'n_plus_one', keys: ['kind', 'fingerprint', 'repeats', 'requests_share', 'cost_ms', 'example_trace_id'] },
      ),
    );
  }
  if (w.outbound !== undefined && w.outbound.length > 0) {
    parts.push(
      simpleTable(
        'Outbound HTTP calls (by share of the route’s time)',
        ['Call', 'Calls/request', 'p95', 'p99', 'Share', 'Example'],
        w.outbound
          .slice(0, 10)
          .map((o) => [
            h('code', null, o.fingerprint),
            val(o.calls_per_request, num3(o.calls_per_request)),
            ms(o.p95_ms),
            ms(o.p99_ms),
            pct(o.share),
            example(o.example_trace_id),
          ]),
        [false, true, true, true, true, false],
        { part: 'outbound', keys: ['fingerprint', 'calls_per_request', 'p95_ms', 'p99_ms', 'share', 'example_trace_id'] },
      ),
    );
  }
  if (w.slow_vs_fast !== undefined && w.slow_vs_fast.length > 0) {
    const ratio = (r: number | null): ValueCell => val(r, r === null ? '∞' : `${num3(r)}×`);
    parts.push(
      simpleTable(
        'What slow requests (above p95) have that fast ones (under p50) do not — with the counts behind each claim',
        ['Difference', 'Slow', 'Fast', 'Ratio', 'p'],
        w.slow_vs_fast.slice(0, 10).map((x) => {
          if (x.kind === 'attribute')
            return [
              val(`${x.attribute}=${x.value}`, `${x.attribute} = ${x.value}`),
              val(`${x.slow_count}/${x.slow_requests}`, `${fmtCount(x.slow_count)} of ${fmtCount(x.slow_requests)}`),
              val(`${x.fast_count}/${x.fast_requests}`, `${fmtCount(x.fast_count)} of ${fmtCount(x.fast_requests)}`),
              ratio(x.ratio),
              val(x.p_value, num3(x.p_value)),
            ];
          if (x.kind === 'statement')
            return [
              val(x.fingerprint, h('code', { class: 'sql' }, x.fingerprint)),
              val(`${x.slow_calls_per_request}/${x.slow_requests}`, `${num3(x.slow_calls_per_request)}/request (${fmtCount(x.slow_requests)})`),
              val(`${x.fast_calls_per_request}/${x.fast_requests}`, `${num3(x.fast_calls_per_request)}/request (${fmtCount(x.fast_requests)})`),
              ratio(x.ratio),
              val(x.p_value, num3(x.p_value)),
            ];
          return [looseRow(x), '', '', '', ''];
        }),
        [false, true, true, true, true],
        { part: 'slow_vs_fast', keys: ['difference', 'slow', 'fast', 'ratio', 'p_value'] },
      ),
    );
  }
  if (w.versions !== undefined && w.versions.length > 0) {
    const change = (c: number | null | undefined): ValueCell => val(c, c === null || c === undefined ? '–' : `${c >= 0 ? '+' : '−'}${fmtPct(Math.abs(c))}`);
    parts.push(
      simpleTable(
        'Versions in the window',
        ['Version', 'Requests', 'p95', 'p99', 'p95 vs previous', 'p99 vs previous', 'Significant'],
        w.versions.map((v) => [
          v.version,
          val(v.count, fmtCount(v.count)),
          ms(v.p95_ms),
          ms(v.p99_ms),
          change(v.vs_previous?.p95_change),
          change(v.vs_previous?.p99_change),
          v.vs_previous === null || v.vs_previous === undefined
            ? ''
            : val(v.vs_previous.significant, v.vs_previous.significant ? `yes (p ${num3(v.vs_previous.p_value)})` : `no (p ${num3(v.vs_previous.p_value)})`),
        ]),
        [false, true, true, true, true, true, false],
        { part: 'versions', keys: ['version', 'count', 'p95_ms', 'p99_ms', 'p95_change', 'p99_change', 'significant'] },
      ),
    );
  }
  if (w.analysed !== undefined && w.count !== undefined)
    parts.push(h('p', { class: 'muted note' }, `From ${fmtCount(w.analysed)} whole traces of ${fmtCount(w.count)} requests in the window.`));
  if (parts.length === 0) parts.push(h('p', { class: 'muted' }, 'No analysis yet for this route in the window.'));
  setChildren(host, ...parts);
}

// ---- services -----------------------------------------------------------------------------------------------

function servicesView(): View {
  const body = h('tbody');
  const caption = h('caption');
  const el = h(
    'section',
    { class: 'view' },
    h('h1', null, 'Services'),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'routes' },
        caption,
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', { scope: 'col' }, 'Service'),
            h('th', { scope: 'col', class: 'num' }, 'Routes'),
            h('th', { scope: 'col', class: 'num' }, 'Active'),
            h('th', { scope: 'col', class: 'num' }, 'n'),
            h('th', { scope: 'col', class: 'num' }, 'Rate/s'),
            h('th', { scope: 'col', class: 'num' }, 'Errors'),
            h('th', { scope: 'col', class: 'num', title: 'spans put into the __other__ route since start because a cap was reached' }, 'Overflow'),
          ),
        ),
        body,
      ),
    ),
  );
  return {
    el,
    title: 'Services',
    async refresh() {
      const s = await app.api.get<ServicesResponse>('api/v1/services', { window: app.window });
      setChildren(caption, `Services in the last ${s.window}`);
      body.replaceChildren(
        ...s.services.map((x) =>
          h(
            'tr',
            { 'data-service': x.service },
            h('th', { scope: 'row' }, h('a', { href: serviceHref(x.service) }, x.service)),
            h('td', { class: 'num' }, fmtCount(x.routes)),
            h('td', { class: 'num' }, fmtCount(x.active_routes)),
            h('td', { class: 'num' }, fmtCount(x.count)),
            h('td', { class: 'num' }, fmtRate(x.rate_per_s)),
            errorsCell(x),
            h('td', { class: `num${x.overflow_spans > 0 ? ' bad' : ''}` }, fmtCount(x.overflow_spans)),
          ),
        ),
      );
      if (s.services.length === 0) body.replaceChildren(h('tr', null, h('td', { colspan: '7', class: 'empty' }, emptyHint(s.window))));
    },
  };
}

interface RuntimeInstance {
  instance: string;
  k8s?: Record<string, string>;
  cpu_cores?: number | null;
  memory_rss_bytes?: number | null;
  memory_rss_slope_bytes_per_min?: number | null;
  gc_collections_per_min?: number | null;
  gc_gen2_per_min?: number | null;
  threads?: number | null;
  open_fds?: number | null;
  last_seen?: string;
  stale?: boolean;
  host_name?: string | null;
  resource?: Record<string, string>;
}

/** Where an instance runs, as its resource says: `host · pid 4242`. */
function instanceWhere(i: RuntimeInstance): string {
  const pid = i.resource?.['process.pid'];
  return [i.host_name ?? '', pid === undefined ? '' : `pid ${pid}`].filter((x) => x !== '').join(' · ');
}

function num3(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : String(Number(v.toPrecision(3)));
}

function serviceView(p: URLSearchParams): View {
  const service = p.get('service') ?? '';
  const stats = h('div', { class: 'stats' });
  const lat = figure('Service latency over time: p95, p99 (all routes merged)', 'chart-service-latency');
  const rate = figure('Service requests and errors per second', 'chart-service-rate');
  const runtime = h('div', { id: 'runtime' });
  const t = routesTable(false, 'impact', undefined);
  const charts = new ChartSet();
  const el = h(
    'section',
    { class: 'view' },
    h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('a', { href: navHref('services', {}) }, 'Services'),
      ' › ',
      h('span', { 'aria-current': 'page' }, service),
    ),
    h('h1', null, service),
    stats,
    h('div', { class: 'charts' }, lat.fig, rate.fig),
    h(
      'section',
      { 'aria-labelledby': 'rt-title' },
      h('h2', { id: 'rt-title' }, 'Runtime of its instances'),
      h('p', { class: 'muted' }, 'Shown beside the routes’ latency over the same window: a correlation to look at, not a cause.'),
      runtime,
    ),
    h(
      'section',
      { 'aria-labelledby': 'sr-title' },
      h('h2', { id: 'sr-title' }, 'Its routes by impact'),
      h('div', { class: 'table-wrap' }, t.table),
      h('p', null, h('a', { href: navHref('routes', { service }) }, 'All routes of this service →')),
    ),
  );
  return {
    el,
    title: service,
    resize: () => charts.resize(),
    destroy: () => charts.destroy(),
    async refresh() {
      const [d, routes] = await Promise.all([
        app.api.get<ServiceDetail>(`api/v1/services/${encodeURIComponent(service)}`, { window: app.window }),
        app.api.get<RoutesResponse>('api/v1/routes', { window: app.window, service, sort: 'impact', limit: 20 }),
      ]);
      const s = d.service;
      const relErr = d.relative_error ?? DEFAULT_RELATIVE_ERROR;
      setChildren(
        stats,
        statCard('Requests', fmtCount(s.count), `${fmtRate(s.rate_per_s)}/s over ${d.window}`, 'count'),
        statCard('Errors', fmtCount(s.error_count), fmtPct(s.error_rate), 'errors'),
        statCard('p95', fmtMs(s.p95_ms), `${fmtError(relErr)} · n ${fmtCount(s.count)}`, 'p95'),
        statCard('p99', fmtMs(s.p99_ms), `${fmtError(relErr)} · n ${fmtCount(s.count)}`, 'p99'),
        statCard('Routes', fmtCount(s.routes), `${fmtCount(s.active_routes)} with spans in the window`, 'routes'),
      );
      const x = seriesX(d.series);
      const p95 = d.series.map((v) => v.p95_ms);
      const p99 = d.series.map((v) => v.p99_ms);
      charts.time(
        'latency',
        lat.plot,
        [
          { label: 'p95', color: '--c-p95' },
          { label: 'p99', color: '--c-p99' },
        ],
        [x, p95, p99],
        fmtMs,
      );
      lat.plot.setAttribute('aria-label', `${describe('p99', p99, fmtMs)}; ${describe('p95', p95, fmtMs)}.`);
      const rates = d.series.map((v) => v.rate_per_s);
      const errs = d.series.map((v) => (v.count === 0 ? 0 : (v.rate_per_s * v.error_count) / v.count));
      charts.time(
        'rate',
        rate.plot,
        [
          { label: 'requests/s', color: '--c-rate' },
          { label: 'errors/s', color: '--c-5xx' },
        ],
        [x, rates, errs],
        fmtRate,
      );
      rate.plot.setAttribute('aria-label', describe('Requests per second', rates, fmtRate));
      setChildren(t.caption, `Top ${routes.routes.length} of ${fmtCount(routes.total ?? routes.routes.length)} routes by impact (rate × p95)`);
      t.body.replaceChildren(...routeRows(routes.routes, routes.relative_error ?? relErr, false));
      await renderRuntime(runtime, service);
    },
  };
}

interface RuntimeRoute {
  method: string;
  route: string;
  metric: { requests: number; error_5xx_ratio: number | null } | null;
  spans: { count: number } | null;
  span_to_metric_ratio: number | null;
  diverges: boolean | null;
}

/**
 * The service's own HTTP metrics (every request) beside its spans (after any sampling), per route, as counts in
 * the window: an instance's rates cover the time it reported, the spans' the whole window, so rates would not
 * compare for an instance that started inside it.
 */
function runtimeRoutes(routes: readonly RuntimeRoute[]): HTMLElement | null {
  const both = routes.filter((r) => r.metric !== null);
  if (both.length === 0) return null;
  const count = (v: number | null | undefined): ValueCell => val(v, v === null || v === undefined ? '–' : fmtCount(v));
  const pct = (v: number | null | undefined): ValueCell => val(v, v === null || v === undefined ? '–' : fmtPct(v));
  return simpleTable(
    'Requests counted by the service’s own HTTP metrics (every request) beside the spans received: fewer spans is a sign of sampling before routelens',
    ['Route', 'Requests (metrics)', 'Spans', 'Spans ÷ requests', '5xx (metrics)', ''],
    both.map((r) => [
      val(`${r.method} ${r.route}`, `${methodLabel(r.method)}${r.route}`),
      count(r.metric?.requests),
      count(r.spans?.count),
      pct(r.span_to_metric_ratio),
      pct(r.metric?.error_5xx_ratio),
      val(r.diverges, r.diverges === true ? h('span', { class: 'badge warn' }, 'diverge') : ''),
    ]),
    [false, true, true, true, true, false],
    { part: 'runtime-routes', keys: ['route', 'metric.requests', 'spans.count', 'span_to_metric_ratio', 'metric.error_5xx_ratio', 'diverges'] },
  );
}

async function renderRuntime(host: HTMLElement, service: string): Promise<void> {
  let r: { instances?: RuntimeInstance[]; routes?: RuntimeRoute[] };
  try {
    r = await app.api.get<{ instances?: RuntimeInstance[]; routes?: RuntimeRoute[] }>(`api/v1/services/${encodeURIComponent(service)}/runtime`, {
      window: app.window,
    });
  } catch (err) {
    if (err instanceof AuthRequired) throw err;
    notAvailable(host, 'The runtime view (GET /api/v1/services/{service}/runtime)', err);
    return;
  }
  const instances = r.instances ?? [];
  if (instances.length === 0) {
    setChildren(
      host,
      h(
        'p',
        { class: 'muted' },
        'No runtime metrics from this service’s instances in the window (send OTLP metrics, e.g. opentelemetry-instrument with the system-metrics instrumentation).',
      ),
    );
    return;
  }
  const n = (v: number | null | undefined): ValueCell => val(v, num3(v));
  const slope = (v: number | null | undefined): ValueCell => val(v, v === null || v === undefined ? '–' : `${v > 0 ? '+' : ''}${fmtBytes(v)}`);
  setChildren(
    host,
    simpleTable(
      'Instances',
      ['Instance', 'CPU (cores)', 'RSS', 'RSS slope/min', 'GC/min', 'Gen 2 GC/min', 'Threads', 'Open fds', 'Last seen'],
      instances.map((i) => [
        val(
          i.instance,
          h(
            'span',
            null,
            i.instance,
            i.stale === true ? h('span', { class: 'badge warn' }, 'stale') : null,
            instanceWhere(i) === '' ? null : h('span', { class: 'muted where' }, instanceWhere(i)),
          ),
        ),
        n(i.cpu_cores),
        val(i.memory_rss_bytes, fmtBytes(i.memory_rss_bytes)),
        slope(i.memory_rss_slope_bytes_per_min),
        n(i.gc_collections_per_min),
        n(i.gc_gen2_per_min),
        n(i.threads),
        n(i.open_fds),
        val(i.last_seen, i.last_seen === undefined ? '–' : fmtClock(i.last_seen)),
      ]),
      [false, true, true, true, true, true, true, true, false],
      {
        part: 'instances',
        keys: [
          'instance',
          'cpu_cores',
          'memory_rss_bytes',
          'memory_rss_slope_bytes_per_min',
          'gc_collections_per_min',
          'gc_gen2_per_min',
          'threads',
          'open_fds',
          'last_seen',
        ],
      },
    ),
    runtimeRoutes(r.routes ?? []),
  );
}

// ---- why is a route missing ---------------------------------------------------------------------------------

interface CoverageResponse {
  since: string;
  span_kinds: string[];
  totals: { spans_seen: number; spans_counted: number; spans_skipped: number; overflow_spans: number };
  services: {
    service: string;
    counted_spans: number;
    skipped_spans: Record<string, number>;
    route_sources: Record<string, number>;
    overflow_spans: number;
    routes: number;
    unmatched_routes: number;
  }[];
}

interface IntakeResponse {
  receivers: {
    receiver: string;
    transport: string;
    accepted_spans: number;
    refused_spans: number;
    failed_spans: number;
    malformed_requests: number;
    unauthenticated_requests: number;
  }[];
  processors: { processor: string; refused_spans: number }[];
  exporters?: { exporter: string; enqueue_failed_spans: number }[];
}

function missingView(): View {
  const coverage = h('div', { id: 'coverage' });
  const intake = h('div', { id: 'intake' });
  const el = h(
    'section',
    { class: 'view' },
    h('h1', null, 'Why is a route missing?'),
    h(
      'ol',
      { class: 'checklist' },
      h(
        'li',
        null,
        h('strong', null, 'Span kind. '),
        'Only SERVER and CONSUMER spans are routes (span_kinds); CLIENT, INTERNAL and PRODUCER spans are counted below, per service, and skipped.',
      ),
      h(
        'li',
        null,
        h('strong', null, 'No http.route. '),
        'Without it the route comes from a fallback (the span name, then the path with ids templated, then the bare span name); a 404 without it is grouped as __unmatched__.',
      ),
      h('li', null, h('strong', null, 'Caps. '), 'Past max_routes_per_service, new routes of a service are counted in its __other__ route.'),
      h(
        'li',
        null,
        h('strong', null, 'Refused before routing. '),
        'Requests the receiver could not read, did not authenticate, or refused for memory or a full queue never reach the routes.',
      ),
    ),
    h('section', { 'aria-labelledby': 'cov-title' }, h('h2', { id: 'cov-title' }, 'Spans per service since start'), coverage),
    h('section', { 'aria-labelledby': 'in-title' }, h('h2', { id: 'in-title' }, 'Requests refused before routing'), intake),
  );
  return {
    el,
    title: 'Why is a route missing?',
    async refresh() {
      try {
        const c = await app.api.get<CoverageResponse>('api/v1/coverage');
        renderCoverage(coverage, c);
      } catch (err) {
        if (err instanceof AuthRequired) throw err;
        notAvailable(coverage, 'Span coverage (GET /api/v1/coverage)', err);
      }
      try {
        const i = await app.api.get<IntakeResponse>('api/v1/intake');
        renderIntake(intake, i);
      } catch (err) {
        if (err instanceof AuthRequired) throw err;
        notAvailable(intake, 'Receiver counts (GET /api/v1/intake)', err);
      }
    },
  };
}

function kv(o: Record<string, number>, help?: Record<string, string>): HTMLElement {
  const entries = Object.entries(o).filter(([, v]) => v > 0);
  if (entries.length === 0) return h('span', { class: 'muted' }, 'none');
  return h(
    'ul',
    { class: 'kv' },
    ...entries.map(([k, v]) => h('li', { title: help?.[k] }, h('span', { class: 'k' }, k), ' ', h('span', { class: 'v' }, fmtCount(v)))),
  );
}

function renderCoverage(host: HTMLElement, c: CoverageResponse): void {
  const t = c.totals;
  setChildren(
    host,
    h(
      'p',
      null,
      `Since ${new Date(c.since).toLocaleString()}: ${fmtCount(t.spans_seen)} spans seen, ${fmtCount(t.spans_counted)} counted as routes (kinds ${c.span_kinds.join(', ')}), ${fmtCount(t.spans_skipped)} skipped, ${fmtCount(t.overflow_spans)} in an __other__ route.`,
    ),
    c.services.length === 0
      ? h('p', { class: 'muted' }, 'No spans yet.')
      : h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'plain coverage' },
            h('caption', { class: 'sr-only' }, 'Spans per service'),
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', { scope: 'col' }, 'Service'),
                h('th', { scope: 'col', class: 'num' }, 'Counted'),
                h('th', { scope: 'col' }, 'Skipped by kind'),
                h('th', { scope: 'col' }, 'Route named by'),
                h('th', { scope: 'col', class: 'num' }, 'In __other__'),
              ),
            ),
            h(
              'tbody',
              null,
              ...c.services.map((s) =>
                h(
                  'tr',
                  { 'data-service': s.service },
                  h('th', { scope: 'row' }, h('a', { href: serviceHref(s.service) }, s.service)),
                  h('td', { class: 'num' }, fmtCount(s.counted_spans)),
                  h('td', null, kv(s.skipped_spans)),
                  h('td', null, kv(s.route_sources, SOURCE_HELP)),
                  h('td', { class: `num${s.overflow_spans > 0 ? ' bad' : ''}` }, fmtCount(s.overflow_spans)),
                ),
              ),
            ),
          ),
        ),
  );
}

function renderIntake(host: HTMLElement, i: IntakeResponse): void {
  const rows = i.receivers.map((r) => [
    `${r.receiver} (${r.transport})`,
    fmtCount(r.accepted_spans),
    fmtCount(r.refused_spans),
    fmtCount(r.failed_spans),
    fmtCount(r.malformed_requests),
    fmtCount(r.unauthenticated_requests),
  ]);
  setChildren(
    host,
    rows.length === 0
      ? h('p', { class: 'muted' }, 'No receiver counts.')
      : simpleTable(
          'Receivers since start: refused spans (memory limiter, full queues) may be retried by the client; malformed and unauthenticated requests are not',
          ['Receiver', 'Accepted spans', 'Refused spans', 'Failed spans', 'Malformed requests', 'Unauthenticated requests'],
          rows,
          [false, true, true, true, true, true],
        ),
    i.processors.length === 0
      ? null
      : simpleTable(
          'Processors since start',
          ['Processor', 'Refused spans'],
          i.processors.map((p) => [p.processor, fmtCount(p.refused_spans)]),
          [false, true],
        ),
    i.exporters === undefined || i.exporters.length === 0
      ? null
      : simpleTable(
          'Exporters since start (forwarding, not routes)',
          ['Exporter', 'Spans not queued'],
          i.exporters.map((e) => [e.exporter, fmtCount(e.enqueue_failed_spans)]),
          [false, true],
        ),
  );
}
