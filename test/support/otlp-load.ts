/**
 * A steady OTLP/HTTP load that keeps the outcome of every request, for tests that kill and restart routelens
 * under load. Every request carries span ids of its own (prefix `firstPrefix + n`) and is never sent again, so
 * a span that arrives downstream was either acknowledged or sent in a request whose answer never came.
 */
import * as http from 'node:http';
import { postTraces, spanIds, traceRequest } from './trace-requests';

export type LoadOutcome =
  /** HTTP 200: routelens stored the data. */
  | 'acknowledged'
  /** Another status: routelens refused the data (the client keeps it). */
  | 'refused'
  /** No answer (connection refused or reset, timeout): stored or not, the client cannot know. */
  | 'no-answer';

export interface LoadRequest {
  prefix: number;
  ids: string[];
  outcome: LoadOutcome;
  detail: string;
}

export interface OtlpLoadOptions {
  /** OTLP/HTTP traces URL. */
  url: string;
  /** Concurrent senders, each on keep-alive connections. @default 4 */
  senders?: number;
  /** Spans per request. @default 10 */
  spansPerRequest?: number;
  /** Pause of each sender after each request, ms. @default 5 */
  pauseMs?: number;
  /** Span id prefix of the first request (see spanIds; prefixes are 16-bit). @default 0x1000 */
  firstPrefix?: number;
  /** Give up on an answer after this long. @default 10000 */
  timeoutMs?: number;
}

export class OtlpLoad {
  readonly requests: LoadRequest[] = [];
  readonly #o: Required<OtlpLoadOptions>;
  readonly #agent = new http.Agent({ keepAlive: true });
  #next: number;
  #stopping = false;
  #senders: Promise<void>[] = [];

  constructor(o: OtlpLoadOptions) {
    this.#o = { senders: 4, spansPerRequest: 10, pauseMs: 5, firstPrefix: 0x1000, timeoutMs: 10_000, ...o };
    this.#next = this.#o.firstPrefix;
  }

  start(): void {
    for (let i = 0; i < this.#o.senders; i++) this.#senders.push(this.#sender());
  }

  /** Stop sending and wait for the answers of requests in flight. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#senders);
    this.#agent.destroy();
  }

  count(outcome: LoadOutcome): number {
    return this.requests.filter((r) => r.outcome === outcome).length;
  }

  ids(outcome: LoadOutcome): string[] {
    return this.requests.filter((r) => r.outcome === outcome).flatMap((r) => r.ids);
  }

  async #sender(): Promise<void> {
    while (!this.#stopping) {
      const prefix = this.#next++;
      if (prefix > 0xffff) throw new Error('OtlpLoad: out of span id prefixes');
      const ids = spanIds(prefix, this.#o.spansPerRequest);
      let outcome: LoadOutcome;
      let detail: string;
      try {
        const res = await withTimeout(
          postTraces(this.#o.url, traceRequest(ids, { service: 'load', padBytes: 100 }), { agent: this.#agent }),
          this.#o.timeoutMs,
        );
        outcome = res.status === 200 ? 'acknowledged' : 'refused';
        detail = String(res.status);
      } catch (err) {
        outcome = 'no-answer';
        detail = err instanceof Error ? err.message : String(err);
      }
      this.requests.push({ prefix, ids, outcome, detail });
      await new Promise((resolve) => setTimeout(resolve, outcome === 'acknowledged' ? this.#o.pauseMs : 20));
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e instanceof Error ? e : new Error(String(e)))),
    );
  });
}
