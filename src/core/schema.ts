/**
 * A small declarative schema for component configs. A schema both parses (defaults, type checks, unknown
 * keys rejected, every problem reported with its YAML path) and yields the config's TypeScript type, so a
 * component declares each key once: `type Config = Infer<typeof configSchema>`.
 */

/** A parser of one YAML value. `doc` and `defaultText` feed the generated config reference. */
/** Errors collected while parsing config, each prefixed with its YAML path. */
export interface ConfigIssues {
  add(path: string, message: string): void;
}

export interface Field<T> {
  parse(raw: unknown, path: string, issues: ConfigIssues): T;
  readonly doc?: string | undefined;
  readonly defaultText?: string | undefined;
  /** Describes the expected value, used in messages and docs, e.g. `a duration such as "5s"`. */
  readonly expected: string;
  /** Nested fields for object schemas (docs). */
  readonly fields?: Readonly<Record<string, Field<unknown>>> | undefined;
}

export type Infer<F> = F extends Field<infer T> ? T : never;

interface Common<T> {
  /** Default used when the key is absent or null. */
  default?: T;
  doc?: string;
  /** Report a missing key (when there is no default). */
  required?: boolean;
}

function describe(raw: unknown): string {
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (typeof raw === 'object') return 'a map';
  if (typeof raw === 'string') return JSON.stringify(raw);
  return `${typeof raw} ${String(raw)}`;
}

function make<T>(
  expected: string,
  opts: Common<T> | undefined,
  check: (raw: unknown, path: string, issues: ConfigIssues) => T | undefined,
  fallback: T,
  defaultText?: string,
): Field<T> {
  return {
    expected,
    doc: opts?.doc,
    defaultText: defaultText ?? (opts?.default === undefined ? undefined : JSON.stringify(opts.default)),
    parse(raw, path, issues) {
      if (raw === undefined || raw === null) {
        if (opts !== undefined && 'default' in opts) return opts.default as T;
        if (opts?.required) issues.add(path, `is required; expected ${expected}`);
        return fallback;
      }
      const value = check(raw, path, issues);
      if (value === undefined) return opts?.default ?? fallback;
      return value;
    },
  };
}

function bad(issues: ConfigIssues, path: string, raw: unknown, expected: string): undefined {
  issues.add(path, `invalid value ${describe(raw)}; expected ${expected}`);
  return undefined;
}

export function str(opts?: Common<string> & { nonEmpty?: boolean }): Field<string> {
  const expected = opts?.nonEmpty ? 'a non-empty string' : 'a string';
  const o = opts?.nonEmpty && opts.default === undefined ? { required: true, ...opts } : opts;
  return make(
    expected,
    o,
    (raw, path, issues) => {
      if (typeof raw === 'number' || typeof raw === 'boolean') raw = String(raw);
      if (typeof raw !== 'string' || (opts?.nonEmpty && raw === '')) return bad(issues, path, raw, expected);
      return raw;
    },
    opts?.default ?? '',
  );
}

/** A string that may be absent. */
export function optStr(opts?: { doc?: string }): Field<string | undefined> {
  return make<string | undefined>(
    'a string',
    opts,
    (raw, path, issues) => {
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      if (typeof raw !== 'string') return bad(issues, path, raw, 'a string');
      return raw;
    },
    undefined,
  );
}

export function num(opts?: Common<number> & { min?: number; max?: number; integer?: boolean }): Field<number> {
  const parts: string[] = [opts?.integer ? 'an integer' : 'a number'];
  if (opts?.min !== undefined) parts.push(`>= ${opts.min}`);
  if (opts?.max !== undefined) parts.push(`<= ${opts.max}`);
  const expected = parts.join(' ');
  return make(
    expected,
    opts,
    (raw, path, issues) => {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n)) return bad(issues, path, raw, expected);
      if (opts?.integer && !Number.isInteger(n)) return bad(issues, path, raw, expected);
      if (opts?.min !== undefined && n < opts.min) return bad(issues, path, raw, expected);
      if (opts?.max !== undefined && n > opts.max) return bad(issues, path, raw, expected);
      return n;
    },
    opts?.default ?? 0,
  );
}

export function bool(opts?: Common<boolean>): Field<boolean> {
  return make(
    'true or false',
    opts,
    (raw, path, issues) => {
      if (typeof raw === 'boolean') return raw;
      // The YAML 1.2 spellings, for a value that arrived as a string (e.g. from ${env:VAR}).
      if (raw === 'true' || raw === 'True' || raw === 'TRUE') return true;
      if (raw === 'false' || raw === 'False' || raw === 'FALSE') return false;
      return bad(issues, path, raw, 'true or false');
    },
    opts?.default ?? false,
  );
}

export function oneOf<const V extends string>(values: readonly V[], opts?: Common<V>): Field<V> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return make<V>(
    expected,
    opts,
    (raw, path, issues) => {
      if (typeof raw === 'string' && (values as readonly string[]).includes(raw)) return raw as V;
      return bad(issues, path, raw, expected);
    },
    opts?.default ?? (values[0] as V),
  );
}

const durationUnits: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parse a Go-style duration ("1h30m", "200ms", "5s") into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  const s = text.trim();
  if (s === '0') return 0;
  if (s === '') return undefined;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) return undefined;
    total += Number(m[1]) * (durationUnits[m[2] as string] as number);
    pos = re.lastIndex;
  }
  return total;
}

/** A duration such as "5s" or "1m30s", parsed to milliseconds. */
export function duration(opts?: { default?: string; doc?: string; min?: string }): Field<number> {
  const expected = 'a duration such as "200ms", "5s", "1m"';
  const minMs = opts?.min === undefined ? undefined : parseDuration(opts.min);
  const field = make<number>(
    expected,
    { ...(opts?.doc === undefined ? {} : { doc: opts.doc }) },
    (raw, path, issues) => {
      // A bare 0 (YAML number) means zero, as in the Collector (`max_elapsed_time: 0`); other bare numbers
      // are ambiguous (Go would read nanoseconds) and need a unit.
      if (raw === 0) raw = '0';
      if (typeof raw !== 'string') return bad(issues, path, raw, expected);
      const ms = parseDuration(raw);
      if (ms === undefined) return bad(issues, path, raw, expected);
      if (minMs !== undefined && ms < minMs) return bad(issues, path, raw, `a duration of at least ${opts?.min}`);
      return ms;
    },
    opts?.default === undefined ? 0 : (parseDuration(opts.default) ?? 0),
    opts?.default === undefined ? undefined : JSON.stringify(opts.default),
  );
  return field;
}

/** `host:port` (host may be empty or a bracketed IPv6 address). */
export function endpoint(opts?: Common<string>): Field<string> {
  const expected = 'an endpoint "host:port" with a port 0-65535';
  return make(
    expected,
    opts,
    (raw, path, issues) => {
      if (typeof raw !== 'string' || splitHostPort(raw) === undefined) return bad(issues, path, raw, expected);
      return raw;
    },
    opts?.default ?? '',
  );
}

export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]*):(\d{1,5})$/.exec(text);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = (m[1] as string).replace(/^\[|\]$/g, '');
  return { host, port };
}

/** A URL with http or https scheme. */
export function url(opts?: Common<string>): Field<string> {
  const expected = 'a URL such as "http://host:4318"';
  return make(
    expected,
    opts,
    (raw, path, issues) => {
      if (typeof raw !== 'string') return bad(issues, path, raw, expected);
      try {
        const u = new URL(raw);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') return bad(issues, path, raw, expected);
      } catch {
        return bad(issues, path, raw, expected);
      }
      return raw;
    },
    opts?.default ?? '',
  );
}

export function list<T>(item: Field<T>, opts?: Common<T[]> & { minItems?: number; unique?: boolean }): Field<T[]> {
  const expected = `a list of ${item.expected}`;
  const f = make<T[]>(
    expected,
    opts,
    (raw, path, issues) => {
      if (!Array.isArray(raw)) return bad(issues, path, raw, expected);
      const out = raw.map((r, i) => item.parse(r, `${path}[${i}]`, issues));
      if (opts?.minItems !== undefined && out.length < opts.minItems) {
        issues.add(path, `needs at least ${opts.minItems} item(s)`);
      }
      if (opts?.unique) {
        const seen = new Set<string>();
        out.forEach((v, i) => {
          const k = JSON.stringify(v);
          if (seen.has(k)) issues.add(`${path}[${i}]`, `duplicate entry ${k}`);
          seen.add(k);
        });
      }
      return out;
    },
    opts?.default ?? [],
  );
  return { ...f, fields: item.fields };
}

export function record<T>(item: Field<T>, opts?: Common<Record<string, T>>): Field<Record<string, T>> {
  const expected = `a map of ${item.expected}`;
  return make<Record<string, T>>(
    expected,
    opts,
    (raw, path, issues) => {
      if (typeof raw !== 'object' || Array.isArray(raw)) return bad(issues, path, raw, expected);
      const out: Record<string, T> = {};
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) out[k] = item.parse(v, `${path}.${k}`, issues);
      return out;
    },
    opts?.default ?? {},
  );
}

type Shape = Record<string, Field<unknown>>;
export type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/** A map with known keys; unknown keys are reported with the list of valid ones. */
export function obj<S extends Shape>(shape: S, opts?: { doc?: string }): Field<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const expected = 'a map';
  return {
    expected,
    doc: opts?.doc,
    fields: shape,
    parse(raw, path, issues) {
      let input: Record<string, unknown> = {};
      if (raw !== undefined && raw !== null) {
        if (typeof raw !== 'object' || Array.isArray(raw)) {
          issues.add(path, `invalid value ${describe(raw)}; expected a map with keys ${keys.join(', ')}`);
        } else {
          input = raw as Record<string, unknown>;
          const unknown = Object.keys(input).filter((k) => !(k in shape));
          for (const k of unknown) {
            issues.add(join(path, k), `unknown key ${JSON.stringify(k)}; expected one of ${keys.join(', ')}`);
          }
        }
      }
      const out: Record<string, unknown> = {};
      for (const k of keys) out[k] = (shape[k] as Field<unknown>).parse(input[k], join(path, k), issues);
      return out as ObjectOf<S>;
    },
  };
}

/** An object that is `undefined` when absent (a section that turns a feature on by being present). */
export function optional<T>(field: Field<T>): Field<T | undefined> {
  return {
    ...field,
    parse(raw, path, issues) {
      if (raw === undefined) return undefined;
      return field.parse(raw, path, issues);
    },
  };
}

/** A field with an extra cross-key check run after parsing. */
export function refine<T>(field: Field<T>, check: (value: T, path: string, issues: ConfigIssues) => void): Field<T> {
  return {
    ...field,
    parse(raw, path, issues) {
      const v = field.parse(raw, path, issues);
      check(v, path, issues);
      return v;
    },
  };
}

export function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Collected config problems, formatted one per line with the YAML path first. */
export class ConfigErrorList implements ConfigIssues {
  readonly items: { path: string; message: string }[] = [];
  add(path: string, message: string): void {
    this.items.push({ path, message });
  }
  get empty(): boolean {
    return this.items.length === 0;
  }
  format(): string {
    return this.items.map((i) => `${i.path}: ${i.message}`).join('\n');
  }
}

/** Thrown by the loader when the config has problems; `main` prints it and exits 2. */
export class ConfigError extends Error {
  readonly issues: readonly { path: string; message: string }[];
  constructor(issues: readonly { path: string; message: string }[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
