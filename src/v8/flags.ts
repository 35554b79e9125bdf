/**
 * The V8 flags routelens runs with (bin/routelens.js's shebang, `npm start`, the cluster workers; a test keeps
 * the README and the Kubernetes example in step). Each process is sized for one core: no GC helper threads
 * (`--single-threaded-gc`) and one compile thread (`--v8-pool-size=1`) to compete with the pipeline, small heap
 * limits (`--initial-heap-size=8`, `--max-semi-space-size=1`) so that request garbage and node:http2's read
 * buffers are freed soon instead of piling up, and no memory reducer (`--no-memory-reducer`), whose collections at
 * a light load throw away the optimised code of per-request functions. They cannot be set at run time (V8
 * aborts) and NODE_OPTIONS refuses them. Measurements and alternatives: docs/decisions/0001-v8-flags.md.
 */
export const V8_FLAGS: readonly string[] = [
  '--single-threaded-gc',
  '--initial-heap-size=8',
  '--max-semi-space-size=1',
  '--v8-pool-size=1',
  '--no-memory-reducer',
];

/** V8_FLAGS the current process was started without. */
export function missingV8Flags(): string[] {
  return V8_FLAGS.filter((f) => !process.execArgv.includes(f));
}
