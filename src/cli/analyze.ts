/**
 * `routelens analyze FILE…`: the per-route table computed offline from OTLP/JSON captures: one
 * ExportTraceServiceRequest per line (what the `file` exporter writes), or a single JSON document per file.
 * Uses the same route keys and sketches as the live connector; the rate is over the captured time span.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { routeLatencyConfigSchema } from '../connectors/routelatency/config';
import { queryRoutes, type RoutesResponse } from '../connectors/routelatency/query';
import { RouteStore, routeStoreOptions } from '../connectors/routelatency/store';
import { ConfigErrorList } from '../core/schema';
import { traceRequestFromJson } from '../pdata/otlp-json';
import { TraceBatch } from '../pdata/trace-batch';
import { formatRoutesTable } from './routes-table';
import { CommandError } from './routes';

export interface AnalyzeOptions {
  files: readonly string[];
  json: boolean;
  sort?: string | undefined;
  limit?: string | undefined;
  service?: string | undefined;
  out: NodeJS.WritableStream;
  /** Progress bar destination (stderr when it is a terminal). */
  progress?: NodeJS.WriteStream | undefined;
  color: boolean;
}

export interface AnalyzeResult {
  response: RoutesResponse;
  spans: number;
  requests: number;
  badLines: number;
}

const WINDOW = '1h';

export async function analyze(o: AnalyzeOptions): Promise<AnalyzeResult> {
  const config = routeLatencyConfigSchema.parse({ windows: [WINDOW] }, 'analyze', new ConfigErrorList());
  // Every span lands in one slot of one window at a fixed "now"; the time span comes from the spans.
  const now = 0;
  const store = new RouteStore(routeStoreOptions(config, { now: () => now }));
  let minStart = Infinity;
  let maxEnd = -Infinity;
  let spans = 0;
  let requests = 0;
  let badLines = 0;
  const firstErrors: string[] = [];
  const ingest = (json: string, where: string): void => {
    let batch: TraceBatch;
    try {
      batch = TraceBatch.decode(traceRequestFromJson(json));
    } catch (err) {
      badLines++;
      if (firstErrors.length < 3) firstErrors.push(`${where}: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    requests++;
    batch.forEachSpan((s) => {
      spans++;
      if (s.startTimeMs > 0 && s.startTimeMs < minStart) minStart = s.startTimeMs;
      if (s.endTimeMs > maxEnd) maxEnd = s.endTimeMs;
      store.record(s, now);
    });
  };
  const total = o.files.reduce((n, f) => n + statSize(f), 0);
  let done = 0;
  let lastDraw = 0;
  const draw = (final = false): void => {
    if (o.progress === undefined || total < 1 << 20) return;
    const t = Date.now();
    if (!final && t - lastDraw < 100) return;
    lastDraw = t;
    const frac = total === 0 ? 1 : done / total;
    const width = 30;
    const filled = Math.round(frac * width);
    o.progress.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}%  ${spans} spans${final ? '\n' : ''}`);
  };
  for (const file of o.files) {
    const stream = fs.createReadStream(file);
    stream.on('data', (c) => {
      done += c.length;
      draw();
    });
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    let buffered: string[] | undefined;
    try {
      for await (const line of lines) {
        lineNo++;
        if (buffered !== undefined) {
          buffered.push(line);
          continue;
        }
        if (line.trim() === '') continue;
        // A pretty-printed single document does not parse line by line: collect the whole file.
        if (lineNo === 1 && !isJsonLine(line)) {
          buffered = [line];
          continue;
        }
        ingest(line, `${file}:${lineNo}`);
      }
    } catch (err) {
      throw new CommandError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (buffered !== undefined) ingest(buffered.join('\n'), file);
  }
  draw(true);
  if (requests === 0) {
    throw new CommandError(`no OTLP/JSON trace requests found in ${o.files.join(', ')}${firstErrors.length ? `: ${firstErrors.join('; ')}` : ''}`);
  }
  const response = queryRoutes(store, { window: WINDOW, sort: o.sort, limit: o.limit, service: o.service }, now);
  const seconds = Number.isFinite(minStart) && maxEnd > minStart ? (maxEnd - minStart) / 1000 : 0;
  for (const r of response.routes) r.rate_per_s = seconds > 0 ? r.count / seconds : 0;
  response.window = seconds > 0 ? `${seconds.toFixed(1)}s captured` : 'capture';
  response.generated_at = new Date().toISOString();
  o.out.write(o.json ? `${JSON.stringify({ ...response, spans, requests, bad_lines: badLines }, null, 2)}\n` : formatRoutesTable(response, { color: o.color }));
  if (badLines > 0) process.stderr.write(`routelens: skipped ${badLines} unreadable line(s); first: ${firstErrors.join('; ')}\n`);
  return { response, spans, requests, badLines };
}

function statSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    throw new CommandError(`cannot read ${f}: no such file`);
  }
}

function isJsonLine(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
