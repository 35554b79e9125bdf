/** Config of the `bearertokenauth` extension, with the keys of the Collector's contrib extension. */
import { obj, optStr, refine, str, type Infer } from '../../core/schema';

export const bearerTokenAuthConfigSchema = refine(
  obj({
    scheme: str({ default: 'Bearer', doc: 'Authorization scheme: the header is `<scheme> <token>` (just the token when empty).' }),
    token: optStr({ doc: 'The token. Prefer `filename` (or `${env:VAR}`) over a literal token in the file.' }),
    filename: optStr({ doc: 'File holding the token (surrounding whitespace is trimmed); wins over `token` and is re-read when it changes.' }),
  }),
  (c, path, issues) => {
    if ((c.token === undefined || c.token === '') && (c.filename === undefined || c.filename === '')) {
      issues.add(path, 'needs "token" or "filename"');
    }
    if (/\s/.test(c.scheme)) issues.add(`${path}.scheme`, `invalid value ${JSON.stringify(c.scheme)}; expected a scheme without spaces such as "Bearer"`);
  },
);
export type BearerTokenAuthConfig = Infer<typeof bearerTokenAuthConfigSchema>;
