/**
 * Entry point of the Kubernetes informer thread (see thread.ts): loads the client settings, runs the informers
 * and posts every object, status change, counter and log line to the main thread.
 */
import type { Logger } from 'pino';
import { parentPort, workerData } from 'node:worker_threads';
import { KubeWatcher, METADATA_OPS, type MetadataSink } from './informers';
import { KubeConfigError, loadKubeConfig } from './kubeconfig';
import type { InformerThreadData, InformerThreadMessage } from './thread';

const port = parentPort;
if (port === null) throw new Error('informer-thread.js runs as a worker thread of the k8sattributes processor');
const data = workerData as InformerThreadData;
const post = (m: InformerThreadMessage): void => port.postMessage(m);

const log =
  (level: 'debug' | 'info' | 'warn' | 'error') =>
  (obj: Record<string, unknown>, msg: string): void =>
    post({ t: 'log', level, obj, msg });
const logger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } as unknown as Logger;

const sink = { keep: data.keep } as { keep: MetadataSink['keep'] } & Record<string, unknown>;
for (const op of METADATA_OPS) sink[op] = (arg: unknown): void => post({ t: 'md', op, arg });

let watcher: KubeWatcher | undefined;
const postStatus = (): void => {
  if (watcher !== undefined) post({ t: 'status', synced: watcher.synced, statuses: watcher.statuses() });
};

async function main(): Promise<void> {
  let kubeConfig;
  try {
    kubeConfig = await loadKubeConfig(data.auth, data.env);
  } catch (err) {
    post({ t: 'fatal', message: (err as Error).message, configError: err instanceof KubeConfigError });
    return;
  }
  watcher = new KubeWatcher({
    kubeConfig,
    metadata: sink as unknown as MetadataSink,
    needs: data.needs,
    filter: data.filter,
    logger,
    metrics: {
      restart: (resource, reason) => {
        post({ t: 'restart', resource, reason });
        postStatus();
      },
      relist: (resource) => post({ t: 'relist', resource }),
    },
    ...(data.backoff === undefined ? {} : { backoff: data.backoff }),
    ...(data.pageSize === undefined ? {} : { pageSize: data.pageSize }),
    onSynced: postStatus,
  });
  post({ t: 'ready', server: kubeConfig.getCurrentCluster()?.server });
  await watcher.start().catch((err: unknown) => logger.error({ err: (err as Error).message }, 'Kubernetes informers failed to start'));
  postStatus();
}

port.on('message', (m: { t: string }) => {
  if (m.t !== 'stop') return;
  void (watcher?.stop() ?? Promise.resolve()).finally(() => {
    post({ t: 'stopped' });
    port.close();
  });
});

void main();
