/**
 * The `resourcedetection` processor: detects attributes of the collector's own environment once at start
 * (`env`: OTEL_RESOURCE_ATTRIBUTES; `k8s_downward`: downward-API variables) and adds each to every resource
 * that does not have it, for traces, metrics and logs alike. Attributes a client sent are never replaced (unless
 * `override`).
 */
import type { Component, CreateSettings, Host, PipelineContext } from '../../core/component';
import { AnySignalConsumer, forward, type AnyConsumer } from '../../consumer/consumer';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import type { ResourceDetectionConfig } from './config';
import { detect, type Attr } from './detectors';

/** What enrichment needs of a batch (every OtlpBatch implements it). */
export interface ResourceBatch {
  readonly resourceCount: number;
  hasResourceAttribute(i: number, key: string): boolean;
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void;
  setResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void;
}

export class ResourceDetectionProcessor extends AnySignalConsumer implements Component {
  readonly #settings: CreateSettings;
  readonly #cfg: ResourceDetectionConfig;
  readonly #next: AnyConsumer;
  readonly #env: NodeJS.ProcessEnv;
  #attrs: readonly Attr[] = [];

  constructor(settings: CreateSettings, cfg: ResourceDetectionConfig, next: AnyConsumer, opts: { env?: NodeJS.ProcessEnv } = {}) {
    super();
    this.#settings = settings;
    this.#cfg = cfg;
    this.#next = next;
    this.#env = opts.env ?? process.env;
  }

  /** The detected attributes (empty before start). */
  get attributes(): readonly Attr[] {
    return this.#attrs;
  }

  start(_host?: Host): Promise<void> {
    const warnings: { detector: string; message: string }[] = [];
    this.#attrs = detect(this.#cfg, this.#env, warnings);
    const log = this.#settings.logger;
    for (const w of warnings) log.warn({ detector: w.detector }, w.message);
    log.info({ detectors: this.#cfg.detectors, attributes: Object.fromEntries(this.#attrs) }, 'Detected resource attributes');
    return Promise.resolve();
  }

  shutdown(_signal?: AbortSignal): Promise<void> {
    return Promise.resolve();
  }

  async consume(batch: OtlpBatch, ctx: PipelineContext): Promise<void> {
    this.enrich(batch);
    await forward(this.#next, batch, ctx);
  }

  /** Add the detected attributes each resource lacks (or set them all with `override`), in place. */
  enrich(batch: ResourceBatch): void {
    const attrs = this.#attrs;
    if (attrs.length === 0) return;
    for (let i = 0; i < batch.resourceCount; i++) {
      if (this.#cfg.override) {
        batch.setResourceAttributes(i, attrs);
        continue;
      }
      let add: Attr[] | undefined;
      for (const a of attrs) {
        if (!batch.hasResourceAttribute(i, a[0])) (add ??= []).push(a);
      }
      if (add !== undefined) batch.addResourceAttributes(i, add);
    }
  }
}
