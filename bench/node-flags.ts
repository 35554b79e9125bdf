/** How a routelens bin runs node: bench/run.ts and bench/compare-builds.ts start it the same way. */
import * as fs from 'node:fs';

/** The node flags of a script's `#!/usr/bin/env -S node …` line. */
export function shebangNodeFlags(script: string): string[] {
  const first = fs.readFileSync(script, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!.*\bnode((?:\s+--[\w-]+(?:=\S+)?)*)\s*$/.exec(first);
  return m === null
    ? []
    : (m[1] ?? '')
        .trim()
        .split(/\s+/)
        .filter((f) => f !== '');
}
