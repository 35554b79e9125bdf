import { expect } from 'chai';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { execCredentials, fromKubeconfig, KubeConfigError, resolveConnection, tokenFileCredentials, type ApiConnection } from './kubeconfig';

// eslint-disable-next-line @typescript-eslint/consistent-type-imports -- client-node is ESM: only a type query can name its module type here
type ClientNode = typeof import('@kubernetes/client-node', { with: { 'resolution-mode': 'import' } });

/** What a request would carry: server, TLS material, Authorization header. */
interface Resolved {
  server: string;
  ca: string | undefined;
  cert: string | undefined;
  key: string | undefined;
  rejectUnauthorized: boolean;
  servername: string | undefined;
  authorization: string | undefined;
}

const b64 = (b: Buffer | string | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('base64'));

async function ours(conn: ApiConnection): Promise<Resolved> {
  return {
    server: conn.server,
    ca: b64(conn.tls.ca),
    cert: b64(conn.tls.cert),
    key: b64(conn.tls.key),
    rejectUnauthorized: conn.tls.rejectUnauthorized,
    servername: conn.tls.servername,
    authorization: await conn.credentials.authorization(),
  };
}

/** The same file through @kubernetes/client-node's KubeConfig, the reference. */
async function reference(k8s: ClientNode, file: string, context: string | undefined): Promise<Resolved> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  if (context !== undefined) kc.setCurrentContext(context);
  const opts: { ca?: Buffer; cert?: Buffer; key?: Buffer; rejectUnauthorized?: boolean; servername?: string; auth?: string; headers?: Record<string, string> } =
    {};
  await kc.applyToHTTPSOptions(opts as never);
  const basic = opts.auth === undefined ? undefined : `Basic ${Buffer.from(opts.auth).toString('base64')}`;
  return {
    server: kc.getCurrentCluster()?.server ?? '',
    ca: b64(opts.ca),
    cert: b64(opts.cert),
    key: b64(opts.key),
    rejectUnauthorized: opts.rejectUnauthorized ?? true,
    servername: opts.servername,
    authorization: opts.headers?.['Authorization'] ?? basic,
  };
}

describe('kubeconfig resolution', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-kubeconfig-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const material = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a));
  /** File or inline data; a relative file name is relative to the kubeconfig's directory. */
  const source = fc.record({ bytes: material, how: fc.constantFrom('data', 'absolute', 'relative') });
  const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/);
  const user = fc.oneof(
    fc.record({ kind: fc.constant('token' as const), token: fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/) }),
    fc.record({ kind: fc.constant('cert' as const), cert: source, key: source }),
    fc.record({ kind: fc.constant('basic' as const), username: name, password: fc.stringMatching(/^[A-Za-z0-9]{0,12}$/) }),
    fc.record({ kind: fc.constant('none' as const) }),
  );
  const cluster = fc.record({
    // Not http:// (client-node refuses it unless TLS verification is off; routelens takes it: kubectl proxy).
    host: fc.constantFrom('https://10.96.0.1', 'https://api.example.test:6443', 'https://[fd00::1]:443'),
    slash: fc.boolean(),
    ca: fc.option(source, { nil: undefined }),
    skip: fc.constantFrom(true, false, undefined),
    tlsServerName: fc.option(name, { nil: undefined }),
  });

  it('resolves what @kubernetes/client-node resolves, for generated kubeconfigs (differential)', async () => {
    const k8s: ClientNode = await import('@kubernetes/client-node');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ cluster, user }), { minLength: 1, maxLength: 3 }), fc.nat(), fc.boolean(), async (entries, pick, byName) => {
        const base = path.join(dir, `case-${n++}`);
        fs.mkdirSync(base);
        let files = 0;
        const put = (s: { bytes: Buffer; how: string }, key: string, into: Record<string, unknown>): void => {
          if (s.how === 'data') {
            into[`${key}-data`] = s.bytes.toString('base64');
            return;
          }
          const f = `m${files++}.pem`;
          fs.writeFileSync(path.join(base, f), s.bytes);
          into[key] = s.how === 'absolute' ? path.join(base, f) : f;
        };
        const doc = {
          apiVersion: 'v1',
          kind: 'Config',
          clusters: entries.map((e, i) => {
            const c: Record<string, unknown> = { server: e.cluster.host + (e.cluster.slash ? '/' : '') };
            if (e.cluster.ca !== undefined) put(e.cluster.ca, 'certificate-authority', c);
            if (e.cluster.skip !== undefined) c['insecure-skip-tls-verify'] = e.cluster.skip;
            if (e.cluster.tlsServerName !== undefined) c['tls-server-name'] = e.cluster.tlsServerName;
            return { name: `c${i}`, cluster: c };
          }),
          users: entries.map((e, i) => {
            const u: Record<string, unknown> = {};
            if (e.user.kind === 'token') u['token'] = e.user.token;
            if (e.user.kind === 'cert') {
              put(e.user.cert, 'client-certificate', u);
              put(e.user.key, 'client-key', u);
            }
            if (e.user.kind === 'basic') Object.assign(u, { username: e.user.username, password: e.user.password });
            return { name: `u${i}`, user: u };
          }),
          contexts: entries.map((_, i) => ({ name: `ctx${i}`, context: { cluster: `c${i}`, user: `u${i}` } })),
          'current-context': 'ctx0',
        };
        const file = path.join(base, 'config');
        const text = stringify(doc);
        fs.writeFileSync(file, text);
        const context = byName ? `ctx${pick % entries.length}` : undefined;
        expect(await ours(fromKubeconfig(text, file, context))).to.deep.equal(await reference(k8s, file, context));
      }),
      { numRuns: 60 },
    );
  });

  it('prefers inline data over a file, as client-go does (client-node prefers the file)', () => {
    const ca = path.join(dir, 'ca-file.pem');
    fs.writeFileSync(ca, 'from-file');
    const text = stringify({
      clusters: [
        { name: 'c', cluster: { server: 'https://k', 'certificate-authority': ca, 'certificate-authority-data': Buffer.from('inline').toString('base64') } },
      ],
      users: [{ name: 'u', user: {} }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    });
    expect(fromKubeconfig(text, path.join(dir, 'cfg'), undefined).tls.ca?.toString()).to.equal('inline');
  });

  it('names the file and what is wrong', () => {
    const file = path.join(dir, 'bad');
    const cfg = (doc: unknown): string => stringify(doc);
    const base = {
      clusters: [{ name: 'c', cluster: { server: 'https://k' } }],
      users: [{ name: 'u', user: { 'auth-provider': { name: 'gcp' } } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    };
    const err = (text: string, context?: string): string => {
      try {
        fromKubeconfig(text, file, context);
      } catch (e) {
        expect(e).to.be.instanceOf(KubeConfigError);
        return (e as Error).message;
      }
      throw new Error('expected a KubeConfigError');
    };
    expect(err(cfg(base))).to.equal(`auth_type kubeConfig: ${file}: no context given and no current-context set`);
    expect(err(cfg(base), 'y')).to.equal(`auth_type kubeConfig: ${file}: context "y" not found; it has "x"`);
    expect(err(cfg(base), 'x')).to.match(/auth-provider "gcp" is not supported .* use its exec credential plugin/);
    expect(err(cfg({ ...base, clusters: [{ name: 'c', cluster: {} }] }), 'x')).to.match(/cluster "c" has no server/);
    expect(err(cfg({ ...base, clusters: [{ name: 'd', cluster: { server: 'https://k' } }] }), 'x')).to.match(/cluster "c" of context "x" not found/);
    expect(err('clusters: [a')).to.match(/not valid YAML/);
    expect(err(cfg({ ...base, clusters: [{ name: 'c', cluster: { server: 'https://k', 'proxy-url': 'socks5://p:1080' } }] }), 'x')).to.match(
      /proxy-url is not supported/,
    );
    expect(err(cfg({ ...base, users: [{ name: 'u', user: { token: 't', as: 'admin' } }] }), 'x')).to.match(/impersonation \(as\) is not supported/);
    expect(err(cfg({ ...base, users: [{ name: 'u', user: { 'client-certificate-data': 'eA==' } }] }), 'x')).to.match(
      /client-certificate and client-key go together/,
    );
    expect(() => resolveConnection({ auth_type: 'kubeConfig', kube_config_path: path.join(dir, 'absent') }, {})).to.throw(
      KubeConfigError,
      /cannot load .*absent/,
    );
  });

  it('reads a token file again after the refresh interval (rotated service account tokens)', async () => {
    const f = path.join(dir, 'token');
    fs.writeFileSync(f, 'first\n');
    const slow = tokenFileCredentials(f, 60_000);
    const fast = tokenFileCredentials(f, 0);
    expect(await slow.authorization()).to.equal('Bearer first');
    expect(await fast.authorization()).to.equal('Bearer first');
    fs.writeFileSync(f, 'second\n');
    expect(await slow.authorization()).to.equal('Bearer first');
    expect(await fast.authorization()).to.equal('Bearer second');
    slow.invalidate(); // a 401: read again at once
    expect(await slow.authorization()).to.equal('Bearer second');
  });

  describe('exec credential plugins', () => {
    /** A plugin that counts its runs and prints a token with the given lifetime. */
    function plugin(lifetimeS: number | undefined, extra = ''): { command: string; args: string[]; runs: () => number; env: string } {
      const counter = path.join(dir, `runs-${Math.random().toString(36).slice(2)}`);
      const envOut = `${counter}.env`;
      const script = `${counter}.js`;
      fs.writeFileSync(
        script,
        `const fs = require('fs');
         const n = (fs.existsSync(${JSON.stringify(counter)}) ? Number(fs.readFileSync(${JSON.stringify(counter)}, 'utf8')) : 0) + 1;
         fs.writeFileSync(${JSON.stringify(counter)}, String(n));
         fs.writeFileSync(${JSON.stringify(envOut)}, JSON.stringify({ info: process.env.KUBERNETES_EXEC_INFO, region: process.env.REGION, arg: process.argv[2] }));
         ${extra}
         const status = { token: 'tok-' + n };
         ${lifetimeS === undefined ? '' : `status.expirationTimestamp = new Date(Date.now() + ${lifetimeS} * 1000).toISOString();`}
         console.log(JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status }));`,
      );
      return {
        command: process.execPath,
        args: [script, 'eks'],
        runs: () => (fs.existsSync(counter) ? Number(fs.readFileSync(counter, 'utf8')) : 0),
        env: envOut,
      };
    }

    it('runs the command with its args and env, reuses the token until it expires or is refused', async () => {
      const p = plugin(3600);
      const creds = execCredentials(
        { command: p.command, args: p.args, env: [{ name: 'REGION', value: 'eu-1' }], apiVersion: 'client.authentication.k8s.io/v1' },
        dir,
      );
      const [a, b] = await Promise.all([creds.authorization(), creds.authorization()]);
      expect([a, b]).to.deep.equal(['Bearer tok-1', 'Bearer tok-1']);
      expect(p.runs()).to.equal(1, 'concurrent requests share one run');
      const seen = JSON.parse(fs.readFileSync(p.env, 'utf8')) as { info: string; region: string; arg: string };
      expect(seen.region).to.equal('eu-1');
      expect(seen.arg).to.equal('eks');
      expect(JSON.parse(seen.info)).to.deep.equal({ apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', spec: { interactive: false } });
      expect(await creds.authorization()).to.equal('Bearer tok-1');
      creds.invalidate();
      expect(await creds.authorization()).to.equal('Bearer tok-2');

      const short = plugin(5); // expires within the 10 s renewal margin: every request runs it
      const sc = execCredentials({ command: short.command, args: short.args, env: [], apiVersion: 'client.authentication.k8s.io/v1beta1' }, dir);
      expect(await sc.authorization()).to.equal('Bearer tok-1');
      expect(await sc.authorization()).to.equal('Bearer tok-2');
    });

    it('reports a failing plugin with its stderr, and one that prints no token', async () => {
      const failing = plugin(60, "console.error('credentials expired, run aws sso login'); process.exit(3);");
      const creds = execCredentials({ command: failing.command, args: failing.args, env: [], apiVersion: 'v1' }, dir);
      let err: unknown;
      await creds.authorization().catch((e: unknown) => (err = e));
      expect(String(err)).to.match(/exec credential plugin .* failed: .*credentials expired, run aws sso login/);
      const empty = plugin(60, "console.log('{}'); process.exit(0);");
      err = undefined;
      await execCredentials({ command: empty.command, args: empty.args, env: [], apiVersion: 'v1' }, dir)
        .authorization()
        .catch((e: unknown) => (err = e));
      expect(String(err)).to.match(/returned no status.token/);
    });

    it('is configured from the kubeconfig user.exec section', async () => {
      const p = plugin(3600);
      const text = stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://k' } }],
        users: [
          {
            name: 'u',
            user: { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: p.command, args: p.args, env: [{ name: 'REGION', value: 'us-2' }] } },
          },
        ],
        contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'x',
      });
      const conn = fromKubeconfig(text, path.join(dir, 'exec-config'), undefined);
      expect(await conn.credentials.authorization()).to.equal('Bearer tok-1');
      expect((JSON.parse(fs.readFileSync(p.env, 'utf8')) as { region: string }).region).to.equal('us-2');
    });
  });
});
