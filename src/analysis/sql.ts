/**
 * SQL fingerprints: statements that differ only in literal values, placeholders, list lengths, comments or
 * whitespace get the same fingerprint text.
 *
 * A tokenizer, not a parser: it must survive truncated and dialect-specific text and run on every new
 * statement. Steps (see ../../docs and reference/trace-analysis.md §2.4):
 * 1. comments dropped: `/* … *\/` (sqlcommenter's `/*traceparent=…*\/` too), `-- …`, and `# …` for MySQL;
 * 2. string literals (`'…'`, `E'…'`, `N'…'`, `X'…'`, PostgreSQL `$tag$…$tag$`), numbers (decimal, exponent,
 *    hex `0x…`), booleans and every placeholder form (`?`, `$1`, `%s`, `%(name)s`, `:name`, `@p1`) become `?`;
 *    `NULL` stays (it changes the query plan: `IS NULL` is not `= ?`); identifiers, quoted or not, stay;
 * 3. lists collapse: `(?, ?, ?)` → `(?)`, so an IN-list of any length, SQLAlchemy's expanding
 *    `IN (%(id_1_1)s, %(id_1_2)s)` and `VALUES (?, ?), (?, ?)` → `VALUES (?)`, `ARRAY[?, ?]` → `ARRAY[?]`;
 * 4. tokens are joined by single spaces (none after `(`, `[` or `.`, none before `)`, `]`, `,` or `.`).
 *
 * `parameters` says whether the text carried values (literals) rather than placeholders only: the N+1
 * detector can then tell repeated executions with different values from identical ones.
 */

export interface SqlFingerprint {
  /** The normalised statement (`SELECT * FROM items WHERE order_id = ?`), at most {@link MAX_FINGERPRINT_CHARS}. */
  text: string;
  /** `SELECT items`: the operation and the tables, for display (like semconv's `db.query.summary`). */
  summary: string;
  /** The statement ended in `...` or `…` (cut by the client): it is not grouped with complete statements. */
  truncated: boolean;
  /** Literal values were replaced (the raw text differs per execution); false when only placeholders were seen. */
  literals: boolean;
}

export const MAX_FINGERPRINT_CHARS = 1000;
/** Statements longer than this are fingerprinted from their first part and marked truncated. */
const MAX_INPUT_CHARS = 8000;

const BOOLEANS = new Set(['TRUE', 'FALSE']);
const OPERATIONS = new Set([
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'UPSERT',
  'REPLACE',
  'WITH',
  'CALL',
  'EXEC',
  'EXECUTE',
  'CREATE',
  'ALTER',
  'DROP',
  'TRUNCATE',
  'BEGIN',
  'COMMIT',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'SET',
  'SHOW',
  'EXPLAIN',
  'PRAGMA',
  'VACUUM',
  'ANALYZE',
  'COPY',
  'LOCK',
  'GRANT',
  'REVOKE',
]);
/** Operations that count in a summary wherever they appear (sub-queries, INSERT … SELECT). */
const SUB_OPERATIONS = new Set(['SELECT', 'INSERT', 'DELETE', 'MERGE']);
/** Keywords after which the next identifier is a table. */
const TABLE_BEFORE = new Set(['FROM', 'JOIN', 'INTO', 'UPDATE', 'TABLE']);

const enum T {
  Word,
  Quoted, // "ident", `ident`, [ident]
  Value, // a literal or placeholder: printed as ?
  Punct,
}

interface Token {
  t: T;
  s: string;
  /** No whitespace before it in the raw text (tells `count(` from `t (`). */
  glued?: boolean;
}

function isWordStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}
function isWordPart(c: number): boolean {
  return isWordStart(c) || (c >= 48 && c <= 57) || c === 36;
}
function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Skips a quoted run starting at `i` (the opening quote); returns the index after the closing quote. */
function skipQuoted(s: string, i: number, quote: number, backslash: boolean): number {
  let j = i + 1;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (backslash && c === 92) {
      j += 2;
      continue;
    }
    if (c === quote) {
      if (s.charCodeAt(j + 1) === quote) {
        j += 2; // doubled quote inside the literal
        continue;
      }
      return j + 1;
    }
    j++;
  }
  return s.length;
}

function tokenize(sql: string, mysql: boolean): Token[] {
  const out: Token[] = [];
  const n = sql.length;
  let i = 0;
  const value = (): void => {
    out.push({ t: T.Value, s: '?' });
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    // whitespace
    if (c <= 32) {
      i++;
      continue;
    }
    // comments
    if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      const e = sql.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
      continue;
    }
    if ((c === 45 && sql.charCodeAt(i + 1) === 45) || (c === 35 && mysql)) {
      const e = sql.indexOf('\n', i);
      i = e < 0 ? n : e + 1;
      continue;
    }
    // string literals, with optional prefix E N X B U&
    if (c === 39) {
      i = skipQuoted(sql, i, 39, mysql);
      value();
      continue;
    }
    if ((c === 69 || c === 101 || c === 78 || c === 110 || c === 88 || c === 120 || c === 66 || c === 98) && sql.charCodeAt(i + 1) === 39) {
      i = skipQuoted(sql, i + 1, 39, mysql || c === 69 || c === 101);
      value();
      continue;
    }
    // MySQL double-quoted strings are strings; elsewhere "…" is an identifier
    if (c === 34) {
      const e = skipQuoted(sql, i, 34, mysql);
      if (mysql) value();
      else out.push({ t: T.Quoted, s: sql.slice(i, e) });
      i = e;
      continue;
    }
    if (c === 96) {
      const e = skipQuoted(sql, i, 96, false);
      out.push({ t: T.Quoted, s: sql.slice(i, e) });
      i = e;
      continue;
    }
    if (c === 91 && !mysql && isWordStart(sql.charCodeAt(i + 1)) && sql.indexOf(']', i) > 0 && !/^ARRAY$/i.test(lastWord(out))) {
      const e = sql.indexOf(']', i) + 1;
      out.push({ t: T.Quoted, s: sql.slice(i, e) });
      i = e;
      continue;
    }
    // $1 placeholders and $tag$ … $tag$ strings
    if (c === 36) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        i += 2;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        value();
        continue;
      }
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i, i + 64));
      if (m !== null) {
        const tag = m[0];
        const e = sql.indexOf(tag, i + tag.length);
        i = e < 0 ? n : e + tag.length;
        value();
        continue;
      }
    }
    // %s and %(name)s
    if (c === 37) {
      if (sql.charCodeAt(i + 1) === 115) {
        i += 2;
        value();
        continue;
      }
      if (sql.charCodeAt(i + 1) === 40) {
        const e = sql.indexOf(')', i);
        if (e > 0 && sql.charCodeAt(e + 1) === 115) {
          i = e + 2;
          value();
          continue;
        }
      }
    }
    if (c === 63) {
      i++;
      value();
      continue;
    }
    // :name placeholders (not PostgreSQL :: casts); @p1 / @name (SQL Server)
    if (
      (c === 58 && sql.charCodeAt(i + 1) !== 58 && sql.charCodeAt(i - 1) !== 58 && isWordStart(sql.charCodeAt(i + 1))) ||
      (c === 64 && isWordStart(sql.charCodeAt(i + 1)))
    ) {
      i++;
      while (i < n && isWordPart(sql.charCodeAt(i))) i++;
      value();
      continue;
    }
    if (c === 58 && isDigit(sql.charCodeAt(i + 1)) && sql.charCodeAt(i - 1) !== 58) {
      // :1 (Oracle)
      i++;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      value();
      continue;
    }
    // numbers: 12, 1.5, .5, 1e-3, 0x1F
    if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      if (c === 48 && (sql.charCodeAt(i + 1) | 32) === 120) {
        i += 2;
        while (i < n && /[0-9a-fA-F]/.test(sql.charAt(i))) i++;
      } else {
        while (i < n && (isDigit(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46)) i++;
        if (
          (sql.charCodeAt(i) | 32) === 101 &&
          (isDigit(sql.charCodeAt(i + 1)) || ((sql.charCodeAt(i + 1) === 45 || sql.charCodeAt(i + 1) === 43) && isDigit(sql.charCodeAt(i + 2))))
        ) {
          i += 2;
          while (i < n && isDigit(sql.charCodeAt(i))) i++;
        }
      }
      // a number glued to letters is part of an identifier (t1, users_2024 are words: handled below)
      unaryMinus(out);
      value();
      continue;
    }
    if (isWordStart(c)) {
      let e = i + 1;
      while (e < n && isWordPart(sql.charCodeAt(e))) e++;
      const w = sql.slice(i, e);
      if (BOOLEANS.has(w.toUpperCase())) value();
      else out.push({ t: T.Word, s: w });
      i = e;
      continue;
    }
    // operators: keep runs of operator characters together (<=, <>, ::, ||, ->>)
    let e = i + 1;
    if ('<>=!|:-+*/&^~'.includes(sql.charAt(i))) while (e < n && '<>=!|:-&^~>'.includes(sql.charAt(e))) e++;
    out.push({ t: T.Punct, s: sql.slice(i, e), glued: i > 0 && sql.charCodeAt(i - 1) > 32 });
    i = e;
  }
  return out;
}

function lastWord(out: readonly Token[]): string {
  const t = out[out.length - 1];
  return t !== undefined && t.t === T.Word ? t.s : '';
}

/** A `-` right before a number is the number's sign when it cannot be a subtraction (after `(`, `,`, an operator or a keyword). */
function unaryMinus(out: Token[]): void {
  const last = out[out.length - 1];
  if (last === undefined || last.t !== T.Punct || last.s !== '-') return;
  const before = out[out.length - 2];
  if (before === undefined || (before.t === T.Punct && before.s !== ')' && before.s !== ']') || (before.t === T.Word && isKeywordLike(before.s))) out.pop();
}

const KEYWORDS_BEFORE_VALUES = new Set([
  'SELECT',
  'WHERE',
  'AND',
  'OR',
  'NOT',
  'IN',
  'VALUES',
  'SET',
  'BY',
  'LIMIT',
  'OFFSET',
  'THEN',
  'ELSE',
  'WHEN',
  'RETURN',
  'BETWEEN',
  'IS',
  'LIKE',
  'ON',
  'HAVING',
]);
function isKeywordLike(w: string): boolean {
  return KEYWORDS_BEFORE_VALUES.has(w.toUpperCase());
}

/** Collapses `( ? , ? … )` to `( ? )` and repeated `, ( ? )` groups after VALUES; `ARRAY [ ? , ? ]` to `ARRAY [ ? ]`. */
function collapseLists(tokens: Token[]): Token[] {
  const out: Token[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as Token;
    if (tok.t === T.Punct && (tok.s === '(' || tok.s === '[')) {
      const close = tok.s === '(' ? ')' : ']';
      let j = i + 1;
      let values = 0;
      let ok = true;
      while (j < tokens.length) {
        const v = tokens[j] as Token;
        if (v.t !== T.Value) {
          ok = false;
          break;
        }
        values++;
        const sep = tokens[j + 1];
        if (sep === undefined) {
          ok = false;
          break;
        }
        if (sep.t === T.Punct && sep.s === close) break;
        if (!(sep.t === T.Punct && sep.s === ',')) {
          ok = false;
          break;
        }
        j += 2;
      }
      if (ok && values > 0 && j + 1 < tokens.length) {
        out.push(tok, { t: T.Value, s: '?' }, tokens[j + 1] as Token);
        i = j + 1;
        // VALUES (?), (?), (?) → VALUES (?)
        while (
          tokens[i + 1]?.t === T.Punct &&
          tokens[i + 1]?.s === ',' &&
          tokens[i + 2]?.s === '(' &&
          tokens[i + 3]?.t === T.Value &&
          rowEnd(tokens, i + 2) > 0
        ) {
          i = rowEnd(tokens, i + 2);
        }
        continue;
      }
    }
    out.push(tok);
  }
  return out;
}

/** If tokens[at] opens a `( ? , ? … )` row, the index of its `)`; else -1. */
function rowEnd(tokens: readonly Token[], at: number): number {
  if (tokens[at]?.s !== '(') return -1;
  let j = at + 1;
  for (;;) {
    if (tokens[j]?.t !== T.Value) return -1;
    const sep = tokens[j + 1];
    if (sep === undefined || sep.t !== T.Punct) return -1;
    if (sep.s === ')') return j + 1;
    if (sep.s !== ',') return -1;
    j += 2;
  }
}

/** Keywords written with a space before a following `(` whatever the raw text did (`IN (?)`, `VALUES (?)`). */
const SPACED_BEFORE_PAREN = new Set([
  'IN',
  'VALUES',
  'AND',
  'OR',
  'NOT',
  'WHERE',
  'ON',
  'FROM',
  'SELECT',
  'JOIN',
  'USING',
  'AS',
  'THEN',
  'ELSE',
  'WHEN',
  'BY',
  'HAVING',
  'SET',
  'RETURNING',
  'INTO',
  'IS',
  'LIKE',
  'BETWEEN',
  'EXISTS',
]);

function join(tokens: readonly Token[]): string {
  let out = '';
  let prev: Token | undefined;
  for (const tok of tokens) {
    const s = tok.s;
    const p = prev?.s ?? '';
    const call = (s === '(' || s === '[') && tok.glued === true && prev?.t === T.Word && !SPACED_BEFORE_PAREN.has(p.toUpperCase());
    const noSpace =
      prev === undefined || p === '(' || p === '[' || p === '.' || p === '::' || s === ')' || s === ']' || s === ',' || s === '.' || s === '::' || call;
    out += noSpace ? s : ` ${s}`;
    prev = tok;
    if (out.length > MAX_FINGERPRINT_CHARS) return out.slice(0, MAX_FINGERPRINT_CHARS);
  }
  return out;
}

function summarize(tokens: readonly Token[]): string {
  const parts: string[] = [];
  for (let i = 0; i < tokens.length && parts.length < 8; i++) {
    const tok = tokens[i] as Token;
    if (tok.t !== T.Word) continue;
    const up = tok.s.toUpperCase();
    const prev = i > 0 ? (tokens[i - 1] as Token) : undefined;
    if (OPERATIONS.has(up) && (prev === undefined || (prev.t === T.Punct && prev.s === '(') || SUB_OPERATIONS.has(up))) parts.push(up);
    if (!TABLE_BEFORE.has(up) || (up === 'TABLE' && parts.length === 0)) continue;
    let j = i + 1;
    // skip ONLY / IF NOT EXISTS and the like
    while (tokens[j]?.t === T.Word && ['ONLY', 'IF', 'NOT', 'EXISTS', 'LATERAL'].includes((tokens[j] as Token).s.toUpperCase())) j++;
    let name = '';
    for (;;) {
      const t = tokens[j];
      if (t === undefined || (t.t !== T.Word && t.t !== T.Quoted)) break;
      name += t.s;
      if (tokens[j + 1]?.s !== '.') break;
      name += '.';
      j += 2;
    }
    if (name !== '' && !OPERATIONS.has(name.toUpperCase())) parts.push(name);
  }
  return parts.join(' ');
}

/** Fingerprint of one statement. `system` is `db.system.name` ?? `db.system` (dialect: MySQL comments and strings). */
export function fingerprintSql(statement: string, system = ''): SqlFingerprint {
  let text = statement;
  let truncated = false;
  if (text.length > MAX_INPUT_CHARS) {
    text = text.slice(0, MAX_INPUT_CHARS);
    truncated = true;
  }
  const trimmed = text.trimEnd();
  if (trimmed.endsWith('...') || trimmed.endsWith('…')) truncated = true;
  const mysql = system === 'mysql' || system === 'mariadb';
  const tokens = tokenize(text, mysql);
  const literals = countLiterals(text, tokens);
  const collapsed = collapseLists(tokens);
  return { text: join(collapsed), summary: summarize(tokens), truncated, literals };
}

/** True when some Value token came from a literal (digits, quotes, booleans) rather than a placeholder. */
function countLiterals(raw: string, tokens: readonly Token[]): boolean {
  let values = 0;
  for (const t of tokens) if (t.t === T.Value) values++;
  if (values === 0) return false;
  // Placeholders in the raw text; any value beyond them was a literal.
  const placeholders = (raw.match(/\?|\$\d+|%s|%\([^)]*\)s|(?<!:):[A-Za-z_]\w*|@[A-Za-z_]\w*/g) ?? []).length;
  return values > placeholders;
}

/**
 * Fingerprint of a cache or key-value command (Redis `GET ?` → `GET`, pipelines one command per line →
 * `GET SET`): the command names only.
 */
export function fingerprintCommand(statement: string): SqlFingerprint {
  const words = statement
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0]?.toUpperCase() ?? '')
    .filter((w) => w !== '');
  const text = words.slice(0, 16).join(' ');
  return { text, summary: text, truncated: false, literals: false };
}

/** Bounded memo of fingerprints by raw statement text: parameterised statements repeat verbatim. */
export class FingerprintCache {
  readonly #max: number;
  #map = new Map<string, SqlFingerprint>();
  #old = new Map<string, SqlFingerprint>();

  constructor(max = 4096) {
    this.#max = max;
  }

  get(statement: string, system: string): SqlFingerprint {
    const key = system === '' ? statement : `${system}\u0000${statement}`;
    let fp = this.#map.get(key);
    if (fp !== undefined) return fp;
    fp = this.#old.get(key);
    if (fp === undefined) fp = isCommandSystem(system) ? fingerprintCommand(statement) : fingerprintSql(statement, system);
    // Two generations: a statement used in the last `max` distinct ones stays; others age out.
    if (this.#map.size >= this.#max) {
      this.#old = this.#map;
      this.#map = new Map();
    }
    this.#map.set(key, fp);
    return fp;
  }
}

/** Key-value stores whose statements are commands, not SQL. */
export function isCommandSystem(system: string): boolean {
  return system === 'redis' || system === 'memcached' || system === 'valkey';
}
