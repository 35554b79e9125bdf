/**
 * The routelens command line. This is the only place that calls process.exit.
 *   routelens run [--config FILE]        start the pipelines (default ./otel-config.yaml)
 *   routelens validate [--config FILE]   check a config and print every problem with its YAML path
 *   routelens --version | --help
 */
import * as path from 'node:path';
import { startHeapTrim } from './v8/heap-trim';
import { registerProcessMetrics } from './telemetry/process-metrics';
import { availableCpus, isPrimary, runPrimary, runWorker, workerIndex } from './cluster/cluster';
import { missingV8Flags } from './v8/flags';
import { defaultRegistry, factories } from './components';
import { renderConfigReference } from './config/reference';
import { analyze } from './cli/analyze';
import { CommandError, routesCommand } from './cli/routes';
import { servicesCommand } from './cli/services';
import { analyzeWhy } from './cli/analyze-why';
import { formatWhy, splitMethod, whyCommand } from './cli/why';
import { loadConfigFile } from './config/load';
import { ConfigError } from './core/schema';
import { Service, pipelineSummary } from './pipeline/service';
import { createLogger } from './telemetry/logger';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../../package.json') as { version: string };

const HELP = `routelens ${pkg.version}: an OpenTelemetry trace processor and per-route latency analyzer

Usage:
  routelens run [--config FILE] [--workers N]
                                      Start routelens (default config: ./otel-config.yaml); N worker processes
                                      share the ports (default: one per CPU, or $ROUTELENS_WORKERS)
  routelens validate [--config FILE]  Check a config; prints every problem with its YAML path (exit 2 if invalid)
  routelens routes [--url http://localhost:8888] [--window 5m] [--service S] [--sort p99|p95|rate|errors]
                  [--limit N] [--json] [--watch] [--token T] [--cluster]
                                      Per-route latency table from a running routelens (--cluster: merged
                                      from every peer of its routequery cluster, saying which did not answer)
  routelens services [--url http://localhost:8888] [--window 5m] [--service S] [--json] [--token T]
                                      Each service's instances with their runtime (CPU, RSS, GC, threads,
                                      fds, from a metrics pipeline) beside its routes' p95/p99 and rates
  routelens why SERVICE ROUTE [--method M] [--url http://localhost:8888] [--window 5m] [--json] [--token T]
                                      Why the route is slow: where its time goes, statements, N+1, what slow
                                      requests have that fast ones do not, versions (ROUTE may be "GET /x/{id}")
  routelens analyze FILE... [--json] [--sort K] [--limit N] [--service S] [--html OUT.html [--jaeger-url URL]]
                                      The same table offline, from OTLP/JSON files (the file exporter's output);
                                      --html also writes the page as one self-contained file
  routelens analyze FILE... --why [--service S] [--route R] [--json] [--fail-on n+1]
                                      The why answer of every route offline; --fail-on n+1 exits 3 when a
                                      route has an N+1 (for CI)
  routelens config-reference          Print the reference of every component's config keys (Markdown)
  routelens --version                 Print the version
  routelens --help                    This help

Environment: \${env:VAR} and \${env:VAR:-default} are substituted in the config.
`;

export interface ParsedArgs {
  command: string;
  flags: Map<string, string | true>;
  positionals: string[];
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string | true>();
  const positionals: string[] = [];
  let command = '';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
      else {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--') && !BOOLEAN_FLAGS.has(a.slice(2))) {
          flags.set(a.slice(2), next);
          i++;
        } else flags.set(a.slice(2), true);
      }
    } else if (a === '-h') flags.set('help', true);
    else if (a === '-v') flags.set('version', true);
    else if (command === '') command = a;
    else positionals.push(a);
  }
  return { command, flags, positionals };
}

const BOOLEAN_FLAGS = new Set(['help', 'version', 'json', 'watch', 'no-color', 'cluster', 'why']);

/** `--fail-on` conditions of `analyze --why`. */
const FAIL_ON = ['n+1'];

function str(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

function configPath(args: ParsedArgs): string {
  const f = args.flags.get('config');
  return path.resolve(typeof f === 'string' ? f : 'otel-config.yaml');
}

async function run(args: ParsedArgs): Promise<number> {
  const file = configPath(args);
  const registry = defaultRegistry();
  const config = loadConfigFile(file, registry);
  const logger = createLogger({ level: config.telemetry.logs.level, encoding: config.telemetry.logs.encoding });
  if (!isPrimary()) return runWorker(config, workerIndex(), logger);
  for (const w of config.warnings) logger.warn({ config: file }, w);
  const workers = workerCount(args);
  const missing = missingV8Flags();
  if (workers <= 1 && missing.length > 0) {
    logger.info(
      `node was started without ${missing.join(' ')}: expect more CPU per span (run bin/routelens.js directly, or node ${missing.join(' ')} bin/routelens.js; see docs/decisions/0001-v8-flags.md)`,
    );
  }
  if (workers > 1) {
    return runPrimary({
      config,
      workers,
      logger,
      onReady: (s) =>
        logger.info(
          {
            version: pkg.version,
            config: file,
            workers: s.workers,
            pipelines: pipelineSummary(config),
            endpoints: { ...configuredEndpoints(config), ...s.endpoints },
          },
          'Everything is ready. Begin running and processing data.',
        ),
    });
  }
  const service = new Service(config, { logger });
  startHeapTrim();
  registerProcessMetrics(service.telemetry, { resources: true, uptime: true });
  try {
    await service.start();
  } catch (err) {
    logger.error({ err: err instanceof Error ? err.message : String(err) }, 'Failed to start');
    return 1;
  }
  logger.info(
    { version: pkg.version, config: file, pipelines: service.summary(), endpoints: endpoints(service) },
    'Everything is ready. Begin running and processing data.',
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'Received signal; shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await service.shutdown();
  logger.info('Shutdown complete');
  return 0;
}

/** `--workers N` (or ROUTELENS_WORKERS); by default one per CPU the process may use (cgroup limit included). */
function workerCount(args: ParsedArgs): number {
  const raw = str(args, 'workers') ?? process.env.ROUTELENS_WORKERS;
  if (raw === undefined || raw === '') return availableCpus().cpus;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new CommandError(`--workers: invalid value ${JSON.stringify(raw)}; expected an integer from 1 to 256`);
  return n;
}

/** Listen addresses of the receivers as configured (workers bind them). */
function configuredEndpoints(config: ReturnType<typeof loadConfigFile>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, cc] of config.receivers) {
    const p = (cc.config as { protocols?: Record<string, { endpoint?: string } | undefined> }).protocols ?? {};
    for (const [proto, c] of Object.entries(p)) if (c?.endpoint !== undefined) out[`${id}/${proto}`] = c.endpoint;
  }
  return out;
}

function endpoints(service: Service): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, c] of service.components('receiver')) {
    const r = c as { grpc?: { port: number }; http?: { port: number } };
    if (r.grpc) out[`${id}/grpc`] = r.grpc.port;
    if (r.http) out[`${id}/http`] = r.http.port;
  }
  for (const [id, c] of service.components('extension')) {
    const port = (c as { port?: number }).port;
    if (typeof port === 'number' && port > 0) out[id] = port;
  }
  return out;
}

function validate(args: ParsedArgs): number {
  const file = configPath(args);
  const config = loadConfigFile(file, defaultRegistry());
  for (const w of config.warnings) process.stderr.write(`routelens: warning: ${w}\n`);
  process.stdout.write(`${file}: configuration is valid\n`);
  return 0;
}

/** `routelens analyze FILE… --why`: prints every route's answer; exit 3 when a `--fail-on` condition holds. */
async function analyzeWhyCommand(args: ParsedArgs): Promise<number> {
  const failOn = str(args, 'fail-on');
  if (args.flags.has('fail-on') && (failOn === undefined || !FAIL_ON.includes(failOn))) {
    process.stderr.write(`routelens analyze: --fail-on: expected one of ${FAIL_ON.join(', ')}\n`);
    return 2;
  }
  const route = str(args, 'route');
  const split = route === undefined ? { method: str(args, 'method'), route: undefined } : splitMethod(route, str(args, 'method'));
  const { answers } = await analyzeWhy({ files: args.positionals, service: str(args, 'service'), route: split.route, method: split.method });
  const color = process.stdout.isTTY === true && !args.flags.has('no-color');
  process.stdout.write(args.flags.has('json') ? `${JSON.stringify({ routes: answers }, null, 2)}\n` : answers.map((a) => formatWhy(a, { color })).join('\n'));
  if (failOn === 'n+1') {
    const found = answers.filter((a) => a.n_plus_one.length > 0);
    if (found.length > 0) {
      for (const a of found) {
        for (const n of a.n_plus_one)
          process.stderr.write(
            `routelens: N+1 in ${a.service} ${a.method} ${a.route}: ${n.fingerprint} × ${n.repeats} (${n.kind}, example trace ${n.example_trace_id})\n`,
          );
      }
      return 3;
    }
  }
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.flags.has('version')) {
    process.stdout.write(`routelens ${pkg.version}\n`);
    return 0;
  }
  if (args.flags.has('help') || args.command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    switch (args.command) {
      case 'run':
      case '':
        return await run(args);
      case 'validate':
        return validate(args);
      case 'routes':
        await routesCommand({
          url: str(args, 'url') ?? 'http://localhost:8888',
          window: str(args, 'window'),
          service: str(args, 'service'),
          sort: str(args, 'sort'),
          limit: str(args, 'limit'),
          token: str(args, 'token') ?? process.env.ROUTELENS_TOKEN,
          json: args.flags.has('json'),
          watch: args.flags.has('watch'),
          cluster: args.flags.has('cluster'),
          color: process.stdout.isTTY === true && !args.flags.has('no-color'),
          out: process.stdout,
        });
        return 0;
      case 'services':
        await servicesCommand({
          url: str(args, 'url') ?? 'http://localhost:8888',
          window: str(args, 'window'),
          service: str(args, 'service'),
          token: str(args, 'token') ?? process.env.ROUTELENS_TOKEN,
          json: args.flags.has('json'),
          color: process.stdout.isTTY === true && !args.flags.has('no-color'),
          out: process.stdout,
        });
        return 0;
      case 'why': {
        const [service, ...route] = args.positionals;
        if (service === undefined || route.length === 0) {
          process.stderr.write('routelens why: give a service and a route, e.g. routelens why orders "GET /orders/{id}"\n');
          return 2;
        }
        await whyCommand({
          url: str(args, 'url') ?? 'http://localhost:8888',
          service,
          route: route.join(' '),
          method: str(args, 'method'),
          window: str(args, 'window'),
          token: str(args, 'token') ?? process.env.ROUTELENS_TOKEN,
          json: args.flags.has('json'),
          color: process.stdout.isTTY === true && !args.flags.has('no-color'),
          out: process.stdout,
        });
        return 0;
      }
      case 'analyze':
        if (args.positionals.length === 0) {
          process.stderr.write('routelens analyze: give one or more OTLP/JSON files (one ExportTraceServiceRequest per line)\n');
          return 2;
        }
        if (args.flags.has('why')) return await analyzeWhyCommand(args);
        await analyze({
          files: args.positionals,
          json: args.flags.has('json'),
          sort: str(args, 'sort'),
          limit: str(args, 'limit'),
          service: str(args, 'service'),
          html: str(args, 'html'),
          jaegerUrl: str(args, 'jaeger-url'),
          out: process.stdout,
          progress: process.stderr.isTTY ? process.stderr : undefined,
          color: process.stdout.isTTY === true && !args.flags.has('no-color'),
        });
        return 0;
      case 'config-reference':
        process.stdout.write(renderConfigReference(factories));
        return 0;
      default:
        process.stderr.write(`routelens: unknown command ${JSON.stringify(args.command)}\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof CommandError) {
      process.stderr.write(`routelens: ${err.message}\n`);
      return 1;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`routelens: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`routelens: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
