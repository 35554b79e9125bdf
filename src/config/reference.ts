/**
 * Renders the config reference (docs/config-reference.md) from the component schemas' `doc` strings and
 * defaults, so the documentation cannot drift from the code: a test regenerates it and compares.
 */
import type { AnyFactory } from '../consumer/factory';
import type { Field } from '../core/schema';

function rows(field: Field<unknown>, prefix: string, out: string[]): void {
  const fields = field.fields;
  if (fields === undefined) return;
  for (const [key, f] of Object.entries(fields)) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const isList = f.expected.startsWith('a list of') && f.fields !== undefined;
    if (f.fields !== undefined && !isList) {
      if (f.doc) out.push(`| \`${path}\` | section | | ${f.doc} |`);
      rows(f, path, out);
      continue;
    }
    const def = f.defaultText === undefined ? '' : `\`${f.defaultText}\``;
    out.push(`| \`${path}\` | ${f.expected.replace(/\|/g, '\\|')} | ${def} | ${(f.doc ?? '').replace(/\|/g, '\\|')} |`);
    if (isList) rows(f, `${path}[]`, out);
  }
}

export function renderConfigReference(factories: readonly AnyFactory[]): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    'Generated from the component schemas by `node bin/routelens.js config-reference`; do not edit by hand.',
    'Every component is configured as in the OpenTelemetry Collector: `receivers`, `processors`, `connectors`,',
    '`exporters`, `extensions` map component ids (`type` or `type/name`) to these keys, and `service.pipelines`',
    'wires them. Durations are Go-style strings (`200ms`, `5s`, `1m30s`). `${env:VAR}` and `${env:VAR:-default}`',
    'are substituted everywhere.',
    '',
  ];
  const kinds = ['receiver', 'processor', 'connector', 'exporter', 'extension'] as const;
  for (const kind of kinds) {
    for (const f of factories.filter((x) => x.kind === kind).sort((a, b) => a.type.localeCompare(b.type))) {
      out.push(`## ${kind} \`${f.type}\``, '');
      if (f.configSchema === undefined || f.configSchema.fields === undefined || Object.keys(f.configSchema.fields).length === 0) {
        out.push('No settings.', '');
        continue;
      }
      out.push('| key | expects | default | meaning |', '|---|---|---|---|');
      rows(f.configSchema as Field<unknown>, '', out);
      out.push('');
    }
  }
  return out.join('\n');
}
