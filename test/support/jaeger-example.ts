/**
 * Jaeger v2 started as the README tells users to: the binary with `--config=file:examples/jaeger/jaeger.yaml`,
 * its addresses moved to free loopback ports through the environment variables that config reads.
 *
 * Unlike test/support/jaeger.ts, stop() and start() are separate (the outage test keeps Jaeger down while
 * traffic flows) and the ports stay the same across restarts. Memory storage: a restart empties it.
 */
import * as net from 'node:net';
import * as path from 'node:path';
import { freePorts, waitFor } from './free-port';
import { jaegerBinary } from './jaeger';
import { startProcess, type ProcessHandle } from './process';
import { repoRoot } from './python';

export const exampleJaegerConfig = path.join(repoRoot, 'examples', 'jaeger', 'jaeger.yaml');

export interface ExampleJaeger {
  /** host:port of Jaeger's OTLP/gRPC receiver (what routelens's otlp exporter points at). */
  readonly otlpGrpcEndpoint: string;
  readonly queryUrl: string;
  readonly running: boolean;
  /** SIGTERM and wait for the exit. In-memory traces are lost. */
  stop(): Promise<void>;
  /** Start again on the same ports; resolves when the query API and both OTLP ports answer. */
  start(): Promise<void>;
  output(): string;
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.setTimeout(1000, () => done(false));
  });
}

export async function startExampleJaeger(): Promise<ExampleJaeger> {
  const bin = await jaegerBinary();
  const [grpc, http, query, queryGrpc] = await freePorts(4);
  if (grpc === undefined || http === undefined || query === undefined || queryGrpc === undefined) throw new Error('freePorts returned too few ports');
  const env = {
    JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${grpc}`,
    JAEGER_OTLP_HTTP_ENDPOINT: `127.0.0.1:${http}`,
    JAEGER_QUERY_ENDPOINT: `127.0.0.1:${query}`,
    JAEGER_QUERY_GRPC_ENDPOINT: `127.0.0.1:${queryGrpc}`,
  };
  const queryUrl = `http://127.0.0.1:${query}`;
  let proc: ProcessHandle | undefined;
  let previousOutput = '';

  const start = async (): Promise<void> => {
    if (proc?.running) throw new Error('jaeger is already running');
    if (proc) previousOutput += proc.output();
    const p = startProcess(bin, [`--config=file:${exampleJaegerConfig}`], { name: 'jaeger', cwd: repoRoot, env });
    proc = p;
    try {
      await waitFor(
        async () => {
          if (!p.running) throw new Error(`jaeger exited early: ${JSON.stringify(await p.exited)}`);
          const res = await fetch(`${queryUrl}/api/services`);
          await res.arrayBuffer();
          if (res.status !== 200) return undefined;
          return (await tcpOpen(grpc)) && (await tcpOpen(http)) ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `jaeger (${exampleJaegerConfig}) ready on ${queryUrl}` },
      );
    } catch (err) {
      await p.kill9();
      throw new Error(`${(err as Error).message}\n--- jaeger output ---\n${p.output().slice(-6000)}`, { cause: err });
    }
  };

  await start();
  return {
    otlpGrpcEndpoint: `127.0.0.1:${grpc}`,
    queryUrl,
    get running() {
      return proc?.running ?? false;
    },
    async stop() {
      await proc?.stop(10_000);
    },
    start,
    output: () => previousOutput + (proc?.output() ?? ''),
  };
}
