/** The documentation generated from code must match what is committed, and the shipped configs must be valid. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultRegistry, factories } from '../src/components';
import { renderConfigReference } from '../src/config/reference';
import { loadConfigFile } from '../src/config/load';
import { V8_FLAGS } from '../src/v8/flags';

const root = path.resolve(__dirname, '../..');

describe('documentation', () => {
  it('docs/config-reference.md is what `routelens config-reference` prints (regenerate it if this fails)', () => {
    const committed = fs.readFileSync(path.join(root, 'docs/config-reference.md'), 'utf8');
    expect(committed).to.equal(renderConfigReference(factories));
  });

  it('every routelens config shipped in the repository is valid', () => {
    const files = ['otel-config.yaml'];
    const walk = (dir: string): void => {
      if (!fs.existsSync(dir)) return;
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/otel-config.*\.ya?ml$|routelens.*\.ya?ml$/.test(e.name)) files.push(path.relative(root, p));
      }
    };
    walk(path.join(root, 'examples'));
    for (const f of files) {
      expect(() => loadConfigFile(path.join(root, f), defaultRegistry(), { ...process.env }), f).to.not.throw();
    }
  });

  it('the bin shebang, the npm scripts, the README and the Dockerfile start node with exactly V8_FLAGS', () => {
    const flagsOf = (line: string): string[] => line.split(/\s+/).filter((w) => w.startsWith('--'));
    const shebang = fs.readFileSync(path.join(root, 'bin/routelens.js'), 'utf8').split('\n')[0] as string;
    const scripts = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const places: Array<[string, string]> = [['bin/routelens.js shebang', shebang]];
    // Every npm script that starts node with flags (npm start, bench:hot-path); npm start must be one of them.
    for (const [name, script] of Object.entries(scripts)) {
      for (const part of script.split('&&')) if (/^\s*node --/.test(part)) places.push([`npm run ${name}`, part.replace(/ (bin|dist)\/.*/, '')]);
    }
    expect(places.map(([where]) => where)).to.include('npm run start');
    // The image's ENTRYPOINT (the Kubernetes examples and the chart run the image with `run --config …` as args).
    const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8'))?.[1];
    expect(entrypoint, 'Dockerfile ENTRYPOINT').to.not.equal(undefined);
    const argv = JSON.parse(entrypoint as string) as string[];
    expect([argv[0], argv[argv.length - 1]]).to.deep.equal(['node', '/opt/routelens/bin/routelens.js']);
    places.push(['Dockerfile ENTRYPOINT', argv.join(' ')]);
    for (const doc of ['README.md']) {
      const text = fs.readFileSync(path.join(root, doc), 'utf8');
      const quoted = [...text.matchAll(/`(?:node )?(--single-threaded-gc[^`]*?)(?: bin\/routelens\.js)?`/g)].map((m) => m[1] as string);
      expect(quoted.length, `${doc} quotes the node flags`).to.be.greaterThan(0);
      for (const q of quoted) places.push([doc, q]);
    }
    for (const [where, line] of places) expect(flagsOf(line), where).to.deep.equal([...V8_FLAGS]);
  });
});
