import * as net from 'node:net';

/**
 * Asks the kernel for a currently free TCP port on 127.0.0.1 (bind to port 0,
 * read the port, close). There is an unavoidable race between closing and the
 * caller binding it; callers that start external processes should be ready to
 * retry with another port.
 */
export async function freePort(): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error(`unexpected server address: ${String(addr)}`));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** `n` distinct free ports (held open together while choosing, so no duplicates). */
export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      srv.unref();
      servers.push(srv);
      const port = await new Promise<number>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
          const addr = srv.address();
          if (addr === null || typeof addr === 'string') {
            reject(new Error(`unexpected server address: ${String(addr)}`));
          } else {
            resolve(addr.port);
          }
        });
      });
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export interface WaitForOptions {
  timeoutMs: number;
  /** Delay between probes; default 100 ms. */
  intervalMs?: number;
  /** Human description used in the timeout error, e.g. "jaeger /api/services". */
  what: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns a value other than `undefined`, and returns
 * it. A probe that throws counts as "not yet" (the last error is reported on
 * timeout). Throws `Error("timed out after Nms waiting for <what>…")`.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined>, opts: WaitForOptions): Promise<T> {
  const interval = opts.intervalMs ?? 100;
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e: unknown) {
      lastError = e;
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())));
  }
  const detail = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
  throw new Error(`timed out after ${opts.timeoutMs}ms waiting for ${opts.what}${detail}`);
}
