/** Factory of the `resourcedetection` processor (the Collector's newer name `resource_detection` is an alias). */
import type { ProcessorFactory } from '../../consumer/factory';
import { configSchema, type ResourceDetectionConfig } from './config';
import { ResourceDetectionProcessor } from './processor';

export const RESOURCE_DETECTION_TYPE = 'resourcedetection';

export const resourceDetectionFactory: ProcessorFactory<ResourceDetectionConfig> = {
  kind: 'processor',
  type: RESOURCE_DETECTION_TYPE,
  configSchema,
  createTraces: (settings, config, next) => new ResourceDetectionProcessor(settings, config, next),
  createMetrics: (settings, config, next) => new ResourceDetectionProcessor(settings, config, next),
  createLogs: (settings, config, next) => new ResourceDetectionProcessor(settings, config, next),
};
