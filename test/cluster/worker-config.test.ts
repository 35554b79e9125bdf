/** What each worker of `--workers N` runs: the pipelines without the query endpoint, with shared-out limits. */
import { expect } from 'chai';
import { workerConfig } from '../../src/cluster/cluster';
import { defaultRegistry } from '../../src/components';
import { parseConfig } from '../../src/config/load';

const yaml = `
receivers:
  otlp: { protocols: { grpc: { endpoint: 127.0.0.1:0 } } }
processors:
  memory_limiter: { check_interval: 1s, limit_mib: 1000, spike_limit_mib: 200 }
exporters:
  otlp: { endpoint: 127.0.0.1:4317, sending_queue: { storage: file_storage } }
extensions:
  file_storage: { directory: /var/lib/routelens }
  routequery: { endpoint: 127.0.0.1:0 }
service:
  extensions: [file_storage, routequery]
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter], exporters: [otlp] }
`;

describe('workerConfig', () => {
  it('drops the query endpoint, gives each worker its own storage directory and 1/N of the memory limits', () => {
    const c = workerConfig(parseConfig(yaml, defaultRegistry(), {}), 1, 4);
    expect(c.enabledExtensions).to.deep.equal(['file_storage']);
    expect((c.extensions.get('file_storage')?.config as { directory: string }).directory).to.equal('/var/lib/routelens/worker-1');
    expect(c.processors.get('memory_limiter')?.config).to.include({ limit_mib: 250, spike_limit_mib: 50 });
  });

  it('leaves the limits alone for a single worker', () => {
    const c = workerConfig(parseConfig(yaml, defaultRegistry(), {}), 0, 1);
    expect(c.processors.get('memory_limiter')?.config).to.include({ limit_mib: 1000, spike_limit_mib: 200 });
  });
});
