/**
 * Checking answers against an OpenAPI 3.0 document: the path template a request path falls under, and the errors
 * of a JSON value against a schema of the subset the documents here use (type, nullable, enum, required,
 * properties, additionalProperties, items, minimum, $ref to components.schemas), each with the path of the field.
 */

export interface OpenApiSchema {
  type?: 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean';
  nullable?: boolean;
  enum?: unknown[];
  required?: string[];
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema | boolean;
  items?: OpenApiSchema;
  minimum?: number;
  maximum?: number;
  $ref?: string;
}

export interface OpenApiOperation {
  parameters?: { name: string; in: string; required?: boolean; schema?: OpenApiSchema }[];
  responses: Record<string, { content?: Record<string, { schema?: OpenApiSchema }> }>;
}

export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: { schemas?: Record<string, OpenApiSchema> };
}

/**
 * The template of `doc` that `path` falls under, the most literal first (`/services/{service}/runtime` before
 * `/services/{service}`). A parameter ends at the next `/`, except the template's last one, which takes the rest
 * of the path (a route such as `/users/{id}` holds slashes).
 */
export function templateOf(doc: OpenApiDocument, path: string): string | undefined {
  const literal = (t: string): number => t.replace(/\{[^}]+\}/g, '').length;
  const templates = Object.keys(doc.paths).sort((a, b) => literal(b) - literal(a));
  return templates.find((t) => {
    const parts = t.split(/(\{[^}]+\})/);
    const last = parts.reduce((at, p, i) => (p.startsWith('{') ? i : at), -1);
    const re = parts.map((p, i) => (p.startsWith('{') ? (i === last ? '(.+)' : '([^/]+)') : p.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))).join('');
    return new RegExp(`^${re}$`).test(path);
  });
}

/** Every way `value` breaks `schema`, as `$.field[2].other: what`; empty when it conforms. */
export function schemaErrors(doc: OpenApiDocument, schema: OpenApiSchema, value: unknown, at = '$'): string[] {
  if (schema.$ref !== undefined) {
    const name = schema.$ref.replace(/^#\/components\/schemas\//, '');
    const target = doc.components?.schemas?.[name];
    if (target === undefined) return [`${at}: unresolved ${schema.$ref}`];
    return schemaErrors(doc, target, value, at);
  }
  if (value === null) return schema.nullable === true || schema.type === undefined ? [] : [`${at}: null, but not nullable`];
  const errors: string[] = [];
  if (schema.enum !== undefined && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  const actual = Array.isArray(value) ? 'array' : typeof value;
  switch (schema.type) {
    case undefined:
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) errors.push(`${at}: expected an integer, got ${JSON.stringify(value)}`);
      break;
    case 'number':
    case 'string':
    case 'boolean':
    case 'array':
    case 'object':
      if (actual !== schema.type) errors.push(`${at}: expected ${schema.type}, got ${actual}`);
      break;
  }
  if (errors.length > 0) return errors;
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${at}: ${value} < minimum ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${at}: ${value} > maximum ${schema.maximum}`);
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    value.forEach((v, i) => errors.push(...schemaErrors(doc, items, v, `${at}[${i}]`)));
  }
  if (actual === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const k of schema.required ?? []) if (!(k in obj)) errors.push(`${at}: missing required ${k}`);
    for (const [k, v] of Object.entries(obj)) {
      const prop = schema.properties?.[k];
      if (prop !== undefined) errors.push(...schemaErrors(doc, prop, v, `${at}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${at}: unknown property ${k}`);
      else if (typeof schema.additionalProperties === 'object') errors.push(...schemaErrors(doc, schema.additionalProperties, v, `${at}.${k}`));
    }
  }
  return errors;
}
