/**
 * Reading OTLP/JSON captures for `routelens analyze`: one ExportTraceServiceRequest per line (what the `file`
 * exporter writes), or a single (pretty-printed) JSON document per file.
 */
import * as fs from 'node:fs';
import * as readline from 'node:readline';
import { CommandError } from './routes';

/** Calls `ingest` with each OTLP/JSON document of the files; `progress` with bytes read. */
export async function readCaptures(files: readonly string[], ingest: (json: string, where: string) => void, progress: (bytes: number) => void): Promise<void> {
  for (const file of files) {
    const stream = fs.createReadStream(file);
    stream.on('data', (c) => progress(c.length));
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
}

function isJsonLine(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
