/**
 * Server TLS material that can change while running (`tls.reload_interval`): the files are polled, and when
 * any changed and the new set loads (key matches certificate, PEM parses) it replaces the secure context used
 * for new connections; established connections keep theirs. A set that fails to load is logged and the
 * previous one stays, so a half-written rotation never takes the listener down. Both OTLP servers are Node
 * TLS servers (`https` and `http2.createSecureServer`), so a reload is `server.setSecureContext(options)`.
 */
import * as fs from 'node:fs';
import * as tls from 'node:tls';
import type { Logger } from 'pino';
import type { TlsServerConfig } from './tls';

type Watched = 'cert_file' | 'key_file' | 'client_ca_file';

/** Reads a server's TLS files into secure-context options and watches them for changes. */
export class ServerTlsMaterial {
  readonly #config: TlsServerConfig;
  #options: tls.SecureContextOptions;
  #fingerprint: string;
  #timer: NodeJS.Timeout | undefined;
  readonly #listeners: ((o: tls.SecureContextOptions) => void)[] = [];

  /** Reads the files; throws (failing start-up) when one is missing or they do not form a valid context. */
  constructor(config: TlsServerConfig) {
    this.#config = config;
    if (config.cert_file === undefined || config.key_file === undefined) throw new Error('tls needs cert_file and key_file');
    this.#fingerprint = this.#stat();
    this.#options = this.#read();
    tls.createSecureContext(this.#options);
  }

  /** Secure-context options (cert, key, ca, minVersion) currently in use. */
  get contextOptions(): tls.SecureContextOptions {
    return this.#options;
  }

  /** True when client certificates are required (mTLS). */
  get requireClientCert(): boolean {
    return this.#config.client_ca_file !== undefined;
  }

  /** Options for `https.createServer` / `tls.createServer`. */
  serverOptions(): tls.TlsOptions {
    return { ...this.#options, ...(this.requireClientCert ? { requestCert: true, rejectUnauthorized: true } : {}) };
  }

  /** Call `listener` with the new options after each successful reload. */
  onReload(listener: (o: tls.SecureContextOptions) => void): void {
    this.#listeners.push(listener);
  }

  /** Start polling the files every `reload_interval` (no-op when it is 0). */
  watch(logger: Logger): void {
    const every = this.#config.reload_interval;
    if (every <= 0 || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.check(logger), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Reload when a file changed; returns true when new options were applied. */
  check(logger: Logger): boolean {
    let fp: string;
    try {
      fp = this.#stat();
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'TLS file unreadable; keeping the current certificates');
      return false;
    }
    if (fp === this.#fingerprint) return false;
    let next: tls.SecureContextOptions;
    try {
      next = this.#read();
      tls.createSecureContext(next);
    } catch (err) {
      // Leave the fingerprint alone: a rotation may be half-written; try again next tick.
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'New TLS files do not load; keeping the current certificates');
      return false;
    }
    this.#fingerprint = fp;
    this.#options = next;
    for (const l of this.#listeners) l(next);
    logger.info({ cert_file: this.#config.cert_file }, 'TLS certificates reloaded');
    return true;
  }

  #files(): [Watched, string][] {
    const out: [Watched, string][] = [];
    for (const k of ['cert_file', 'key_file', 'client_ca_file'] as const) {
      const f = this.#config[k];
      if (f !== undefined) out.push([k, f]);
    }
    return out;
  }

  /** A cheap change detector: inode, size and mtime of every file (stat follows symlink swaps). */
  #stat(): string {
    return this.#files()
      .map(([, f]) => {
        const s = fs.statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      })
      .join('|');
  }

  #read(): tls.SecureContextOptions {
    const c = this.#config;
    return {
      cert: fs.readFileSync(c.cert_file as string),
      key: fs.readFileSync(c.key_file as string),
      ...(c.client_ca_file === undefined ? {} : { ca: fs.readFileSync(c.client_ca_file) }),
      minVersion: c.min_version === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
    };
  }
}
