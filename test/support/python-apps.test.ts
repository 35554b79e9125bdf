/**
 * Proves that the Python example services (examples/python) export real OTLP
 * spans: a minimal OTLP/HTTP receiver inside the test stores the raw request
 * bodies, an app exports to it with OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf,
 * load.py drives it, and the app is stopped (SIGTERM flushes the batch processor).
 */
import { expect } from 'chai';
import * as http from 'node:http';
import * as zlib from 'node:zlib';
import { pythonBin, runLoad, startPythonApp, type LoadSummary, type PythonApp } from './python';

interface ReceivedPost {
  path: string;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** The body as sent (possibly gzip-compressed). */
  raw: Buffer;
  /** The body after Content-Encoding was undone: a serialized ExportTraceServiceRequest. */
  body: Buffer;
}

interface OtlpHttpReceiver {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  url: string;
  posts: ReceivedPost[];
  rejected: string[];
  close(): Promise<void>;
}

function decode(raw: Buffer, encoding: string | undefined): Buffer {
  switch ((encoding ?? '').toLowerCase()) {
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'deflate':
      return zlib.inflateSync(raw);
    default:
      return raw;
  }
}

function startOtlpHttpReceiver(): Promise<OtlpHttpReceiver> {
  const posts: ReceivedPost[] = [];
  const rejected: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        rejected.push(`${req.method} ${req.url}`);
        res.writeHead(404).end();
        return;
      }
      const raw = Buffer.concat(chunks);
      const contentEncoding = req.headers['content-encoding'];
      let body: Buffer;
      try {
        body = decode(raw, contentEncoding);
      } catch (err) {
        rejected.push(`undecodable body (${contentEncoding}): ${String(err)}`);
        res.writeHead(400).end();
        return;
      }
      posts.push({ path: req.url, contentType: req.headers['content-type'], contentEncoding, raw, body });
      // An empty ExportTraceServiceResponse serializes to zero bytes.
      res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        reject(new Error('unexpected address'));
        return;
      }
      resolve({
        url: `http://127.0.0.1:${addr.port}`,
        posts,
        rejected,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/** All received bodies as one latin1 string: protobuf strings are raw UTF-8 bytes, ASCII ones match verbatim. */
function allBodies(rx: OtlpHttpReceiver): string {
  return Buffer.concat(rx.posts.map((p) => p.body)).toString('latin1');
}

describe('python example apps export OTLP spans', function () {
  let receiver: OtlpHttpReceiver | undefined;
  let app: PythonApp | undefined;

  before(async function () {
    this.timeout(15 * 60 * 1000); // first run creates the venv and pip-installs into it
    await pythonBin();
  });

  beforeEach(async function () {
    receiver = await startOtlpHttpReceiver();
  });

  afterEach(async function () {
    this.timeout(60_000);
    if (app) {
      const a = app;
      app = undefined;
      await a.stop();
      if (this.currentTest?.state === 'failed') console.error(`--- app output ---\n${a.output()}`);
    }
    await receiver?.close();
    receiver = undefined;
  });

  it('fastapi_app.py exports route-templated spans over http/protobuf', async function () {
    this.timeout(3 * 60 * 1000);
    const rx = receiver!;
    app = await startPythonApp('fastapi', {
      OTEL_SERVICE_NAME: 'routelens-test-fastapi',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=routelens-test',
    });

    const summary: LoadSummary = await runLoad(app.baseUrl, { requestsPerRoute: 3, slowMs: 50 });
    expect(summary.transport_errors).to.equal(0);
    expect(summary.total).to.equal(12);
    expect(summary.routes).to.deep.equal({
      users: { sent: 3, statuses: { '200': 3 } },
      slow: { sent: 3, statuses: { '200': 3 } },
      error: { sent: 3, statuses: { '500': 3 } },
      call: { sent: 3, statuses: { '200': 3 } },
    });

    const current = app;
    app = undefined;
    await current.stop(); // SIGTERM -> TracerProvider.shutdown() flushes the queue

    expect(rx.rejected, 'unexpected requests').to.deep.equal([]);
    expect(rx.posts.length).to.be.gte(1);
    for (const p of rx.posts) {
      expect(p.body.length).to.be.greaterThan(0);
      expect(p.contentType).to.equal('application/x-protobuf');
    }
    const bytes = allBodies(rx);
    for (const s of [
      'routelens-test-fastapi', // service.name
      'routelens-test', // OTEL_RESOURCE_ATTRIBUTES value
      'http.route',
      '/users/{user_id}', // route template, not the raw path
      'GET /users/{user_id}', // server span name
      'GET /slow',
      'GET /error',
      'GET /call',
      'opentelemetry.instrumentation.fastapi',
      'opentelemetry.instrumentation.requests', // outbound call from /call
      'opentelemetry.instrumentation.sqlalchemy',
      'SELECT id, name, email FROM users WHERE id = ?', // db.statement
      'RuntimeError', // exception event of /error
    ]) {
      expect(bytes, `exported bytes contain ${JSON.stringify(s)}`).to.include(s);
    }
    expect(bytes).not.to.include('/healthz'); // excluded by the helper's default OTEL_PYTHON_EXCLUDED_URLS
  });

  it('flask_app.py exports route-templated spans over gzip-compressed http/protobuf', async function () {
    this.timeout(3 * 60 * 1000);
    const rx = receiver!;
    app = await startPythonApp('flask', {
      OTEL_SERVICE_NAME: 'routelens-test-flask',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });

    const summary = await runLoad(app.baseUrl, { requestsPerRoute: 2, routes: ['users', 'error', 'call'] });
    expect(summary.transport_errors).to.equal(0);
    expect(summary.routes).to.deep.equal({
      users: { sent: 2, statuses: { '200': 2 } },
      error: { sent: 2, statuses: { '500': 2 } },
      call: { sent: 2, statuses: { '200': 2 } },
    });

    const current = app;
    app = undefined;
    await current.stop();

    expect(rx.rejected, 'unexpected requests').to.deep.equal([]);
    expect(rx.posts.length).to.be.gte(1);
    for (const p of rx.posts) {
      expect(p.contentEncoding).to.equal('gzip');
      expect(p.body.length).to.be.greaterThan(0);
    }
    const bytes = allBodies(rx);
    for (const s of [
      'routelens-test-flask',
      '/users/<int:user_id>',
      'GET /users/<int:user_id>',
      'GET /error',
      'GET /call',
      'opentelemetry.instrumentation.flask',
      'opentelemetry.instrumentation.requests',
      'opentelemetry.instrumentation.sqlalchemy',
    ]) {
      expect(bytes, `exported bytes contain ${JSON.stringify(s)}`).to.include(s);
    }
  });
});
