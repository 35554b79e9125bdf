/** Shared helpers of the Kubernetes tests. */
import pino from 'pino';
import type { CreateSettings, PipelineContext } from '../../src/core/component';
import type { TracesConsumer } from '../../src/consumer/consumer';
import { ConfigErrorList } from '../../src/core/schema';
import type { TraceBatch } from '../../src/pdata/trace-batch';
import { Telemetry } from '../../src/core/telemetry';
import { configSchema, type K8sAttributesConfig } from '../../src/processors/k8sattributes/config';
import type { ResourceBatch } from '../../src/processors/k8sattributes/processor';

export function settings(id = 'k8sattributes', telemetry = new Telemetry()): CreateSettings {
  return { id, logger: pino({ level: process.env['ROUTELENS_TEST_LOG'] ?? 'silent' }), telemetry };
}

/** Parse a k8sattributes config; throws with the formatted issues when invalid. */
export function k8sConfig(raw: unknown): K8sAttributesConfig {
  const issues = new ConfigErrorList();
  const cfg = configSchema.parse(raw, 'processors.k8sattributes', issues);
  if (!issues.empty) throw new Error(issues.format());
  return cfg;
}

type Value = string | number | boolean;

/** A batch of resources with attributes only, recording what was added. */
export class FakeBatch implements ResourceBatch {
  readonly resources: Map<string, Value>[];
  constructor(resources: Record<string, Value>[]) {
    this.resources = resources.map((r) => new Map(Object.entries(r)));
  }
  get resourceCount(): number {
    return this.resources.length;
  }
  resourceAttribute(i: number, key: string): Value | undefined {
    return this.resources[i]?.get(key);
  }
  hasResourceAttribute(i: number, key: string): boolean {
    return this.resources[i]?.has(key) ?? false;
  }
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    const r = this.resources[i] as Map<string, Value>;
    for (const [k, v] of attrs) {
      if (r.has(k)) throw new Error(`attribute ${k} added twice`);
      r.set(k, v);
    }
  }
  attrs(i: number): Record<string, Value> {
    return Object.fromEntries(this.resources[i] ?? []);
  }
}

/** A consumer that records what it got. */
export class TracesSink implements TracesConsumer {
  readonly batches: { batch: TraceBatch; ctx: PipelineContext }[] = [];
  consumeTraces(batch: TraceBatch, ctx: PipelineContext): Promise<void> {
    this.batches.push({ batch, ctx });
    return Promise.resolve();
  }
}

/** Resolve when `cond` holds (polled), reject after `timeoutMs`. */
export async function eventually(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
