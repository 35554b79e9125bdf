/** TLS settings with the Collector's configtls key names, for servers (receivers) and clients (exporters). */
import * as fs from 'node:fs';
import type * as tls from 'node:tls';
import { bool, duration, obj, oneOf, optStr, optional, refine, type Infer } from '../core/schema';

export const tlsServerSchema = optional(
  refine(
    obj({
      cert_file: optStr({ doc: 'Server certificate (PEM).' }),
      key_file: optStr({ doc: 'Server private key (PEM).' }),
      client_ca_file: optStr({ doc: 'CA bundle to verify client certificates; setting it requires clients to present one (mTLS).' }),
      min_version: oneOf(['1.2', '1.3'] as const, { default: '1.2', doc: 'Minimum TLS version.' }),
      reload_interval: duration({
        default: '0s',
        doc: 'Re-read cert_file, key_file and client_ca_file this often and use them for new connections when they changed (0: never).',
      }),
    }),
    (c, path, issues) => {
      for (const k of ['cert_file', 'key_file'] as const) if (c[k] === undefined || c[k] === '') issues.add(`${path}.${k}`, 'is required when tls is set');
    },
  ),
);
export type TlsServerConfig = NonNullable<Infer<typeof tlsServerSchema>>;

export const tlsClientSchema = obj({
  insecure: bool({ default: false, doc: 'Use plaintext (gRPC). An `http://` endpoint also means plaintext.' }),
  insecure_skip_verify: bool({ default: false, doc: 'Do not verify the server certificate.' }),
  ca_file: optStr({ doc: 'CA bundle to verify the server certificate (PEM).' }),
  cert_file: optStr({ doc: 'Client certificate for mTLS (PEM).' }),
  key_file: optStr({ doc: 'Client key for mTLS (PEM).' }),
  server_name_override: optStr({ doc: 'Server name to verify instead of the endpoint host.' }),
});
export type TlsClientConfig = Infer<typeof tlsClientSchema>;

function read(file: string | undefined): Buffer | undefined {
  return file === undefined ? undefined : fs.readFileSync(file);
}

/* Servers: see ServerTlsMaterial in tls-reload.ts (reads the files, applies min_version, reloads). */

/** Node TLS options for a client. */
export function clientTlsOptions(c: TlsClientConfig): tls.ConnectionOptions {
  return {
    ca: read(c.ca_file),
    cert: read(c.cert_file),
    key: read(c.key_file),
    rejectUnauthorized: !c.insecure_skip_verify,
    ...(c.server_name_override === undefined ? {} : { servername: c.server_name_override }),
  };
}
