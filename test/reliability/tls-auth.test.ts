/**
 * TLS, mTLS and bearer-token authentication on the OTLP receivers (gRPC and HTTP) and the query API, with
 * certificates made at test time and the real JS SDK exporters as clients; then the client side: routelens
 * exporters with TLS and a bearer token sending to a routelens that requires them.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { waitFor } from '../support/free-port';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { metricValue, startRoutelens, type RunningRoutelens } from '../support/routelens';
import { makeTestCerts, type TestCerts } from '../support/test-certs';
import { postTraces, spanIds, traceRequest } from '../support/trace-requests';
import { grpcExport, sdkExport } from '../support/sdk-export';

const TOKEN = 'routelens-test-token-1';

function servicesAt(sink: OtlpSink): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of sink.spans()) {
    const svc = String(attrMap((s.resource as { attributes?: never }).attributes)['service.name']?.stringValue);
    out.set(svc, [...(out.get(svc) ?? []), s.spanId]);
  }
  return out;
}

async function spansOf(sink: OtlpSink, service: string, n: number): Promise<string[]> {
  return waitFor(
    async () => {
      const got = servicesAt(sink).get(service) ?? [];
      return got.length >= n ? got : undefined;
    },
    { timeoutMs: 15_000, what: `${n} spans of ${service} at the sink` },
  );
}

describe('TLS and bearer authentication on the receivers', function () {
  this.timeout(120_000);
  let certs: TestCerts;
  let otherCa: TestCerts;
  let sink: OtlpSink;
  let rl: RunningRoutelens;
  let dir: string;
  let tokenFile: string;

  before(async () => {
    certs = makeTestCerts();
    otherCa = makeTestCerts({ clientName: 'stranger', fresh: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-tls-'));
    tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`);
    sink = await new OtlpSink().start();
    const p = certs.paths;
    const serverTls = `{ cert_file: ${p.serverCert}, key_file: ${p.serverKey} }`;
    const mtls = `{ cert_file: ${p.serverCert}, key_file: ${p.serverKey}, client_ca_file: ${p.caCert} }`;
    rl = await startRoutelens(`
receivers:
  otlp/tls:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: ${serverTls} }
      http: { endpoint: 127.0.0.1:0, tls: ${serverTls} }
  otlp/mtls:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: ${mtls} }
      http: { endpoint: 127.0.0.1:0, tls: ${mtls} }
  otlp/auth:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
      http: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 100ms }
extensions:
  bearertokenauth: { filename: ${tokenFile} }
  routequery: { endpoint: 127.0.0.1:0, auth: { authenticator: bearertokenauth } }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces:
      receivers: [otlp/tls, otlp/mtls, otlp/auth]
      exporters: [otlp]
`);
  });

  after(async () => {
    await rl?.stop();
    await sink?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const httpsUrl = (receiver: string): string => `https://localhost:${rl.httpPort(receiver)}/v1/traces`;
  const grpcUrl = (receiver: string): string => `https://localhost:${rl.grpcPort(receiver)}`;
  const metrics = async (): Promise<string> => {
    const res = await fetch(`${rl.queryUrl()}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    return res.text();
  };

  describe('TLS', () => {
    it('accepts the SDK exporters that trust the CA, over gRPC and HTTP', async () => {
      const viaHttp = await sdkExport(new ProtoExporter({ url: httpsUrl('otlp/tls'), httpAgentOptions: { ca: certs.caCert } }), 'tls-http-ok');
      const viaGrpc = await sdkExport(
        new GrpcExporter({ url: grpcUrl('otlp/tls'), credentials: grpc.credentials.createSsl(Buffer.from(certs.caCert)) }),
        'tls-grpc-ok',
      );
      expect([viaHttp.ok, viaGrpc.ok], `${viaHttp.error?.message} / ${viaGrpc.error?.message}`).to.deep.equal([true, true]);
      expect((await spansOf(sink, 'tls-http-ok', 2)).sort()).to.deep.equal([...viaHttp.spanIds].sort());
      expect((await spansOf(sink, 'tls-grpc-ok', 2)).sort()).to.deep.equal([...viaGrpc.spanIds].sort());
    });

    it('refuses clients that do not trust the server certificate or speak plaintext', async () => {
      const untrusted = await sdkExport(
        new ProtoExporter({ url: httpsUrl('otlp/tls'), httpAgentOptions: { ca: otherCa.caCert }, timeoutMillis: 2000 }),
        'tls-http-untrusted',
      );
      const untrustedGrpc = await sdkExport(
        new GrpcExporter({ url: grpcUrl('otlp/tls'), credentials: grpc.credentials.createSsl(Buffer.from(otherCa.caCert)), timeoutMillis: 2000 }),
        'tls-grpc-untrusted',
      );
      const plainHttp = await postTraces(`http://127.0.0.1:${rl.httpPort('otlp/tls')}/v1/traces`, traceRequest(spanIds(1, 1), { service: 'tls-plain' })).then(
        (r) => r.status,
        () => 'connection failed',
      );
      const plainGrpc = await grpcExport(`127.0.0.1:${rl.grpcPort('otlp/tls')}`, traceRequest(spanIds(2, 1), { service: 'tls-plain' }));
      expect(untrusted.ok).to.equal(false);
      expect(untrustedGrpc.ok).to.equal(false);
      expect(plainHttp).to.not.equal(200);
      expect(plainGrpc.code).to.equal(grpc.status.UNAVAILABLE);
      const services = servicesAt(sink);
      expect([...services.keys()].filter((s) => /untrusted|plain/.test(s))).to.deep.equal([]);
    });

    it('min_version 1.3 refuses a TLS 1.2 handshake on both ports', async () => {
      const local = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: { cert_file: ${certs.paths.serverCert}, key_file: ${certs.paths.serverKey}, min_version: "1.3" } }
      http: { endpoint: 127.0.0.1:0, tls: { cert_file: ${certs.paths.serverCert}, key_file: ${certs.paths.serverKey}, min_version: "1.3" } }
exporters: { debug: { verbosity: basic } }
service: { pipelines: { traces: { receivers: [otlp], exporters: [debug] } } }
`);
      try {
        const handshake = (port: number, maxVersion: tls.SecureVersion, alpn: string): Promise<string> =>
          new Promise((resolve) => {
            const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: certs.caCert, maxVersion, ALPNProtocols: [alpn] });
            s.once('secureConnect', () => {
              resolve(s.getProtocol() ?? 'unknown');
              s.destroy();
            });
            s.once('error', (err) => resolve(`error: ${err.message}`));
          });
        for (const [port, alpn] of [
          [local.grpcPort(), 'h2'],
          [local.httpPort(), 'http/1.1'],
        ] as const) {
          expect(await handshake(port, 'TLSv1.3', alpn)).to.equal('TLSv1.3');
          expect(await handshake(port, 'TLSv1.2', alpn)).to.match(/^error: .*(protocol version|alert)/i);
        }
      } finally {
        await local.stop();
      }
    });
  });

  describe('mTLS', () => {
    const withCert = (c: TestCerts, ca: string): { ca: string; cert: string; key: string } => ({ ca, cert: c.clientCert, key: c.clientKey });

    it('accepts clients presenting a certificate from client_ca_file, over gRPC and HTTP', async () => {
      const viaHttp = await sdkExport(new ProtoExporter({ url: httpsUrl('otlp/mtls'), httpAgentOptions: withCert(certs, certs.caCert) }), 'mtls-http-ok');
      const creds = grpc.credentials.createSsl(Buffer.from(certs.caCert), Buffer.from(certs.clientKey), Buffer.from(certs.clientCert));
      const viaGrpc = await sdkExport(new GrpcExporter({ url: grpcUrl('otlp/mtls'), credentials: creds }), 'mtls-grpc-ok');
      expect([viaHttp.ok, viaGrpc.ok], `${viaHttp.error?.message} / ${viaGrpc.error?.message}`).to.deep.equal([true, true]);
      await spansOf(sink, 'mtls-http-ok', 2);
      await spansOf(sink, 'mtls-grpc-ok', 2);
    });

    it('refuses clients without a certificate or with one from another CA', async () => {
      const noCertHttp = await sdkExport(
        new ProtoExporter({ url: httpsUrl('otlp/mtls'), httpAgentOptions: { ca: certs.caCert }, timeoutMillis: 2000 }),
        'mtls-nocert',
      );
      const noCertGrpc = await sdkExport(
        new GrpcExporter({ url: grpcUrl('otlp/mtls'), credentials: grpc.credentials.createSsl(Buffer.from(certs.caCert)), timeoutMillis: 2000 }),
        'mtls-nocert',
      );
      const strangerHttp = await sdkExport(
        new ProtoExporter({ url: httpsUrl('otlp/mtls'), httpAgentOptions: withCert(otherCa, certs.caCert), timeoutMillis: 2000 }),
        'mtls-stranger',
      );
      const strangerCreds = grpc.credentials.createSsl(Buffer.from(certs.caCert), Buffer.from(otherCa.clientKey), Buffer.from(otherCa.clientCert));
      const strangerGrpc = await sdkExport(new GrpcExporter({ url: grpcUrl('otlp/mtls'), credentials: strangerCreds, timeoutMillis: 2000 }), 'mtls-stranger');
      expect([noCertHttp.ok, noCertGrpc.ok, strangerHttp.ok, strangerGrpc.ok]).to.deep.equal([false, false, false, false]);
      const services = servicesAt(sink);
      expect(services.has('mtls-nocert') || services.has('mtls-stranger')).to.equal(false);
    });
  });

  describe('bearertokenauth', () => {
    it('accepts the right token from the SDK exporters over gRPC and HTTP', async () => {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${TOKEN}`);
      const viaHttp = await sdkExport(new ProtoExporter({ url: `http://127.0.0.1:${rl.httpPort('otlp/auth')}/v1/traces`, headers: auth }), 'auth-http-ok');
      const viaGrpc = await sdkExport(new GrpcExporter({ url: `http://127.0.0.1:${rl.grpcPort('otlp/auth')}`, metadata: md }), 'auth-grpc-ok');
      expect([viaHttp.ok, viaGrpc.ok], `${viaHttp.error?.message} / ${viaGrpc.error?.message}`).to.deep.equal([true, true]);
      await spansOf(sink, 'auth-http-ok', 2);
      await spansOf(sink, 'auth-grpc-ok', 2);
    });

    it('refuses a wrong or missing token with 401 / UNAUTHENTICATED, counts it, and accepts no data', async () => {
      const before = await metrics();
      const accepted0 = metricValue(before, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp/auth' });
      const httpUrl = `http://127.0.0.1:${rl.httpPort('otlp/auth')}/v1/traces`;
      const grpcTarget = `127.0.0.1:${rl.grpcPort('otlp/auth')}`;
      const body = traceRequest(spanIds(3, 5), { service: 'auth-refused' });

      const wrong = await postTraces(httpUrl, body, { headers: { authorization: 'Bearer nope' } });
      const missing = await postTraces(httpUrl, body);
      expect([wrong.status, missing.status]).to.deep.equal([401, 401]);
      expect(wrong.headers['www-authenticate']).to.equal('Bearer');
      const grpcWrong = await grpcExport(grpcTarget, body, { metadata: { authorization: 'Bearer nope' } });
      const grpcMissing = await grpcExport(grpcTarget, body);
      expect([grpcWrong.code, grpcMissing.code]).to.deep.equal([grpc.status.UNAUTHENTICATED, grpc.status.UNAUTHENTICATED]);
      expect(grpcWrong.details).to.equal('invalid authorization header');
      expect(grpcMissing.details).to.equal('missing or empty authorization header');
      // The SDK exporters report the refusal as a (non-retryable) failure.
      const sdkHttp = await sdkExport(new ProtoExporter({ url: httpUrl, headers: { authorization: 'Bearer nope' } }), 'auth-refused');
      expect(sdkHttp.ok).to.equal(false);
      expect(sdkHttp.error?.message).to.match(/401|Unauthorized/i);

      const after = await metrics();
      expect(metricValue(after, 'routelens_receiver_unauthenticated_requests_total', { receiver: 'otlp/auth', transport: 'http' })).to.equal(3);
      expect(metricValue(after, 'routelens_receiver_unauthenticated_requests_total', { receiver: 'otlp/auth', transport: 'grpc' })).to.equal(2);
      expect(metricValue(after, 'otelcol_receiver_refused_spans_total', { receiver: 'otlp/auth' })).to.equal(0);
      expect(metricValue(after, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp/auth' })).to.equal(accepted0);
      expect(servicesAt(sink).has('auth-refused')).to.equal(false);
    });

    it('guards the query API: /metrics needs the token, /healthz does not', async () => {
      expect((await fetch(`${rl.queryUrl()}/metrics`)).status).to.equal(401);
      expect((await fetch(`${rl.queryUrl()}/metrics`, { headers: { authorization: 'Bearer nope' } })).status).to.equal(401);
      expect((await fetch(`${rl.queryUrl()}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
      expect((await fetch(`${rl.queryUrl()}/healthz`)).status).to.equal(200);
    });

    it('follows a rotated token file: the new token is accepted and the old one refused', async () => {
      const httpUrl = `http://127.0.0.1:${rl.httpPort('otlp/auth')}/v1/traces`;
      const next = 'routelens-test-token-2';
      fs.writeFileSync(`${tokenFile}.new`, next);
      fs.renameSync(`${tokenFile}.new`, tokenFile);
      const body = traceRequest(spanIds(4, 1), { service: 'auth-rotated' });
      await waitFor(async () => ((await postTraces(httpUrl, body, { headers: { authorization: `Bearer ${next}` } })).status === 200 ? true : undefined), {
        timeoutMs: 10_000,
        what: 'the rotated token to be accepted',
      });
      expect((await postTraces(httpUrl, body, { headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(401);
      expect((await grpcExport(`127.0.0.1:${rl.grpcPort('otlp/auth')}`, body, { metadata: { authorization: `Bearer ${next}` } })).code).to.equal(0);
      // Restore for the other tests.
      fs.writeFileSync(`${tokenFile}.new`, TOKEN);
      fs.renameSync(`${tokenFile}.new`, tokenFile);
      await waitFor(
        async () => ((await fetch(`${rl.queryUrl()}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status === 200 ? true : undefined),
        {
          timeoutMs: 10_000,
          what: 'the original token to be accepted again',
        },
      );
    });
  });
});

describe('TLS certificate reload on the receivers (reload_interval)', function () {
  this.timeout(60_000);

  it('serves new certificates after the files change, on gRPC and HTTP', async () => {
    const first = makeTestCerts({ clientName: 'reload-a', fresh: true });
    const second = makeTestCerts({ clientName: 'reload-b', fresh: true });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-reload-'));
    const cert = path.join(dir, 'tls.crt');
    const key = path.join(dir, 'tls.key');
    fs.writeFileSync(cert, first.serverCert);
    fs.writeFileSync(key, first.serverKey);
    const tlsCfg = `{ cert_file: ${cert}, key_file: ${key}, reload_interval: 100ms }`;
    const rl = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: ${tlsCfg} }
      http: { endpoint: 127.0.0.1:0, tls: ${tlsCfg} }
exporters: { debug: { verbosity: basic } }
service: { pipelines: { traces: { receivers: [otlp], exporters: [debug] } } }
`);
    try {
      const body = traceRequest(spanIds(5, 1), { service: 'reload' });
      const viaHttp = (ca: string): Promise<number | string> =>
        postTraces(`https://localhost:${rl.httpPort()}/v1/traces`, body, { agent: new https.Agent({ ca, keepAlive: false }) }).then(
          (r) => r.status,
          (e: Error) => e.message,
        );
      const viaGrpc = async (ca: string): Promise<number> =>
        (await grpcExport(`localhost:${rl.grpcPort()}`, body, { creds: grpc.credentials.createSsl(Buffer.from(ca)) })).code;
      expect(await viaHttp(first.caCert)).to.equal(200);
      expect(await viaGrpc(first.caCert)).to.equal(0);
      expect(await viaHttp(second.caCert)).to.not.equal(200);
      expect(await viaGrpc(second.caCert)).to.not.equal(0);

      // Rotate: key first, then certificate (a window where they do not match must not break the listener).
      fs.writeFileSync(key, second.serverKey);
      fs.writeFileSync(cert, second.serverCert);
      await waitFor(async () => ((await viaHttp(second.caCert)) === 200 ? true : undefined), { timeoutMs: 10_000, what: 'HTTPS with the new certificate' });
      await waitFor(async () => ((await viaGrpc(second.caCert)) === 0 ? true : undefined), { timeoutMs: 10_000, what: 'gRPC TLS with the new certificate' });
      expect(await viaHttp(first.caCert)).to.not.equal(200);
      expect(await viaGrpc(first.caCert)).to.not.equal(0);
      expect(rl.logs.some((l) => l.msg === 'TLS certificates reloaded')).to.equal(true);
    } finally {
      await rl.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS and bearer authentication on the exporters', function () {
  this.timeout(120_000);
  let certs: TestCerts;
  let sink: OtlpSink;
  let gateway: RunningRoutelens;

  before(async () => {
    certs = makeTestCerts();
    sink = await new OtlpSink().start();
    const p = certs.paths;
    const mtls = `{ cert_file: ${p.serverCert}, key_file: ${p.serverKey}, client_ca_file: ${p.caCert} }`;
    gateway = await startRoutelens(`
receivers:
  otlp:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: ${mtls}, auth: { authenticator: bearertokenauth } }
      http: { endpoint: 127.0.0.1:0, tls: ${mtls}, auth: { authenticator: bearertokenauth } }
  otlp/tlsonly:
    protocols:
      grpc: { endpoint: 127.0.0.1:0, tls: { cert_file: ${p.serverCert}, key_file: ${p.serverKey} } }
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
extensions:
  bearertokenauth: { token: ${TOKEN} }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces: { receivers: [otlp, otlp/tlsonly], exporters: [otlp] }
`);
  });

  after(async () => {
    await gateway?.stop();
    await sink?.stop();
  });

  /** An edge routelens whose otlp and otlphttp exporters send to the gateway with the given TLS and token. */
  async function edge(opts: { token: string; tls: string; grpcTarget?: string }): Promise<RunningRoutelens> {
    return startRoutelens(`
receivers:
  otlp/a: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
  otlp/b: { protocols: { http: { endpoint: 127.0.0.1:0 } } }
exporters:
  otlp:
    endpoint: ${opts.grpcTarget ?? `localhost:${gateway.grpcPort()}`}
    tls: ${opts.tls}
    auth: { authenticator: bearertokenauth }
    retry_on_failure: { initial_interval: 100ms, max_elapsed_time: 1s }
  otlphttp:
    endpoint: https://localhost:${gateway.httpPort()}
    tls: ${opts.tls}
    auth: { authenticator: bearertokenauth }
    retry_on_failure: { initial_interval: 100ms, max_elapsed_time: 1s }
extensions:
  bearertokenauth: { token: ${opts.token} }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [bearertokenauth, routequery]
  pipelines:
    traces/grpc: { receivers: [otlp/a], exporters: [otlp] }
    traces/http: { receivers: [otlp/b], exporters: [otlphttp] }
`);
  }

  const send = async (e: RunningRoutelens, receiver: string, service: string, prefix: number): Promise<string[]> => {
    const ids = spanIds(prefix, 3);
    const r = await postTraces(`http://127.0.0.1:${e.httpPort(receiver)}/v1/traces`, traceRequest(ids, { service }));
    expect(r.status).to.equal(200);
    return ids;
  };

  it('otlp and otlphttp exporters present the client certificate and the bearer token, and verify the server', async () => {
    const p = certs.paths;
    const e = await edge({ token: TOKEN, tls: `{ ca_file: ${p.caCert}, cert_file: ${p.clientCert}, key_file: ${p.clientKey} }` });
    try {
      const viaGrpc = await send(e, 'otlp/a', 'edge-grpc', 10);
      const viaHttp = await send(e, 'otlp/b', 'edge-http', 11);
      expect((await spansOf(sink, 'edge-grpc', 3)).sort()).to.deep.equal(viaGrpc);
      expect((await spansOf(sink, 'edge-http', 3)).sort()).to.deep.equal(viaHttp);
      const g = await gateway.metricsText();
      expect(metricValue(g, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'grpc' })).to.be.at.least(3);
      expect(metricValue(g, 'otelcol_receiver_accepted_spans_total', { receiver: 'otlp', transport: 'http' })).to.be.at.least(3);
    } finally {
      await e.stop();
    }
  });

  it('a wrong token is refused by the gateway and counted as a failed send, not delivered', async () => {
    const p = certs.paths;
    const e = await edge({ token: 'wrong-token', tls: `{ ca_file: ${p.caCert}, cert_file: ${p.clientCert}, key_file: ${p.clientKey} }` });
    try {
      await send(e, 'otlp/a', 'edge-badtoken', 12);
      await send(e, 'otlp/b', 'edge-badtoken', 13);
      await waitFor(
        async () => {
          const m = await e.metricsText();
          const failed =
            metricValue(m, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' }) +
            metricValue(m, 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlphttp' });
          return failed >= 6 ? true : undefined;
        },
        { timeoutMs: 15_000, what: 'both exporters to give up' },
      );
      const g = await gateway.metricsText();
      expect(metricValue(g, 'routelens_receiver_unauthenticated_requests_total', { receiver: 'otlp' })).to.be.at.least(2);
      expect(servicesAt(sink).has('edge-badtoken')).to.equal(false);
      expect(e.logs.some((l) => /UNAUTHENTICATED|HTTP 401/.test(String(l.err)))).to.equal(true);
    } finally {
      await e.stop();
    }
  });

  it('insecure_skip_verify connects to a server whose CA it does not have; without it the send fails', async () => {
    const skip = await edge({ token: TOKEN, tls: '{ insecure_skip_verify: true }', grpcTarget: `localhost:${gateway.grpcPort('otlp/tlsonly')}` });
    try {
      const ids = await send(skip, 'otlp/a', 'edge-skipverify', 14);
      expect((await spansOf(sink, 'edge-skipverify', 3)).sort()).to.deep.equal(ids);
    } finally {
      await skip.stop();
    }
    const strict = await edge({ token: TOKEN, tls: '{}', grpcTarget: `localhost:${gateway.grpcPort('otlp/tlsonly')}` });
    try {
      await send(strict, 'otlp/a', 'edge-unverified', 15);
      await waitFor(
        async () => (metricValue(await strict.metricsText(), 'otelcol_exporter_send_failed_spans_total', { exporter: 'otlp' }) >= 3 ? true : undefined),
        {
          timeoutMs: 15_000,
          what: 'the exporter to give up on an unverifiable server',
        },
      );
      expect(servicesAt(sink).has('edge-unverified')).to.equal(false);
    } finally {
      await strict.stop();
    }
  });
});
