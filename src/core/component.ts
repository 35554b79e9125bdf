/**
 * Component lifecycle shared by every receiver, processor, connector, exporter and extension, and what a
 * component gets when it is created. The data-plane contracts (consumers of pdata) and the factories live in
 * src/consumer/, one layer up: core depends on nothing else of routelens.
 */
import type { Logger } from 'pino';
import type { Telemetry } from './telemetry';

/** What the transport knew about the request that produced a batch. */
export interface PipelineContext {
  /** Peer IP address of the client connection (IPv4-mapped IPv6 normalised to IPv4), if known. */
  clientAddress?: string | undefined;
  /** Transport that received the data: `grpc` or `http`. */
  transport?: 'grpc' | 'http' | undefined;
  /** Request headers / gRPC metadata, lower-cased keys (only when a component asked for them). */
  headers?: Readonly<Record<string, string>> | undefined;
  /** Authenticated identity (set by an authenticator extension). */
  auth?: { subject: string } | undefined;
}

/** What a component can reach at start: the other running components. */
export interface Host {
  /** Running extension by component id (`type` or `type/name`). */
  getExtension(id: string): Component | undefined;
  /** All running components of the given kind, by id. */
  components(kind: ComponentKind): ReadonlyMap<string, Component>;
  /** True when the service is running and every component reports healthy. */
  healthy(): boolean;
}

/**
 * Lifecycle contract: `start` is called once, exporters first and receivers last; `shutdown` is called
 * receivers first, is safe without `start` and safe twice, flushes what it buffers and honours `signal`
 * (aborted when the service's shutdown deadline passes).
 */
export interface Component {
  start(host: Host): Promise<void>;
  shutdown(signal?: AbortSignal): Promise<void>;
  /** Is the component healthy (used by /healthz)? Components that cannot tell omit it. */
  healthy?(): boolean;
}

export type ComponentKind = 'receiver' | 'processor' | 'exporter' | 'connector' | 'extension';

/** Everything a factory gets besides the config. */
export interface CreateSettings {
  /** Full component id, e.g. `otlp/jaeger`. */
  id: string;
  logger: Logger;
  telemetry: Telemetry;
}

/**
 * A graceful stop that runs once. Every caller waits for that one run, and any caller's `signal` (its deadline)
 * aborts `deadline`, which the run watches to cut short what it still waits for: a second shutdown with a
 * shorter deadline shortens the first instead of returning before it is done.
 */
export class StopOnce {
  readonly #deadline: AbortController;
  readonly #run: () => Promise<void>;
  #running: Promise<void> | undefined;

  constructor(deadline: AbortController, run: () => Promise<void>) {
    this.#deadline = deadline;
    this.#run = run;
  }

  async stop(signal?: AbortSignal): Promise<void> {
    const onAbort = (): void => this.#deadline.abort();
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      this.#running ??= this.#run();
      await this.#running;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
