/** The documentation generated from code must match what is committed, and the shipped configs must be valid. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { defaultRegistry, factories } from '../src/components';
import { renderConfigReference } from '../src/config/reference';
import { loadConfigFile } from '../src/config/load';

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
});
