import { BlockList, isIP } from 'node:net';
import type { Middleware } from '../compose';
import type { Context } from '../context';

export interface ForwardedOptions {
  /**
   * Proxies whose forwarding headers are believed: IP addresses and CIDR ranges, IPv4 and
   * IPv6 ('127.0.0.1', '10.0.0.0/8', '::1', 'fd00::/8'), or the names 'loopback',
   * 'linklocal' and 'uniquelocal'. IPv4-mapped IPv6 peers (::ffff:10.0.0.1) match IPv4 rules.
   */
  trustedProxies: string[];
  /** Most forwarding entries consumed, from the right. Default: no limit (up to the first untrusted address). */
  hops?: number;
}

/** What the request looked like before `forwarded()` rewrote it, in `ctx.state.forwarded`. */
export interface ForwardedOriginal {
  remoteAddress: string;
  remotePort: number;
  scheme: 'http' | 'https';
  authority: string;
}

/** A node in `for=`, `X-Forwarded-For`: an address, or an identifier that hides one (RFC 7239 §6). */
export type ForwardedNode =
  | { kind: 'ip'; address: string; port?: number }
  | { kind: 'unknown' }
  | { kind: 'obfuscated'; id: string };

/** One hop: what one proxy saw of its client. */
export interface ForwardedEntry {
  for?: ForwardedNode;
  proto?: 'http' | 'https';
  host?: string;
}

const NAMED_NETWORKS: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** A set of addresses and networks; IPv4-mapped IPv6 addresses match their IPv4 rules. */
export function addressMatcher(specs: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const raw of specs) {
    for (const spec of NAMED_NETWORKS[raw.toLowerCase()] ?? [raw]) {
      const slash = spec.indexOf('/');
      const addr = stripBrackets(slash < 0 ? spec : spec.slice(0, slash));
      const family = isIP(addr);
      if (family === 0) throw new TypeError(`not an IP address or network: ${raw}`);
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (slash < 0) {
        list.addAddress(addr, type);
        continue;
      }
      const prefix = Number(spec.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) throw new TypeError(`bad prefix length: ${raw}`);
      list.addSubnet(addr, prefix, type);
    }
  }
  return (address) => {
    const a = stripZone(stripBrackets(address));
    const family = isIP(a);
    return family !== 0 && list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  };
}

function stripBrackets(a: string): string {
  return a.startsWith('[') && a.endsWith(']') ? a.slice(1, -1) : a;
}

function stripZone(a: string): string {
  const i = a.indexOf('%');
  return i < 0 ? a : a.slice(0, i);
}

function parsePort(p: string): number | undefined {
  if (!/^\d{1,5}$/.test(p)) return undefined; // obfuscated ports ("_abc") carry nothing usable
  const n = Number(p);
  return n <= 65535 ? n : undefined;
}

/**
 * A node as it appears in `for=` (RFC 7239 §6: IPv4, "[IPv6]", "unknown", "_obfuscated",
 * each with an optional ":port") or in X-Forwarded-For (where bare IPv6 is common).
 * Undefined when it is none of these.
 */
export function parseNode(value: string): ForwardedNode | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  if (v.toLowerCase() === 'unknown') return { kind: 'unknown' };
  if (isIP(stripZone(v)) !== 0) return { kind: 'ip', address: v };
  let host = v;
  let port: string | undefined;
  if (v.startsWith('[')) {
    const close = v.indexOf(']');
    if (close < 0) return undefined;
    host = v.slice(1, close);
    const rest = v.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      port = rest.slice(1);
    }
    if (isIP(stripZone(host)) !== 6) return undefined;
  } else {
    const colon = v.indexOf(':');
    if (colon >= 0) {
      if (v.indexOf(':', colon + 1) >= 0) return undefined;
      host = v.slice(0, colon);
      port = v.slice(colon + 1);
    }
    if (host.toLowerCase() === 'unknown') return { kind: 'unknown' };
    // RFC 7239 §6.3: obfnode = "_" 1*( ALPHA / DIGIT / "." / "_" / "-")
    if (/^_[A-Za-z0-9._-]+$/.test(host)) return { kind: 'obfuscated', id: host };
    if (isIP(host) !== 4) return undefined;
  }
  const n = port === undefined ? undefined : parsePort(port);
  return n === undefined ? { kind: 'ip', address: host } : { kind: 'ip', address: host, port: n };
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/**
 * Parses `Forwarded` field values (RFC 7239 §4) into elements, left to right: pairs are
 * `token=token` or `token="quoted string"`; names are case-insensitive. Returns undefined
 * when the field is malformed (then none of it can be trusted to line up with the hops).
 */
export function parseForwarded(values: readonly string[]): Array<Record<string, string>> | undefined {
  const elements: Array<Record<string, string>> = [];
  for (const value of values) {
    let i = 0;
    let element: Record<string, string> = {};
    let pending = false;
    const skipSpace = (): void => {
      while (i < value.length && (value[i] === ' ' || value[i] === '\t')) i++;
    };
    const token = (): string => {
      const start = i;
      while (i < value.length && TCHAR.test(value[i])) i++;
      return value.slice(start, i);
    };
    for (;;) {
      skipSpace();
      if (i >= value.length) break;
      if (value[i] === ',') {
        if (pending) elements.push(element);
        element = {};
        pending = false;
        i++;
        continue;
      }
      if (value[i] === ';') {
        i++;
        continue;
      }
      const name = token().toLowerCase();
      if (name === '' || value[i] !== '=') return undefined;
      i++;
      let v: string;
      if (value[i] === '"') {
        i++;
        v = '';
        for (;;) {
          if (i >= value.length) return undefined;
          const c = value[i++];
          if (c === '"') break;
          if (c === '\\') {
            if (i >= value.length) return undefined;
            v += value[i++];
          } else v += c;
        }
      } else {
        v = token();
        if (v === '') return undefined;
      }
      // RFC 7239 §4: each parameter MUST NOT occur more than once per forwarded-element.
      if (name in element) return undefined;
      element[name] = v;
      pending = true;
      skipSpace();
      if (i < value.length && value[i] !== ';' && value[i] !== ',') return undefined;
    }
    if (pending) elements.push(element);
  }
  return elements;
}

// uri-host [ ":" port ] (RFC 9110 §7.2), conservatively: reg-name characters or an IPv6 literal.
const HOST = /^(?:[A-Za-z0-9\-._~%!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?$/;

function proto(v: string | undefined): 'http' | 'https' | undefined {
  const p = v?.trim().toLowerCase();
  return p === 'http' || p === 'https' ? p : undefined;
}

function host(v: string | undefined): string | undefined {
  const h = v?.trim();
  return h && HOST.test(h) ? h : undefined;
}

function splitList(values: readonly string[]): string[] {
  return values.flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * The forwarding entries of a request, left (client side) to right (nearest proxy):
 * from `Forwarded` when present, else from X-Forwarded-For/-Proto/-Host lined up from the right.
 * Undefined when there are none, or the `Forwarded` field is malformed.
 */
export function forwardedEntries(headers: { getAll(name: string): string[] }): ForwardedEntry[] | undefined {
  const fwd = headers.getAll('forwarded');
  if (fwd.length > 0) {
    const elements = parseForwarded(fwd);
    if (!elements || elements.length === 0) return undefined;
    return elements.map((e) => ({ for: e.for === undefined ? undefined : parseNode(e.for), proto: proto(e.proto), host: host(e.host) }));
  }
  const fors = splitList(headers.getAll('x-forwarded-for'));
  const protos = splitList(headers.getAll('x-forwarded-proto'));
  const hosts = splitList(headers.getAll('x-forwarded-host'));
  const n = Math.max(fors.length, protos.length, hosts.length);
  if (n === 0) return undefined;
  const at = (list: string[], i: number): string | undefined => list[list.length - (n - i)];
  const entries: ForwardedEntry[] = [];
  for (let i = 0; i < n; i++) {
    const f = at(fors, i);
    entries.push({ for: f === undefined ? undefined : parseNode(f), proto: proto(at(protos, i)), host: host(at(hosts, i)) });
  }
  return entries;
}

/**
 * Forwarded headers, after nginx's realip module and ASP.NET Core's ForwardedHeaders: when
 * the direct peer is a trusted proxy, the client address, scheme and host are taken from
 * `Forwarded` (RFC 7239) or else from X-Forwarded-For / -Proto / -Host. The chain is walked
 * from the right (the nearest proxy) and stops at the first address that is not a trusted
 * proxy: that one is the client. Headers from untrusted peers are ignored entirely. The
 * values seen before are kept in `ctx.state.forwarded` ({@link ForwardedOriginal}).
 */
export function forwarded(options: ForwardedOptions): Middleware<Context> {
  const trusted = addressMatcher(options.trustedProxies);
  const hops = options.hops ?? Infinity;
  if (!(hops >= 1)) throw new RangeError('hops must be at least 1');
  return (ctx, next) => {
    const req = ctx.request;
    // RFC 7239 §8.1: the header can be forged by anyone; only a proxy we trust vouches for it.
    if (!trusted(req.remoteAddress)) return next();
    const entries = forwardedEntries(req.headers);
    if (!entries) return next();
    const original: ForwardedOriginal = { remoteAddress: req.remoteAddress, remotePort: req.remotePort, scheme: req.scheme, authority: req.authority };
    let used = 0;
    for (let i = entries.length - 1; i >= 0 && used < hops; i--, used++) {
      // Entry i was written by a trusted proxy: what it says about its own client holds.
      const e = entries[i];
      if (e.proto) req.scheme = e.proto;
      if (e.host) req.authority = e.host;
      if (e.for?.kind !== 'ip') break; // "unknown", obfuscated or missing: the real address stays hidden
      req.remoteAddress = stripBrackets(e.for.address);
      req.remotePort = e.for.port ?? 0;
      if (!trusted(req.remoteAddress)) break;
    }
    ctx.state.forwarded = original;
    return next();
  };
}
