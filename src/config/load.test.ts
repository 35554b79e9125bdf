/**
 * Config loading: every class of config error is reported with its YAML path, all of them at once;
 * `${env:…}` substitution (typed when a value is exactly one reference); `type/name` ids; connectors; and the
 * real `routelens` CLI (`validate`, `--version`, `--help`) as a child process.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ConnectorFactory, ProcessorFactory } from '../consumer/factory';
import type { TracesConsumer } from '../consumer/consumer';
import { defaultRegistry } from '../components';
import { parseConfig, loadConfigFile, substituteEnv, type ServiceConfig } from './load';
import { ConfigError, obj, str, type Field } from '../core/schema';

/** A minimal processor and connector, so the loader's handling of those sections can be tested. */
const fakeProcessor: ProcessorFactory<{ action: string }> = {
  kind: 'processor',
  type: 'tagger',
  configSchema: obj({ action: str({ default: 'insert' }) }),
  createTraces: (_s, _c, next) => ({ start: async () => undefined, shutdown: async () => undefined, consumeTraces: (b, ctx) => next.consumeTraces(b, ctx) }),
};
const fakeConnector: ConnectorFactory<Record<string, never>> = {
  kind: 'connector',
  type: 'spancount',
  configSchema: obj({}) as unknown as Field<Record<string, never>>,
  consumes: ['traces'],
  produces: ['traces', 'metrics'],
  create: (_s, _c, next) => ({
    start: async () => undefined,
    shutdown: async () => undefined,
    consumeTraces: (b, ctx) => (next.traces as TracesConsumer).consumeTraces(b, ctx),
  }),
};
const registry = defaultRegistry([fakeProcessor, fakeConnector]);

function issuesOf(yaml: string, env: NodeJS.ProcessEnv = {}): { path: string; message: string }[] {
  try {
    parseConfig(yaml, registry, env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

function parse(yaml: string, env: NodeJS.ProcessEnv = {}): ServiceConfig {
  return parseConfig(yaml, registry, env);
}

const minimalPipeline = `
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`;

describe('config loading', () => {
  it('reports every problem at once, each with its YAML path', () => {
    const issues = issuesOf(`
recievers: {}
receivers:
  otlp:
    protocols:
      htttp: {}
      grpc:
        endpoint: localhost
        max_recv_msg_size_mib: lots
exporters:
  debug: {}
  jaeger:
    endpoint: x:1
  otlp:
    endpoint: 127.0.0.1:4317
    timeout: 5 seconds
    sending_queue:
      queue_size: "many"
      num_consumers: 0
    compression: brotli
  otlphttp:
    endpoint: not a url
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug, otlp/missing]
`);
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    const expected: [string, RegExp][] = [
      ['recievers', /^unknown key "recievers"; expected one of receivers, processors, exporters, connectors, extensions, service$/],
      ['receivers.otlp.protocols.htttp', /^unknown key "htttp"; expected one of grpc, http$/],
      ['receivers.otlp.protocols.grpc.endpoint', /^invalid value "localhost"; expected an endpoint "host:port"/],
      ['receivers.otlp.protocols.grpc.max_recv_msg_size_mib', /^invalid value "lots"; expected a number >= 0$/],
      ['exporters.jaeger', /^unknown exporter type "jaeger"; expected one of (\w+, )*debug, (\w+, )*otlp, (\w+, )*otlphttp(, \w+)*$/],
      ['exporters.otlp.timeout', /^invalid value "5 seconds"; expected a duration such as "200ms", "5s", "1m"$/],
      ['exporters.otlp.sending_queue.queue_size', /^invalid value "many"; expected an integer >= 1$/],
      ['exporters.otlp.sending_queue.num_consumers', /^invalid value number 0; expected an integer >= 1 <= 1000$/],
      ['exporters.otlp.compression', /^invalid value "brotli"; expected one of "gzip", "none", ""$/],
      ['exporters.otlphttp.endpoint', /^invalid value "not a url"; expected a URL/],
      ['service.pipelines.traces.processors[0]', /^references processor "batch" which is not defined; defined: none$/],
      ['service.pipelines.traces.exporters[1]', /^references exporter or connector "otlp\/missing" which is not defined; defined: debug, otlp, otlphttp$/],
    ];
    for (const [p, re] of expected) {
      expect(byPath.has(p), `an issue at ${p}; got ${JSON.stringify(issues, null, 1)}`).to.equal(true);
      expect(byPath.get(p)).to.match(re);
    }
    expect(issues).to.have.length(expected.length);
  });

  it('formats the error one problem per line, path first', () => {
    let err: unknown;
    try {
      parseConfig(`exporters:\n  debug:\n    verbosity: loud\n${minimalPipeline}`, registry, {});
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as Error).message).to.contain('\n  exporters.debug.verbosity: invalid value "loud"; expected one of "basic", "normal", "detailed"');
    expect((err as Error).message).to.contain('\n  service.pipelines.traces.receivers[0]: references receiver or connector "otlp" which is not defined');
  });

  it('applies defaults and parses values into their types', () => {
    const c = parse(`
receivers:
  otlp:
    protocols:
      grpc:
      http:
        max_request_body_size: 1024
exporters:
  debug:
  otlp:
    endpoint: collector:4317
    timeout: 1m30s
    retry_on_failure:
      initial_interval: 250ms
      max_elapsed_time: 0
service:
  shutdown_timeout: 2s
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp, debug]
`);
    const otlp = c.receivers.get('otlp')?.config as {
      protocols: {
        grpc?: { endpoint: string; max_recv_msg_size_mib: number };
        http?: { endpoint: string; max_request_body_size: number; traces_url_path: string };
      };
    };
    expect(otlp.protocols.grpc).to.include({ endpoint: 'localhost:4317', max_recv_msg_size_mib: 4 });
    expect(otlp.protocols.http).to.include({ endpoint: 'localhost:4318', max_request_body_size: 1024, traces_url_path: '/v1/traces' });
    const ex = c.exporters.get('otlp')?.config as {
      timeout: number;
      retry_on_failure: { initial_interval: number; max_interval: number; max_elapsed_time: number };
      sending_queue: { queue_size: number };
    };
    expect(ex.timeout).to.equal(90_000);
    expect(ex.retry_on_failure).to.include({ initial_interval: 250, max_interval: 30_000, max_elapsed_time: 0 });
    expect(ex.sending_queue.queue_size).to.equal(1000);
    expect(c.exporters.get('debug')?.config).to.deep.equal({ verbosity: 'basic' });
    expect(c.shutdownTimeoutMs).to.equal(2000);
    expect(c.pipelines).to.deep.equal([{ id: 'traces', signal: 'traces', receivers: ['otlp'], processors: [], exporters: ['otlp', 'debug'] }]);
    expect(c.telemetry.logs).to.deep.equal({ level: 'info', encoding: 'json' });
  });

  it('takes a bare 0 as a zero duration; other bare numbers need a unit', () => {
    const issues = issuesOf(`
exporters:
  otlp:
    endpoint: a:1
    timeout: 5
    retry_on_failure: { max_elapsed_time: 0, initial_interval: "0" }
${minimalPipeline}`);
    expect(issues).to.deep.include({ path: 'exporters.otlp.timeout', message: 'invalid value number 5; expected a duration such as "200ms", "5s", "1m"' });
    expect(issues.filter((i) => i.path.startsWith('exporters.otlp.retry_on_failure'))).to.deep.equal([]);
  });

  it('reports a wrong type where a number, a map or a list is expected', () => {
    const issues = issuesOf(`
receivers:
  otlp:
    protocols:
      http:
        max_request_body_size: [1, 2]
        include_metadata: maybe
exporters:
  debug: verbose
service:
  extensions: debug
  pipelines:
    traces:
      receivers: otlp
      exporters: [debug]
`);
    expect(issues).to.deep.include({ path: 'receivers.otlp.protocols.http.max_request_body_size', message: 'invalid value a list; expected an integer >= 1' });
    expect(issues).to.deep.include({ path: 'receivers.otlp.protocols.http.include_metadata', message: 'invalid value "maybe"; expected true or false' });
    expect(issues).to.deep.include({ path: 'exporters.debug', message: 'invalid value "verbose"; expected a map with keys verbosity' });
    expect(issues).to.deep.include({ path: 'service.extensions', message: 'expected a list of extension ids' });
    expect(issues).to.deep.include({ path: 'service.pipelines.traces.receivers', message: 'expected a list of receiver or connector ids' });
  });

  it('reports unknown keys in services, pipelines and telemetry, and bad pipeline ids', () => {
    const issues = issuesOf(`
receivers:
  otlp: { protocols: { grpc: {} } }
exporters:
  debug: {}
extensions:
  routequery: {}
service:
  extension: [routequery]
  extensions: [routequery, health_check]
  telemetry:
    logs: { level: verbose }
    metrics: {}
  pipelines:
    traces:
      receivers: [otlp]
      exporter: [debug]
    trace/x:
      receivers: [otlp]
      exporters: [debug]
    logs:
      receivers: [otlp]
      exporters: [debug]
`);
    const paths = issues.map((i) => i.path);
    expect(paths).to.include.members([
      'service.extension',
      'service.extensions[1]',
      'service.telemetry.logs.level',
      'service.telemetry.metrics',
      'service.pipelines.traces.exporter',
      'service.pipelines.traces.exporters',
      'service.pipelines.trace/x',
    ]);
    // Logs pipelines are pipelines like the others.
    expect(paths.filter((p) => p.startsWith('service.pipelines.logs'))).to.deep.equal([]);
    expect(issues.find((i) => i.path === 'service.extensions[1]')?.message).to.equal(
      'references extension "health_check" which is not configured in extensions; configured: routequery',
    );
    expect(issues.find((i) => i.path === 'service.pipelines.traces.exporters')?.message).to.equal('a pipeline needs at least one exporter or connector');
    expect(issues.find((i) => i.path === 'service.pipelines.trace/x')?.message).to.match(/invalid pipeline id "trace\/x"/);
  });

  it('requires a pipeline and a receiver protocol', () => {
    expect(issuesOf('receivers:\n  otlp:\n    protocols: {}\n')).to.deep.equal([
      { path: 'receivers.otlp.protocols', message: 'must enable at least one protocol: grpc or http' },
      { path: 'service.pipelines', message: 'expected at least one pipeline, e.g. traces: {receivers: [otlp], exporters: [debug]}' },
    ]);
    expect(issuesOf('[1, 2]')).to.deep.equal([
      { path: '(root)', message: 'expected a map with keys receivers, processors, exporters, connectors, extensions, service' },
    ]);
  });

  it('accepts type/name ids and keeps them apart; rejects malformed ids', () => {
    const c = parse(`
receivers:
  otlp: { protocols: { grpc: { endpoint: "127.0.0.1:0" } } }
  otlp/internal: { protocols: { http: { endpoint: "127.0.0.1:0" } } }
exporters:
  otlp/primary: { endpoint: "a:1" }
  otlp/secondary: { endpoint: "b:2", compression: none }
  otlp_http/legacy: { endpoint: "http://c:4318" }
service:
  pipelines:
    traces:
      receivers: [otlp, otlp/internal]
      exporters: [otlp/primary, otlp/secondary]
    traces/legacy:
      receivers: [otlp]
      exporters: [otlp_http/legacy]
`);
    expect([...c.receivers.keys()]).to.deep.equal(['otlp', 'otlp/internal']);
    expect(c.exporters.get('otlp/secondary')).to.include({ id: 'otlp/secondary', type: 'otlp' });
    expect((c.exporters.get('otlp/secondary')?.config as { compression: string }).compression).to.equal('none');
    expect((c.exporters.get('otlp/primary')?.config as { compression: string }).compression).to.equal('gzip');
    expect(c.exporters.get('otlp_http/legacy')).to.include({ type: 'otlphttp' }); // alias
    expect(c.pipelines.map((p) => p.id)).to.deep.equal(['traces', 'traces/legacy']);

    const issues = issuesOf(`
exporters:
  Otlp: { endpoint: "a:1" }
  otlp/a/b: { endpoint: "a:1" }
  "otlp/": { endpoint: "a:1" }
  otlp/ok: { endpoint: "a:1" }
receivers:
  otlp/x: { protocols: { grpc: {} } }
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp/ok, otlp/ok]
`);
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    expect(byPath.get('exporters.Otlp')).to.match(/invalid component id "Otlp"; expected "type" or "type\/name"/);
    expect(byPath.get('exporters.otlp/a/b')).to.match(/invalid component id/);
    expect(byPath.get('exporters.otlp/')).to.match(/invalid component id/);
    expect(byPath.get('service.pipelines.traces.receivers[0]')).to.equal('references receiver or connector "otlp" which is not defined; defined: otlp/x');
    expect(byPath.get('service.pipelines.traces.exporters[1]')).to.equal('exporter or connector "otlp/ok" is listed twice');
  });

  it('reports a YAML syntax error with its line, and duplicate keys', () => {
    const syntax = issuesOf('receivers:\n  otlp:\n    protocols: [grpc\nservice: {}\n');
    expect(syntax.length).to.be.greaterThan(0);
    expect(syntax.every((i) => i.path === '(yaml)')).to.equal(true);
    expect(syntax[0]?.message).to.match(/line \d+, column \d+/);
    const dup = issuesOf('receivers:\n  otlp: {}\n  otlp: {}\n');
    expect(dup).to.have.length(1);
    expect(dup[0]).to.deep.include({ path: '(yaml)' });
    expect(dup[0]?.message).to.match(/Map keys must be unique at line 3/);
  });

  describe('${env:…} substitution', () => {
    const yaml = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: \${env:GRPC_ENDPOINT}
      http:
        endpoint: "127.0.0.1:\${env:HTTP_PORT:-4318}"
        include_metadata: \${env:WITH_METADATA:-false}
exporters:
  otlp:
    endpoint: \${env:UPSTREAM:-collector:4317}
    headers:
      authorization: "Bearer \${env:TOKEN}"
      x-tenant: \${env:TENANT}
      x-price: $$5
    sending_queue:
      queue_size: \${env:QUEUE_SIZE}
      enabled: \${env:QUEUE_ON}
    retry_on_failure:
      multiplier: \${MULTIPLIER:-2.5}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
`;
    type Exp = {
      endpoint: string;
      headers: Record<string, string>;
      sending_queue: { queue_size: number; enabled: boolean };
      retry_on_failure: { multiplier: number };
    };
    type Rcv = { protocols: { grpc: { endpoint: string }; http: { endpoint: string; include_metadata: boolean } } };

    it('substitutes variables and defaults, typed when a value is exactly one reference', () => {
      const c = parse(yaml, { GRPC_ENDPOINT: '0.0.0.0:14317', TOKEN: 's3cr3t', TENANT: 'acme', QUEUE_SIZE: '42', QUEUE_ON: 'false' });
      const r = c.receivers.get('otlp')?.config as Rcv;
      expect(r.protocols.grpc.endpoint).to.equal('0.0.0.0:14317');
      expect(r.protocols.http.endpoint).to.equal('127.0.0.1:4318');
      expect(r.protocols.http.include_metadata).to.equal(false);
      const e = c.exporters.get('otlp')?.config as Exp;
      expect(e.endpoint).to.equal('collector:4317');
      expect(e.headers).to.deep.equal({ authorization: 'Bearer s3cr3t', 'x-tenant': 'acme', 'x-price': '$5' });
      expect(e.sending_queue).to.include({ queue_size: 42, enabled: false });
      expect(e.retry_on_failure.multiplier).to.equal(2.5);
    });

    it('overrides defaults with set variables; an empty variable takes the default', () => {
      const c = parse(yaml, {
        GRPC_ENDPOINT: '[::1]:0',
        HTTP_PORT: '0',
        WITH_METADATA: 'True',
        UPSTREAM: '',
        TOKEN: 't',
        TENANT: 't',
        QUEUE_SIZE: '1',
        QUEUE_ON: 'TRUE',
        MULTIPLIER: '3',
      });
      const r = c.receivers.get('otlp')?.config as Rcv;
      expect(r.protocols.grpc.endpoint).to.equal('[::1]:0');
      expect(r.protocols.http.endpoint).to.equal('127.0.0.1:0');
      expect(r.protocols.http.include_metadata).to.equal(true);
      const e = c.exporters.get('otlp')?.config as Exp;
      expect(e.endpoint).to.equal('collector:4317');
      expect(e.sending_queue).to.include({ queue_size: 1, enabled: true });
      expect(e.retry_on_failure.multiplier).to.equal(3);
    });

    it('keeps the text of a string value that merely looks like a number', () => {
      const c = parse(yaml, { GRPC_ENDPOINT: 'localhost:1', TOKEN: 't', TENANT: '007', QUEUE_SIZE: '0x10', QUEUE_ON: 'true' });
      expect((c.exporters.get('otlp')?.config as Exp).headers['x-tenant']).to.equal('007');
      expect((c.exporters.get('otlp')?.config as Exp).sending_queue.queue_size).to.equal(16);
      const big = parse(yaml, { GRPC_ENDPOINT: 'localhost:1', TOKEN: 't', TENANT: '12345678901234567890', QUEUE_SIZE: '5', QUEUE_ON: 'true' });
      expect((big.exporters.get('otlp')?.config as Exp).headers['x-tenant']).to.equal('12345678901234567890');
      const exp = parse(yaml, { GRPC_ENDPOINT: 'localhost:1', TOKEN: 't', TENANT: '1e3', QUEUE_SIZE: '5', QUEUE_ON: 'true' });
      expect((exp.exporters.get('otlp')?.config as Exp).headers['x-tenant']).to.equal('1e3');
    });

    it('reports a substituted value of the wrong type at the path where it is used', () => {
      const issues = issuesOf(yaml, { GRPC_ENDPOINT: 'nohost', TOKEN: 't', TENANT: 't', QUEUE_SIZE: 'ten', QUEUE_ON: 'yes' });
      expect(issues).to.deep.include({
        path: 'receivers.otlp.protocols.grpc.endpoint',
        message: 'invalid value "nohost"; expected an endpoint "host:port" with a port 0-65535',
      });
      expect(issues).to.deep.include({ path: 'exporters.otlp.sending_queue.queue_size', message: 'invalid value "ten"; expected an integer >= 1' });
      expect(issues).to.deep.include({ path: 'exporters.otlp.sending_queue.enabled', message: 'invalid value "yes"; expected true or false' });
    });

    it('a missing variable without default is a warning, not an error, when the result is still valid', () => {
      const c = parse(`
receivers:
  otlp: { protocols: { grpc: {} } }
exporters:
  otlp:
    endpoint: a:1
    headers:
      x-token: "\${env:NOT_SET_ANYWHERE}"
${minimalPipeline.replace('[debug]', '[otlp]')}`);
      expect((c.exporters.get('otlp')?.config as Exp).headers['x-token']).to.equal('');
      // ...but it is listed when other problems make the config fail.
      const issues = issuesOf(`
receivers:
  otlp: { protocols: { grpc: { endpoint: "\${env:NOT_SET_EITHER}" } } }
${minimalPipeline}`);
      expect(issues).to.deep.include({ path: '(env)', message: 'environment variable(s) not set and without default: NOT_SET_EITHER' });
      expect(issues.map((i) => i.path)).to.include('receivers.otlp.protocols.grpc.endpoint');
    });

    it('substituteEnv handles $$, bare ${VAR}, defaults with colons and unset variables', () => {
      const missing: string[] = [];
      expect(substituteEnv('a=$${env:X} b=${X} c=${env:Y:-http://h:1/p} d=${env:Z}', { X: 'x' }, missing)).to.equal('a=${env:X} b=x c=http://h:1/p d=');
      expect(missing).to.deep.equal(['Z']);
    });
  });

  describe('metrics and logs pipelines', () => {
    it('take the shipped receivers, processors and exporters, with the Collector shape (metrics, logs, metrics/<name>)', () => {
      const config = parseConfig(
        `
receivers: { otlp: { protocols: { grpc: {}, http: {} } } }
processors: { memory_limiter: { limit_mib: 100 }, k8sattributes: { passthrough: true }, resourcedetection: {} }
exporters:
  otlp: { endpoint: collector:4317 }
  otlphttp: { endpoint: http://collector:4318 }
  debug: {}
  file: { path: /tmp/out.json }
service:
  pipelines:
    traces: { receivers: [otlp], processors: [memory_limiter, k8sattributes], exporters: [otlp] }
    metrics: { receivers: [otlp], processors: [memory_limiter, k8sattributes, resourcedetection], exporters: [otlp, otlphttp] }
    metrics/debug: { receivers: [otlp], exporters: [debug, file] }
    logs: { receivers: [otlp], processors: [memory_limiter, k8sattributes], exporters: [otlphttp, debug, file] }
`,
        registry,
        {},
      );
      expect(config.pipelines.map((p) => [p.id, p.signal])).to.deep.equal([
        ['traces', 'traces'],
        ['metrics', 'metrics'],
        ['metrics/debug', 'metrics'],
        ['logs', 'logs'],
      ]);
    });

    it('name the YAML path of a component in a pipeline of a signal it does not support, and of an otlphttp exporter without a URL for the signal', () => {
      expect(
        issuesOf(`
receivers: { otlp: { protocols: { grpc: {} } } }
exporters:
  otlphttp: { traces_endpoint: http://collector:4318/v1/traces }
  debug: {}
connectors: { routelatency: {} }
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency, otlphttp] }
    logs/in: { receivers: [otlp], exporters: [debug, routelatency] }
    logs: { receivers: [routelatency], exporters: [otlphttp] }
`),
      ).to.deep.equal([
        {
          path: 'service.pipelines.logs/in.exporters[1]',
          message: 'connector "routelatency" is in a logs pipeline but consumes traces and metrics; list it in a traces or metrics pipeline instead',
        },
        {
          path: 'service.pipelines.logs.receivers[0]',
          message: 'connector "routelatency" is in a logs pipeline but produces traces and metrics; list it in a traces or metrics pipeline instead',
        },
        { path: 'service.pipelines.logs.exporters[0]', message: 'exporter "otlphttp" has no URL for logs: set endpoint or logs_endpoint' },
      ]);
    });
  });

  describe('connectors', () => {
    const base = `
receivers:
  otlp: { protocols: { grpc: {} } }
exporters:
  debug: {}
connectors:
  spancount: {}
`;
    it('accepts a connector that ends one pipeline and feeds another', () => {
      const c = parse(`${base}
processors:
  tagger/a: {}
service:
  pipelines:
    traces/in:
      receivers: [otlp]
      processors: [tagger/a]
      exporters: [spancount]
    traces/out:
      receivers: [spancount]
      exporters: [debug]
`);
      expect(c.connectors.get('spancount')).to.include({ kind: 'connector', type: 'spancount' });
      expect(c.pipelines.find((p) => p.id === 'traces/in')?.exporters).to.deep.equal(['spancount']);
      expect(c.pipelines.find((p) => p.id === 'traces/in')?.processors).to.deep.equal(['tagger/a']);
      expect(c.pipelines.find((p) => p.id === 'traces/out')?.receivers).to.deep.equal(['spancount']);
    });

    it('rejects a connector used only as a receiver, or as both ends of one pipeline', () => {
      const onlyReceiver = issuesOf(`${base}
service:
  pipelines:
    traces:
      receivers: [spancount]
      exporters: [debug]
`);
      expect(onlyReceiver).to.deep.include({ path: 'connectors.spancount', message: 'is used as a receiver but no pipeline exports to it' });
      expect(onlyReceiver).to.deep.include({
        path: 'service.pipelines.traces',
        message: 'receives from connector "spancount" but no other pipeline exports to it',
      });

      const cycle = issuesOf(`${base}
service:
  pipelines:
    traces:
      receivers: [otlp, spancount]
      exporters: [debug, spancount]
`);
      expect(cycle).to.deep.include({ path: 'service.pipelines.traces', message: 'uses connector "spancount" as both receiver and exporter (a cycle)' });
    });

    it('rejects a metrics pipeline exporting to a connector (connectors consume traces)', () => {
      expect(
        issuesOf(`${base}
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [spancount] }
    metrics: { receivers: [otlp], exporters: [debug, spancount] }
    traces/out: { receivers: [spancount], exporters: [debug] }
`),
      ).to.deep.equal([
        {
          path: 'service.pipelines.metrics.exporters[1]',
          message: 'connector "spancount" is in a metrics pipeline but consumes traces; list it in a traces pipeline instead',
        },
      ]);
    });

    it('accepts a metrics pipeline exporting to a connector that consumes metrics (routelatency: the runtime view)', () => {
      const c = parse(`${base}
  routelatency: {}
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [routelatency] }
    metrics: { receivers: [otlp], exporters: [debug, routelatency] }
`);
      expect(c.pipelines.find((p) => p.id === 'metrics')?.exporters).to.deep.equal(['debug', 'routelatency']);
    });

    it('rejects a cycle through several pipelines and connectors, once, with the way round', () => {
      const issues = issuesOf(`${base}
  spancount/2: {}
  spancount/3: {}
service:
  pipelines:
    traces/a: { receivers: [otlp, spancount/3], exporters: [spancount] }
    traces/b: { receivers: [spancount], exporters: [spancount/2, debug] }
    traces/c: { receivers: [spancount/2], exporters: [spancount/3] }
    traces/d: { receivers: [spancount/2], exporters: [debug] }
`);
      expect(issues).to.deep.equal([
        {
          path: 'service.pipelines.traces/a',
          message: 'is part of a cycle through connectors: traces/a → spancount → traces/b → spancount/2 → traces/c → spancount/3 → traces/a',
        },
      ]);
      // A connector feeding several pipelines, one of them further down the same chain, is no cycle.
      expect(
        parse(`${base}
  spancount/2: {}
service:
  pipelines:
    traces/a: { receivers: [otlp], exporters: [spancount, spancount/2] }
    traces/b: { receivers: [spancount], exporters: [spancount/2] }
    traces/c: { receivers: [spancount/2], exporters: [debug] }
`).pipelines.map((p) => p.id),
      ).to.deep.equal(['traces/a', 'traces/b', 'traces/c']);
    });

    it('rejects a connector or exporter listed in the wrong place, and an unknown connector type', () => {
      const issues = issuesOf(`
receivers:
  otlp: { protocols: { grpc: {} } }
exporters:
  debug: {}
connectors:
  spancount: {}
  forward: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [spancount]
      exporters: [otlp]
`);
      expect(issues.find((i) => i.path === 'connectors.forward')?.message).to.match(
        /^unknown connector type "forward"; expected one of (\w+, )*spancount(, \w+)*$/,
      );
      expect(issues).to.deep.include({
        path: 'service.pipelines.traces.processors[0]',
        message: 'references processor "spancount" which is not defined; defined: none',
      });
      expect(issues).to.deep.include({
        path: 'service.pipelines.traces.exporters[0]',
        message: 'references exporter or connector "otlp" which is not defined; defined: debug, spancount',
      });
    });
  });

  it('loadConfigFile reports an unreadable file at path (file)', () => {
    let err: unknown;
    try {
      loadConfigFile('/nonexistent/routelens.yaml', registry);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    expect((err as ConfigError).issues[0]).to.deep.include({ path: '(file)' });
    expect((err as ConfigError).issues[0]?.message).to.match(/cannot read \/nonexistent\/routelens.yaml: .*ENOENT/);
  });
});

// ---- the CLI, as a real process ------------------------------------------------------------------------------

const repo = path.resolve(__dirname, '../../..');
const bin = path.join(repo, 'bin', 'routelens.js');

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repo, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('routelens CLI', function () {
  this.timeout(30_000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-cli-'));
  });
  after(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('validate exits 2 and prints every problem with its path', async () => {
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(
      file,
      `receivers:
  otlp:
    protocols:
      htttp: {}
      grpc: { endpoint: "nohost" }
exporters:
  otlp: { endpoint: "a:1", timeout: forever }
service:
  pipelines:
    traces: { receivers: [otlp], exporters: [otlp, debug] }
`,
    );
    const r = await runCli(['validate', '--config', file]);
    expect(r.code).to.equal(2);
    expect(r.stdout).to.equal('');
    expect(r.stderr).to.contain('routelens: invalid configuration:');
    expect(r.stderr).to.contain('receivers.otlp.protocols.htttp: unknown key "htttp"; expected one of grpc, http');
    expect(r.stderr).to.contain('receivers.otlp.protocols.grpc.endpoint: invalid value "nohost"');
    expect(r.stderr).to.contain('exporters.otlp.timeout: invalid value "forever"');
    expect(r.stderr).to.contain('service.pipelines.traces.exporters[1]: references exporter or connector "debug" which is not defined; defined: otlp');
  });

  it('validate exits 0 on a valid config (also with --config=FILE and env substitution)', async () => {
    const file = path.join(dir, 'good.yaml');
    fs.writeFileSync(file, `receivers:\n  otlp: { protocols: { grpc: { endpoint: "\${env:RL_TEST_EP}" } } }\nexporters:\n  debug: {}\n${minimalPipeline}`);
    const r = await runCli(['validate', `--config=${file}`], { RL_TEST_EP: '127.0.0.1:0' });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(`${file}: configuration is valid\n`);
    const bad = await runCli(['validate', `--config=${file}`], { RL_TEST_EP: '127.0.0.1:99999' });
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('receivers.otlp.protocols.grpc.endpoint: invalid value "127.0.0.1:99999"');
  });

  it('validate checks the repository default otel-config.yaml', async () => {
    const r = await runCli(['validate', '--config', path.join(repo, 'otel-config.yaml')]);
    expect(r.code, r.stderr).to.equal(0);
  });

  it('validate of a missing file or a YAML syntax error exits 2', async () => {
    const missing = await runCli(['validate', '--config', path.join(dir, 'nope.yaml')]);
    expect(missing.code).to.equal(2);
    expect(missing.stderr).to.match(/\(file\): cannot read .*nope\.yaml/);
    const file = path.join(dir, 'syntax.yaml');
    fs.writeFileSync(file, 'receivers:\n  otlp: [\n');
    const syntax = await runCli(['validate', '--config', file]);
    expect(syntax.code).to.equal(2);
    expect(syntax.stderr).to.match(/\(yaml\): .*line \d+/);
  });

  it('--version and --help exit 0', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
    const v = await runCli(['--version']);
    expect(v.code).to.equal(0);
    expect(v.stdout).to.equal(`routelens ${pkg.version}\n`);
    const h = await runCli(['--help']);
    expect(h.code).to.equal(0);
    expect(h.stdout).to.contain('Usage:');
    expect(h.stdout).to.contain('routelens validate [--config FILE]');
    const short = await runCli(['-h']);
    expect(short.code).to.equal(0);
    expect(short.stdout).to.equal(h.stdout);
  });

  it('an unknown command exits 2 with the help on stderr', async () => {
    const r = await runCli(['frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('unknown command "frobnicate"');
    expect(r.stderr).to.contain('Usage:');
  });
});
