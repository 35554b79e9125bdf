/**
 * Loaded by mocha before any test (.mocharc.json `require`). routelens processes started by tests run one
 * worker unless a test asks for more (`--workers`), so their logs and counters come from one process;
 * test/cluster/workers.test.ts covers the multi-worker default.
 */
process.env.ROUTELENS_WORKERS ??= '1';
