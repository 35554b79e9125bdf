/**
 * Real spans captured from the Flask and FastAPI example services (test/fixtures/python/*-spans.json, written
 * by the lead's Python helper: a list of {name, kind, attributes, status, …}).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RouteStore } from './store';
import { ObjectSpanInput } from './span-input';
import { queryRoutes } from './query';
import { FakeClock } from '../../../test/support/route-spans';

/** dist/src/connectors/routelatency → repository root. */
const FIXTURES = resolve(__dirname, '../../../../test/fixtures/python');

interface CapturedSpan {
  name: string;
  kind: string | number;
  attributes?: Record<string, unknown>;
  status?: { code?: string | number };
}

/** The fixtures are part of the repository: a missing one fails the test rather than skipping it. */
function load(file: string): CapturedSpan[] {
  return JSON.parse(readFileSync(resolve(FIXTURES, file), 'utf8')) as CapturedSpan[];
}

function routesOf(service: string, spans: CapturedSpan[]): string[] {
  const store = new RouteStore({ clock: new FakeClock(1_700_000_000_000) });
  for (const s of spans) {
    store.record(
      new ObjectSpanInput({
        service,
        name: s.name,
        kind: s.kind,
        attributes: s.attributes ?? {},
        statusCode: s.status?.code ?? 0,
        durationNs: 5e6,
      }),
    );
  }
  return queryRoutes(store, { sort: 'route' }).routes.map(
    (r) => `${r.method} ${r.route} [${r.route_source}] n=${r.count} err=${r.error_count} ${JSON.stringify(r.status_classes)}`,
  );
}

describe('captured Python spans', () => {
  it('Flask: http.route <int:…> kept raw, client/db spans ignored, unmatched 404 grouped', function () {
    const spans = load('flask-spans.json');
    expect(routesOf('flask-app', spans)).to.deep.equal([
      'GET /call [http.route] n=1 err=0 {"2xx":1}',
      'GET /error [http.route] n=1 err=1 {"5xx":1}',
      'GET /slow [http.route] n=1 err=0 {"2xx":1}',
      'GET /users/<int:user_id> [http.route] n=2 err=0 {"2xx":2}',
      'GET __unmatched__ [unmatched] n=1 err=0 {"4xx":1}',
    ]);
  });

  it('FastAPI: http.route {…} kept raw, ASGI send spans and client spans ignored, unmatched 404 grouped', function () {
    const spans = load('fastapi-spans.json');
    expect(spans.some((s) => s.name.endsWith(' http send'))).to.equal(true);
    expect(routesOf('fastapi-app', spans)).to.deep.equal([
      'GET /call [http.route] n=1 err=0 {"2xx":1}',
      'GET /error [http.route] n=1 err=1 {"5xx":1}',
      'GET /slow [http.route] n=1 err=0 {"2xx":1}',
      'GET /users/{user_id} [http.route] n=2 err=0 {"2xx":2}',
      'GET __unmatched__ [unmatched] n=1 err=0 {"4xx":1}',
    ]);
  });
});
