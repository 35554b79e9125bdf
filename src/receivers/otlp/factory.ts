/** The `otlp` receiver: OTLP/gRPC and OTLP/HTTP servers for traces, metrics and logs, feeding the pipelines of each. */
import { resolveServerAuthenticator } from '../../core/auth';
import type { Component, CreateSettings, Host } from '../../core/component';
import type { ReceiverFactory } from '../../consumer/factory';
import type { SignalConsumers } from '../../consumer/consumer';
import { otlpReceiverConfigSchema, type OtlpReceiverConfig } from './config';
import { OtlpGrpcServer } from './grpc';
import { OtlpHttpServer } from './http';
import { Intake } from './intake';

export class OtlpReceiver implements Component {
  readonly grpc: OtlpGrpcServer | undefined;
  readonly http: OtlpHttpServer | undefined;
  readonly #started: (OtlpGrpcServer | OtlpHttpServer)[] = [];
  readonly #logger;
  readonly #id: string;
  readonly #config: OtlpReceiverConfig;

  constructor(settings: CreateSettings, config: OtlpReceiverConfig, next: SignalConsumers) {
    this.#logger = settings.logger;
    this.#id = settings.id;
    this.#config = config;
    const { grpc, http } = config.protocols;
    const common = { id: settings.id, next, logger: this.#logger, telemetry: settings.telemetry };
    this.grpc = grpc === undefined ? undefined : new OtlpGrpcServer(grpc, new Intake({ ...common, transport: 'grpc' }), this.#logger);
    this.http = http === undefined ? undefined : new OtlpHttpServer(http, new Intake({ ...common, transport: 'http' }), this.#logger);
  }

  async start(host: Host): Promise<void> {
    const { grpc, http } = this.#config.protocols;
    const auth = (proto: 'grpc' | 'http', id: string | undefined) =>
      id === undefined ? undefined : resolveServerAuthenticator(host, id, `receivers.${this.#id}.protocols.${proto}.auth.authenticator`);
    this.grpc?.setAuthenticator(auth('grpc', grpc?.auth?.authenticator));
    this.http?.setAuthenticator(auth('http', http?.auth?.authenticator));
    for (const s of [this.grpc, this.http]) {
      if (s === undefined) continue;
      await s.start();
      this.#started.push(s);
    }
  }

  async shutdown(signal?: AbortSignal): Promise<void> {
    await Promise.all(this.#started.splice(0).map((s) => s.shutdown(signal)));
  }
}

export const otlpReceiverFactory: ReceiverFactory<OtlpReceiverConfig> = {
  kind: 'receiver',
  type: 'otlp',
  configSchema: otlpReceiverConfigSchema,
  signals: ['traces', 'metrics', 'logs'],
  create: (settings, config, next) => new OtlpReceiver(settings, config, next),
};
