/**
 * The `file_storage` extension: persistent exporter queues on the local disk. An exporter with
 * `sending_queue.storage: file_storage` gets a queue in `<directory>/<exporter id>/` (see file-queue.ts), so
 * data a client was told is accepted survives a crash or restart of routelens and is sent when it starts again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Component, CreateSettings } from '../../core/component';
import type { ExtensionFactory } from '../../consumer/factory';
import type { QueueStore } from '../../core/storage';
import type { StorageExtension } from '../../core/storage';
import type { Counter } from '../../core/telemetry';
import { fileStorageConfigSchema, type FileStorageConfig } from './config';
import { FileQueueStore, type QueueIo } from './file-queue';

/** A queue directory name for an owner id such as `otlp/jaeger`: safe characters kept, others hex-escaped. */
export function queueDirName(owner: string): string {
  return `exporter_${owner.replace(/[^A-Za-z0-9.-]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`;
}

export class FileStorageExtension implements Component, StorageExtension {
  readonly #config: FileStorageConfig;
  readonly #settings: CreateSettings;
  readonly #queues = new Map<string, FileQueueStore>();
  readonly #corrupt: Counter;
  readonly #recovered: Counter;
  /** Test hook: replaces the low-level writes (e.g. to simulate ENOSPC). */
  io: QueueIo | undefined;
  /** Test hook: segment file size. */
  segmentBytes: number | undefined;

  constructor(settings: CreateSettings, config: FileStorageConfig) {
    this.#settings = settings;
    this.#config = config;
    const labels = { extension: settings.id };
    const t = settings.telemetry;
    this.#corrupt = t.counter(
      'routelens_file_storage_corrupt_records',
      'Damaged queue records (checksum mismatch, torn writes) skipped by file_storage.',
      labels,
    );
    this.#recovered = t.counter('routelens_file_storage_recovered_records', 'Unsent queue records found on disk when a persistent queue was opened.', labels);
    t.gauge('routelens_file_storage_bytes', 'Bytes of the persistent queues on disk.', labels, () =>
      [...this.#queues.values()].reduce((n, q) => n + q.diskBytes, 0),
    );
  }

  async start(): Promise<void> {
    const dir = this.#config.directory;
    try {
      fs.mkdirSync(dir, { recursive: true });
      fs.accessSync(dir, fs.constants.W_OK | fs.constants.R_OK);
    } catch (err) {
      throw new Error(`extensions.${this.#settings.id}.directory: cannot use ${JSON.stringify(dir)}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
  }

  async openQueue(owner: string): Promise<QueueStore> {
    if (this.#queues.has(owner)) throw new Error(`file_storage ${this.#settings.id}: the queue of ${owner} is already open`);
    const q = await FileQueueStore.open({
      dir: path.join(this.#config.directory, queueDirName(owner)),
      fsync: this.#config.fsync,
      maxBytes: Math.floor(this.#config.max_size_mib * 1024 * 1024),
      lockTimeoutMs: this.#config.timeout,
      logger: this.#settings.logger.child({ queue: owner }),
      onCorrupt: (n) => this.#corrupt.add(n),
      ...(this.io === undefined ? {} : { io: this.io }),
      ...(this.segmentBytes === undefined ? {} : { segmentBytes: this.segmentBytes }),
      // The exporter closes its queue on shutdown; forget it then so it can be opened again.
      onClose: () => this.#queues.delete(owner),
    });
    this.#recovered.add(q.recovered);
    this.#queues.set(owner, q);
    return q;
  }

  /** Close queues their exporters left open (exporters shut down first, so normally none). */
  async shutdown(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
  }
}

export const fileStorageExtensionFactory: ExtensionFactory<FileStorageConfig> = {
  kind: 'extension',
  type: 'file_storage',
  configSchema: fileStorageConfigSchema,
  create: (settings, config) => new FileStorageExtension(settings, config),
};
