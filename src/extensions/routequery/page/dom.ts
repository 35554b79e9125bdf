/**
 * A tiny DOM builder: elements from tag, attributes and children, text always set as text (never parsed as
 * HTML), listeners for `on*` attributes. No inline styles anywhere: the page's CSP forbids them.
 */

type Child = Node | string | number | null | undefined | false | readonly Child[];
type AttrValue = string | number | boolean | undefined | null | ((ev: Event) => void);
type Attrs = Record<string, AttrValue>;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = String(v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  appendChildren(el, children);
  return el;
}

function appendChildren(el: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) appendChildren(el, c as readonly Child[]);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace all children of `el`. */
function setChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  appendChildren(el, children);
}

/** Text for screen readers only. */
function srOnly(text: string): HTMLSpanElement {
  return h('span', { class: 'sr-only' }, text);
}
