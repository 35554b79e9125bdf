/** Factory of the `resourcedetection` processor (the Collector's newer name `resource_detection` is an alias). */
import type { ProcessorFactory } from '../../core/component';
import { configSchema, parseConfig, type ResourceDetectionConfig } from './config';
import { ResourceDetectionProcessor } from './processor';

export const RESOURCE_DETECTION_TYPE = 'resourcedetection';

export const resourceDetectionFactory: ProcessorFactory<ResourceDetectionConfig> = {
  kind: 'processor',
  type: RESOURCE_DETECTION_TYPE,
  parseConfig,
  configSchema,
  createTraces: (settings, config, next) => new ResourceDetectionProcessor(settings, config, next),
};
