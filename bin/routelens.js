#!/usr/bin/env -S node --single-threaded-gc --initial-heap-size=8 --max-semi-space-size=1 --v8-pool-size=1 --no-memory-reducer
'use strict';
// Entry point of the `routelens` command; the compiled CLI lives in dist/ (`npm run build`).
const { main } = require('../dist/src/main.js');
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`routelens: ${err && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
