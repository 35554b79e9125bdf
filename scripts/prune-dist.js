#!/usr/bin/env node
// Removes compiled files in dist/ whose TypeScript source is gone (tsc never deletes them), so a moved or deleted
// test does not keep running from a stale copy.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist');

function walk(dir) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.js') || e.name.endsWith('.js.map')) {
      const source = path.join(root, path.relative(dist, p)).replace(/\.js(\.map)?$/, '.ts');
      if (!fs.existsSync(source)) fs.rmSync(p);
    }
  }
}
walk(dist);
