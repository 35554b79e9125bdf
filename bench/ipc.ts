/**
 * Request/response over the Node IPC channel between the orchestrator and its helper processes (load generator,
 * sink). The helpers are spawned through `taskset` (see run.ts), so this is plain `process.send` underneath.
 */
import type { ChildProcess } from 'node:child_process';

export interface IpcRequest {
  id: number;
  cmd: string;
  args?: unknown;
}

export interface IpcResponse {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** Child side: answer every request with `handler`; returns once wired. */
export function serveIpc(handler: (cmd: string, args: unknown) => unknown | Promise<unknown>): void {
  if (process.send === undefined) throw new Error('bench helper must be started with an IPC channel');
  process.on('message', (m: IpcRequest) => {
    Promise.resolve()
      .then(() => handler(m.cmd, m.args))
      .then(
        (result) => process.send?.({ id: m.id, ok: true, result } satisfies IpcResponse),
        (err: unknown) => process.send?.({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies IpcResponse),
      );
  });
  process.on('disconnect', () => process.exit(0));
}

/** Parent side: a typed call to a helper. */
export class IpcClient {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 1;

  constructor(child: ChildProcess, name: string) {
    this.#child = child;
    child.on('message', (m: IpcResponse) => {
      const p = this.#pending.get(m.id);
      if (p === undefined) return;
      this.#pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${name} exited (${code ?? signal ?? '?'})`));
      this.#pending.clear();
    });
  }

  call<T>(cmd: string, args?: unknown): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#child.send({ id, cmd, args } satisfies IpcRequest);
    });
  }
}
