/**
 * The page's shell: navigation in the URL hash (`#/routes?…`, `#/route?service=…&method=…&route=…`,
 * `#/services`, `#/service?service=…`, `#/missing`), the window selector, polling (fetch carries the bearer
 * token, which EventSource could not), the token dialog, the theme, and the status line screen readers hear.
 */

const POLL_MS = 5000;
const VIEWS = ['routes', 'route', 'services', 'service', 'missing'] as const;
type ViewName = (typeof VIEWS)[number];

const app = {
  api: undefined as unknown as Api,
  settings: null as Settings | null,
  window: '5m',
  windows: ['1m', '5m', '15m', '1h'],
  view: undefined as View | undefined,
  viewKey: '',
  paused: false,
  busy: false,
  lastOk: 0,
};

function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page has no #${id}`);
  return el as T;
}

function navHref(view: ViewName, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  if (app.window !== '5m') q.set('window', app.window);
  const s = q.toString();
  return `#/${view}${s === '' ? '' : `?${s}`}`;
}

/** Update the address without rebuilding the view (filters typed into the current view). */
function replaceNav(view: ViewName, params: Record<string, string | number | undefined>): void {
  const p: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(params)) p[k] = v === undefined ? undefined : String(v);
  const href = navHref(view, p);
  history.replaceState(null, '', href);
  app.viewKey = href;
}

function readNav(): { view: ViewName; params: URLSearchParams } {
  const raw = location.hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const name = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { view: (VIEWS as readonly string[]).includes(name) ? (name as ViewName) : 'routes', params };
}

function say(text: string): void {
  const s = byId('status');
  s.textContent = '';
  window.setTimeout(() => (s.textContent = text), 50);
}

function showError(err: unknown): void {
  const box = byId('error');
  if (err === undefined) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  box.hidden = false;
  box.textContent = err instanceof Error ? err.message : String(err);
}

/** Learn the configured windows from an API answer. */
function noteWindows(r: { windows?: string[] }): void {
  if (r.windows === undefined || r.windows.join() === app.windows.join()) return;
  app.windows = r.windows;
  fillWindows();
}

function fillWindows(): void {
  const sel = byId<HTMLSelectElement>('window');
  const list = app.windows.includes(app.window) ? app.windows : [...app.windows, app.window];
  setChildren(sel, ...list.map((w) => h('option', { value: w }, w)));
  sel.value = app.window;
}

function makeView(view: ViewName, params: URLSearchParams): View {
  switch (view) {
    case 'route':
      return routeView(params);
    case 'services':
      return servicesView();
    case 'service':
      return serviceView(params);
    case 'missing':
      return missingView();
    default:
      return routesView(params);
  }
}

function mount(): void {
  const { view, params } = readNav();
  const w = params.get('window');
  if (w !== null && w !== '') app.window = w;
  fillWindows();
  app.view?.destroy?.();
  const v = makeView(view, params);
  app.view = v;
  app.viewKey = location.hash;
  const main = byId('main');
  main.replaceChildren(v.el);
  document.title = `${v.title} · routelens`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('header nav a')) {
    const current = a.dataset.nav === view || (a.dataset.nav === 'services' && view === 'service') || (a.dataset.nav === 'routes' && view === 'route');
    if (current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  void refresh(true);
}

let pendingSettings: Promise<void> | undefined;

/** Resolves once /api/v1/settings (the Jaeger URL) has been read, if it is being read. */
function settingsReady(): Promise<void> {
  return pendingSettings?.catch(() => undefined) ?? Promise.resolve();
}

/** Fetch the current view's data; `first` after a navigation (focus moves to the heading for screen readers). */
async function refresh(first = false): Promise<void> {
  const v = app.view;
  if (v === undefined || app.busy) return;
  app.busy = true;
  document.documentElement.removeAttribute('data-ready');
  try {
    // in parallel with the view's requests; views that link traces wait for it (settingsReady)
    if (app.settings === null && app.api.live && pendingSettings === undefined) {
      pendingSettings = app.api
        .get<Settings>('api/v1/settings')
        .catch((err: unknown): Settings => {
          if (err instanceof AuthRequired) throw err;
          return { jaeger_url: null };
        })
        .then((s) => {
          app.settings = s;
        })
        .finally(() => (pendingSettings = undefined));
    }
    await Promise.all([v.refresh(), pendingSettings]);
    showError(undefined);
    app.lastOk = Date.now();
    byId('updated').textContent = app.api.live ? `updated ${fmtClock(app.lastOk)}` : 'offline copy';
    if (first) v.el.querySelector('h1')?.setAttribute('tabindex', '-1');
    if (first && document.activeElement === document.body) (v.el.querySelector('h1') as HTMLElement | null)?.focus({ preventScroll: true });
  } catch (err) {
    if (err instanceof AuthRequired) askToken();
    else showError(err);
  } finally {
    app.busy = false;
    document.documentElement.setAttribute('data-ready', String(app.lastOk));
  }
}

function askToken(): void {
  const dlg = byId<HTMLDialogElement>('token-dialog');
  if (dlg.open) return;
  const input = byId<HTMLInputElement>('token-input');
  input.value = '';
  byId('token-hint').textContent = (app.api as HttpApi).token === null ? '' : 'The token was refused.';
  dlg.showModal();
  input.focus();
}

function setupToken(): void {
  const dlg = byId<HTMLDialogElement>('token-dialog');
  const form = byId<HTMLFormElement>('token-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const value = byId<HTMLInputElement>('token-input').value.trim();
    if (value === '') return;
    (app.api as HttpApi).token = value;
    byId('signout').hidden = false;
    dlg.close();
    app.settings = null;
    void refresh(true);
  });
  byId('token-cancel').addEventListener('click', () => dlg.close());
  const out = byId<HTMLButtonElement>('signout');
  out.hidden = (app.api as HttpApi).token === null;
  out.addEventListener('click', () => {
    (app.api as HttpApi).token = null;
    out.hidden = true;
    say('Token forgotten');
    void refresh();
  });
}

const THEMES = ['auto', 'light', 'dark'] as const;

function applyTheme(theme: string): void {
  if (theme === 'auto') document.documentElement.removeAttribute('data-theme');
  else document.documentElement.setAttribute('data-theme', theme);
  const b = byId('theme');
  b.textContent = `Theme: ${theme}`;
}

function setupTheme(): void {
  let theme = 'auto';
  try {
    theme = localStorage.getItem('routelens.theme') ?? 'auto';
  } catch {
    // storage disabled
  }
  applyTheme(theme);
  byId('theme').addEventListener('click', () => {
    theme = THEMES[(THEMES.indexOf(theme as (typeof THEMES)[number]) + 1) % THEMES.length] as string;
    try {
      localStorage.setItem('routelens.theme', theme);
    } catch {
      // storage disabled
    }
    applyTheme(theme);
    say(`Theme ${theme}`);
    mount(); // charts take their colours when built
  });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    if (theme === 'auto') mount();
  });
}

function setupLive(): void {
  const b = byId<HTMLButtonElement>('live');
  if (!app.api.live) {
    b.hidden = true;
    return;
  }
  b.addEventListener('click', () => {
    app.paused = !app.paused;
    b.setAttribute('aria-pressed', String(!app.paused));
    b.textContent = app.paused ? 'Paused' : 'Live';
    say(app.paused ? 'Live updates paused' : 'Live updates on');
    if (!app.paused) void refresh();
  });
  window.setInterval(() => {
    if (!app.paused && document.visibilityState === 'visible') void refresh();
  }, POLL_MS);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && !app.paused) void refresh();
  });
}

function setupKeys(): void {
  document.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement;
    const typing = target.tagName === 'INPUT' || target.tagName === 'SELECT' || target.tagName === 'TEXTAREA';
    if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey) {
      const s = document.getElementById('f-search');
      if (s !== null) {
        e.preventDefault();
        s.focus();
      }
    }
  });
}

function start(): void {
  const embedded = document.getElementById('routelens-data');
  if (embedded !== null) {
    const data = JSON.parse(embedded.textContent ?? '{}') as EmbeddedData & { settings?: Settings };
    app.api = new EmbeddedApi(data);
    app.settings = data.settings ?? { jaeger_url: null };
    if (data.routes.windows !== undefined) app.windows = data.routes.windows;
    app.window = data.routes.window;
    byId('signout').hidden = true;
  } else {
    app.api = new HttpApi();
    setupToken();
  }
  setupTheme();
  setupLive();
  setupKeys();
  byId<HTMLSelectElement>('window').addEventListener('change', (e) => {
    app.window = (e.target as HTMLSelectElement).value;
    const { view, params } = readNav();
    const p: Record<string, string> = {};
    params.forEach((v, k) => {
      if (k !== 'window') p[k] = v;
    });
    location.hash = navHref(view, p);
    say(`Window ${app.window}`);
  });
  window.addEventListener('hashchange', () => {
    if (location.hash !== app.viewKey) mount();
  });
  let resizeTimer: number | undefined;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => app.view?.resize?.(), 150);
  });
  mount();
}

start();
