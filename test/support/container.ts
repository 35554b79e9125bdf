/**
 * Containers for the tests, with podman: the routelens image built from the repository's Dockerfile
 * (scripts/build-image.sh) and containers started from it with published ports, removed when the test process
 * exits.
 *
 * podman runs with runc (PODMAN_RUNTIME overrides): Debian's default crun fails on hosts with hybrid cgroups.
 */
import { execFile, execFileSync } from 'node:child_process';
import { runSetupScript } from './process';

export const PODMAN_RUNTIME = process.env['PODMAN_RUNTIME'] ?? '/usr/sbin/runc';
/** Without raised limits the runtime's setrlimit is refused on some hosts. */
const ULIMITS = ['--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096'];

export interface PodmanResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `podman --runtime … ARGS`; resolves with the exit code (never rejects on a non-zero exit). */
export function podman(args: readonly string[], timeoutMs = 120_000): Promise<PodmanResult> {
  return new Promise((resolve) => {
    execFile('podman', ['--runtime', PODMAN_RUNTIME, ...args], { timeout: timeoutMs, maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
      resolve({ code, stdout, stderr: err !== null && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr });
    });
  });
}

/** `podman ARGS`, rejecting with the command's stderr unless it exits 0; resolves with stdout. */
export async function podmanOk(args: readonly string[], timeoutMs?: number): Promise<string> {
  const r = await podman(args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-10).join('\n')}`);
  return r.stdout;
}

/**
 * Why containers cannot run here, or undefined when they can. In CI (ROUTELENS_CI=1) a test must fail rather
 * than skip, so callers throw the reason there.
 */
export async function containersUnavailable(): Promise<string | undefined> {
  const v = await podman(['version', '--format', '{{.Client.Version}}'], 30_000);
  if (v.code !== 0) return `podman cannot run (${v.stderr.trim().split('\n')[0] ?? 'not installed'}); install podman and runc`;
  return undefined;
}

/** Skip the calling test (or fail it in CI) when podman cannot run containers. */
export async function requireContainers(ctx: Mocha.Context): Promise<void> {
  const why = await containersUnavailable();
  if (why === undefined) return;
  if (process.env['ROUTELENS_CI'] === '1') throw new Error(`containers are required in CI: ${why}`);
  console.warn(`      skipped: ${why}`);
  ctx.skip();
}

/** The routelens image built from the working tree (scripts/build-image.sh; podman's layer cache makes a rebuild quick). */
export function routelensImage(): Promise<string> {
  return runSetupScript('build-image.sh', 40 * 60_000);
}

/** `podman run --rm` a one-off command (no health check timers); resolves with the result. */
export function podmanRunOnce(image: string, runArgs: readonly string[], cmd: readonly string[] = []): Promise<PodmanResult> {
  return podman(['run', '--rm', '--no-healthcheck', ...ULIMITS, ...runArgs, image, ...cmd]);
}

const started = new Set<string>();
let exitHook = false;

/** Remove every container the tests started that is still there (also run when the test process exits). */
export function removeStartedContainersSync(): void {
  for (const name of started) {
    try {
      execFileSync('podman', ['--runtime', PODMAN_RUNTIME, 'rm', '-f', '-t', '0', name], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      // already gone
    }
  }
  started.clear();
}

export interface RunContainerOptions {
  image: string;
  /** Container name; a unique one by default. */
  name?: string;
  /** Host port → container port, published on 127.0.0.1. */
  publish?: Record<number, number>;
  env?: Record<string, string>;
  /** `host:container[:options]` bind mounts. */
  volumes?: string[];
  /** Other `podman run` options (e.g. `--read-only`). */
  extra?: string[];
  /** Arguments after the image (replace the image's CMD). */
  args?: string[];
}

export interface Container {
  readonly name: string;
  /** Output of the container so far (stdout and stderr). */
  logs(): Promise<string>;
  /** `podman exec` in the container; resolves with the result. */
  exec(cmd: readonly string[]): Promise<PodmanResult>;
  /** `podman stop -t graceSeconds` (SIGTERM, SIGKILL after the grace period); resolves with the exit code. */
  stop(graceSeconds: number): Promise<number>;
  /** Wait for the container to exit; resolves with its exit code. */
  wait(): Promise<number>;
  /** Remove the container (stopping it at once if it runs). */
  remove(): Promise<void>;
}

/** Start a detached container. */
export async function runContainer(o: RunContainerOptions): Promise<Container> {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', removeStartedContainersSync);
  }
  const name = o.name ?? `routelens-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const args = ['run', '-d', '--name', name, ...ULIMITS];
  for (const [host, ctr] of Object.entries(o.publish ?? {})) args.push('-p', `127.0.0.1:${host}:${ctr}`);
  for (const [k, v] of Object.entries(o.env ?? {})) args.push('-e', `${k}=${v}`);
  for (const v of o.volumes ?? []) args.push('-v', v);
  args.push(...(o.extra ?? []), o.image, ...(o.args ?? []));
  started.add(name);
  await podmanOk(args);
  return {
    name,
    async logs() {
      const r = await podman(['logs', name]);
      return r.stdout + r.stderr;
    },
    exec: (cmd) => podman(['exec', name, ...cmd]),
    async stop(graceSeconds) {
      await podmanOk(['stop', '-t', String(graceSeconds), name], (graceSeconds + 60) * 1000);
      return Number((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', name])).trim());
    },
    async wait() {
      return Number((await podmanOk(['wait', name], 10 * 60_000)).trim());
    },
    async remove() {
      await podman(['rm', '-f', '-t', '0', name]);
      started.delete(name);
    },
  };
}
