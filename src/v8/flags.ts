/**
 * The V8 flags routelens is meant to run with (bin/routelens.js's shebang, `npm start`, the cluster workers);
 * measured in BENCHMARKS.md. They cannot be set at run time (V8 aborts) and NODE_OPTIONS refuses them.
 * - `--single-threaded-gc`: one routelens process is sized for one core; V8's parallel and concurrent GC helper
 *   threads would compete with the pipeline for it (≈ 15 % more CPU per span, ≈ 20 % less throughput).
 * - `--initial-heap-size=8` (MB): the old generation's first collection limit. Objects alive at a scavenge
 *   (in-flight requests, node:http2's per-request state) are promoted and die there; the limit decides how much
 *   of that garbage waits for a full collection. Measured with `--trace-gc` (bench, 40–90 s runs): at 64 the old
 *   generation swung 11 → 45 MB (RSS 137–149 MiB at 50k spans/s and saturation), without the flag RSS was
 *   103–111 MiB, at 8 it is 82–105 MiB; full collections (≈ 15 ms for the ≈ 11 MB live heap) cost ≈ 5 % of a
 *   core at saturation instead of 1–3 %, nothing measurable at 10k–50k spans/s.
 * - `--max-semi-space-size=1` (MB; V8's default grows to 16): the chunks node:http2 delivers a request in are
 *   malloc'ed buffers freed only when a scavenge finds them dead. With a 16 MB young generation scavenges came
 *   every ≈ 1.4 s at 50k spans/s, and ≈ 35 MB of dead chunks waited for each: RSS −30 to −35 MiB at 10k, 50k
 *   spans/s and saturation. 1 MB rather than 2 since the exporter stopped promoting every request's stream
 *   (v8/async-resource-bind.ts), which made scavenges cheap: 3 pairs each, CPU per span −13 % at 10k spans/s,
 *   within noise at 50k, +10 % at saturation; RSS −1.5 MiB at 10k, −3 MiB at 50k, −10 MiB at saturation.
 * - `--v8-pool-size=1`: one background thread for V8's compile jobs instead of Node's default four: on a
 *   core of its own the process gains nothing from more, and each thread keeps a malloc arena (RSS −3.5 MiB at
 *   50k spans/s).
 * - `--no-memory-reducer`: at a light load (10k spans/s, 20 requests a second) V8 takes the process for idle
 *   and runs memory-reducing full collections, which do not retain the maps of objects that have no instance
 *   alive at that moment (most per-request objects between two requests). Every optimised function that checks
 *   such a map is thrown away and compiled again: 36 of them at once in a 48 s run, 697 ms of compiling against
 *   504 ms without the reducer; CPU per span at 10k spans/s −14 % (8 pairs), p99 lower, RSS +1 MiB, no change
 *   at 50k spans/s and saturation, where the reducer does not run. The price: after a burst, an idle process
 *   keeps its heap (RSS 77 MiB a minute after a 15 s burst instead of 71).
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
