import type { Middleware } from '../compose';
import type { Context } from '../context';
import { HttpError } from '../errors';

export interface AllowedHostsOptions {
  /** Let requests without a host through (HTTP/0.9 and HTTP/1.0 have none). Default true, as in Kestrel. */
  allowEmpty?: boolean;
}

/** The host part of an authority or pattern: lowercased, port and one trailing dot removed. */
function hostOf(authority: string): string {
  let h = authority.trim().toLowerCase();
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    return close < 0 ? h : h.slice(0, close + 1);
  }
  const colon = h.lastIndexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/**
 * Host filtering, after Kestrel's AllowedHosts: a request whose `:authority` (or `Host`)
 * is not one of `hosts` gets 400 "Invalid Hostname", which keeps DNS-rebinding and
 * host-header attacks off the application. Patterns are exact names ('example.com',
 * '127.0.0.1', '[::1]') or wildcards ('*.example.com' matches 'a.example.com' and
 * 'a.b.example.com', not 'example.com'); '*' allows any. Matching ignores case and ports.
 */
export function allowedHosts(hosts: string[], options: AllowedHostsOptions = {}): Middleware<Context> {
  const allowEmpty = options.allowEmpty ?? true;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  let any = false;
  for (const pattern of hosts) {
    const p = pattern.trim();
    if (p === '*') any = true;
    else if (p.startsWith('*.')) suffixes.push(hostOf(p.slice(1))); // keeps the dot: ".example.com"
    else if (p !== '') exact.add(hostOf(p));
  }
  const allowed = (h: string): boolean => exact.has(h) || suffixes.some((s) => h.length > s.length && h.endsWith(s));
  return (ctx, next) => {
    if (any) return next();
    const authority = ctx.request.authority;
    if (authority === '') {
      if (allowEmpty) return next();
    } else if (!/[\s/\\@?#]/.test(authority) && allowed(hostOf(authority))) {
      return next();
    }
    // RFC 9110 §7.4: a request for an authority this server is not configured to serve is
    // not processed as if it were; Kestrel answers 400 and says why.
    throw new HttpError(400, 'Invalid Hostname', { code: 'HARRIER_ERR_INVALID_HOST' });
  };
}
