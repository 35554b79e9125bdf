import { expect } from 'chai';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { AsyncLocalStorage, AsyncResource, executionAsyncId, triggerAsyncId } from 'node:async_hooks';
import { installLeanAsyncResourceBind, leanAsyncResourceBind, nodeAsyncResourceBind, nodeBindWrapsPerCall } from './async-resource-bind';

type AnyFn = (...args: unknown[]) => unknown;
const bindWith = (bind: typeof nodeAsyncResourceBind, resource: AsyncResource, fn: unknown, thisArg?: unknown): AnyFn =>
  Reflect.apply(bind, resource, [fn, thisArg]) as AnyFn;

/** What a call of a bound function shows its target, and what the bound function looks like from outside. */
function observe(bound: AnyFn, callThis: unknown, args: unknown[]): unknown {
  const seen = Reflect.apply(bound, callThis, args) as Record<string, unknown>;
  return { seen, length: bound.length, keys: Object.keys(bound), names: Object.getOwnPropertyNames(bound).filter((n) => n !== 'prototype') };
}

describe('lean AsyncResource.prototype.bind', () => {
  it('emits DEP0172 once when asyncResource is read or written, as Node does', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const resource = new AsyncResource('test');
      const bound = bindWith(leanAsyncResourceBind, resource, () => 1) as AnyFn & { asyncResource: AsyncResource };
      expect(bound.asyncResource).to.equal(resource);
      const other = new AsyncResource('other');
      bound.asyncResource = other;
      expect(bound.asyncResource).to.equal(other);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    const dep = warnings.filter((w) => (w as { code?: string }).code === 'DEP0172');
    expect(dep).to.have.length(1);
    expect(dep[0]?.name).to.equal('DeprecationWarning');
  });

  it("behaves as Node's bind for random targets, receivers and arguments", () => {
    const saved = process.noDeprecation;
    process.noDeprecation = true; // both read asyncResource below
    try {
      let seed = 12345;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      for (let i = 0; i < 200; i++) {
        const resource = new AsyncResource(`r${i}`);
        const arity = rnd(4);
        const params = Array.from({ length: arity }, (_, k) => `a${k}`);
        // A target of the drawn arity that reports what it ran with.
        const target = new Function(
          'executionAsyncId',
          'triggerAsyncId',
          `return function (${params.join(', ')}) { return { self: this, args: Array.from(arguments), exec: executionAsyncId(), trigger: triggerAsyncId() }; };`,
        )(executionAsyncId, triggerAsyncId) as AnyFn;
        const thisArg = rnd(2) === 0 ? undefined : { id: i };
        const callThis = rnd(2) === 0 ? undefined : { call: i };
        const args = Array.from({ length: rnd(5) }, (_, k) => (rnd(2) === 0 ? k : `v${k}`));
        const viaNode = bindWith(nodeAsyncResourceBind, resource, target, thisArg);
        const viaLean = bindWith(leanAsyncResourceBind, resource, target, thisArg);
        expect(observe(viaLean, callThis, args)).to.deep.equal(observe(viaNode, callThis, args));
        const seen = viaLean.apply(callThis, args) as { exec: number; trigger: number; self: unknown };
        expect(seen.exec).to.equal(resource.asyncId());
        expect(seen.trigger).to.equal(resource.triggerAsyncId());
        expect((viaLean as unknown as { asyncResource: AsyncResource }).asyncResource).to.equal(resource);
        expect(viaLean.name).to.equal(viaNode.name);
      }
    } finally {
      process.noDeprecation = saved;
    }
  });

  it('refuses a non-function with the error Node gives', () => {
    const resource = new AsyncResource('test');
    for (const bad of [undefined, null, 42, 'fn', {}]) {
      let theirs: unknown;
      let ours: unknown;
      try {
        bindWith(nodeAsyncResourceBind, resource, bad);
      } catch (e) {
        theirs = e;
      }
      try {
        bindWith(leanAsyncResourceBind, resource, bad);
      } catch (e) {
        ours = e;
      }
      expect(ours).to.be.instanceOf(TypeError);
      expect((ours as { code?: string }).code)
        .to.equal('ERR_INVALID_ARG_TYPE')
        .and.to.equal((theirs as { code?: string }).code);
    }
  });

  it('makes no function a prototype: every bound function shares one accessor pair', () => {
    const a = bindWith(leanAsyncResourceBind, new AsyncResource('a'), () => 1);
    const b = bindWith(leanAsyncResourceBind, new AsyncResource('b'), () => 2);
    const da = Object.getOwnPropertyDescriptor(a, 'asyncResource');
    const db = Object.getOwnPropertyDescriptor(b, 'asyncResource');
    expect(da?.get).to.be.a('function').and.to.equal(db?.get);
    expect(da?.set).to.be.a('function').and.to.equal(db?.set);
    expect(Object.getPrototypeOf(da?.get)).to.equal(Function.prototype);
    expect(Object.getPrototypeOf(a)).to.equal(Function.prototype);
  });

  it("is installed exactly where Node's bind builds per-call wrappers, and node:http2 requests keep their async context", async () => {
    expect(installLeanAsyncResourceBind()).to.equal(nodeBindWrapsPerCall());
    expect(AsyncResource.prototype.bind === (leanAsyncResourceBind as unknown)).to.equal(nodeBindWrapsPerCall());
    expect(installLeanAsyncResourceBind()).to.equal(nodeBindWrapsPerCall()); // idempotent

    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    await new Promise((r) => session.once('connect', r));
    try {
      const als = new AsyncLocalStorage<string>();
      const body = await als.run(
        'request-context',
        () =>
          new Promise<{ text: string; store: string | undefined }>((resolve, reject) => {
            const stream = session.request({ ':path': '/' });
            let text = '';
            stream.setEncoding('utf8');
            stream.on('data', (c: string) => (text += c));
            stream.on('end', () => resolve({ text, store: als.getStore() }));
            stream.on('error', reject);
          }),
      );
      expect(body).to.deep.equal({ text: 'ok', store: 'request-context' });
    } finally {
      session.close();
      await new Promise((r) => server.close(r));
    }
  });
});
