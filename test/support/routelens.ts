/**
 * Run routelens in-process from a YAML string, for tests. Endpoints in the YAML should use port 0; the
 * bound ports are read back from the running components.
 */
import { Writable } from 'node:stream';
import type { AnyFactory } from '../../src/consumer/factory';
import { defaultRegistry } from '../../src/components';
import { parseConfig } from '../../src/config/load';
import { Service } from '../../src/pipeline/service';
import { createLogger } from '../../src/telemetry/logger';
import type { OtlpReceiver } from '../../src/receivers/otlp/factory';
import type { RouteQueryExtension } from '../../src/extensions/routequery/factory';

export interface RunningRoutelens {
  service: Service;
  /** Captured log lines (JSON objects). */
  logs: Record<string, unknown>[];
  grpcPort(receiver?: string): number;
  httpPort(receiver?: string): number;
  queryUrl(extension?: string): string;
  metricsText(): Promise<string>;
  stop(): Promise<void>;
}

export async function startRoutelens(yaml: string, opts: { env?: NodeJS.ProcessEnv; extraFactories?: AnyFactory[] } = {}): Promise<RunningRoutelens> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const config = parseConfig(yaml, defaultRegistry(opts.extraFactories), opts.env ?? process.env);
  const logger = createLogger({ level: process.env.ROUTELENS_TEST_LOG_LEVEL ?? 'info', destination: sink });
  const service = new Service(config, { logger });
  await service.start();
  const receiver = (id = 'otlp'): OtlpReceiver => {
    const r = service.receiver<OtlpReceiver>(id);
    if (r === undefined) throw new Error(`no receiver ${id}`);
    return r;
  };
  const rl: RunningRoutelens = {
    service,
    logs,
    grpcPort: (id) => receiver(id).grpc?.port ?? 0,
    httpPort: (id) => receiver(id).http?.port ?? 0,
    queryUrl: (id = 'routequery') => `http://127.0.0.1:${(service.getExtension(id) as RouteQueryExtension).port}`,
    async metricsText() {
      const res = await fetch(`${rl.queryUrl()}/metrics`);
      return res.text();
    },
    stop: () => service.shutdown(),
  };
  return rl;
}

/** Value of a Prometheus sample `name{labels}` in exposition text (sum over matching series). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    // label values may contain braces (routes like /users/{id}): labels run to the last `}` before the value
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\d+)?$/.exec(line.split(' # ')[0] as string);
    if (m === null || m[1] !== name) continue;
    const ls = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) total += Number(m[3]);
  }
  return total;
}
