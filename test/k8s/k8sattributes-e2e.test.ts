/**
 * End to end: spans sent over OTLP/HTTP from a known client address reach the `k8sattributes` processor in a
 * running routelens (its informers against the fake API server) and are forwarded by the `otlp` exporter
 * with the pod's attributes.
 *
 * The client address must not be loopback (loopback is never a pod IP), so the test sends from this machine's
 * first non-internal IPv4 address and skips when there is none.
 */
import { expect } from 'chai';
import * as http from 'node:http';
import * as os from 'node:os';
import { TYPES, protoType } from '../../src/pdata/proto';
import { k8sAttributesFactory } from '../../src/processors/k8sattributes/factory';
import { K8sAttributesProcessor } from '../../src/processors/k8sattributes/processor';
import { FakeKubeApi, makePod, makeReplicaSet } from '../support/fake-kube-api';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { metricValue, startRoutelens, type RunningRoutelens } from '../support/routelens';
import { eventually, sleep } from '../support/k8s';

function externalIpv4(): string | undefined {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

let spanSeq = 0;

/** POST one ExportTraceServiceRequest (one resource per entry, one span each) from `localAddress`. */
async function send(host: string, port: number, localAddress: string, resources: Record<string, string>[]): Promise<number> {
  const type = protoType(TYPES.exportTraceRequest);
  const msg = type.fromObject({
    resourceSpans: resources.map((attrs) => ({
      resource: { attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } })) },
      scopeSpans: [
        {
          spans: [
            {
              traceId: Buffer.alloc(16, 1),
              spanId: Buffer.from((++spanSeq).toString(16).padStart(16, '0'), 'hex'),
              name: `GET /span-${spanSeq}`,
              kind: 2,
              startTimeUnixNano: '1700000000000000000',
              endTimeUnixNano: '1700000000100000000',
            },
          ],
        },
      ],
    })),
  });
  const body = Buffer.from(type.encode(msg).finish());
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host, port, localAddress, method: 'POST', path: '/v1/traces', headers: { 'content-type': 'application/x-protobuf', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('k8sattributes end to end (OTLP receiver → k8sattributes → otlp exporter)', function () {
  this.timeout(30_000);
  const ip = externalIpv4();
  let api: FakeKubeApi;
  let sink: OtlpSink;
  let rl: RunningRoutelens | undefined;

  before(function () {
    if (ip === undefined) this.skip();
  });

  beforeEach(async () => {
    api = await FakeKubeApi.start();
    sink = await new OtlpSink().start();
  });

  afterEach(async () => {
    await rl?.stop();
    rl = undefined;
    await sink.stop();
    await api.close();
  });

  function yaml(extra = ''): string {
    return `
receivers:
  otlp:
    protocols:
      http: { endpoint: "${ip}:0" }
processors:
  k8sattributes:
    auth_type: kubeConfig
    kube_config_path: ${api.writeKubeconfig()}
    wait_for_metadata: true
    wait_for_metadata_timeout: 10s
    pod_association:
      - sources: [{ from: resource_attribute, name: k8s.pod.uid }]
      - sources: [{ from: resource_attribute, name: k8s.pod.ip }]
      - sources: [{ from: connection }]
${extra}
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
    retry_on_failure: { initial_interval: 100ms }
extensions:
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [routequery]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [k8sattributes]
      exporters: [otlp]
`;
  }

  function resourceOf(spanName: string): Record<string, unknown> {
    const s = sink.spans().find((x) => x.name === spanName);
    if (s === undefined) throw new Error(`span ${spanName} not forwarded`);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(attrMap(s.resource['attributes'] as never))) out[k] = v['stringValue'];
    return out;
  }

  /** The running k8sattributes processor (to wait for its cache instead of sleeping). */
  function k8sProcessor(): K8sAttributesProcessor {
    const p = [...(rl as RunningRoutelens).service.components('processor').values()].find((c) => c instanceof K8sAttributesProcessor);
    if (p === undefined) throw new Error('no k8sattributes processor is running');
    return p as K8sAttributesProcessor;
  }

  async function sendAndGet(from: string, resource: Record<string, string>): Promise<Record<string, unknown>> {
    const r = rl as RunningRoutelens;
    const status = await send(ip as string, r.httpPort(), from, [resource]);
    expect(status).to.equal(200);
    const name = `GET /span-${spanSeq}`;
    await eventually(() => sink.spans().some((s) => s.name === name), 10_000, `span ${name} at the sink`);
    return resourceOf(name);
  }

  it('forwards spans with the attributes of the pod found by connection, k8s.pod.ip and k8s.pod.uid', async () => {
    const myIp = ip as string;
    api.add('replicasets', makeReplicaSet({ name: 'checkout-5b8f7', namespace: 'shop', uid: 'rs-c', deployment: { name: 'checkout', uid: 'dep-c' } }));
    api.addPod(
      makePod({
        name: 'checkout-5b8f7-x2x',
        namespace: 'shop',
        uid: 'pod-c',
        ip: myIp,
        node: 'node-7',
        owner: { kind: 'ReplicaSet', name: 'checkout-5b8f7', uid: 'rs-c' },
      }),
    );
    api.addPod(makePod({ name: 'cart-0', namespace: 'shop', uid: 'pod-cart', ip: '10.20.0.2', owner: { kind: 'StatefulSet', name: 'cart', uid: 'ss' } }));
    rl = await startRoutelens(yaml(), { extraFactories: [k8sAttributesFactory] });

    expect(await sendAndGet(myIp, { 'service.name': 'checkout' })).to.deep.include({
      'service.name': 'checkout',
      'k8s.pod.ip': myIp,
      'k8s.pod.name': 'checkout-5b8f7-x2x',
      'k8s.pod.uid': 'pod-c',
      'k8s.namespace.name': 'shop',
      'k8s.deployment.name': 'checkout',
      'k8s.node.name': 'node-7',
    });
    // From the same connection (a gateway's view of an agent), resource attributes name another pod.
    expect(await sendAndGet(myIp, { 'service.name': 'cart', 'k8s.pod.uid': 'pod-cart' })).to.deep.include({
      'k8s.pod.name': 'cart-0',
      'k8s.namespace.name': 'shop',
    });
    const byIp = await sendAndGet(myIp, { 'service.name': 'cart', 'k8s.pod.ip': '10.20.0.2' });
    expect(byIp).to.deep.include({ 'k8s.pod.name': 'cart-0', 'k8s.pod.ip': '10.20.0.2' });
    expect(byIp).to.not.have.property('k8s.deployment.name');

    const metrics = await rl.metricsText();
    expect(metricValue(metrics, 'routelens_k8sattributes_lookups_total', { source: 'connection', result: 'hit' })).to.equal(1);
    expect(metricValue(metrics, 'routelens_k8sattributes_lookups_total', { source: 'k8s.pod.uid', result: 'hit' })).to.equal(1);
    expect(metricValue(metrics, 'routelens_k8sattributes_lookups_total', { source: 'k8s.pod.ip', result: 'hit' })).to.equal(1);
    expect(metricValue(metrics, 'routelens_k8sattributes_pods_cached', { state: 'live' })).to.equal(2);
    expect(metricValue(metrics, 'otelcol_otelsvc_k8s_pod_table_size')).to.equal(2);
  });

  it('an unknown pod passes unchanged and a miss is counted; loopback is never a pod', async () => {
    rl = await startRoutelens(yaml(), { extraFactories: [k8sAttributesFactory] });
    expect(await sendAndGet(ip as string, { 'service.name': 'lonely' })).to.deep.equal({ 'service.name': 'lonely' });
    expect(await sendAndGet(ip as string, { 'service.name': 'x', 'k8s.pod.uid': 'nope' })).to.deep.equal({ 'service.name': 'x', 'k8s.pod.uid': 'nope' });
    const metrics = await rl.metricsText();
    expect(metricValue(metrics, 'routelens_k8sattributes_lookups_total', { source: 'connection', result: 'miss' })).to.equal(1);
    expect(metricValue(metrics, 'routelens_k8sattributes_lookups_total', { source: 'k8s.pod.uid', result: 'miss' })).to.equal(1);
    expect(metricValue(metrics, 'otelcol_otelsvc_k8s_ip_lookup_miss_total')).to.equal(1);
  });

  it('after a pod is deleted and its IP reused, spans from that IP carry the new pod', async () => {
    const myIp = ip as string;
    api.addPod(makePod({ name: 'old-pod', uid: 'old', ip: myIp }));
    rl = await startRoutelens(yaml(), { extraFactories: [k8sAttributesFactory] });
    expect((await sendAndGet(myIp, {}))['k8s.pod.name']).to.equal('old-pod');
    api.deletePod('default', 'old-pod');
    api.addPod(makePod({ name: 'new-pod', uid: 'new', ip: myIp }));
    await eventually(() => k8sProcessor().metadata.pods.byUid('new') !== undefined, 5000, 'the new pod in the cache');
    expect((await sendAndGet(myIp, {}))['k8s.pod.name']).to.equal('new-pod');
    const metrics = await rl.metricsText();
    expect(metricValue(metrics, 'otelcol_otelsvc_k8s_pod_deleted_total')).to.equal(1);
    expect(metricValue(metrics, 'routelens_k8sattributes_pods_cached', { state: 'deleted' })).to.equal(1);
  });

  it('a watch cut mid-stream recovers: pods created afterwards enrich spans; restarts show on /metrics', async () => {
    rl = await startRoutelens(yaml(), { extraFactories: [k8sAttributesFactory] });
    await api.waitFor(() => api.activeWatches('pods') === 1, 5000, 'watch');
    api.cutWatches('pods', 'mid-event');
    api.addPod(makePod({ name: 'after-cut', uid: 'ac', ip: ip as string }));
    // The informer restarts after its backoff (500 ms initially).
    await eventually(() => api.activeWatches('pods') === 1 && api.count({ kind: 'pods', verb: 'watch' }) >= 2, 10_000, 'rewatch');
    await eventually(() => k8sProcessor().metadata.pods.byUid('ac') !== undefined, 5000, 'the pod added during the cut in the cache');
    expect((await sendAndGet(ip as string, {}))['k8s.pod.name']).to.equal('after-cut');
    const metrics = await rl.metricsText();
    expect(metricValue(metrics, 'routelens_k8sattributes_watch_restarts_total', { resource: 'pods', reason: 'error' })).to.be.at.least(1);
  });

  it('wait_for_metadata holds the receiver until the informers are synced', async () => {
    api.addPod(makePod({ name: 'early', uid: 'e', ip: ip as string }));
    const release = api.holdLists();
    let running: RunningRoutelens | undefined;
    const starting = startRoutelens(yaml(), { extraFactories: [k8sAttributesFactory] }).then((r) => {
      running = r;
      return r;
    });
    // The informers have asked for the pods and routelens still waits for the answer.
    await eventually(() => api.count({ kind: 'pods', verb: 'list' }) >= 1, 10_000, 'the pod list request');
    await sleep(300);
    expect(running).to.equal(undefined, 'routelens started before the metadata was synced');
    expect(api.count({ kind: 'pods', verb: 'list' })).to.equal(1);
    release();
    rl = await starting;
    // The very first span is enriched: no window where spans pass without metadata.
    expect((await sendAndGet(ip as string, {}))['k8s.pod.name']).to.equal('early');
  });
});
