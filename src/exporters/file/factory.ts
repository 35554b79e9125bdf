/**
 * The `file` exporter: appends each batch as one OTLP/JSON `ExportTraceServiceRequest` per line (the
 * Collector's file exporter format), rotating by size. `routelens analyze` reads these files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component } from '../../core/component';
import type { ExporterFactory } from '../../consumer/factory';
import type { TracesConsumer } from '../../consumer/consumer';
import { PipelineError } from '../../core/errors';
import { num, obj, oneOf, str, type Infer } from '../../core/schema';
import { traceRequestToJson } from '../../pdata/otlp-json';
import type { TraceBatch } from '../../pdata/trace-batch';

export const fileExporterConfigSchema = obj({
  path: str({ nonEmpty: true, doc: 'File to append to (required). Its directory is created if missing.' }),
  format: oneOf(['json'] as const, { default: 'json', doc: 'OTLP/JSON, one request per line.' }),
  rotation: obj({
    max_megabytes: num({ default: 100, min: 1, doc: 'Rotate when the file would exceed this size (MiB).' }),
    max_backups: num({ default: 100, min: 0, integer: true, doc: 'Rotated files kept (`path.1` newest … `path.N`); 0 keeps none.' }),
  }),
});
export type FileExporterConfig = Infer<typeof fileExporterConfigSchema>;

export class FileExporter implements Component, TracesConsumer {
  readonly #c: FileExporterConfig;
  #fd: number | undefined;
  #size = 0;
  readonly #written;
  constructor(config: FileExporterConfig, written: { add(n: number): void }) {
    this.#c = config;
    this.#written = written;
  }
  async start(): Promise<void> {
    fs.mkdirSync(path.dirname(this.#c.path), { recursive: true });
    this.#open();
  }
  #open(): void {
    this.#fd = fs.openSync(this.#c.path, 'a');
    this.#size = fs.fstatSync(this.#fd).size;
  }
  #rotate(): void {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    const p = this.#c.path;
    const n = this.#c.rotation.max_backups;
    if (n === 0) fs.rmSync(p, { force: true });
    else {
      fs.rmSync(`${p}.${n}`, { force: true });
      for (let i = n - 1; i >= 1; i--) if (fs.existsSync(`${p}.${i}`)) fs.renameSync(`${p}.${i}`, `${p}.${i + 1}`);
      fs.renameSync(p, `${p}.1`);
    }
    this.#open();
  }
  async consumeTraces(batch: TraceBatch): Promise<void> {
    if (this.#fd === undefined) throw new PipelineError('unavailable', 'file exporter is not running');
    const line = Buffer.from(`${JSON.stringify(traceRequestToJson(batch.encode()))}\n`);
    if (this.#size > 0 && this.#size + line.length > this.#c.rotation.max_megabytes * 1024 * 1024) this.#rotate();
    fs.writeSync(this.#fd, line);
    this.#size += line.length;
    this.#written.add(batch.spanCount);
  }
  async shutdown(): Promise<void> {
    if (this.#fd !== undefined) fs.closeSync(this.#fd);
    this.#fd = undefined;
  }
}

export const fileExporterFactory: ExporterFactory<FileExporterConfig> = {
  kind: 'exporter',
  type: 'file',
  configSchema: fileExporterConfigSchema,
  createTraces: (settings, config) =>
    new FileExporter(
      config,
      settings.telemetry.counter('otelcol_exporter_sent_spans', 'Number of spans successfully sent to destination.', { exporter: settings.id }),
    ),
};
