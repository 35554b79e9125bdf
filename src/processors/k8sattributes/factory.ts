/**
 * Factory of the `k8sattributes` processor (the Collector's newer name `k8s_attributes` is an alias).
 */
import type { ProcessorFactory } from '../../core/component';
import { configSchema, parseConfig, type K8sAttributesConfig } from './config';
import { K8sAttributesProcessor } from './processor';

export const K8S_ATTRIBUTES_TYPE = 'k8sattributes';

/** Other names the same processor is configured under. */
export const K8S_ATTRIBUTES_ALIASES: readonly string[] = ['k8s_attributes'];

export const k8sAttributesFactory: ProcessorFactory<K8sAttributesConfig> = {
  kind: 'processor',
  type: K8S_ATTRIBUTES_TYPE,
  parseConfig,
  configSchema,
  createTraces: (settings, config, next) => new K8sAttributesProcessor(settings, config, next),
  // Association by connection address needs the per-client context: run before batching.
  needsClientContext: true,
};
