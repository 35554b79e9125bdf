/** The debug exporter for every signal: counts per batch, per resource at `normal`, the request at `detailed`. */
import { expect } from 'chai';
import { capturedLogger } from '../../../test/support/captured-logs';
import { logsRequest, metricsRequest } from '../../../test/support/signal-requests';
import { spanIds, traceRequest } from '../../../test/support/trace-requests';
import { Telemetry } from '../../core/telemetry';
import { LogsBatch } from '../../pdata/logs-batch';
import { MetricsBatch } from '../../pdata/metrics-batch';
import { TraceBatch } from '../../pdata/trace-batch';
import { debugExporterFactory } from './factory';

describe('debug exporter', () => {
  it('logs what each signal carries at every verbosity and counts what it "sent"', async () => {
    const { logger, lines } = capturedLogger('info');
    const telemetry = new Telemetry();
    const settings = { id: 'debug', logger, telemetry };
    const normal = { verbosity: 'normal' as const };
    await debugExporterFactory.createTraces!(settings, normal).consumeTraces(TraceBatch.decode(traceRequest(spanIds(1, 2), { service: 'svc-t' })), {});
    await debugExporterFactory.createMetrics!(settings, normal).consumeMetrics(MetricsBatch.decode(metricsRequest(3, { service: 'svc-m' })), {});
    await debugExporterFactory.createLogs!(settings, normal).consumeLogs(LogsBatch.decode(logsRequest(2, { service: 'svc-l' })), {});
    await debugExporterFactory.createLogs!(settings, { verbosity: 'detailed' }).consumeLogs(LogsBatch.decode(logsRequest(1)), {});
    const pick = (l: Record<string, unknown>): Record<string, unknown> => {
      const { level: _l, time: _t, pid: _p, hostname: _h, request: _r, ...rest } = l;
      return rest;
    };
    expect(lines.map(pick)).to.deep.equal([
      { resource_spans: 1, spans: 2, msg: 'Traces' },
      { resource: 0, service: 'svc-t', spans: 2, span_names: ['GET /items/{id}'], msg: 'ResourceSpans' },
      { resource_metrics: 1, metrics: 1, data_points: 3, msg: 'Metrics' },
      { resource: 0, service: 'svc-m', data_points: 3, metric_names: ['requests'], msg: 'ResourceMetrics' },
      { resource_logs: 1, log_records: 2, msg: 'Logs' },
      { resource: 0, service: 'svc-l', log_records: 2, severities: { WARN: 2 }, msg: 'ResourceLogs' },
      { resource_logs: 1, log_records: 1, msg: 'Logs' },
      { msg: 'Logs (detailed)' },
    ]);
    const detailed = lines.at(-1)?.request as { resourceLogs: { scopeLogs: { logRecords: { body: unknown; traceId: string }[] }[] }[] };
    expect(detailed.resourceLogs[0]?.scopeLogs[0]?.logRecords[0]).to.deep.include({ body: { stringValue: 'record 0' }, traceId: '01'.repeat(16) });
    expect(telemetry.counterValue('otelcol_exporter_sent_spans', { exporter: 'debug' })).to.equal(2);
    expect(telemetry.counterValue('otelcol_exporter_sent_metric_points', { exporter: 'debug' })).to.equal(3);
    expect(telemetry.counterValue('otelcol_exporter_sent_log_records', { exporter: 'debug' })).to.equal(3);
  });
});
