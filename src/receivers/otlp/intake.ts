/**
 * What both OTLP transports do with a request body once they have it: decode (validate) it into a
 * TraceBatch, hand it to the pipeline, count the outcome. Transport specifics (status codes, bodies) stay in
 * grpc.ts and http.ts.
 */
import type { Logger } from 'pino';
import type { PipelineContext } from '../../core/component';
import type { TracesConsumer } from '../../consumer/consumer';
import { PipelineError, asPipelineError } from '../../core/errors';
import type { BufferLease } from '../../pdata/buffer-pool';
import { DecodeError } from '../../pdata/errors';
import { TraceBatch } from '../../pdata/trace-batch';
import type { Counter, Telemetry } from '../../core/telemetry';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';

export interface IntakeResult {
  spans: number;
}

export class TraceIntake {
  readonly #next: TracesConsumer;
  readonly #logger: Logger;
  readonly #accepted: Counter;
  readonly #refused: Counter;
  readonly #failed: Counter;
  readonly #requests: Record<'success' | 'refused' | 'failure', Counter>;
  readonly #malformed: Counter;
  readonly #unauthenticated: Counter;
  readonly #log = new RateLimitedLog();
  readonly transport: 'grpc' | 'http';

  constructor(opts: { id: string; transport: 'grpc' | 'http'; next: TracesConsumer; logger: Logger; telemetry: Telemetry }) {
    this.#next = opts.next;
    this.#logger = opts.logger;
    this.transport = opts.transport;
    const l = { receiver: opts.id, transport: opts.transport };
    const t = opts.telemetry;
    this.#accepted = t.counter('otelcol_receiver_accepted_spans', 'Number of spans successfully pushed into the pipeline.', l);
    this.#refused = t.counter('otelcol_receiver_refused_spans', 'Number of spans that could not be pushed into the pipeline.', l);
    this.#failed = t.counter('otelcol_receiver_failed_spans', 'Number of spans that failed to be processed by the receiver due to internal errors.', l);
    this.#requests = {
      success: t.counter('otelcol_receiver_requests', 'Number of export requests by outcome.', { ...l, outcome: 'success' }),
      refused: t.counter('otelcol_receiver_requests', 'Number of export requests by outcome.', { ...l, outcome: 'refused' }),
      failure: t.counter('otelcol_receiver_requests', 'Number of export requests by outcome.', { ...l, outcome: 'failure' }),
    };
    this.#malformed = t.counter('routelens_receiver_malformed_requests', 'Export requests rejected as malformed, oversized or of an unsupported type.', l);
    this.#unauthenticated = t.counter(
      'routelens_receiver_unauthenticated_requests',
      'Export requests refused by the authenticator before their data was read.',
      l,
    );
  }

  /** Count and log a request refused by the authenticator (its data is never read, so no span counter moves). */
  unauthenticated(reason: string, ctx: PipelineContext): void {
    this.#unauthenticated.add();
    this.#log.warn(
      this.#logger,
      `unauthenticated:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, err: reason },
      'Refused an unauthenticated export request',
    );
  }

  /** Count and log a request rejected before it could be decoded (bad framing, size, encoding, type). */
  rejected(err: PipelineError, ctx: PipelineContext): void {
    this.#malformed.add();
    this.#requests.failure.add();
    this.#log.warn(
      this.#logger,
      `${err.code}:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, code: err.code, err: err.message },
      'Rejected an export request',
    );
  }

  /**
   * Decode and push one request. Rejects with a PipelineError the transport maps to a status. With `lease`, `body`
   * is a pooled buffer the caller releases once this settles.
   */
  async consume(body: Uint8Array | (() => Uint8Array), ctx: PipelineContext, lease?: BufferLease): Promise<IntakeResult> {
    let batch: TraceBatch;
    try {
      batch = TraceBatch.decode(typeof body === 'function' ? body() : body, lease);
    } catch (err) {
      // Anything the decoder throws is about the input, not about routelens.
      if (err instanceof DecodeError || !(err instanceof PipelineError)) {
        const message = err instanceof Error ? err.message : String(err);
        const raw = typeof body === 'function' ? undefined : body;
        const hint =
          raw !== undefined && raw.length > 0 && (raw[0] === 0x7b || raw[0] === 0x5b)
            ? ' (the body looks like JSON: send it with Content-Type: application/json)'
            : '';
        const m = new PipelineError('malformed', `${message}${hint}`, { cause: err });
        this.rejected(m, ctx);
        throw m;
      }
      this.rejected(err, ctx);
      throw err;
    }
    const spans = batch.spanCount;
    if (spans === 0) {
      this.#requests.success.add();
      return { spans: 0 };
    }
    try {
      await this.#next.consumeTraces(batch, ctx);
    } catch (err) {
      const e = asPipelineError(err);
      if (e.retryable) {
        this.#refused.add(spans);
        this.#requests.refused.add();
      } else {
        this.#failed.add(spans);
        this.#requests.failure.add();
        this.#logger.error({ transport: this.transport, spans, err: e.message }, 'Pipeline failed to process spans');
      }
      throw e;
    }
    this.#accepted.add(spans);
    this.#requests.success.add();
    return { spans };
  }
}

/** Normalise a peer address: strip the IPv4-mapped IPv6 prefix and any zone. */
export function normaliseAddress(addr: string | undefined): string | undefined {
  if (addr === undefined || addr === '') return undefined;
  let a = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  return a;
}
