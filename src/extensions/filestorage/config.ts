/** Config of the `file_storage` extension (the Collector's contrib key names where they apply). */
import { bool, duration, num, obj, refine, str, type Infer } from '../../core/schema';

export const fileStorageConfigSchema = refine(
  obj({
    directory: str({ doc: 'Directory for the persistent queues (one subdirectory per exporter); created if missing. Required.' }),
    fsync: bool({
      default: false,
      doc: 'Flush every queued request and acknowledgement to the device (fdatasync) before answering. Off, data survives a crash of routelens (kill -9, OOM kill) but not of the machine; on, it also survives power loss, at the cost of one disk flush per group of requests.',
    }),
    timeout: duration({
      default: '10s',
      doc: 'How long a starting routelens waits for a queue still held by a routelens worker whose primary is gone (it stops on its own, typically within milliseconds); a queue held by any other live process is refused at once.',
    }),
    max_size_mib: num({
      default: 0,
      min: 0,
      doc: 'Largest size of each exporter queue on disk, MiB; when reached, new data is refused with a retryable status (0: no limit but the disk).',
    }),
  }),
  (c, path, issues) => {
    if (c.directory === '') issues.add(`${path}.directory`, 'is required: a directory for the persistent queues, e.g. /var/lib/routelens/queue');
  },
);
export type FileStorageConfig = Infer<typeof fileStorageConfigSchema>;
