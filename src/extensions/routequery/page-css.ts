/** The page's stylesheet (served as ui/page.css, inlined in the offline file). Light and dark via variables. */
export const PAGE_CSS = `
:root {
  color-scheme: light;
  --bg: #ffffff; --fg: #1b1f24; --muted: #59636e; --line: #d8dee4; --grid: #e6eaef; --panel: #f6f8fa;
  --accent: #0b57d0; --bad: #b3261e; --warn-bg: #fff4ce; --warn-fg: #6b4f00; --focus: #0b57d0;
  --c-p50: #6a7785; --c-p95: #b26b00; --c-p99: #c62828; --c-rate: #0b57d0;
  --c-2xx: #2e7d32; --c-3xx: #0277bd; --c-4xx: #b26b00; --c-5xx: #c62828;
  --c-bar: #0b57d0; --c-bar-fill: rgba(11, 87, 208, 0.35); --impact: #9fb8e8;
}
@media (prefers-color-scheme: dark) {
  :root:not([data-theme='light']) {
    color-scheme: dark;
    --bg: #111418; --fg: #e6e9ed; --muted: #9aa4af; --line: #2d333b; --grid: #22272e; --panel: #1a1f25;
    --accent: #8ab4f8; --bad: #f28b82; --warn-bg: #3d3200; --warn-fg: #ffe08a; --focus: #8ab4f8;
    --c-p50: #9aa4af; --c-p95: #fbbc04; --c-p99: #f28b82; --c-rate: #8ab4f8;
    --c-2xx: #81c995; --c-3xx: #78d9ec; --c-4xx: #fbbc04; --c-5xx: #f28b82;
    --c-bar: #8ab4f8; --c-bar-fill: rgba(138, 180, 248, 0.35); --impact: #3c5a8a;
  }
}
:root[data-theme='dark'] {
  color-scheme: dark;
  --bg: #111418; --fg: #e6e9ed; --muted: #9aa4af; --line: #2d333b; --grid: #22272e; --panel: #1a1f25;
  --accent: #8ab4f8; --bad: #f28b82; --warn-bg: #3d3200; --warn-fg: #ffe08a; --focus: #8ab4f8;
  --c-p50: #9aa4af; --c-p95: #fbbc04; --c-p99: #f28b82; --c-rate: #8ab4f8;
  --c-2xx: #81c995; --c-3xx: #78d9ec; --c-4xx: #fbbc04; --c-5xx: #f28b82;
  --c-bar: #8ab4f8; --c-bar-fill: rgba(138, 180, 248, 0.35); --impact: #3c5a8a;
}
* { box-sizing: border-box; }
html { background: var(--bg); color: var(--fg); font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, select:focus-visible, input:focus-visible, [tabindex]:focus-visible { outline: 2px solid var(--focus); outline-offset: 2px; }
code { font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.skip { position: absolute; left: -999px; top: 0; background: var(--panel); padding: 6px 10px; z-index: 10; }
.skip:focus { left: 8px; }
.muted { color: var(--muted); }
header.bar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 10px 20px; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; font-size: 16px; color: var(--fg); text-decoration: none; }
header nav { display: flex; gap: 4px; }
header nav a { padding: 4px 10px; border-radius: 6px; text-decoration: none; color: var(--fg); }
header nav a[aria-current='page'] { background: var(--bg); border: 1px solid var(--line); font-weight: 600; }
.controls { display: flex; align-items: center; gap: 10px; margin-left: auto; flex-wrap: wrap; }
button, select, input { font: inherit; color: var(--fg); background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; }
button { cursor: pointer; }
button:disabled { opacity: 0.5; cursor: default; }
button[aria-pressed='true'] { border-color: var(--c-2xx); }
button[aria-pressed='true']::before { content: '● '; color: var(--c-2xx); }
main { padding: 16px 20px 40px; max-width: 1400px; margin: 0 auto; }
main:focus { outline: none; }
h1 { font-size: 20px; margin: 4px 0 12px; word-break: break-all; }
h1:focus { outline: none; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 14px; margin: 16px 0 6px; }
.h1-sub { font-weight: 400; font-size: 14px; }
.method { color: var(--muted); font-weight: 600; }
.error { background: var(--warn-bg); color: var(--warn-fg); border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin: 0 0 12px; }
.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end; margin-bottom: 12px; }
.field { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.field.grow { flex: 1 1 260px; }
.field input, .field select { font-size: 14px; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; padding: 8px 10px; font-size: 13px; caption-side: top; }
th, td { padding: 5px 10px; border-top: 1px solid var(--line); text-align: left; vertical-align: top; white-space: nowrap; }
thead th { border-top: none; background: var(--panel); font-size: 12px; font-weight: 600; color: var(--muted); position: sticky; top: 0; }
tbody th { font-weight: 400; }
th.route, td.route { white-space: normal; word-break: break-all; min-width: 220px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.few { color: var(--muted); }
td.bad, td.bad .muted { color: var(--bad); }
td.empty { text-align: center; padding: 24px; color: var(--muted); white-space: normal; }
tbody tr:hover { background: var(--panel); }
button.sort { border: none; background: none; padding: 0; font: inherit; color: inherit; cursor: pointer; }
th[aria-sort] button.sort { color: var(--fg); text-decoration: underline; }
th[aria-sort] button.sort::after { content: ' ↓'; }
td.impact { position: relative; min-width: 110px; }
.impact-bar { position: absolute; left: 0; top: 20%; height: 60%; background: var(--impact); opacity: 0.55; border-radius: 0 3px 3px 0; }
td.impact span:not(.impact-bar) { position: relative; }
.badge { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 10px; border: 1px solid var(--line); color: var(--muted); }
.badge.warn { background: var(--warn-bg); color: var(--warn-fg); }
.where { display: block; font-size: 12px; }
.dims { font-size: 12px; }
.pager { display: flex; gap: 12px; align-items: center; justify-content: flex-end; margin-top: 10px; }
.crumbs { font-size: 13px; color: var(--muted); }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 8px 0 16px; }
.stat { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; background: var(--panel); }
.stat-title { font-size: 12px; color: var(--muted); }
.stat-value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
.stat-detail { font-size: 12px; }
.stat[data-stat='status'] .stat-value { font-size: 15px; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px; min-width: 0; }
figure.chart figcaption { font-size: 13px; font-weight: 600; margin-bottom: 4px; }
.plot { width: 100%; min-height: 200px; }
.note { font-size: 12px; margin: 4px 0 0; }
.u-legend { font-size: 12px; color: var(--fg); }
.u-legend th, .u-legend td { border: none; padding: 0 4px; }
table.plain { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; }
table.plain td { white-space: normal; }
code.sql { word-break: break-word; white-space: pre-wrap; }
.unavailable { border: 1px dashed var(--line); border-radius: 8px; padding: 12px; color: var(--muted); }
.summary { font-size: 15px; }
.checklist li { margin: 4px 0; }
ul.kv { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: 2px 12px; }
ul.kv .k { color: var(--muted); }
ul.kv .v { font-variant-numeric: tabular-nums; }
dialog { border: 1px solid var(--line); border-radius: 10px; background: var(--bg); color: var(--fg); padding: 20px; max-width: 420px; }
dialog::backdrop { background: rgba(0, 0, 0, 0.4); }
dialog form { display: flex; flex-direction: column; gap: 10px; }
dialog .actions { display: flex; gap: 8px; justify-content: flex-end; }
#token-hint { color: var(--bad); min-height: 1em; margin: 0; }
@media (max-width: 1100px) { .charts { grid-template-columns: 1fr; } main { padding: 12px; } }
`;
