/**
 * OTLP/gRPC server. The request message is taken as raw bytes (identity deserializer) and validated by
 * TraceBatch.decode, so nothing is materialised. Refusals carry RetryInfo both in `grpc-status-details-bin`
 * (read by Go clients) and in the `google.rpc.retryinfo-bin` trailer (read by the Python exporter).
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serverTlsOptions } from '../../config/tls';
import { splitHostPort } from '../../config/schema';
import { asPipelineError, toGrpcStatus } from '../../core/errors';
import { encodeRetryInfo, encodeRpcStatus } from '../../pdata/rpc-status';
import type { GrpcServerConfig } from './config';
import { normaliseAddress, type TraceIntake } from './intake';

const identity = (b: Buffer): Buffer => b;
const EMPTY = Buffer.alloc(0);

const traceService: grpc.ServiceDefinition = {
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** Peer address of a call: grpc-js reports `ipv4:1.2.3.4:5`, `1.2.3.4:5` or `[::1]:5`. */
export function peerAddress(peer: string): string | undefined {
  const p = peer.replace(/^ipv[46]:/, '');
  const m = /^\[?([^\]]*?)\]?:\d+$/.exec(p);
  return normaliseAddress(m === null ? p : m[1]);
}

export class OtlpGrpcServer {
  readonly #server: grpc.Server;
  readonly #config: GrpcServerConfig;
  readonly #logger: Logger;
  #port = 0;

  constructor(config: GrpcServerConfig, intake: TraceIntake, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
    const maxMiB = config.max_recv_msg_size_mib === 0 ? 4 : config.max_recv_msg_size_mib;
    this.#server = new grpc.Server({
      'grpc.max_receive_message_length': Math.floor(maxMiB * 1024 * 1024),
      ...(config.max_concurrent_streams > 0 ? { 'grpc.max_concurrent_streams': config.max_concurrent_streams } : {}),
    });
    this.#server.addService(traceService, {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        const ctx = {
          transport: 'grpc' as const,
          clientAddress: peerAddress(call.getPeer()),
          ...(config.include_metadata ? { headers: metadataHeaders(call.metadata) } : {}),
        };
        intake.consume(call.request ?? EMPTY, ctx).then(
          () => callback(null, EMPTY),
          (err: unknown) => {
            const e = asPipelineError(err);
            const metadata = new grpc.Metadata();
            const code = toGrpcStatus(e);
            metadata.set('grpc-status-details-bin', Buffer.from(encodeRpcStatus(code, e.message, e.retryAfterMs)));
            if (e.retryAfterMs !== undefined) metadata.set('google.rpc.retryinfo-bin', Buffer.from(encodeRetryInfo(e.retryAfterMs)));
            callback({ code, details: e.message, metadata });
          },
        );
      },
    });
  }

  /** Bind and start serving; returns the bound port. */
  async start(): Promise<number> {
    const hp = splitHostPort(this.#config.endpoint);
    if (hp === undefined) throw new Error(`invalid endpoint ${this.#config.endpoint}`);
    const host = hp.host === '' ? '0.0.0.0' : hp.host;
    const creds = this.#credentials();
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${hp.port}`, creds, (err, port) => (err ? reject(new Error(`cannot listen on ${this.#config.endpoint} (gRPC): ${err.message}`)) : resolve(port)));
    });
    return this.#port;
  }

  #credentials(): grpc.ServerCredentials {
    const tls = this.#config.tls;
    if (tls === undefined) return grpc.ServerCredentials.createInsecure();
    const o = serverTlsOptions(tls);
    if (o.cert === undefined || o.key === undefined) throw new Error('tls needs cert_file and key_file');
    return grpc.ServerCredentials.createSsl((o.ca as Buffer | undefined) ?? null, [{ cert_chain: o.cert as Buffer, private_key: o.key as Buffer }], o.ca !== undefined);
  }

  get port(): number {
    return this.#port;
  }

  /** Stop accepting new calls; in-flight calls finish (bounded by the deadline signal). */
  async shutdown(signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = (): void => {
        this.#server.forceShutdown();
        resolve();
      };
      if (signal?.aborted) return force();
      signal?.addEventListener('abort', force, { once: true });
      this.#server.tryShutdown(() => {
        signal?.removeEventListener('abort', force);
        resolve();
      });
    });
    this.#logger.debug({ port: this.#port }, 'gRPC server stopped');
  }
}

function metadataHeaders(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) if (typeof v === 'string') out[k] = v;
  return out;
}
