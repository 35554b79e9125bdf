/** Factory of the `tail_capture` processor. */
import type { ProcessorFactory } from '../../consumer/factory';
import { tailCaptureConfigSchema, type TailCaptureConfig } from './config';
import { TailCaptureProcessor } from './processor';

export const tailCaptureFactory: ProcessorFactory<TailCaptureConfig> = {
  kind: 'processor',
  type: 'tail_capture',
  configSchema: tailCaptureConfigSchema,
  createTraces: (settings, config, next) => new TailCaptureProcessor(settings, config, next),
};
