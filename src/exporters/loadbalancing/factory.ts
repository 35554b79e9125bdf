/** The `loadbalancing` exporter (alias `load_balancing`): traces to the backends a resolver finds, each trace to one. */
import type { ExporterFactory } from '../../consumer/factory';
import { loadBalancingConfigSchema, type LoadBalancingConfig } from './config';
import { LoadBalancingExporter } from './exporter';

export const loadBalancingExporterFactory: ExporterFactory<LoadBalancingConfig> = {
  kind: 'exporter',
  type: 'loadbalancing',
  configSchema: loadBalancingConfigSchema,
  createTraces: (settings, config) => new LoadBalancingExporter(settings, config),
};
