/**
 * A replacement for Node 20's `AsyncResource.prototype.bind` that does not leave garbage in the old generation.
 *
 * Why: Node 20's `bind` gives every bound function a deprecated `asyncResource` accessor (DEP0172) whose getter and
 * setter go through `util.deprecate`, which sets each wrapper's prototype to the function it wraps. A function that
 * becomes a prototype gets a prototype map and prototype info in V8's old generation, and that old-generation map
 * points back at the getter, whose closure context holds the bound function's target. node:http2's
 * `ClientHttp2Session.request()` binds once per request (its `requestOnConnect`, bound to the new stream), so every
 * forwarded request's whole client stream (states, listeners, headers) outlives the young-generation collections
 * and waits in the old generation for a full collection. Measurements: docs/decisions/0003-async-resource-bind.md.
 *
 * The replacement behaves the same where callers can tell: the target runs in the resource's async scope with
 * the call's `this` (or `thisArg`) and arguments, `length` is the target's, and `asyncResource` is an enumerable
 * accessor that reads and writes the resource and emits DEP0172 once. Its getter and setter are one shared pair
 * that keep the resource in a symbol-keyed property of the bound function, so no function becomes a prototype.
 */
import { AsyncResource } from 'node:async_hooks';

/** Node's own `bind`, as loaded. */
export const nodeAsyncResourceBind = AsyncResource.prototype.bind;

const RESOURCE = Symbol('routelens.asyncResource');
let warned = false;

function warnDeprecated(): void {
  // As util.deprecate: once per process, and not at all under --no-deprecation.
  if (warned || process.noDeprecation === true) return;
  warned = true;
  process.emitWarning('The asyncResource property on bound functions is deprecated', 'DeprecationWarning', 'DEP0172');
}

interface BoundWithResource {
  [RESOURCE]: AsyncResource;
}

const asyncResourceProperty: PropertyDescriptor = {
  configurable: true,
  enumerable: true,
  get(this: BoundWithResource): AsyncResource {
    warnDeprecated();
    return this[RESOURCE];
  },
  set(this: BoundWithResource, value: AsyncResource): void {
    warnDeprecated();
    this[RESOURCE] = value;
  },
};

/** `AsyncResource.prototype.bind` without per-call deprecation wrappers (see the module comment). */
export function leanAsyncResourceBind<Func>(this: AsyncResource, fn: Func, thisArg?: unknown): Func {
  // Node's bind validates `fn` and throws its ERR_INVALID_ARG_TYPE.
  if (typeof fn !== 'function') return Reflect.apply(nodeAsyncResourceBind, this, [fn, thisArg]) as Func;
  const target = fn as unknown as (...args: unknown[]) => unknown;
  // eslint-disable-next-line @typescript-eslint/no-this-alias -- the bound function has a `this` of its own
  const resource = this;
  let bound: (...args: unknown[]) => unknown;
  if (thisArg === undefined) {
    bound = function (this: unknown, ...args: unknown[]): unknown {
      return resource.runInAsyncScope(target, this, ...args);
    };
  } else {
    bound = resource.runInAsyncScope.bind(resource, target, thisArg);
  }
  Object.defineProperty(bound, 'length', { configurable: true, enumerable: false, writable: false, value: target.length });
  Object.defineProperty(bound, RESOURCE, { configurable: true, enumerable: false, writable: true, value: resource });
  Object.defineProperty(bound, 'asyncResource', asyncResourceProperty);
  return bound as unknown as Func;
}

/** Whether this Node's `bind` builds its `asyncResource` accessor with per-call `util.deprecate` wrappers. */
export function nodeBindWrapsPerCall(): boolean {
  const probe = nodeAsyncResourceBind.call(new AsyncResource('routelens.probe'), () => undefined);
  const getter = Object.getOwnPropertyDescriptor(probe, 'asyncResource')?.get;
  // util.deprecate sets the wrapper's prototype to the wrapped function.
  return getter !== undefined && Object.getPrototypeOf(getter) !== Function.prototype;
}

/**
 * Install the replacement process-wide when this Node's `bind` needs it (Node 20; a no-op where it does not).
 * Idempotent; returns whether the replacement is in place.
 */
export function installLeanAsyncResourceBind(): boolean {
  if (AsyncResource.prototype.bind === (leanAsyncResourceBind as unknown)) return true;
  if (!nodeBindWrapsPerCall()) return false;
  AsyncResource.prototype.bind = leanAsyncResourceBind as typeof AsyncResource.prototype.bind;
  return true;
}
