/**
 * The one place secrets are hidden before a URL or a config is shown
 * (`tallyd --check`, the console's `config`, errors, logs). A Redis URL's
 * password is replaced by `***` in every spelling ioredis accepts:
 * `redis://:pw@h`, `redis://user:pw@h`, `rediss://...`, a password holding
 * `@`, `/` or `:` (the userinfo runs to the last `@`), `?password=pw` (and
 * `&password=`); then every remaining occurrence of the password as ioredis
 * would read it (raw or percent-decoded) is hidden too. When in doubt it
 * hides too much, never too little.
 */

export const REDACTED = '***';

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
/** Any query parameter whose name holds "password" (ioredis reads `password`, `sentinelPassword`, ...). */
const QUERY_PASSWORD = /([?&;][a-z_]*password=)[^&#]*/gi;
/** Keys whose values are secrets wherever they appear in a config. */
const SECRET_KEY = /^(?:password|pass|passwd|secret|auth)$/i;

/** Passwords `new URL` (as ioredis uses it) would read from the URL, raw and decoded. */
function parsedSecrets(url: string): string[] {
  const found: string[] = [];
  try {
    const parsed = new URL(SCHEME.test(url) ? url : `redis://${url}`);
    for (const value of [parsed.password, parsed.searchParams.get('password') ?? '']) {
      if (value === '') continue;
      found.push(value);
      try {
        found.push(decodeURIComponent(value));
      } catch {
        // not percent-encoded: the raw value is enough
      }
    }
  } catch {
    // unparsable: the structural pass below is all there is
  }
  return found.filter((s) => s !== '' && s !== REDACTED);
}

/** `url` with its password hidden; a URL without one comes back unchanged. */
export function redactUrl(url: string): string {
  const secrets = parsedSecrets(url);
  let out = url.replace(QUERY_PASSWORD, `$1${REDACTED}`);
  const scheme = SCHEME.exec(out);
  const start = scheme === null ? 0 : scheme[0].length;
  const at = out.lastIndexOf('@');
  if (at >= start) {
    const userinfo = out.slice(start, at);
    const colon = userinfo.indexOf(':');
    const user = colon < 0 ? '' : userinfo.slice(0, colon);
    out = `${out.slice(0, start)}${colon < 0 ? '' : `${user}:`}${REDACTED}${out.slice(at)}`;
  }
  for (const secret of secrets) out = out.split(secret).join(REDACTED);
  return out;
}

/**
 * A copy of `value` fit to print: URL strings redacted, and the values of
 * keys named like a password (`redis.password`, `auth`, ...) replaced.
 */
export function redactConfig(value: unknown): unknown {
  if (typeof value === 'string') return SCHEME.test(value) ? redactUrl(value) : value;
  if (Array.isArray(value)) return value.map(redactConfig);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    out[key] = SECRET_KEY.test(key) && v !== null && v !== undefined && v !== '' ? REDACTED : redactConfig(v);
  }
  return out;
}
