/**
 * What of a request URL may reach the logs. Keys are only accepted in the Authorization header,
 * but clients still paste them into query strings (`?api_key=…`); such values must never be
 * written to a log line. Query values of credential-like names are replaced, and anything shaped
 * like an API key is masked wherever it appears (path or query).
 */
const SENSITIVE_PARAM = /(key|token|secret|auth|password|signature)/i;
const API_KEY_SHAPE = /xero_[A-Za-z0-9-]+_[A-Za-z0-9]{8,}/g;

export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  const path = (q === -1 ? url : url.slice(0, q)).replace(API_KEY_SHAPE, 'xero_[redacted]');
  if (q === -1) return path;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq === -1 ? pair : pair.slice(0, eq);
      if (eq !== -1 && SENSITIVE_PARAM.test(name)) return `${name}=[redacted]`;
      return pair.replace(API_KEY_SHAPE, 'xero_[redacted]');
    })
    .join('&');
  return `${path}?${query}`;
}
