/**
 * Test PKI made with the `openssl` CLI at test time: a CA, a server certificate (with the given DNS names and
 * IP addresses as subjectAltNames) and a client certificate, all signed by the CA. Nothing is committed; the
 * files live in a temporary directory that is removed when the process exits.
 *
 * ```ts
 * const certs = makeTestCerts({ names: ['localhost', '127.0.0.1'] });
 * https.createServer({ cert: certs.serverCert, key: certs.serverKey, ca: certs.caCert });
 * ```
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

/** PEM contents of every generated file, the directory they are in and the path of each file. */
export interface TestCerts {
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Directory holding `ca.crt`, `ca.key`, `server.crt`, `server.key`, `client.crt`, `client.key`. */
  dir: string;
  paths: {
    caCert: string;
    caKey: string;
    serverCert: string;
    serverKey: string;
    clientCert: string;
    clientKey: string;
  };
}

export interface TestCertOptions {
  /** DNS names and IP addresses the server certificate is valid for. @default ['localhost', '127.0.0.1'] */
  names?: readonly string[];
  /** Common name of the client certificate. @default 'routelens-test-client' */
  clientName?: string;
  /** Make a fresh set even if one with the same names exists in this process. @default false */
  fresh?: boolean;
}

const cache = new Map<string, TestCerts>();
const dirs: string[] = [];
let cleanupRegistered = false;

function openssl(args: readonly string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0] ?? ''} failed: ${e.stderr?.toString().trim() || e.message}`, { cause: err });
  }
}

function sanLine(names: readonly string[]): string {
  return names.map((n) => (net.isIP(n) !== 0 ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/** Create (or reuse, per process) a CA, server and client certificate with the openssl CLI. */
export function makeTestCerts(opts: TestCertOptions = {}): TestCerts {
  const names = opts.names ?? ['localhost', '127.0.0.1'];
  const clientName = opts.clientName ?? 'routelens-test-client';
  const key = `${names.join(',')}|${clientName}`;
  const cached = cache.get(key);
  if (cached !== undefined && opts.fresh !== true) return cached;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-certs-'));
  dirs.push(dir);
  if (!cleanupRegistered) {
    cleanupRegistered = true;
    process.on('exit', () => {
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '2',
      '-subj',
      '/CN=routelens-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  const leaf = (name: string, cn: string, ext: string): void => {
    fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
    openssl(['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.crt`,
        '-days',
        '2',
        '-extfile',
        `${name}.ext`,
      ],
      dir,
    );
  };
  leaf(
    'server',
    names[0] ?? 'localhost',
    `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${sanLine(names)}\n`,
  );
  leaf('client', clientName, 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');

  const p = (f: string): string => path.join(dir, f);
  const paths = {
    caCert: p('ca.crt'),
    caKey: p('ca.key'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
  };
  const read = (f: string): string => fs.readFileSync(f, 'utf8');
  const certs: TestCerts = {
    caCert: read(paths.caCert),
    caKey: read(paths.caKey),
    serverCert: read(paths.serverCert),
    serverKey: read(paths.serverKey),
    clientCert: read(paths.clientCert),
    clientKey: read(paths.clientKey),
    dir,
    paths,
  };
  cache.set(key, certs);
  return certs;
}
