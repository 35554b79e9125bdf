/**
 * The `file` exporter: appends each batch as one OTLP/JSON export request per line (the Collector's file
 * exporter format: `resourceSpans`, `resourceMetrics` or `resourceLogs`), rotating by size. The traces, metrics
 * and logs instances of one exporter share the file. `routelens analyze` reads the trace lines of these files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, CreateSettings, PipelineContext } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import { AnySignalConsumer, type Signal } from '../../consumer/consumer';
import { PipelineError } from '../../core/errors';
import { num, obj, oneOf, str, type Infer } from '../../core/schema';
import type { OtlpBatch } from '../../pdata/otlp-batch';
import { toOtlpJsonObject } from '../../pdata/otlp-json';
import { TYPES } from '../../pdata/proto';
import { UNIT_OF_SIGNAL } from '../exporterhelper/otlp-exporter';

export const fileExporterConfigSchema = obj({
  path: str({ nonEmpty: true, doc: 'File to append to (required). Its directory is created if missing.' }),
  format: oneOf(['json'] as const, { default: 'json', doc: 'OTLP/JSON, one request per line.' }),
  rotation: obj({
    max_megabytes: num({ default: 100, min: 1, doc: 'Rotate when the file would exceed this size (MiB).' }),
    max_backups: num({ default: 100, min: 0, integer: true, doc: 'Rotated files kept (`path.1` newest … `path.N`); 0 keeps none.' }),
  }),
});
export type FileExporterConfig = Infer<typeof fileExporterConfigSchema>;

/** One file, appended to and rotated by size; shared by the exporters (signals) that write to its path. */
class FileWriter {
  readonly #c: FileExporterConfig;
  #fd: number | undefined;
  #size = 0;
  users = 0;
  constructor(config: FileExporterConfig) {
    this.#c = config;
  }
  open(): void {
    if (this.#fd !== undefined) return;
    fs.mkdirSync(path.dirname(this.#c.path), { recursive: true });
    this.#fd = fs.openSync(this.#c.path, 'a');
    this.#size = fs.fstatSync(this.#fd).size;
  }
  #rotate(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
    const p = this.#c.path;
    const n = this.#c.rotation.max_backups;
    if (n === 0) fs.rmSync(p, { force: true });
    else {
      fs.rmSync(`${p}.${n}`, { force: true });
      for (let i = n - 1; i >= 1; i--) if (fs.existsSync(`${p}.${i}`)) fs.renameSync(`${p}.${i}`, `${p}.${i + 1}`);
      fs.renameSync(p, `${p}.1`);
    }
    this.open();
  }
  write(line: Buffer): void {
    if (this.#fd === undefined) throw new PipelineError('unavailable', 'file exporter is not running');
    if (this.#size > 0 && this.#size + line.length > this.#c.rotation.max_megabytes * 1024 * 1024) this.#rotate();
    fs.writeSync(this.#fd as number, line);
    this.#size += line.length;
  }
  close(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}

/** Writers by resolved path. */
const writers = new Map<string, FileWriter>();

const REQUEST_TYPE: Readonly<Record<Signal, string>> = {
  traces: TYPES.exportTraceRequest,
  metrics: TYPES.exportMetricsRequest,
  logs: TYPES.exportLogsRequest,
};

export class FileExporter extends AnySignalConsumer implements Component {
  readonly #c: FileExporterConfig;
  readonly #signal: Signal;
  readonly #written: { add(n: number): void };
  #writer: FileWriter | undefined;
  constructor(config: FileExporterConfig, written: { add(n: number): void }, signal: Signal = 'traces') {
    super();
    this.#c = config;
    this.#written = written;
    this.#signal = signal;
  }
  async start(): Promise<void> {
    if (this.#writer !== undefined) return;
    const key = path.resolve(this.#c.path);
    let w = writers.get(key);
    if (w === undefined) writers.set(key, (w = new FileWriter(this.#c)));
    w.open();
    w.users++;
    this.#writer = w;
  }
  async consume(batch: OtlpBatch, _ctx: PipelineContext): Promise<void> {
    const w = this.#writer;
    if (w === undefined) throw new PipelineError('unavailable', 'file exporter is not running');
    w.write(Buffer.from(`${JSON.stringify(toOtlpJsonObject(REQUEST_TYPE[this.#signal], batch.encode()))}\n`));
    this.#written.add(batch.itemCount);
  }
  async shutdown(): Promise<void> {
    const w = this.#writer;
    if (w === undefined) return;
    this.#writer = undefined;
    if (--w.users > 0) return;
    w.close();
    writers.delete(path.resolve(this.#c.path));
  }
}

function create(settings: CreateSettings, config: FileExporterConfig, signal: Signal): FileExporter {
  const unit = UNIT_OF_SIGNAL[signal];
  return new FileExporter(
    config,
    settings.telemetry.counter(`otelcol_exporter_sent_${unit}`, `Number of ${unit} successfully sent to destination.`, { exporter: settings.id }),
    signal,
  );
}

export const fileExporterFactory: ExporterFactory<FileExporterConfig> = {
  kind: 'exporter',
  type: 'file',
  configSchema: fileExporterConfigSchema,
  createTraces: (settings, config) => create(settings, config, 'traces'),
  createMetrics: (settings, config) => create(settings, config, 'metrics'),
  createLogs: (settings, config) => create(settings, config, 'logs'),
};
