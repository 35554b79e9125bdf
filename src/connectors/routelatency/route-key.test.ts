import { expect } from 'chai';
import { isIdSegment, newExtractedRoute, PathTemplater, pathOf, RouteExtractor } from './route-key';
import type { ExtractedRoute } from './route-key';
import { ObjectSpanInput } from './span-input';
import type { PlainSpan } from './span-input';

function extract(span: PlainSpan, templater?: PathTemplater): ExtractedRoute {
  return new RouteExtractor(templater).extract(new ObjectSpanInput(span), newExtractedRoute());
}

function key(span: PlainSpan): string {
  const r = extract(span);
  return `${r.method} ${r.route} [${r.source}]`;
}

describe('route extraction', () => {
  describe('framework span shapes', () => {
    it('Flask: http.route with <int:id> is kept raw', () => {
      expect(
        key({
          name: 'GET /users/<int:user_id>',
          attributes: { 'http.method': 'GET', 'http.target': '/users/1', 'http.route': '/users/<int:user_id>', 'http.status_code': 200 },
        }),
      ).to.equal('GET /users/<int:user_id> [http.route]');
    });

    it('FastAPI: http.route with {user_id} is kept raw', () => {
      expect(
        key({
          name: 'GET /users/{user_id}',
          attributes: { 'http.method': 'GET', 'http.target': '/users/1', 'http.route': '/users/{user_id}', 'http.status_code': 200 },
        }),
      ).to.equal('GET /users/{user_id} [http.route]');
    });

    it('FastAPI without http.route: the span name template is used', () => {
      expect(key({ name: 'GET /users/{user_id}', attributes: { 'http.method': 'GET', 'http.target': '/users/7' } })).to.equal(
        'GET /users/{user_id} [span_name]',
      );
    });

    it('Django: users/<int:pk>/ (no leading slash) is kept raw, from http.route or the span name', () => {
      expect(
        key({ name: 'GET users/<int:pk>/', attributes: { 'http.request.method': 'GET', 'url.path': '/users/5/', 'http.route': 'users/<int:pk>/' } }),
      ).to.equal('GET users/<int:pk>/ [http.route]');
      expect(key({ name: 'GET users/<int:pk>/', attributes: { 'http.request.method': 'GET', 'url.path': '/users/5/' } })).to.equal(
        'GET users/<int:pk>/ [span_name]',
      );
    });

    it('the three framework forms of one route stay distinct (not merged)', () => {
      const routes = new Set([
        extract({ name: 'x', attributes: { 'http.route': '/users/<int:id>' } }).route,
        extract({ name: 'x', attributes: { 'http.route': '/users/{id}' } }).route,
        extract({ name: 'x', attributes: { 'http.route': 'users/<int:pk>/' } }).route,
      ]);
      expect(routes.size).to.equal(3);
    });

    it('gRPC server span: the span name is the route, no method', () => {
      expect(
        key({ name: 'helloworld.Greeter/SayHello', attributes: { 'rpc.system': 'grpc', 'rpc.service': 'helloworld.Greeter', 'rpc.method': 'SayHello' } }),
      ).to.equal(' helloworld.Greeter/SayHello [span_name_fallback]');
    });

    it('messaging / job spans fall back to the span name with id-like parts templated', () => {
      expect(key({ name: 'orders process' })).to.equal(' orders process [span_name_fallback]');
      expect(extract({ name: 'tasks/cleanup/12345' }).route).to.equal('tasks/cleanup/{id}');
      expect(extract({ name: '' }).route).to.equal('__unnamed__');
    });
  });

  describe('404 without http.route', () => {
    it('FastAPI (span name = method) → __unmatched__', () => {
      expect(key({ name: 'GET', attributes: { 'http.method': 'GET', 'http.target': '/no/such/route', 'http.status_code': 404 } })).to.equal(
        'GET __unmatched__ [unmatched]',
      );
    });

    it('Flask (span name = method + raw path) → __unmatched__, the raw path is not taken as a template', () => {
      expect(key({ name: 'GET /no/such/route', attributes: { 'http.method': 'GET', 'http.target': '/no/such/route', 'http.status_code': 404 } })).to.equal(
        'GET __unmatched__ [unmatched]',
      );
    });

    it('new semconv 404 → __unmatched__', () => {
      expect(key({ name: 'GET', attributes: { 'http.request.method': 'GET', 'url.path': '/wp-login.php', 'http.response.status_code': 404 } })).to.equal(
        'GET __unmatched__ [unmatched]',
      );
    });

    it('a 404 from a matched route keeps its route', () => {
      expect(key({ name: 'GET /users/{id}', attributes: { 'http.route': '/users/{id}', 'http.method': 'GET', 'http.status_code': 404 } })).to.equal(
        'GET /users/{id} [http.route]',
      );
    });
  });

  describe('old and new HTTP semconv', () => {
    it('old: http.method + http.target (query stripped, ids templated)', () => {
      expect(key({ name: 'GET', attributes: { 'http.method': 'GET', 'http.target': '/orders/12345/items?page=2', 'http.status_code': 200 } })).to.equal(
        'GET /orders/{id}/items [http.target]',
      );
    });

    it('new: http.request.method + url.path', () => {
      expect(
        key({
          name: 'POST',
          attributes: { 'http.request.method': 'POST', 'url.path': '/carts/3f2504e0-4f89-11d3-9a0c-0305e82c3301/checkout', 'http.response.status_code': 201 },
        }),
      ).to.equal('POST /carts/{id}/checkout [url.path]');
    });

    it('new method wins over old in dup mode; status read from either', () => {
      const r = extract({
        name: 'GET',
        attributes: {
          'http.request.method': 'GET',
          'http.method': 'GET',
          'url.path': '/a',
          'http.target': '/a',
          'http.response.status_code': 503,
          'http.status_code': 503,
        },
      });
      expect(r).to.deep.equal({ method: 'GET', route: '/a', source: 'url.path', httpStatus: 503, sourceBit: 1 << 2 });
      expect(extract({ name: 'GET', attributes: { 'http.method': 'GET', 'http.target': '/a', 'http.status_code': '502' } }).httpStatus).to.equal(502);
    });

    it('_OTHER uses http.request.method_original', () => {
      expect(
        extract({ name: 'HTTP', attributes: { 'http.request.method': '_OTHER', 'http.request.method_original': 'PURGE', 'url.path': '/cache' } }).method,
      ).to.equal('PURGE');
      expect(extract({ name: 'HTTP', attributes: { 'http.request.method': '_OTHER', 'url.path': '/cache' } }).method).to.equal('_OTHER');
    });

    it('known methods are normalised to upper case', () => {
      expect(extract({ name: 'x', attributes: { 'http.method': 'get', 'http.route': '/a' } }).method).to.equal('GET');
      expect(extract({ name: 'x', attributes: { 'http.method': 'patch', 'http.route': '/a' } }).method).to.equal('PATCH');
    });

    it('the method comes from the span name when no attribute has it', () => {
      expect(key({ name: 'DELETE /users/{id}', attributes: { 'http.route': '/users/{id}' } })).to.equal('DELETE /users/{id} [http.route]');
    });

    it('url.full / http.url give the path when nothing better exists', () => {
      expect(key({ name: 'GET', attributes: { 'http.method': 'GET', 'http.url': 'http://h:8080/users/42?x=1' } })).to.equal('GET /users/{id} [http.url]');
      expect(key({ name: 'GET', attributes: { 'http.request.method': 'GET', 'url.full': 'https://h/a/b#frag' } })).to.equal('GET /a/b [url.full]');
    });

    it('an old span name with a raw path gets its ids templated', () => {
      expect(key({ name: 'GET /users/123' })).to.equal('GET /users/{id} [span_name]');
    });
  });

  describe('path templating', () => {
    it('pathOf strips scheme, authority, query and fragment', () => {
      expect(pathOf('/a/b?c=d')).to.equal('/a/b');
      expect(pathOf('/a#x?y')).to.equal('/a');
      expect(pathOf('http://host:80/p/q?x')).to.equal('/p/q');
      expect(pathOf('http://host')).to.equal('/');
      expect(pathOf('?x=1')).to.equal('/');
    });

    it('id-like segments', () => {
      const ids = [
        '123',
        '0',
        '3f2504e0-4f89-11d3-9a0c-0305e82c3301',
        '507f1f77bcf86cd799439011',
        'deadbeefcafebabe',
        '2024-01-31',
        '10.0.0.1',
        '01ARZ3NDEKTSV4RRFFQ69G5FAV',
        'a1b2c3d4e5f6g7h8i9j0kk',
        'me@example.com',
      ];
      const words = ['users', 'v1', 'api', 'deadbeef', 'health', 'items', 'v2.1', '2fa', '{id}', '<int:id>', 'hello-world', 'a-b-c-d-e-f-g-h-i-j-k', ''];
      for (const s of ids) expect(isIdSegment(s), s).to.equal(true);
      for (const s of words) expect(isIdSegment(s), s).to.equal(false);
    });

    it('templates segments and leaves templates and words alone', () => {
      const t = new PathTemplater();
      expect(t.template('/users/123/orders/456')).to.equal('/users/{id}/orders/{id}');
      expect(t.template('/users/{id}/<int:x>')).to.equal('/users/{id}/<int:x>');
      expect(t.template('/')).to.equal('/');
      expect(t.template('/a//b/')).to.equal('/a//b/');
      expect(t.template('123')).to.equal('{id}');
      const p = '/static/app.css';
      expect(t.template(p)).to.equal(p);
    });

    it('user rules run first, on the whole path', () => {
      const t = new PathTemplater([
        { pattern: '^/static/.*$', replacement: '/static/*' },
        { pattern: '/u/[a-z]+', replacement: '/u/{name}' },
      ]);
      expect(t.template('/static/js/app.123.js')).to.equal('/static/*');
      expect(t.template('/u/alice/posts/77')).to.equal('/u/{name}/posts/{id}');
    });

    it('very long routes are cut', () => {
      const r = extract({ name: 'x', attributes: { 'http.route': `/${'a'.repeat(1000)}` } }).route;
      expect(r.length).to.equal(256);
      expect(r.endsWith('…')).to.equal(true);
    });
  });
});
