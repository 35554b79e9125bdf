/**
 * The layers of src/ run one way. Each top-level folder may import only the folders listed for it (and itself);
 * no two modules import each other, directly or through others; no two folders do either.
 *
 *   pdata, core                       nothing of ours
 *   v8, consumer, telemetry, config   core, pdata and each other as listed
 *   analysis, runtimeview             libraries over core and pdata
 *   http2                             the HTTP/2 stack (frames, HPACK, connections): node built-ins only
 *   kube, discovery                   the Kubernetes API client and informers; peer resolvers (static, DNS, EndpointSlices)
 *   components                        receivers, processors, exporters, connectors, extensions: the layers below,
 *                                     never another kind of component (shared contracts live in core)
 *   pipeline, cluster                 the service graph and the worker processes: never a component
 *   cli, main.ts, components.ts       the top: anything
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../..');
const src = path.join(root, 'src');

const BASE = ['core', 'pdata'];
const LIBRARIES = ['v8', 'consumer', 'telemetry', 'config'];
const COMPONENT_KINDS = ['receivers', 'processors', 'exporters', 'connectors', 'extensions'];

/** Folder → the folders it may import (besides itself). */
const ALLOWED: Record<string, readonly string[]> = {
  pdata: [],
  core: [],
  v8: ['core'],
  consumer: ['core', 'pdata'],
  telemetry: ['core', 'v8'],
  config: ['core', 'consumer', 'pdata'],
  analysis: ['core', 'pdata'],
  runtimeview: ['core', 'pdata'],
  http2: [],
  kube: ['core'],
  discovery: ['core', 'kube'],
  pipeline: [...BASE, ...LIBRARIES],
  cluster: [...BASE, ...LIBRARIES, 'pipeline'],
};
for (const kind of COMPONENT_KINDS) ALLOWED[kind] = [...BASE, ...LIBRARIES, 'analysis', 'runtimeview', 'http2', 'kube', 'discovery'];

/** Every .ts file under src/, tests excluded (they may reach across layers to test them). */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of a file (static, dynamic and type-only), resolved to files. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import|require)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.resolve(path.dirname(file), m[1] as string);
    for (const candidate of [`${target}.ts`, path.join(target, 'index.ts'), target]) {
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        out.push(candidate);
        break;
      }
    }
  }
  return out;
}

/** The layer of a src/ file: its top-level folder, or the file name for files at the top. */
const layerOf = (file: string): string => path.relative(src, file).split(path.sep)[0] as string;
/** Component kinds are one layer each, but a component folder (processors/k8sattributes) is a unit of its own. */
const componentOf = (file: string): string | undefined => {
  const parts = path.relative(src, file).split(path.sep);
  return COMPONENT_KINDS.includes(parts[0] as string) && parts.length > 2 ? `${parts[0]}/${parts[1]}` : undefined;
};

/** Strongly connected components with more than one node (Tarjan). */
function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indices.get(w) as number));
    }
    if (low.get(v) === indices.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return out;
}

describe('layers of src/', () => {
  const files = sourceFiles(src);
  const edges = new Map<string, string[]>(files.map((f) => [f, importsOf(f)]));
  const rel = (f: string): string => path.relative(root, f);

  it('every import runs down the layers', () => {
    const wrong: string[] = [];
    for (const [file, targets] of edges) {
      const from = layerOf(file);
      const allowed = ALLOWED[from];
      for (const target of targets) {
        const to = layerOf(target);
        if (to === from) {
          const a = componentOf(file);
          const b = componentOf(target);
          // A component may use the shared helpers of its own kind (exporters/exporterhelper), never a sibling.
          if (a !== undefined && b !== undefined && a !== b && !b.endsWith('helper')) wrong.push(`${rel(file)} → ${rel(target)} (another component)`);
          continue;
        }
        if (allowed === undefined) continue; // the top: cli, main.ts, components.ts
        if (!allowed.includes(to)) wrong.push(`${rel(file)} → ${rel(target)} (${from} may import ${allowed.join(', ') || 'nothing of ours'})`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('what ships (src/ without its tests) imports nothing from test/ or bench/', () => {
    const outside = [...edges].flatMap(([f, ts]) => ts.filter((t) => !t.startsWith(src + path.sep)).map((t) => `${rel(f)} → ${rel(t)}`));
    expect(outside).to.deep.equal([]);
  });

  it('no module imports itself through others', () => {
    const graph = new Map([...edges].map(([f, ts]) => [f, new Set(ts)]));
    expect(cycles(graph).map((c) => c.map(rel))).to.deep.equal([]);
  });

  it('no folder imports itself through others', () => {
    // A component's sub-folders (processors/k8sattributes/kube) are part of the component.
    const folderOf = (f: string): string => componentOf(f) ?? path.dirname(rel(f));
    const graph = new Map<string, Set<string>>();
    for (const [file, targets] of edges) {
      const from = folderOf(file);
      const set = graph.get(from) ?? new Set<string>();
      graph.set(from, set);
      for (const t of targets) if (folderOf(t) !== from) set.add(folderOf(t));
    }
    expect(cycles(graph)).to.deep.equal([]);
  });

  it('the checks see the imports they judge', () => {
    // A parser that found no imports would pass every check above.
    const component = edges.get(path.join(src, 'core/component.ts')) ?? [];
    expect(component.map(rel)).to.deep.equal(['src/core/telemetry.ts']);
    expect((edges.get(path.join(src, 'main.ts')) ?? []).length).to.be.greaterThan(5);
  });
});
