/** The file exporter for every signal: one OTLP/JSON request per line, traces, metrics and logs sharing one file. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { logsRequest, metricsRequest } from '../../../test/support/signal-requests';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import { Telemetry } from '../../core/telemetry';
import { LogsBatch } from '../../pdata/logs-batch';
import { MetricsBatch } from '../../pdata/metrics-batch';
import { toOtlpJsonObject } from '../../pdata/otlp-json';
import { TYPES } from '../../pdata/proto';
import { TraceBatch } from '../../pdata/trace-batch';
import { ConfigErrorList } from '../../core/schema';
import { fileExporterConfigSchema, fileExporterFactory } from './factory';

describe('file exporter', () => {
  it('writes traces, metrics and logs as OTLP/JSON lines to one shared file, counting each signal, and closes it when the last one stops', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-file-'));
    try {
      const file = path.join(dir, 'out', 'signals.json');
      const issues = new ConfigErrorList();
      const config = fileExporterConfigSchema.parse({ path: file }, 'exporters.file', issues);
      expect(issues.empty).to.equal(true);
      const telemetry = new Telemetry();
      const settings = { id: 'file', logger: pino({ level: 'silent' }), telemetry };
      const t = fileExporterFactory.createTraces!(settings, config);
      const m = fileExporterFactory.createMetrics!(settings, config);
      const l = fileExporterFactory.createLogs!(settings, config);
      for (const e of [t, m, l]) await e.start(undefined as never);
      const traces = traceRequest(spanIds(2, 3));
      const metrics = metricsRequest(4);
      const logs = logsRequest(5);
      await t.consumeTraces(TraceBatch.decode(traces), {});
      await m.consumeMetrics(MetricsBatch.decode(metrics), {});
      await l.consumeLogs(LogsBatch.decode(logs), {});
      await t.shutdown();
      // Still open for the others.
      await m.consumeMetrics(MetricsBatch.decode(metrics), {});
      await m.shutdown();
      await l.shutdown();
      const lines = fs
        .readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((x) => JSON.parse(x) as Record<string, unknown>);
      expect(lines).to.deep.equal([
        toOtlpJsonObject(TYPES.exportTraceRequest, traces),
        toOtlpJsonObject(TYPES.exportMetricsRequest, metrics),
        toOtlpJsonObject(TYPES.exportLogsRequest, logs),
        toOtlpJsonObject(TYPES.exportMetricsRequest, metrics),
      ]);
      expect(Object.keys(lines[1]!)).to.deep.equal(['resourceMetrics']);
      expect(Object.keys(lines[2]!)).to.deep.equal(['resourceLogs']);
      expect(telemetry.counterValue('otelcol_exporter_sent_spans', { exporter: 'file' })).to.equal(3);
      expect(telemetry.counterValue('otelcol_exporter_sent_metric_points', { exporter: 'file' })).to.equal(8);
      expect(telemetry.counterValue('otelcol_exporter_sent_log_records', { exporter: 'file' })).to.equal(5);
      const err = await m.consumeMetrics(MetricsBatch.decode(metrics), {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(String(err)).to.match(/file exporter is not running/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
