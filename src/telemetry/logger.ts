/** Structured logs (pino): JSON lines on stderr, or a terse console form for people. */
import pino, { type Logger } from 'pino';

export function createLogger(opts: { level?: string; encoding?: 'json' | 'console'; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = opts.level ?? process.env.ROUTELENS_LOG_LEVEL ?? 'info';
  const dest = (opts.destination ?? process.stderr) as pino.DestinationStream;
  if (opts.encoding === 'console') {
    return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
  }
  return pino({ level, base: { service: 'routelens' }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } }, dest);
}
