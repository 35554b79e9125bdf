/** helm, built from the Go module proxy at the pinned version (scripts/build-helm.sh), for the chart tests. */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as YAML from 'yaml';
import { parseManifests, type Obj } from './k8s-manifests';
import { repoRoot, runSetupScript } from './process';

/** Path of helm: $HELM_BIN, else built/cached by scripts/build-helm.sh. */
export function helmBinary(): Promise<string> {
  const env = process.env['HELM_BIN'];
  return env !== undefined && env !== '' ? Promise.resolve(env) : runSetupScript('build-helm.sh');
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run helm with `args` (and `values` as a values file when given); never rejects on a non-zero exit. */
export async function helm(args: readonly string[], values?: Obj): Promise<HelmResult> {
  const bin = await helmBinary();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-helm-'));
  try {
    const extra: string[] = [];
    if (values !== undefined) {
      const file = path.join(dir, 'values.yaml');
      fs.writeFileSync(file, YAML.stringify(values));
      extra.push('-f', file);
    }
    // A private HOME: no user repositories or plugins, no cache written outside the temp directory.
    const env = {
      ...process.env,
      HELM_CACHE_HOME: path.join(dir, 'cache'),
      HELM_CONFIG_HOME: path.join(dir, 'config'),
      HELM_DATA_HOME: path.join(dir, 'data'),
    };
    return await new Promise<HelmResult>((resolve) => {
      execFile(bin, [...args, ...extra], { cwd: repoRoot(), env, timeout: 120_000, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
        resolve({
          code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1,
          stdout,
          stderr: err !== null && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr,
        });
      });
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const CHART = 'charts/routelens';

/** `helm template RELEASE charts/routelens -n NAMESPACE` with `values`: the rendered objects; throws when helm fails. */
export async function helmTemplate(values: Obj = {}, opts: { release?: string; namespace?: string } = {}): Promise<Obj[]> {
  const r = await helm(['template', opts.release ?? 'rl', CHART, '--namespace', opts.namespace ?? 'observability'], values);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return parseManifests(r.stdout, 'helm template');
}
