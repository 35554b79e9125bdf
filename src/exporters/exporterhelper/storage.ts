/** Resolve `sending_queue.storage` to a persistent queue store provided by a storage extension. */
import type { CreateSettings, Host } from '../../core/component';
import { isStorageExtension } from '../../core/storage';
import type { QueuedSender } from './queued-sender';

export async function resolveQueueStore(sender: QueuedSender, storage: string | undefined, host: Host, settings: CreateSettings): Promise<void> {
  if (storage === undefined) return;
  const ext = host.getExtension(storage);
  if (!isStorageExtension(ext))
    throw new Error(`sending_queue.storage of ${settings.id}: extension ${JSON.stringify(storage)} is not a running storage extension`);
  // The traces, metrics and logs instances of one exporter id each get their own queue (the traces one keeps the
  // plain id, as before there were other signals, so its queue survives an upgrade).
  const owner = sender.unit === 'spans' ? settings.id : `${settings.id}#${sender.unit === 'metric_points' ? 'metrics' : 'logs'}`;
  sender.useStore(await ext.openQueue(owner));
}
