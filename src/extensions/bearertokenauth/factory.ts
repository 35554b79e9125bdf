/**
 * The `bearertokenauth` extension: a static bearer token, as server authenticator (receivers, the query API:
 * requests must carry `Authorization: <scheme> <token>`) and as client authenticator (exporters send that
 * header). With `filename` the token is read from a file and re-read when the file changes, so a rotated
 * Kubernetes secret applies without a restart.
 */
import { timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientAuthenticator, ServerAuthenticator } from '../../core/auth';
import type { Component, CreateSettings } from '../../core/component';
import type { ExtensionFactory } from '../../consumer/factory';
import { bearerTokenAuthConfigSchema, type BearerTokenAuthConfig } from './config';

/**
 * How often a token file is checked for changes. The check is a `stat` made when a request needs the token
 * (not a background watcher, which would depend on the libuv thread pool being free); it follows atomic
 * renames and the symlink swaps Kubernetes uses for secrets.
 */
export const TOKEN_FILE_POLL_MS = 500;

export class BearerTokenAuthExtension implements Component, ServerAuthenticator, ClientAuthenticator {
  readonly #config: BearerTokenAuthConfig;
  readonly #settings: CreateSettings;
  #expected: Buffer | undefined;
  #header = '';
  #fileStamp = '';
  #checkedAt = 0;

  constructor(settings: CreateSettings, config: BearerTokenAuthConfig) {
    this.#settings = settings;
    this.#config = config;
  }

  async start(): Promise<void> {
    this.#load(true);
  }

  async shutdown(): Promise<void> {}

  /** Re-read the token file when it changed, at most every TOKEN_FILE_POLL_MS. */
  #refresh(): void {
    if (this.#expected === undefined) {
      this.#load(true);
      return;
    }
    const file = this.#config.filename;
    if (file === undefined || file === '') return;
    const now = Date.now();
    if (now - this.#checkedAt < TOKEN_FILE_POLL_MS) return;
    this.#checkedAt = now;
    if (this.#stamp(file) !== this.#fileStamp) this.#load(false);
  }

  #stamp(file: string): string {
    try {
      const s = fs.statSync(file);
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch {
      return 'missing';
    }
  }

  /** (Re)read the token. At start a missing or empty token file is an error; later the old token stays. */
  #load(atStart: boolean): void {
    const file = this.#config.filename;
    let token = this.#config.token ?? '';
    if (file !== undefined && file !== '') {
      this.#fileStamp = this.#stamp(file);
      this.#checkedAt = Date.now();
      try {
        token = fs.readFileSync(file, 'utf8').trim();
      } catch (err) {
        const msg = `cannot read the token file ${file}: ${err instanceof Error ? err.message : String(err)}`;
        if (atStart) throw new Error(`extensions.${this.#settings.id}.filename: ${msg}`, { cause: err });
        this.#settings.logger.warn({ err: msg }, 'Keeping the previous bearer token');
        return;
      }
      if (token === '') {
        if (atStart) throw new Error(`extensions.${this.#settings.id}.filename: the token file ${file} is empty`);
        this.#settings.logger.warn({ file }, 'Token file is empty; keeping the previous bearer token');
        return;
      }
      if (!atStart) this.#settings.logger.info({ file }, 'Bearer token reloaded');
    }
    this.#header = this.#config.scheme === '' ? token : `${this.#config.scheme} ${token}`;
    this.#expected = Buffer.from(this.#header, 'utf8');
  }

  authenticateHttp(headers: IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>): string | undefined {
    this.#refresh();
    const raw = headers.authorization;
    const got = Array.isArray(raw) ? raw[0] : raw;
    if (got === undefined || got === '') return 'missing or empty authorization header';
    const gotBuf = Buffer.from(got, 'utf8');
    const expected = this.#expected as Buffer;
    // Compare in constant time; a length mismatch still costs one comparison of the expected length.
    const same = gotBuf.length === expected.length ? timingSafeEqual(gotBuf, expected) : (timingSafeEqual(expected, expected), false);
    return same ? undefined : 'invalid authorization header';
  }

  clientHeaders(): Record<string, string> {
    this.#refresh();
    return { authorization: this.#header };
  }
}

export const bearerTokenAuthExtensionFactory: ExtensionFactory<BearerTokenAuthConfig> = {
  kind: 'extension',
  type: 'bearertokenauth',
  configSchema: bearerTokenAuthConfigSchema,
  create: (settings, config) => new BearerTokenAuthExtension(settings, config),
};
