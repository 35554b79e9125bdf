/** The `auth` section of receivers (server side) and exporters (client side), as in the Collector's configauth. */
import { obj, optional, refine, str, type Infer } from '../core/schema';

export const authSettingsSchema = optional(
  refine(
    obj({
      authenticator: str({ doc: 'Id of an authenticator extension (e.g. `bearertokenauth`) listed in `service.extensions`.' }),
    }),
    (c, path, issues) => {
      if (c.authenticator === '') issues.add(`${path}.authenticator`, 'is required: the id of an authenticator extension');
    },
  ),
);
export type AuthSettings = NonNullable<Infer<typeof authSettingsSchema>>;
