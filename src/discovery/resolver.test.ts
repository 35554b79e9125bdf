import { expect } from 'chai';
import pino from 'pino';
import { ConfigErrorList } from '../core/schema';
import { FakeKubeApi, makeEndpointSlice } from '../../test/support/fake-kube-api';
import { waitFor } from '../../test/support/free-port';
import { resolverSchema, type ResolverConfig } from './config';
import { createResolver, toSliceInfo, type Membership, type Resolver } from './resolver';

const logger = pino({ level: 'silent' });
const schema = resolverSchema({ defaultPort: 4317, portDoc: 'port' });
const ownPortSchema = resolverSchema({ defaultPort: undefined, portDoc: 'port' });

function parse(raw: unknown, s = schema): { config: ResolverConfig; errors: string[] } {
  const errors = new ConfigErrorList();
  const config = s.parse(raw, 'resolver', errors);
  return { config, errors: errors.items.map((i) => `${i.path}: ${i.message}`) };
}

/** Resolves with the next membership the resolver reports. */
function nextChange(r: Resolver, timeoutMs = 5000): Promise<Membership> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error('no membership change'));
    }, timeoutMs);
    const off = r.subscribe((m) => {
      clearTimeout(t);
      off();
      resolve(m);
    });
  });
}

describe('discovery: resolver config', () => {
  it('takes exactly one resolver', () => {
    expect(parse({}).errors).to.deep.equal(['resolver: needs one of static, dns, k8s']);
    expect(parse({ static: { hostnames: ['a:1'] }, dns: { hostname: 'x' } }).errors).to.deep.equal(['resolver: takes one resolver, got static and dns']);
  });

  it('applies the Collector defaults', () => {
    expect(parse({ dns: { hostname: 'gw.obs.svc' } }).config.dns).to.deep.equal({ hostname: 'gw.obs.svc', port: 4317, interval: 5000, timeout: 1000 });
    expect(parse({ k8s: { service: 'gw.obs' } }).config.k8s).to.deep.include({ service: 'gw.obs', ports: [4317], timeout: 1000, return_hostnames: false });
    // Without a default port (the routequery cluster) an absent port means the caller's own.
    expect(parse({ dns: { hostname: 'gw' } }, ownPortSchema).config.dns?.port).to.equal(undefined);
    expect(parse({ k8s: { service: 'gw' } }, ownPortSchema).config.k8s?.ports).to.deep.equal([]);
  });

  it('names the YAML path of each problem', () => {
    expect(parse({ static: { hostnames: ['a:1', 'nohost', 'a:1'] } }).errors).to.deep.equal([
      'resolver.static.hostnames[1]: invalid value "nohost"; expected "host:port"',
      'resolver.static.hostnames[2]: duplicate entry "a:1"',
    ]);
    expect(parse({ k8s: { service: 'a.b.c', ports: [0] } }).errors).to.deep.equal([
      'resolver.k8s.ports[0]: invalid value number 0; expected an integer >= 1 <= 65535',
      'resolver.k8s.service: invalid value "a.b.c"; expected "name" or "name.namespace" (DNS labels)',
    ]);
    expect(parse({ k8s: { service: 'gw', context: 'x' } }).errors).to.deep.equal(['resolver.k8s.context: only used with auth_type: kubeConfig']);
  });
});

describe('discovery: static and dns resolvers', () => {
  it('static: the configured peers, sorted, ready and serving', async () => {
    const r = createResolver(parse({ static: { hostnames: ['b:2', 'a:1'] } }).config, { logger });
    await r.start();
    expect(r.membership()).to.deep.equal({ ready: ['a:1', 'b:2'], serving: ['a:1', 'b:2'] });
    await r.stop();
  });

  it('dns: resolves the name with the system resolver (localhost)', async () => {
    const r = createResolver(parse({ dns: { hostname: 'localhost', port: 9 } }).config, { logger });
    await r.start();
    const peers = r.membership().ready;
    expect(peers.length).to.be.greaterThan(0);
    for (const p of peers) expect(['127.0.0.1:9', '[::1]:9']).to.include(p);
    await r.stop();
  });

  it('dns: polls, reports changes, keeps the last answer when a lookup fails or times out', async () => {
    let answer: string[] | 'fail' | 'hang' = ['10.0.0.2', '10.0.0.1'];
    const outcomes: boolean[] = [];
    const r = createResolver(parse({ dns: { hostname: 'gw', port: 8888, interval: '100ms', timeout: '50ms' } }).config, {
      logger,
      onResolution: (ok) => outcomes.push(ok),
      lookup: async () => {
        if (answer === 'fail') throw new Error('ENOTFOUND gw');
        if (answer === 'hang') return new Promise<string[]>(() => undefined);
        return answer;
      },
    });
    await r.start();
    expect(r.membership().ready).to.deep.equal(['10.0.0.1:8888', '10.0.0.2:8888']);
    answer = ['10.0.0.1', 'fd00::3'];
    expect((await nextChange(r)).ready).to.deep.equal(['10.0.0.1:8888', '[fd00::3]:8888']);
    // A failed lookup and one past its timeout each count as a failed resolution and keep the last answer.
    answer = 'fail';
    const failedAt = outcomes.length;
    await waitFor(async () => (outcomes.slice(failedAt).includes(false) ? true : undefined), { timeoutMs: 10_000, what: 'a failed lookup' });
    expect(r.membership().ready).to.deep.equal(['10.0.0.1:8888', '[fd00::3]:8888']);
    answer = 'hang';
    const hungAt = outcomes.length;
    await waitFor(async () => (outcomes.slice(hungAt).includes(false) ? true : undefined), { timeoutMs: 10_000, what: 'a lookup timing out' });
    expect(r.membership().ready).to.deep.equal(['10.0.0.1:8888', '[fd00::3]:8888']);
    answer = ['10.0.0.1'];
    expect((await nextChange(r)).ready).to.deep.equal(['10.0.0.1:8888']);
    await r.stop();
  });
});

describe('discovery: EndpointSlice conditions', () => {
  const one = (conditions: Record<string, boolean>): { ready: boolean; serving: boolean } => {
    const s = toSliceInfo({ metadata: { name: 's' }, endpoints: [{ addresses: ['10.0.0.1'], conditions }] });
    const e = s?.endpoints[0] as { ready: boolean; serving: boolean };
    return { ready: e.ready, serving: e.serving };
  };
  it('unset ready/serving mean true, unset terminating false; terminating endpoints get no new work', () => {
    expect(one({})).to.deep.equal({ ready: true, serving: true });
    expect(one({ ready: false })).to.deep.equal({ ready: false, serving: false });
    expect(one({ ready: false, serving: true, terminating: true })).to.deep.equal({ ready: false, serving: true });
    // publishNotReadyAddresses: a terminating pod still marked ready is not given new work
    expect(one({ ready: true, serving: true, terminating: true })).to.deep.equal({ ready: false, serving: true });
    expect(one({ ready: false, serving: false, terminating: true })).to.deep.equal({ ready: false, serving: false });
  });
  it('skips endpoints without an address', () => {
    expect(
      toSliceInfo({ metadata: { name: 's' }, endpoints: [{ addresses: [] }, {}, { addresses: ['10.0.0.9'] }] })?.endpoints.map((e) => e.address),
    ).to.deep.equal(['10.0.0.9']);
  });
});

describe('discovery: k8s resolver against the fake API server', function () {
  this.timeout(20_000);
  let api: FakeKubeApi;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    api = await FakeKubeApi.start();
    const sa = api.writeServiceAccountDir({ namespace: 'observability' });
    env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(api.port), ROUTELENS_SA_DIR: sa };
  });
  after(async () => api?.close());

  it('unions every slice of the Service, honours conditions and follows changes', async () => {
    api.add(
      'endpointslices',
      makeEndpointSlice({ name: 'gw-a', service: 'gw', namespace: 'observability', endpoints: [{ ip: '10.1.0.1' }, { ip: '10.1.0.2', ready: false }] }),
    );
    api.add('endpointslices', makeEndpointSlice({ name: 'gw-b', service: 'gw', namespace: 'observability', endpoints: [{ ip: '10.1.0.3' }] }));
    // another Service's slice, and the same name in another namespace: not ours
    api.add('endpointslices', makeEndpointSlice({ name: 'other-a', service: 'other', namespace: 'observability', endpoints: [{ ip: '10.9.0.1' }] }));
    api.add('endpointslices', makeEndpointSlice({ name: 'gw-x', service: 'gw', namespace: 'shop', endpoints: [{ ip: '10.9.0.2' }] }));

    // no namespace in `service`: the service account's (observability)
    const outcomes: boolean[] = [];
    const r = createResolver(parse({ k8s: { service: 'gw' } }, ownPortSchema).config, { logger, env, ownPort: 8888, onResolution: (ok) => outcomes.push(ok) });
    await r.start();
    expect(outcomes).to.deep.equal([true]);
    expect(r.membership()).to.deep.equal({ ready: ['10.1.0.1:8888', '10.1.0.3:8888'], serving: ['10.1.0.1:8888', '10.1.0.3:8888'] });

    // a rolling update: 10.1.0.3 terminates (still serving), a new pod becomes ready in a third slice
    let change = nextChange(r);
    api.modify('endpointslices', 'observability', 'gw-b', (o) => {
      o.endpoints = [{ addresses: ['10.1.0.3'], conditions: { ready: false, serving: true, terminating: true } }];
    });
    expect(await change).to.deep.equal({ ready: ['10.1.0.1:8888'], serving: ['10.1.0.1:8888', '10.1.0.3:8888'] });
    change = nextChange(r);
    api.add('endpointslices', makeEndpointSlice({ name: 'gw-c', service: 'gw', namespace: 'observability', endpoints: [{ ip: '10.1.0.4' }] }));
    expect((await change).ready).to.deep.equal(['10.1.0.1:8888', '10.1.0.4:8888']);
    change = nextChange(r);
    api.remove('endpointslices', 'observability', 'gw-b');
    expect((await change).serving).to.deep.equal(['10.1.0.1:8888', '10.1.0.4:8888']);

    // a watch cut: resumed, later changes still arrive
    api.cutWatches('endpointslices');
    change = nextChange(r);
    api.modify('endpointslices', 'observability', 'gw-a', (o) => {
      o.endpoints = [
        { addresses: ['10.1.0.1'], conditions: { ready: true } },
        { addresses: ['10.1.0.2'], conditions: { ready: true } },
      ];
    });
    expect((await change).ready).to.deep.equal(['10.1.0.1:8888', '10.1.0.2:8888', '10.1.0.4:8888']);
    const lists = api.count({ kind: 'endpointslices', verb: 'list' });
    expect(api.requests.filter((q) => q.kind === 'endpointslices').every((q) => q.query.labelSelector === 'kubernetes.io/service-name=gw')).to.equal(true);
    expect(lists).to.equal(1);
    await r.stop();
  });

  it('several ports, IPv6 and hostnames (return_hostnames)', async () => {
    api.add(
      'endpointslices',
      makeEndpointSlice({
        name: 'sts-a',
        service: 'sts',
        namespace: 'shop',
        addressType: 'IPv6',
        endpoints: [{ ip: 'fd00::1', hostname: 'sts-0' }, { ip: 'fd00::2' }],
      }),
    );
    const r1 = createResolver(parse({ k8s: { service: 'sts.shop', ports: [4317, 4318] } }).config, { logger, env });
    await r1.start();
    expect(r1.membership().ready).to.deep.equal(['[fd00::1]:4317', '[fd00::1]:4318', '[fd00::2]:4317', '[fd00::2]:4318']);
    await r1.stop();
    const r2 = createResolver(parse({ k8s: { service: 'sts.shop', return_hostnames: true } }).config, { logger, env });
    await r2.start();
    expect(r2.membership().ready).to.deep.equal(['[fd00::2]:4317', 'sts-0.sts.shop:4317']);
    await r2.stop();
  });

  it('an unreachable API server: start returns after the first attempt, with no peers', async () => {
    const outcomes: boolean[] = [];
    const r = createResolver(parse({ k8s: { service: 'gw.observability' } }).config, {
      logger,
      env: { ...env, KUBERNETES_SERVICE_PORT: '1' },
      onResolution: (ok) => outcomes.push(ok),
    });
    await r.start();
    expect(r.membership().ready).to.deep.equal([]);
    expect(outcomes[0]).to.equal(false);
    await r.stop();
  });
});
