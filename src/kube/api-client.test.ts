import { expect } from 'chai';
import fc from 'fast-check';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeApiClient, KubeApiError } from './api-client';
import type { ApiConnection } from './kubeconfig';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** A plain-HTTP server (kubectl proxy style) whose handler each test sets. */
async function server(): Promise<{ url: string; set(h: Handler): void; seen: http.IncomingMessage[]; close(): Promise<void> }> {
  let handler: Handler = (_req, res) => res.end();
  const seen: http.IncomingMessage[] = [];
  const s = http.createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    set: (h) => (handler = h),
    seen,
    close: () => {
      s.closeAllConnections();
      return new Promise((r) => s.close(() => r()));
    },
  };
}

function connection(url: string, token?: string): ApiConnection & { invalidations: number } {
  const c = {
    server: url,
    tls: { rejectUnauthorized: true },
    invalidations: 0,
    credentials: {
      authorization: () => Promise.resolve(token === undefined ? undefined : `Bearer ${token}`),
      invalidate: () => {
        c.invalidations++;
      },
    },
  };
  return c;
}

async function rejection(p: Promise<unknown>): Promise<KubeApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(KubeApiError);
    return err as KubeApiError;
  }
  throw new Error('expected a rejection');
}

describe('Kubernetes API client', () => {
  let srv: Awaited<ReturnType<typeof server>>;
  let client: KubeApiClient;
  let conn: ReturnType<typeof connection>;
  beforeEach(async () => {
    srv = await server();
    conn = connection(srv.url, 's3cret');
    client = new KubeApiClient(conn);
  });
  afterEach(async () => {
    client.close();
    await srv.close();
  });
  const never = new AbortController().signal;

  it('delivers every watch event in order, however the stream is cut into chunks (property)', async () => {
    const event = fc.record({
      type: fc.constantFrom('ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK'),
      // Names with multi-byte characters, so chunk boundaries also split UTF-8 sequences.
      object: fc.record({ metadata: fc.record({ name: fc.string({ unit: 'grapheme', maxLength: 12 }), resourceVersion: fc.nat().map(String) }) }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { maxLength: 30 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 20 }),
        fc.boolean(),
        async (events, cuts, blankLines) => {
          const body = Buffer.from(events.map((e) => JSON.stringify(e) + (blankLines ? '\n\n' : '\n')).join(''));
          srv.set((_req, res) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            let at = 0;
            let i = 0;
            const next = (): void => {
              if (at >= body.length) return void res.end();
              const n = cuts[i++ % cuts.length] as number;
              res.write(body.subarray(at, at + n), () => setImmediate(next));
              at += n;
            };
            next();
          });
          const got: unknown[] = [];
          await client.watch('/api/v1/pods', {}, (type, object) => got.push({ type, object }), never);
          expect(got).to.deep.equal(events);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('sends the query, the watch flag and the credentials', async () => {
    srv.set((_req, res) => res.end('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}\n'));
    await client.watch('/api/v1/namespaces/a b/pods', { resourceVersion: '5', labelSelector: 'app=x,tier!=db', limit: undefined }, () => undefined, never);
    const req = srv.seen[0] as http.IncomingMessage;
    const u = new URL(req.url ?? '', 'http://x');
    expect(u.pathname).to.equal('/api/v1/namespaces/a%20b/pods');
    expect(Object.fromEntries(u.searchParams)).to.deep.equal({ resourceVersion: '5', labelSelector: 'app=x,tier!=db', watch: 'true' });
    expect(req.headers.authorization).to.equal('Bearer s3cret');
  });

  it('rejects a watch that breaks mid-stream or ends mid-event, and a line that is not JSON', async () => {
    srv.set((_req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"ADDED","obj');
      setImmediate(() => res.socket?.destroy());
    });
    const got: string[] = [];
    const cut = await rejection(client.watch('/api/v1/pods', {}, (t) => got.push(t), never));
    expect(cut.message).to.match(/closed mid-stream|socket hang up|aborted/);
    expect(cut.statusCode).to.equal(undefined);
    expect(got).to.deep.equal(['ADDED'], 'the complete event before the cut was delivered');

    srv.set((_req, res) => res.end('{"type":"ADDED","object":{}}\n{"type":"ADD'));
    expect((await rejection(client.watch('/api/v1/pods', {}, () => undefined, never))).message).to.match(/ended mid-event/);
    srv.set((_req, res) => res.end('<html>proxy error</html>\n'));
    expect((await rejection(client.watch('/api/v1/pods', {}, () => undefined, never))).message).to.match(/invalid watch event/);
  });

  it('turns a refused request into KubeApiError with the status and the API message; 401 invalidates credentials', async () => {
    const status =
      (code: number, message: string): Handler =>
      (_req, res) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, code }));
      };
    srv.set(status(410, 'too old resource version: 5 (9)'));
    const gone = await rejection(client.watch('/api/v1/pods', { resourceVersion: '5' }, () => undefined, never));
    expect(gone.statusCode).to.equal(410);
    expect(gone.message).to.contain('too old resource version');
    srv.set(status(403, 'pods is forbidden: User "system:serviceaccount:o:r" cannot list resource "pods"'));
    const forbidden = await rejection(client.get('/api/v1/pods', {}, never));
    expect(forbidden.statusCode).to.equal(403);
    expect(forbidden.message).to.contain('cannot list resource "pods"');
    expect(conn.invalidations).to.equal(0);
    srv.set(status(401, 'Unauthorized'));
    expect((await rejection(client.get('/api/v1/pods', {}, never))).statusCode).to.equal(401);
    expect(conn.invalidations).to.equal(1);
  });

  it('gives up on a list that gets no answer, or an answer that stalls mid-body', async () => {
    srv.set(() => undefined); // accepted, never answered
    const silent = await rejection(client.get('/api/v1/pods', {}, never, 200));
    expect(silent.message).to.match(/no answer from \/api\/v1\/pods within 200 ms/);
    srv.set((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"items": [');
    });
    expect((await rejection(client.get('/api/v1/pods', {}, never, 200))).statusCode).to.equal(undefined);
  });

  it('stops a watch when its signal aborts, and reports an unreachable server', async () => {
    srv.set((_req, res) => {
      res.writeHead(200);
      res.write('{"type":"ADDED","object":{}}\n');
    });
    const ac = new AbortController();
    let events = 0;
    const watching = client.watch(
      '/api/v1/pods',
      {},
      () => {
        events++;
        ac.abort();
      },
      ac.signal,
    );
    await watching.catch((e: unknown) => expect((e as Error).message).to.match(/stopped|abort/i));
    expect(events).to.equal(1);
    await srv.close();
    const down = await rejection(client.get('/api/v1/pods', {}, never));
    expect(down.statusCode).to.equal(undefined);
    expect(down.message).to.match(/ECONNREFUSED|socket hang up/);
  });
});
