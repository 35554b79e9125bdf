/**
 * Validates Kubernetes objects against the OpenAPI v3 schemas the API server publishes (api/openapi-spec/v3 of
 * the k8s.io/kubernetes module at the version scripts/kube-versions.sh pins; scripts/kube-openapi.sh fetches
 * them), strictly, as `kubectl apply --validate=strict` does: unknown fields, wrong types, missing required
 * fields, out-of-range int32 values and duplicate keys in list-maps (two ports or env entries with one name) are
 * errors, each reported with the path of the offending field.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runSetupScript } from './process';

interface Schema {
  type?: string;
  format?: string;
  $ref?: string;
  allOf?: Schema[];
  oneOf?: Schema[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-group-version-kind'?: { group: string; version: string; kind: string }[];
}

const INT32 = 2 ** 31;

export class KubeOpenApi {
  readonly #schemas = new Map<string, Schema>();
  /** `group/version/Kind` (core group: `/v1/Pod`) → schema name. */
  readonly #byGvk = new Map<string, string>();

  /** Load every document of an api/openapi-spec/v3 directory. */
  static fromDirectory(dir: string): KubeOpenApi {
    const api = new KubeOpenApi();
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json'))) {
      const doc = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { components?: { schemas?: Record<string, Schema> } };
      for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) {
        api.#schemas.set(name, schema);
        for (const gvk of schema['x-kubernetes-group-version-kind'] ?? []) api.#byGvk.set(`${gvk.group}/${gvk.version}/${gvk.kind}`, name);
      }
    }
    return api;
  }

  /** The schemas of the pinned Kubernetes version (fetched through the Go module proxy on first use). */
  static async pinned(): Promise<KubeOpenApi> {
    return KubeOpenApi.fromDirectory(await runSetupScript('kube-openapi.sh', 10 * 60_000));
  }

  /** Schema name of an apiVersion + kind, e.g. `apps/v1` `Deployment` → `io.k8s.api.apps.v1.Deployment`. */
  schemaOf(apiVersion: string, kind: string): string | undefined {
    const [group, version] = apiVersion.includes('/') ? (apiVersion.split('/') as [string, string]) : ['', apiVersion];
    return this.#byGvk.get(`${group}/${version}/${kind}`);
  }

  /** Every problem with `obj` (empty when valid), as `path: message`. */
  validate(obj: unknown): string[] {
    const o = obj as { apiVersion?: unknown; kind?: unknown } | null;
    if (o === null || typeof o !== 'object') return ['$: not an object'];
    if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string') return ['$: apiVersion and kind are required'];
    const name = this.schemaOf(o.apiVersion, o.kind);
    if (name === undefined) return [`$: no schema for ${o.apiVersion} ${o.kind}`];
    const errors: string[] = [];
    this.#check(obj, { $ref: `#/components/schemas/${name}` }, '$', errors);
    return errors;
  }

  #resolve(s: Schema): Schema {
    let cur = s;
    for (let i = 0; cur.$ref !== undefined; i++) {
      const name = cur.$ref.replace('#/components/schemas/', '');
      const next = this.#schemas.get(name);
      if (next === undefined || i > 50) throw new Error(`unresolvable schema ${cur.$ref}`);
      cur = next;
    }
    return cur;
  }

  #check(value: unknown, schemaIn: Schema, at: string, errors: string[]): void {
    const schema = this.#resolve(schemaIn);
    // Kubernetes treats an explicit null like an absent optional field.
    if (value === null || value === undefined) return;
    for (const sub of schema.allOf ?? []) this.#check(value, sub, at, errors);
    if (schema.oneOf !== undefined) {
      const ok = schema.oneOf.some((alt) => {
        const e: string[] = [];
        this.#check(value, alt, at, e);
        return e.length === 0;
      });
      if (!ok) errors.push(`${at}: ${JSON.stringify(value)} matches none of ${schema.oneOf.map((a) => this.#resolve(a).type).join(' | ')}`);
    }
    if (schema.enum !== undefined && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
    switch (schema.type) {
      case undefined:
        return;
      case 'string':
        if (typeof value !== 'string') errors.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
        else if (schema.format === 'date-time' && Number.isNaN(Date.parse(value))) errors.push(`${at}: not a date-time: ${value}`);
        return;
      case 'boolean':
        if (typeof value !== 'boolean') errors.push(`${at}: expected a boolean, got ${JSON.stringify(value)}`);
        return;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) errors.push(`${at}: expected an integer, got ${JSON.stringify(value)}`);
        else if (schema.format === 'int32' && (value < -INT32 || value >= INT32)) errors.push(`${at}: ${value} is out of the int32 range`);
        return;
      case 'number':
        if (typeof value !== 'number') errors.push(`${at}: expected a number, got ${JSON.stringify(value)}`);
        return;
      case 'array':
        if (!Array.isArray(value)) {
          errors.push(`${at}: expected a list, got ${JSON.stringify(value)}`);
          return;
        }
        value.forEach((item, i) => {
          if (schema.items !== undefined) this.#check(item, schema.items, `${at}[${i}]`, errors);
        });
        this.#checkListType(value, schema, at, errors);
        return;
      case 'object': {
        if (typeof value !== 'object' || Array.isArray(value)) {
          errors.push(`${at}: expected an object, got ${JSON.stringify(value)}`);
          return;
        }
        const o = value as Record<string, unknown>;
        for (const r of schema.required ?? []) if (o[r] === undefined || o[r] === null) errors.push(`${at}.${r}: required`);
        const props = schema.properties;
        const extra = schema.additionalProperties;
        for (const [k, v] of Object.entries(o)) {
          const p = props?.[k];
          if (p !== undefined) this.#check(v, p, `${at}.${k}`, errors);
          else if (typeof extra === 'object') this.#check(v, extra, `${at}.${k}`, errors);
          else if (props !== undefined && extra !== true && schema['x-kubernetes-preserve-unknown-fields'] !== true) {
            errors.push(`${at}.${k}: unknown field`);
          }
        }
        return;
      }
      default:
        errors.push(`${at}: schema type ${schema.type} not understood`);
    }
  }

  #checkListType(list: unknown[], schema: Schema, at: string, errors: string[]): void {
    const type = schema['x-kubernetes-list-type'];
    if (type === 'set') {
      const seen = new Set<string>();
      for (const item of list) {
        const k = JSON.stringify(item);
        if (seen.has(k)) errors.push(`${at}: duplicate entry ${k}`);
        seen.add(k);
      }
    } else if (type === 'map') {
      const keys = schema['x-kubernetes-list-map-keys'] ?? [];
      const seen = new Set<string>();
      for (const item of list) {
        const o = (item ?? {}) as Record<string, unknown>;
        // A key field left out takes its default (e.g. a port's protocol, TCP); those defaults are not in the
        // schema, so entries compare on the key fields they set.
        const k = JSON.stringify(keys.map((f) => o[f] ?? null));
        if (seen.has(k)) errors.push(`${at}: duplicate entry for ${keys.join('+')} = ${k}`);
        seen.add(k);
      }
    }
  }
}
