/** Config of the `memory_limiter` processor, with the Collector's key names and checks. */
import { duration, num, obj, refine, type Infer } from '../../core/schema';

export const memoryLimiterConfigSchema = refine(
  obj({
    check_interval: duration({ default: '1s', doc: 'Time between memory measurements. The Collector requires it; routelens defaults to its recommended 1s.' }),
    limit_mib: num({ default: 0, min: 0, integer: true, doc: 'Hard limit of the measured memory, MiB. Wins over `limit_percentage`.' }),
    spike_limit_mib: num({
      default: 0,
      min: 0,
      integer: true,
      doc: 'Headroom below the hard limit, MiB: the soft limit is `limit_mib - spike_limit_mib`, above which data is refused. 0 means 20 % of `limit_mib`. Size it for the growth possible within one `check_interval`.',
    }),
    limit_percentage: num({
      default: 0,
      min: 0,
      max: 100,
      integer: true,
      doc: 'Hard limit as a percentage of the memory available: the cgroup limit (`/sys/fs/cgroup/memory.max`) if set, else the total memory. Used when `limit_mib` is 0.',
    }),
    spike_limit_percentage: num({
      default: 0,
      min: 0,
      max: 100,
      integer: true,
      doc: 'Headroom below the hard limit as a percentage of the available memory. 0 means 20 % of the hard limit.',
    }),
    min_gc_interval_when_soft_limited: duration({ default: '10s', doc: 'Least time between forced garbage collections while above the soft limit.' }),
    min_gc_interval_when_hard_limited: duration({
      default: '0s',
      doc: 'Least time between forced garbage collections while above the hard limit (0: at every check).',
    }),
  }),
  (c, path, issues) => {
    if (c.check_interval <= 0) issues.add(`${path}.check_interval`, "'check_interval' must be greater than zero");
    if (c.limit_mib === 0 && c.limit_percentage === 0) issues.add(path, "'limit_mib' or 'limit_percentage' must be greater than zero");
    if (c.limit_mib > 0 && c.spike_limit_mib >= c.limit_mib) issues.add(`${path}.spike_limit_mib`, "'spike_limit_mib' must be smaller than 'limit_mib'");
    if (c.limit_mib === 0 && c.limit_percentage > 0 && c.spike_limit_percentage >= c.limit_percentage) {
      issues.add(`${path}.spike_limit_percentage`, "'spike_limit_percentage' must be smaller than 'limit_percentage'");
    }
    if (c.min_gc_interval_when_soft_limited < c.min_gc_interval_when_hard_limited) {
      issues.add(path, "'min_gc_interval_when_soft_limited' should be larger than 'min_gc_interval_when_hard_limited'");
    }
  },
);
export type MemoryLimiterConfig = Infer<typeof memoryLimiterConfigSchema>;
