/**
 * The page routequery serves at `/`: its HTML, its stylesheet, its scripts (compiled by tsc from ./page into
 * dist beside this file) and uPlot from node_modules. Everything is read once, gzipped once and served from
 * memory with a strict Content-Security-Policy: no inline script or style, nothing from another origin. The
 * same parts, inlined into one file with the API answers embedded, make the offline page
 * (`routelens analyze --html`); there the CSP is a meta tag allowing exactly the inlined scripts by hash.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { PAGE_CSS } from './page-css';

/** Page scripts in load order (classic scripts sharing one global scope; main.js starts the page). */
export const PAGE_SCRIPTS = ['dom.js', 'format.js', 'api.js', 'charts.js', 'views.js', 'main.js'] as const;

/** Header value of the served page: scripts, styles and requests from routelens itself only. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface PageAsset {
  type: string;
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

function uplotFile(name: string): string {
  return fs.readFileSync(require.resolve(`uplot/dist/${name}`), 'utf8');
}

function pageScript(name: string): string {
  const file = path.join(__dirname, 'page', name);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    throw new Error(`the page script ${file} is missing: build with \`npm run build\` (it compiles src/extensions/routequery/page)`);
  }
}

interface Parts {
  uplotJs: string;
  uplotCss: string;
  scripts: { name: string; code: string }[];
}

function readParts(): Parts {
  return {
    uplotJs: uplotFile('uPlot.iife.min.js'),
    uplotCss: uplotFile('uPlot.min.css'),
    scripts: PAGE_SCRIPTS.map((name) => ({ name, code: pageScript(name) })),
  };
}

const BODY = `
<a class="skip" href="#main">Skip to content</a>
<header class="bar">
  <a class="brand" href="#/routes">routelens</a>
  <nav aria-label="Views">
    <a href="#/routes" data-nav="routes">Routes</a>
    <a href="#/services" data-nav="services">Services</a>
    <a href="#/missing" data-nav="missing">Why is a route missing?</a>
  </nav>
  <div class="controls">
    <label for="window">Window</label>
    <select id="window"></select>
    <button id="live" type="button" aria-pressed="true" title="Refresh every 5 seconds">Live</button>
    <span id="updated" class="muted"></span>
    <button id="theme" type="button">Theme: auto</button>
    <button id="signout" type="button" hidden>Forget token</button>
  </div>
</header>
<div id="error" class="error" role="alert" hidden></div>
<main id="main" tabindex="-1">
  <p class="muted">Loading…</p>
</main>
<div id="status" class="sr-only" role="status" aria-live="polite"></div>
<dialog id="token-dialog" aria-labelledby="token-title">
  <form id="token-form" method="dialog">
    <h2 id="token-title">Bearer token</h2>
    <p>This routelens asks for a token (its bearertokenauth extension). It is kept in this tab only (sessionStorage) and sent with each API request.</p>
    <label for="token-input">Token</label>
    <input id="token-input" type="password" autocomplete="off" required>
    <p id="token-hint" role="alert"></p>
    <div class="actions"><button type="button" id="token-cancel">Cancel</button><button type="submit">Use token</button></div>
  </form>
</dialog>
<noscript><p>The routelens page needs JavaScript; the data is at <a href="api/v1/routes">api/v1/routes</a>.</p></noscript>
`;

function head(title: string, extra: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="icon" href="data:,">
${extra}
</head>`;
}

function servedHtml(): string {
  const scripts = ['ui/uPlot.iife.min.js', ...PAGE_SCRIPTS.map((s) => `ui/${s}`)].map((src) => `<script defer src="${src}"></script>`).join('\n');
  return `${head('routelens', `<link rel="stylesheet" href="ui/uPlot.min.css">\n<link rel="stylesheet" href="ui/page.css">\n${scripts}`)}
<body>${BODY}</body>
</html>
`;
}

function asset(type: string, text: string): PageAsset {
  const body = Buffer.from(text, 'utf8');
  return { type, body, gzip: zlib.gzipSync(body, { level: 9 }), etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

let cached: Map<string, PageAsset> | undefined;

/** The served page by URL path (`/`, `/ui/…`); built on first use. Throws when the page scripts were not built. */
export function pageAssets(): Map<string, PageAsset> {
  if (cached !== undefined) return cached;
  const parts = readParts();
  const m = new Map<string, PageAsset>();
  m.set('/', asset('text/html; charset=utf-8', servedHtml()));
  m.set('/ui/page.css', asset('text/css; charset=utf-8', PAGE_CSS));
  m.set('/ui/uPlot.min.css', asset('text/css; charset=utf-8', parts.uplotCss));
  m.set('/ui/uPlot.iife.min.js', asset('text/javascript; charset=utf-8', parts.uplotJs));
  for (const s of parts.scripts) m.set(`/ui/${s.name}`, asset('text/javascript; charset=utf-8', s.code));
  cached = m;
  return m;
}

/** Bytes of the served page and all its assets, raw and gzipped (what a first visit downloads). */
export function pageWeight(): { files: number; bytes: number; gzipBytes: number } {
  let bytes = 0;
  let gzipBytes = 0;
  const assets = pageAssets();
  for (const a of assets.values()) {
    bytes += a.body.length;
    gzipBytes += a.gzip.length;
  }
  return { files: assets.size, bytes, gzipBytes };
}

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** `</script` inside embedded JSON would end the element early; `<\/` is the same JSON string. */
function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/**
 * The page as one self-contained file: the same HTML, styles and scripts inlined, and `data` (the API answers,
 * see the page's EmbeddedApi) in a JSON script element the page reads instead of fetching.
 */
export function offlinePageHtml(data: unknown, title = 'routelens (offline)'): string {
  const parts = readParts();
  const styles = [parts.uplotCss, PAGE_CSS];
  const scripts = [parts.uplotJs, ...parts.scripts.map((s) => s.code)];
  const csp = `default-src 'none'; script-src ${scripts.map(sha256).join(' ')}; style-src ${styles.map(sha256).join(' ')}; img-src data:; base-uri 'none'; form-action 'none'`;
  const escapeAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
  const escapeText = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  // scripts run in order at the end of the body, after the JSON element they read
  return `${head(escapeText(title), `<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">\n${styles.map((s) => `<style>${s}</style>`).join('\n')}`)}
<body>${BODY}
<script type="application/json" id="routelens-data">${embedJson(data)}</script>
${scripts.map((s) => `<script>${s}</script>`).join('\n')}
</body>
</html>
`;
}
