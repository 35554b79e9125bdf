/**
 * What both OTLP transports do with a request body once they have it: decode (validate) it into the batch of its
 * signal, hand it to the pipelines of that signal, count the outcome with the Collector's metric names. Transport
 * specifics (paths, status codes, bodies) stay in grpc.ts and http.ts.
 *
 * A signal that no pipeline takes from this receiver has no SignalIntake: the transports answer UNIMPLEMENTED /
 * 404 as the Collector does, and `unimplemented` counts it per signal and logs the fix, rate-limited per client
 * (the Python exporters drop such data without retrying and only log it in the application).
 */
import type { Logger } from 'pino';
import type { PipelineContext } from '../../core/component';
import { forward, type AnyConsumer, type Signal, type SignalConsumers } from '../../consumer/consumer';
import { PipelineError, asPipelineError } from '../../core/errors';
import type { BufferLease } from '../../pdata/buffer-pool';
import { DecodeError } from '../../pdata/errors';
import { LogsBatch } from '../../pdata/logs-batch';
import { MetricsBatch } from '../../pdata/metrics-batch';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import { logsRequestFromJson, metricsRequestFromJson, traceRequestFromJson } from '../../pdata/otlp-json';
import { TraceBatch } from '../../pdata/trace-batch';
import type { Counter, Telemetry } from '../../core/telemetry';
import { RateLimitedLog } from '../../telemetry/rate-limited-log';

export interface IntakeResult {
  /** Spans, data points or log records accepted. */
  items: number;
}

/** What differs per signal at the intake: how to decode, and what the items are called in metric names and logs. */
interface SignalSpec {
  decode(bytes: Uint8Array, lease?: BufferLease): OtlpBatch;
  fromJson(json: Uint8Array): Uint8Array;
  /** The suffix of the Collector's counters: `spans`, `metric_points`, `log_records`. */
  unit: string;
  /** The items in words: `spans`, `metric points`, `log records`. */
  items: string;
}

export const SIGNAL_SPECS: Readonly<Record<Signal, SignalSpec>> = {
  traces: { decode: (b, l) => TraceBatch.decode(b, l), fromJson: traceRequestFromJson, unit: 'spans', items: 'spans' },
  metrics: { decode: (b, l) => MetricsBatch.decode(b, l), fromJson: metricsRequestFromJson, unit: 'metric_points', items: 'metric points' },
  logs: { decode: (b, l) => LogsBatch.decode(b, l), fromJson: logsRequestFromJson, unit: 'log_records', items: 'log records' },
};

interface Shared {
  readonly logger: Logger;
  readonly transport: 'grpc' | 'http';
  readonly requests: Record<'success' | 'refused' | 'failure', Counter>;
  rejected(err: PipelineError, ctx: PipelineContext): void;
}

/** The intake of one signal: decode, consume, count. */
export class SignalIntake {
  readonly signal: Signal;
  readonly spec: SignalSpec;
  readonly #next: AnyConsumer;
  readonly #shared: Shared;
  readonly #accepted: Counter;
  readonly #refused: Counter;
  readonly #failed: Counter;

  constructor(signal: Signal, next: AnyConsumer, shared: Shared, telemetry: Telemetry, labels: Record<string, string>) {
    this.signal = signal;
    this.spec = SIGNAL_SPECS[signal];
    this.#next = next;
    this.#shared = shared;
    const u = this.spec.unit;
    const items = this.spec.items;
    this.#accepted = telemetry.counter(`otelcol_receiver_accepted_${u}`, `Number of ${items} successfully pushed into the pipeline.`, labels);
    this.#refused = telemetry.counter(`otelcol_receiver_refused_${u}`, `Number of ${items} that could not be pushed into the pipeline.`, labels);
    this.#failed = telemetry.counter(
      `otelcol_receiver_failed_${u}`,
      `Number of ${items} that failed to be processed by the receiver due to internal errors.`,
      labels,
    );
  }

  /**
   * Decode and push one request. Rejects with a PipelineError the transport maps to a status. With `lease`, `body`
   * is a pooled buffer the caller releases once this settles. A function body is OTLP/JSON converted on call.
   */
  async consume(body: Uint8Array | (() => Uint8Array), ctx: PipelineContext, lease?: BufferLease): Promise<IntakeResult> {
    const shared = this.#shared;
    let batch: OtlpBatch;
    try {
      batch = this.spec.decode(typeof body === 'function' ? body() : body, lease);
    } catch (err) {
      // Anything the decoder throws is about the input, not about routelens.
      const e = err instanceof DecodeError ? new PipelineError('malformed', err.message) : asPipelineError(err);
      if (e.code === 'internal' || e.code === 'malformed') {
        const raw = typeof body === 'function' ? undefined : body;
        const hint =
          raw !== undefined && raw.length > 0 && (raw[0] === 0x7b || raw[0] === 0x5b)
            ? ' (the body looks like JSON: send it with Content-Type: application/json)'
            : '';
        const m = new PipelineError('malformed', `${e.message}${hint}`);
        shared.rejected(m, ctx);
        throw m;
      }
      shared.rejected(e, ctx);
      throw e;
    }
    const items = batch.itemCount;
    if (items === 0) {
      // As the Collector: an empty request is answered at once and moves no item counter.
      shared.requests.success.add();
      return { items: 0 };
    }
    try {
      await forward(this.#next, batch, ctx);
    } catch (err) {
      const e = asPipelineError(err);
      if (e.retryable) {
        this.#refused.add(items);
        shared.requests.refused.add();
      } else {
        this.#failed.add(items);
        shared.requests.failure.add();
        shared.logger.error(
          { transport: shared.transport, signal: this.signal, [this.spec.unit]: items, err: e.message },
          `Pipeline failed to process ${this.spec.items}`,
        );
      }
      throw e;
    }
    this.#accepted.add(items);
    shared.requests.success.add();
    return { items };
  }
}

/** The intake of one transport of a receiver: a SignalIntake per signal with pipelines, and what they share. */
export class Intake implements Shared {
  readonly logger: Logger;
  readonly transport: 'grpc' | 'http';
  readonly requests: Record<'success' | 'refused' | 'failure', Counter>;
  readonly #signals: Partial<Record<Signal, SignalIntake>> = {};
  readonly #malformed: Counter;
  readonly #unauthenticated: Counter;
  readonly #internal: Counter;
  readonly #unimplemented: Partial<Record<Signal, Counter>> = {};
  readonly #receiver: string;
  readonly #log = new RateLimitedLog();
  /** One line per client and signal every 5 minutes: metrics come every minute, logs every second. */
  readonly #unimplementedLog = new RateLimitedLog(300_000);

  constructor(opts: { id: string; transport: 'grpc' | 'http'; next: SignalConsumers; logger: Logger; telemetry: Telemetry }) {
    this.logger = opts.logger;
    this.transport = opts.transport;
    this.#receiver = opts.id;
    const l = { receiver: opts.id, transport: opts.transport };
    const t = opts.telemetry;
    this.requests = {
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
    this.#internal = t.counter(
      'routelens_receiver_internal_errors',
      'Export requests answered 500 / INTERNAL because routelens failed where it should not have (a bug: the log has its stack).',
      l,
    );
    for (const signal of ['traces', 'metrics', 'logs'] as const) {
      const next = opts.next[signal];
      if (next !== undefined) this.#signals[signal] = new SignalIntake(signal, next, this, t, l);
      else
        this.#unimplemented[signal] = t.counter(
          'routelens_receiver_unimplemented_requests',
          'Export requests of a signal no pipeline takes from this receiver, answered UNIMPLEMENTED / 404 (the client drops that data).',
          { ...l, signal },
        );
    }
  }

  /** The intake of `signal`, or undefined when no pipeline takes that signal from this receiver. */
  of(signal: Signal): SignalIntake | undefined {
    return this.#signals[signal];
  }

  /** The signals with pipelines. */
  get signals(): Signal[] {
    return (['traces', 'metrics', 'logs'] as const).filter((s) => this.#signals[s] !== undefined);
  }

  /** Count and log a request refused by the authenticator (its data is never read, so no item counter moves). */
  unauthenticated(reason: string, ctx: PipelineContext): void {
    this.#unauthenticated.add();
    this.#log.warn(
      this.logger,
      `unauthenticated:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, err: reason },
      'Refused an unauthenticated export request',
    );
  }

  /**
   * Count and log a request the transport failed to handle for a reason of its own (an exception no check
   * expected): answered 500 / INTERNAL, with the stack in the log so the bug can be found.
   */
  internalError(err: unknown, ctx: PipelineContext): void {
    this.#internal.add();
    this.requests.failure.add();
    this.#log.error(
      this.logger,
      `internal:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, err },
      'Failed to handle an export request (an internal error): answered it with an internal error',
    );
  }

  /** Count and log a request rejected before it could be decoded (bad framing, size, encoding, type). */
  rejected(err: PipelineError, ctx: PipelineContext): void {
    this.#malformed.add();
    this.requests.failure.add();
    this.#log.warn(
      this.logger,
      `${err.code}:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, code: err.code, err: err.message },
      'Rejected an export request',
    );
  }

  /**
   * Count and log a request of a signal no pipeline takes (the transport answers UNIMPLEMENTED / 404). Returns the
   * fix, for the answer's message: the Python exporters write it to the application's log.
   */
  unimplemented(signal: Signal, ctx: PipelineContext): string {
    this.#unimplemented[signal]?.add();
    const fix = unimplementedHint(signal, this.#receiver);
    this.#unimplementedLog.warn(
      this.logger,
      `${signal}:${ctx.clientAddress ?? ''}`,
      { transport: this.transport, client: ctx.clientAddress, signal },
      `A client sent ${signal} but no ${signal} pipeline takes them from this receiver: the data is refused and lost. ${fix}`,
    );
    return fix;
  }
}

/** The fix for a signal without a pipeline: add one, in the Collector's config shape. */
export function unimplementedHint(signal: Signal, receiver: string): string {
  return `Add a ${signal} pipeline (service.pipelines.${signal} with receivers: [${receiver}] and an exporter), or stop the client sending ${signal} (OTEL_${signal.toUpperCase()}_EXPORTER=none).`;
}

/** Normalise a peer address: strip the IPv4-mapped IPv6 prefix and any zone. */
export function normaliseAddress(addr: string | undefined): string | undefined {
  if (addr === undefined || addr === '') return undefined;
  let a = addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  return a;
}
