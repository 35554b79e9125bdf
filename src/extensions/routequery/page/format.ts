/**
 * Number and time formatting for the page (a classic script: its functions are globals the other page scripts
 * use). Durations follow the CLI table: 3 significant digits with a unit chosen after rounding.
 */

/** `432µs`, `12.3ms`, `123ms`, `1.20s`, `95.0s`, `2.50m`; `–` for null. */
function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms === 0) return '0';
  const r = Number(ms.toPrecision(3));
  if (r < 1) return `${sig3(ms * 1000)}µs`;
  if (r < 1000) return `${sig3(ms)}ms`;
  if (r < 100_000) return `${sig3(ms / 1000)}s`;
  return `${sig3(ms / 60_000)}m`;
}

function sig3(x: number): string {
  const r = Number(x.toPrecision(3));
  if (r >= 100) return String(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  if (r >= 1) return r.toFixed(2);
  return r.toPrecision(3);
}

/** Requests per second: `1204`, `20.1`, `0.35`, `<0.01`. */
function fmtRate(r: number): string {
  if (r === 0) return '0';
  if (r >= 100) return String(Math.round(r));
  if (r >= 10) return r.toFixed(1);
  if (r >= 0.01) return r.toFixed(2);
  return '<0.01';
}

/** A ratio as a percentage: `0%`, `<0.1%`, `2.5%`, `12%`. */
function fmtPct(ratio: number): string {
  if (ratio === 0) return '0%';
  const p = ratio * 100;
  if (p < 0.1) return '<0.1%';
  return p >= 10 ? `${Math.round(p)}%` : `${p.toFixed(1)}%`;
}

/** An integer with thin-space thousands separators: `12 045`. */
function fmtCount(n: number): string {
  return Math.round(n)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, '\u202f');
}

/** Bytes: `812 B`, `14.2 KiB`, `96.0 MiB`. */
function fmtBytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Math.abs(b);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const s = u === 0 ? String(Math.round(v)) : sig3(v);
  return `${b < 0 ? '−' : ''}${s} ${units[u]}`;
}

/** Impact (ms of request time per second of wall time, rate × p95): `412ms/s`, `1.20s/s`. */
function fmtImpact(msPerS: number | null): string {
  if (msPerS === null || !Number.isFinite(msPerS) || msPerS < 0) return '–';
  if (msPerS === 0) return '0';
  return `${fmtMs(msPerS)}/s`;
}

/** Local wall-clock time of an ISO timestamp: `14:03:27`. */
function fmtClock(iso: string | number): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** The relative error as a percentage: `±0.54%`. */
function fmtError(relative: number): string {
  return `±${(relative * 100).toFixed(2)}%`;
}

/**
 * Whether a q-quantile from n samples is in fact the largest value: with fewer than 1 / (1 − q) samples the
 * nearest rank is n (p99 needs 100 samples before it differs from the max).
 */
function isMaxOnly(q: number, n: number): boolean {
  return n > 0 && Math.ceil(q * n * (1 - 1e-12)) >= n && n < 1 / (1 - q);
}
