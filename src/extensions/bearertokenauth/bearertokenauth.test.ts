import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { Writable } from 'node:stream';
import { waitFor } from '../../../test/support/free-port';
import { ConfigErrorList } from '../../core/schema';
import { Telemetry } from '../../core/telemetry';
import { bearerTokenAuthConfigSchema, type BearerTokenAuthConfig } from './config';
import { BearerTokenAuthExtension } from './factory';

const silent = pino({ level: 'silent' });

function parse(raw: unknown): { config: BearerTokenAuthConfig; errors: string[] } {
  const issues = new ConfigErrorList();
  const config = bearerTokenAuthConfigSchema.parse(raw, 'extensions.bearertokenauth', issues);
  return { config, errors: issues.items.map((i) => `${i.path}: ${i.message}`) };
}

function ext(raw: unknown, logger = silent): BearerTokenAuthExtension {
  const { config, errors } = parse(raw);
  expect(errors).to.deep.equal([]);
  return new BearerTokenAuthExtension({ id: 'bearertokenauth', logger, telemetry: new Telemetry() }, config);
}

describe('bearertokenauth', () => {
  it('needs a token or a filename; the scheme defaults to Bearer', () => {
    expect(parse({}).errors).to.deep.equal(['extensions.bearertokenauth: needs "token" or "filename"']);
    expect(parse({ token: 't' }).config.scheme).to.equal('Bearer');
    expect(parse({ token: 't', scheme: 'Bad Scheme' }).errors[0]).to.match(/^extensions\.bearertokenauth\.scheme: invalid value/);
  });

  it('accepts exactly "<scheme> <token>" and says why it refuses anything else', async () => {
    const a = ext({ token: 's3cret' });
    await a.start();
    expect(a.authenticateHttp({ authorization: 'Bearer s3cret' })).to.equal(undefined);
    expect(a.authenticateHttp({})).to.equal('missing or empty authorization header');
    expect(a.authenticateHttp({ authorization: '' })).to.equal('missing or empty authorization header');
    expect(a.authenticateHttp({ authorization: 'Bearer wrong!' })).to.equal('invalid authorization header');
    expect(a.authenticateHttp({ authorization: 'bearer s3cret' })).to.equal('invalid authorization header');
    expect(a.authenticateHttp({ authorization: 'Bearer s3cret ' })).to.equal('invalid authorization header');
    expect(a.clientHeaders()).to.deep.equal({ authorization: 'Bearer s3cret' });
    await a.shutdown();
  });

  it('with an empty scheme the header is the bare token', async () => {
    const a = ext({ token: 'abc', scheme: '' });
    await a.start();
    expect(a.authenticateHttp({ authorization: 'abc' })).to.equal(undefined);
    expect(a.authenticateHttp({ authorization: 'Bearer abc' })).to.equal('invalid authorization header');
    expect(a.clientHeaders()).to.deep.equal({ authorization: 'abc' });
  });

  it('reads the token from filename (which wins over token) and follows changes to the file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'routelens-bearer-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'first-token\n');
    const logs: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (logs.push(c.toString()), cb()) }));
    const a = ext({ token: 'ignored', filename: file }, logger);
    try {
      await a.start();
      expect(a.authenticateHttp({ authorization: 'Bearer first-token' })).to.equal(undefined);
      expect(a.authenticateHttp({ authorization: 'Bearer ignored' })).to.equal('invalid authorization header');
      // Rotate the way Kubernetes does: write a new file and rename it over the old one.
      fs.writeFileSync(`${file}.new`, 'second-token');
      fs.renameSync(`${file}.new`, file);
      await waitFor(async () => (a.authenticateHttp({ authorization: 'Bearer second-token' }) === undefined ? true : undefined), {
        timeoutMs: 10_000,
        what: 'the rotated token',
      });
      expect(a.authenticateHttp({ authorization: 'Bearer first-token' })).to.equal('invalid authorization header');
      expect(a.clientHeaders()).to.deep.equal({ authorization: 'Bearer second-token' });
      // An emptied file keeps the previous token rather than locking everyone out.
      fs.writeFileSync(file, '');
      await waitFor(
        async () => {
          a.authenticateHttp({ authorization: 'Bearer second-token' }); // the file is checked when a request needs the token
          return logs.some((l) => l.includes('Token file is empty')) ? true : undefined;
        },
        { timeoutMs: 10_000, what: 'the empty token file to be noticed' },
      );
      expect(a.authenticateHttp({ authorization: 'Bearer second-token' })).to.equal(undefined);
    } finally {
      await a.shutdown();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails start when the token file cannot be read', async () => {
    const a = ext({ filename: '/nonexistent/routelens/token' });
    const err = await a.start().then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/^extensions\.bearertokenauth\.filename: cannot read the token file/);
  });
});
