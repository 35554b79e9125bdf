/** Every component factory routelens ships, with the Collector's newer type names as aliases. */
import type { AnyFactory } from './consumer/factory';
import { routeLatencyConnectorFactory } from './connectors/routelatency/factory';
import { registryKey, type Registry } from './config/load';
import { debugExporterFactory } from './exporters/debug/factory';
import { fileExporterFactory } from './exporters/file/factory';
import { loadBalancingExporterFactory } from './exporters/loadbalancing/factory';
import { otlpExporterFactory } from './exporters/otlp/factory';
import { otlpHttpExporterFactory } from './exporters/otlphttp/factory';
import { bearerTokenAuthExtensionFactory } from './extensions/bearertokenauth/factory';
import { fileStorageExtensionFactory } from './extensions/filestorage/factory';
import { routeQueryExtensionFactory } from './extensions/routequery/factory';
import { k8sAttributesFactory } from './processors/k8sattributes/factory';
import { memoryLimiterProcessorFactory } from './processors/memorylimiter/factory';
import { resourceDetectionFactory } from './processors/resourcedetection/factory';
import { tailCaptureFactory } from './processors/tailcapture/factory';
import { otlpReceiverFactory } from './receivers/otlp/factory';

export const factories: readonly AnyFactory[] = [
  otlpReceiverFactory,
  otlpExporterFactory,
  otlpHttpExporterFactory,
  debugExporterFactory,
  fileExporterFactory,
  loadBalancingExporterFactory,
  routeQueryExtensionFactory,
  memoryLimiterProcessorFactory,
  routeLatencyConnectorFactory,
  k8sAttributesFactory,
  resourceDetectionFactory,
  tailCaptureFactory,
  fileStorageExtensionFactory,
  bearerTokenAuthExtensionFactory,
];

/** Deprecated/renamed type names the Collector accepts, mapped to ours. */
const aliases: Record<string, string> = {
  otlp_grpc: 'otlp',
  otlp_http: 'otlphttp',
  k8s_attributes: 'k8sattributes',
  resource_detection: 'resourcedetection',
  memorylimiter: 'memory_limiter',
  load_balancing: 'loadbalancing',
};

export function defaultRegistry(extra: readonly AnyFactory[] = []): Registry {
  const map = new Map<string, AnyFactory>();
  for (const f of [...factories, ...extra]) map.set(registryKey(f.kind, f.type), f);
  for (const [alias, type] of Object.entries(aliases)) {
    for (const f of [...map.values()]) if (f.type === type) map.set(registryKey(f.kind, alias), f);
  }
  return map;
}
