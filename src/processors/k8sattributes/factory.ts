/**
 * Factory of the `k8sattributes` processor (the Collector's newer name `k8s_attributes` is an alias).
 */
import type { ProcessorFactory } from '../../consumer/factory';
import { configSchema, type K8sAttributesConfig } from './config';
import { K8sAttributesProcessor, K8sMetadataSources } from './processor';

export const K8S_ATTRIBUTES_TYPE = 'k8sattributes';

/** One pod cache and one set of informers per processor id, whatever the number of pipelines listing it. */
const sources = new K8sMetadataSources();

export const k8sAttributesFactory: ProcessorFactory<K8sAttributesConfig> = {
  kind: 'processor',
  type: K8S_ATTRIBUTES_TYPE,
  configSchema,
  createTraces: (settings, config, next) => new K8sAttributesProcessor(settings, config, next, {}, sources),
  createMetrics: (settings, config, next) => new K8sAttributesProcessor(settings, config, next, {}, sources),
  createLogs: (settings, config, next) => new K8sAttributesProcessor(settings, config, next, {}, sources),
};
