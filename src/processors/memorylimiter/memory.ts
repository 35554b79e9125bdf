/**
 * What the memory limiter measures and how it decides, kept free of timers and globals so tests drive it.
 *
 * **The measure is V8's used heap plus external memory** (`heapUsed + external` of `process.memoryUsage()`),
 * the closest Node.js equivalent of the Go heap allocation (`runtime.MemStats.Alloc`) the Collector limits:
 * - routelens holds spans as `Uint8Array`s (request bodies, encoded batches in exporter queues). Their
 *   bytes live outside the V8 heap and are counted in `external`, so `heapUsed` alone would miss most of
 *   what a flood or a blocked exporter accumulates.
 * - RSS was rejected: it includes code, thread stacks and memory the allocator keeps after a collection, so
 *   it does not fall when queues drain, and a limiter on RSS keeps refusing long after the data is gone. It
 *   is what the kernel's OOM killer sees, which is why the limits leave headroom (`limit_mib` below the pod
 *   limit, as with the Collector). See docs/decisions/0009-memory-limiter-gc.md.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as v8 from 'node:v8';
import type { Logger } from 'pino';
import { requestBuffers } from '../../pdata/buffer-pool';
import type { MemoryLimiterConfig } from './config';

const MiB = 1024 * 1024;

/**
 * Used V8 heap + external (ArrayBuffer) memory of this process, bytes, minus the idle request buffers the
 * receivers keep for reuse (pdata/buffer-pool.ts): those hold no data, like free heap, and counting them would
 * keep the limiter refusing after the queues have drained. Read from V8's heap statistics, which, unlike
 * process.memoryUsage(), costs no /proc read: cheap enough to check on every request.
 */
export function processMemoryBytes(): number {
  const h = v8.getHeapStatistics();
  return h.used_heap_size + h.external_memory - requestBuffers.idleBytes;
}

/** Read a cgroup memory limit file: bytes, or undefined when absent, unlimited ("max") or unreadable. */
export function readCgroupLimit(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (text === 'max' || !/^\d+$/.test(text)) return undefined;
    return Number(text);
  } catch {
    return undefined;
  }
}

/**
 * Memory available to the process: the cgroup v2 limit (`/sys/fs/cgroup/memory.max`), else the cgroup v1
 * limit, else the machine's total memory (and never more than that: an unlimited cgroup reports a huge number).
 */
export function availableMemoryBytes(files = ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']): { bytes: number; source: string } {
  const total = os.totalmem();
  for (const f of files) {
    const limit = readCgroupLimit(f);
    if (limit !== undefined && limit > 0 && limit < total) return { bytes: limit, source: f };
  }
  return { bytes: total, source: 'total memory' };
}

export interface Limits {
  hardBytes: number;
  softBytes: number;
}

/** The Collector's rules: `limit_mib` wins over percentages; spike defaults to 20 % of the limit; soft = hard − spike. */
export function computeLimits(c: MemoryLimiterConfig, available: () => number): Limits {
  let hard: number;
  let spike: number;
  if (c.limit_mib > 0) {
    hard = c.limit_mib * MiB;
    spike = c.spike_limit_mib > 0 ? c.spike_limit_mib * MiB : hard / 5;
  } else {
    const total = available();
    hard = Math.floor((total * c.limit_percentage) / 100);
    spike = c.spike_limit_percentage > 0 ? Math.floor((total * c.spike_limit_percentage) / 100) : hard / 5;
  }
  return { hardBytes: Math.floor(hard), softBytes: Math.floor(hard - spike) };
}

export interface CheckerOptions extends Limits {
  minGcSoftMs: number;
  minGcHardMs: number;
  /** Current memory use, bytes. */
  read: () => number;
  /** Forces a full garbage collection (`v8FullGc`); undefined: never forced. */
  gc: (() => void) | undefined;
  now: () => number;
  logger: Logger;
}

/**
 * One decision per `check()`, as the Collector's memory limiter does it: below the soft limit data flows;
 * at or above it, a garbage collection is forced if none ran within the interval for the band (soft or hard)
 * and memory is measured again; data is refused while the result is still at or above the soft limit.
 */
export class MemoryChecker {
  readonly #o: CheckerOptions;
  #refusing = false;
  #lastGc = -Infinity;
  #used = 0;
  #peak = 0;
  #afterGc = 0;
  gcCount = 0;

  constructor(options: CheckerOptions) {
    this.#o = options;
  }

  get refusing(): boolean {
    return this.#refusing;
  }

  /** The last measurement, bytes. */
  get used(): number {
    return this.#used;
  }

  /** The largest measurement so far, bytes. */
  get peak(): number {
    return this.#peak;
  }

  /** The measurement right after the last forced GC (0 before any): roughly what is live, not garbage. */
  get usedAfterGc(): number {
    return this.#afterGc;
  }

  get limits(): Limits {
    return { hardBytes: this.#o.hardBytes, softBytes: this.#o.softBytes };
  }

  check(): void {
    const o = this.#o;
    let used = this.#measure();
    if (used < o.softBytes) {
      if (this.#refusing)
        o.logger.info({ used_mib: mib(used), soft_limit_mib: mib(o.softBytes) }, 'Memory usage back within limits. Resuming normal operation.');
      this.#refusing = false;
      return;
    }
    const hard = used >= o.hardBytes;
    const minInterval = hard ? o.minGcHardMs : o.minGcSoftMs;
    if (o.gc !== undefined && o.now() - this.#lastGc >= minInterval) {
      o.logger.debug({ used_mib: mib(used), limit: hard ? 'hard' : 'soft' }, `Memory usage is above the ${hard ? 'hard' : 'soft'} limit. Forcing a GC.`);
      o.gc();
      this.gcCount++;
      this.#lastGc = o.now();
      used = this.#measure();
      this.#afterGc = used;
    }
    const above = used >= o.softBytes;
    if (above && !this.#refusing)
      o.logger.warn(
        { used_mib: mib(used), soft_limit_mib: mib(o.softBytes), hard_limit_mib: mib(o.hardBytes) },
        'Memory usage is above the soft limit. Refusing data.',
      );
    if (!above && this.#refusing) o.logger.info({ used_mib: mib(used) }, 'Memory usage back within limits. Resuming normal operation.');
    this.#refusing = above;
  }

  #measure(): number {
    const used = this.#o.read();
    this.#used = used;
    if (used > this.#peak) this.#peak = used;
    return used;
  }
}

function mib(bytes: number): number {
  return Math.round((bytes / MiB) * 10) / 10;
}
