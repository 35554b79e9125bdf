/**
 * Loaded by mocha before any test (.mocharc.json `require`). routelens processes started by tests run one
 * worker unless a test asks for more (`--workers`), so their logs and counters come from one process;
 * test/cluster/workers.test.ts covers the multi-worker default.
 */
process.env.ROUTELENS_WORKERS ??= '1';
// Released request buffers are overwritten with 0xEE in every process a test starts, so a buffer reused while
// some component still reads it (src/pdata/buffer-pool.ts) corrupts data the end-to-end tests compare exactly.
process.env.ROUTELENS_POOL_POISON ??= '1';
