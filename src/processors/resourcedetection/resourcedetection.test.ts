import { expect } from 'chai';
import pino from 'pino';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import { RecordingConsumer, logsRequest, metricsRequest } from '../../../test/support/signal-requests';
import { LogsBatch } from '../../pdata/logs-batch';
import { MetricsBatch } from '../../pdata/metrics-batch';
import { configSchema, type ResourceDetectionConfig } from './config';
import { detect, parseResourceAttributes } from './detectors';
import { ResourceDetectionProcessor, type ResourceBatch } from './processor';

function cfg(raw: unknown): ResourceDetectionConfig {
  const issues = new ConfigErrorList();
  const c = configSchema.parse(raw, 'processors.resourcedetection', issues);
  if (!issues.empty) throw new Error(issues.format());
  return c;
}

class Batch implements ResourceBatch {
  constructor(readonly resources: Map<string, string>[]) {}
  get resourceCount(): number {
    return this.resources.length;
  }
  hasResourceAttribute(i: number, key: string): boolean {
    return this.resources[i]?.has(key) ?? false;
  }
  addResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    for (const [k, v] of attrs) {
      if (this.resources[i]?.has(k)) throw new Error(`duplicate ${k}`);
      this.resources[i]?.set(k, v);
    }
  }
  setResourceAttributes(i: number, attrs: ReadonlyArray<readonly [string, string]>): void {
    for (const [k, v] of attrs) this.resources[i]?.set(k, v);
  }
}

describe('resourcedetection', () => {
  it('parses OTEL_RESOURCE_ATTRIBUTES with percent-decoding, skipping malformed entries', () => {
    const warnings: { detector: string; message: string }[] = [];
    expect(parseResourceAttributes(' service.namespace = shop ,team=a%20b,broken,=x,k8s.cluster.name=prod%2Ceu', warnings)).to.deep.equal([
      ['service.namespace', 'shop'],
      ['team', 'a b'],
      ['k8s.cluster.name', 'prod,eu'],
    ]);
    expect(warnings.map((w) => w.message)).to.have.length(2);
  });

  it('reads downward-API variables with configurable names; the first detector wins', () => {
    const env = {
      K8S_POD_NAME: 'app-1',
      MY_NS: 'shop',
      K8S_NODE_NAME: 'n1',
      K8S_POD_UID: 'u1',
      K8S_POD_IP: '10.0.0.1',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.pod.name=from-env,deployment.environment=prod',
    };
    expect(detect(cfg({ detectors: ['k8s_downward', 'env'], k8s_downward: { namespace_env_var: 'MY_NS' } }), env)).to.deep.equal([
      ['k8s.pod.name', 'app-1'],
      ['k8s.namespace.name', 'shop'],
      ['k8s.node.name', 'n1'],
      ['k8s.pod.uid', 'u1'],
      ['k8s.pod.ip', '10.0.0.1'],
      ['deployment.environment', 'prod'],
    ]);
    expect(detect(cfg({ detectors: ['env', 'k8s_downward'] }), env)[0]).to.deep.equal(['k8s.pod.name', 'from-env']);
  });

  it('validates its config: unknown detector, duplicates, unknown keys', () => {
    const issues = new ConfigErrorList();
    configSchema.parse({ detectors: ['env', 'k8snode', 'env'], override: 'yes', k8s_downward: { pod_ip: 'X' } }, 'processors.resourcedetection', issues);
    const text = issues.format();
    expect(text).to.contain('processors.resourcedetection.detectors[1]: invalid value "k8snode"; expected one of "env", "k8s_downward"');
    expect(text).to.contain('processors.resourcedetection.detectors[2]: duplicate entry "env"');
    expect(text).to.contain('processors.resourcedetection.override: invalid value "yes"; expected true or false');
    expect(text).to.contain('processors.resourcedetection.k8s_downward.pod_ip: unknown key "pod_ip"');
    expect(cfg(undefined)).to.deep.include({ detectors: ['env'], override: false });
  });

  it('adds detected attributes only where a resource lacks them', async () => {
    const p = new ResourceDetectionProcessor(
      { id: 'resourcedetection', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
      cfg({ detectors: ['k8s_downward'] }),
      { consumeTraces: () => Promise.resolve() },
      { env: { K8S_POD_NAME: 'sidecar-pod', K8S_NAMESPACE: 'shop' } },
    );
    await p.start();
    const b = new Batch([new Map([['service.name', 'a']]), new Map([['k8s.pod.name', 'sdk-set']])]);
    p.enrich(b);
    expect(Object.fromEntries(b.resources[0] ?? [])).to.deep.equal({ 'service.name': 'a', 'k8s.pod.name': 'sidecar-pod', 'k8s.namespace.name': 'shop' });
    expect(Object.fromEntries(b.resources[1] ?? [])).to.deep.equal({ 'k8s.pod.name': 'sdk-set', 'k8s.namespace.name': 'shop' });
    await p.shutdown();
  });

  it('with override: true replaces what the client sent', async () => {
    const p = new ResourceDetectionProcessor(
      { id: 'resourcedetection', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
      cfg({ detectors: ['k8s_downward'], override: true }),
      { consumeTraces: () => Promise.resolve() },
      { env: { K8S_POD_NAME: 'sidecar-pod', K8S_NAMESPACE: 'shop' } },
    );
    await p.start();
    const b = new Batch([
      new Map([
        ['k8s.pod.name', 'sdk-set'],
        ['service.name', 'a'],
      ]),
    ]);
    p.enrich(b);
    expect(Object.fromEntries(b.resources[0] ?? [])).to.deep.equal({ 'service.name': 'a', 'k8s.pod.name': 'sidecar-pod', 'k8s.namespace.name': 'shop' });
    await p.shutdown();
  });

  it('does the same to metrics and logs batches, and hands them on', async () => {
    const downstream = new RecordingConsumer();
    const p = new ResourceDetectionProcessor(
      { id: 'resourcedetection', logger: pino({ level: 'silent' }), telemetry: new Telemetry() },
      cfg({ detectors: ['k8s_downward'] }),
      downstream,
      { env: { K8S_POD_NAME: 'sidecar-pod', K8S_NAMESPACE: 'shop' } },
    );
    await p.start();
    await p.consumeMetrics(MetricsBatch.decode(metricsRequest(2)), {});
    await p.consumeLogs(LogsBatch.decode(logsRequest(1, { resourceAttributes: { 'k8s.pod.name': 'sdk-set' } })), {});
    expect(downstream.batches.map((b) => [b.signal, b.resourceAttribute(0, 'k8s.pod.name'), b.resourceAttribute(0, 'k8s.namespace.name')])).to.deep.equal([
      ['metrics', 'sidecar-pod', 'shop'],
      ['logs', 'sdk-set', 'shop'],
    ]);
    await p.shutdown();
  });
});
