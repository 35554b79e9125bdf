/**
 * A sidecar routelens: resourcedetection stamps the pod identity (downward-API variables) and
 * OTEL_RESOURCE_ATTRIBUTES of its own environment on spans received over OTLP/HTTP, without replacing what
 * the application sent.
 */
import { expect } from 'chai';
import { resourceDetectionFactory } from '../../src/processors/resourcedetection/factory';
import { OtlpSink, attrMap } from '../support/otlp-sink';
import { startRoutelens, type RunningRoutelens } from '../support/routelens';
import { eventually } from '../support/k8s';

describe('resourcedetection end to end (sidecar)', function () {
  this.timeout(30_000);
  const vars = {
    K8S_POD_NAME: 'checkout-6d9-abc',
    K8S_NAMESPACE: 'shop',
    K8S_NODE_NAME: 'node-3',
    K8S_POD_UID: 'uid-123',
    K8S_POD_IP: '10.1.2.3',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=production,k8s.pod.name=ignored',
  };
  const saved: Record<string, string | undefined> = {};
  let sink: OtlpSink;
  let rl: RunningRoutelens | undefined;

  beforeEach(async () => {
    for (const [k, v] of Object.entries(vars)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
    sink = await new OtlpSink().start();
  });

  afterEach(async () => {
    await rl?.stop();
    await sink.stop();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('adds the detected attributes each resource lacks', async () => {
    rl = await startRoutelens(
      `
receivers:
  otlp:
    protocols:
      http: { endpoint: 127.0.0.1:0 }
processors:
  resourcedetection:
    detectors: [k8s_downward, env]
exporters:
  otlp:
    endpoint: ${sink.grpcEndpoint}
    tls: { insecure: true }
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [resourcedetection]
      exporters: [otlp]
`,
      { extraFactories: [resourceDetectionFactory] },
    );
    const body = {
      resourceSpans: [
        {
          resource: {
            attributes: [
              { key: 'service.name', value: { stringValue: 'checkout' } },
              { key: 'k8s.namespace.name', value: { stringValue: 'from-sdk' } },
            ],
          },
          scopeSpans: [
            { spans: [{ traceId: '01'.repeat(16), spanId: '02'.repeat(8), name: 'GET /cart', kind: 2, startTimeUnixNano: '1', endTimeUnixNano: '2' }] },
          ],
        },
      ],
    };
    const res = await fetch(`http://127.0.0.1:${rl.httpPort()}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).to.equal(200);
    await eventually(() => sink.spanCount() === 1, 10_000, 'span at the sink');
    const attrs = Object.fromEntries(Object.entries(attrMap(sink.spans()[0]?.resource['attributes'] as never)).map(([k, v]) => [k, v['stringValue']]));
    expect(attrs).to.deep.equal({
      'service.name': 'checkout',
      'k8s.namespace.name': 'from-sdk',
      'k8s.pod.name': 'checkout-6d9-abc',
      'k8s.node.name': 'node-3',
      'k8s.pod.uid': 'uid-123',
      'k8s.pod.ip': '10.1.2.3',
      'deployment.environment': 'production',
    });
  });
});
