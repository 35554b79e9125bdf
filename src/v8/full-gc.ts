import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * V8's full garbage collection, as the Collector's limiter has Go's `runtime.GC()`: `global.gc` when node runs
 * with `--expose-gc`, else the `gc` V8 installs in a context created while that flag is on (the flag is set at
 * run time for that one context, ≈ 150 KiB, then turned off again). Undefined if V8 refuses. `--expose-gc` is
 * not among V8_FLAGS because the bin's shebang line would outgrow what older kernels read
 * (docs/decisions/0009-memory-limiter-gc.md).
 */
export function v8FullGc(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') return exposed as () => void;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
