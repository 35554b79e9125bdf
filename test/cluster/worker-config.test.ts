/** What each worker of `--workers N` runs: the pipelines without the query endpoint, with shared-out limits. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { availableCpus, workerConfig } from '../../src/cluster/cluster';
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

describe('availableCpus (default worker count)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-cgroup-'));
  const files = { v2: path.join(dir, 'cpu.max'), v1Quota: path.join(dir, 'cfs_quota_us'), v1Period: path.join(dir, 'cfs_period_us') };
  const write = (f: string, text: string | undefined): void => {
    if (text === undefined) fs.rmSync(f, { force: true });
    else fs.writeFileSync(f, text);
  };
  const cpus = (v2: string | undefined, quota: string | undefined, period: string | undefined, affinity: number): number => {
    write(files.v2, v2);
    write(files.v1Quota, quota);
    write(files.v1Period, period);
    return availableCpus(files, affinity).cpus;
  };
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes a Kubernetes CPU limit (cgroup v2 or v1), rounded up, never above the affinity mask', () => {
    expect(cpus('100000 100000\n', undefined, undefined, 32)).to.equal(1); // limits.cpu: 1 on a 32-core node
    expect(cpus('150000 100000', undefined, undefined, 32)).to.equal(2); // 1500m
    expect(cpus('50000 100000', undefined, undefined, 32)).to.equal(1); // 500m: still one worker
    expect(cpus('800000 100000', undefined, undefined, 4)).to.equal(4); // limit above the CPUs
    expect(cpus(undefined, '200000', '100000', 16)).to.equal(2); // cgroup v1
  });

  it('uses the affinity mask without a limit, and ignores garbage', () => {
    expect(cpus('max 100000', undefined, undefined, 6)).to.equal(6);
    expect(cpus(undefined, '-1', '100000', 6)).to.equal(6); // v1 unlimited
    expect(cpus(undefined, undefined, undefined, 3)).to.equal(3);
    expect(cpus('lots of cpus', 'x', 'y', 5)).to.equal(5);
    expect(cpus('0 100000', undefined, undefined, 5)).to.equal(5);
  });
});
