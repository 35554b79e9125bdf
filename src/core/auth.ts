/**
 * Authenticator contracts, as in the Collector's `extension/auth`: an extension can be a server authenticator
 * (receivers and the query API check incoming requests with it) and/or a client authenticator (exporters add
 * its credentials to every request). Components name the extension by id in `auth.authenticator`; the
 * extension is looked up at start, so a typo fails start-up rather than the first request.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Host } from './component';

/** Checks the credentials carried by request headers (HTTP headers or gRPC metadata, lower-cased keys). */
export interface ServerAuthenticator {
  /** Returns undefined when the request is allowed, else a message saying why it is not. */
  authenticateHttp(headers: IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>): string | undefined;
}

/** Supplies the credentials an exporter adds to each request. */
export interface ClientAuthenticator {
  /** Headers (gRPC metadata) to add to the next request; read per request so rotated credentials apply. */
  clientHeaders(): Record<string, string>;
}

export function isServerAuthenticator(c: unknown): c is ServerAuthenticator {
  return typeof (c as Partial<ServerAuthenticator> | undefined)?.authenticateHttp === 'function';
}

export function isClientAuthenticator(c: unknown): c is ClientAuthenticator {
  return typeof (c as Partial<ClientAuthenticator> | undefined)?.clientHeaders === 'function';
}

/** The running server authenticator named `id`; throws naming `path` (the YAML key) when there is none. */
export function resolveServerAuthenticator(host: Host, id: string, path: string): ServerAuthenticator {
  const ext = host.getExtension(id);
  if (!isServerAuthenticator(ext)) {
    throw new Error(`${path}: ${JSON.stringify(id)} is not an enabled server authenticator extension (is it listed in service.extensions?)`);
  }
  return ext;
}

/**
 * The client side of `auth.authenticator` on an exporter: created with the config, bound to the extension
 * at start; until then (or without an authenticator) it adds no headers.
 */
export class ClientAuthBinding {
  readonly #id: string | undefined;
  readonly #path: string;
  #auth: ClientAuthenticator | undefined;

  constructor(id: string | undefined, path: string) {
    this.#id = id;
    this.#path = path;
  }

  /** Look the extension up; throws when `auth.authenticator` names no running client authenticator. */
  resolve(host: Host): void {
    if (this.#id === undefined) return;
    const ext = host.getExtension(this.#id);
    if (!isClientAuthenticator(ext)) {
      throw new Error(`${this.#path}: ${JSON.stringify(this.#id)} is not an enabled client authenticator extension (is it listed in service.extensions?)`);
    }
    this.#auth = ext;
  }

  headers(): Record<string, string> {
    return this.#auth?.clientHeaders() ?? {};
  }
}
