/** Resolve `sending_queue.storage` to a persistent queue store provided by a storage extension. */
import type { CreateSettings, Host } from '../../core/component';
import { isStorageExtension } from '../../core/storage';
import type { QueuedSender } from './queued-sender';

export async function resolveQueueStore(sender: QueuedSender, storage: string | undefined, host: Host, settings: CreateSettings): Promise<void> {
  if (storage === undefined) return;
  const ext = host.getExtension(storage);
  if (!isStorageExtension(ext))
    throw new Error(`sending_queue.storage of ${settings.id}: extension ${JSON.stringify(storage)} is not a running storage extension`);
  // A traces and a metrics exporter may share an id: each gets its own queue.
  const owner = sender.unit === 'spans' ? settings.id : `${settings.id}#metrics`;
  sender.useStore(await ext.openQueue(owner));
}
