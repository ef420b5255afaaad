import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { Readable, Transform, pipeline } from 'node:stream';
import type { Middleware } from '../compose';
import type { Context, Protocol } from '../context';
import { HttpError } from '../errors';
import { Fields } from '../fields';
import type { ForwardedOriginal } from './forwarded';

export interface ProxyOptions {
  /** Send the client's Host to the upstream instead of the upstream's own. Default false. */
  preserveHost?: boolean;
  /**
   * How long the exchange may stall: connecting, then between request body chunks sent and
   * until the response headers (504 after that), then between response body chunks (the
   * response is aborted).
   * Default 60 s, as nginx's proxy_read_timeout.
   */
  timeoutMs?: number;
  /** Request headers set on every upstream request (after all others, so they win). */
  headers?: Record<string, string>;
  /**
   * X-Forwarded-For/-Proto/-Host and `Forwarded`: 'append' adds this hop to what the request
   * carried (as nginx's $proxy_add_x_forwarded_for); 'set' replaces them with what this
   * server knows (after `forwarded()`, the real client); 'off' leaves them alone. Default 'append'.
   */
  forwardedHeaders?: 'append' | 'set' | 'off';
  /** Connection pool for the upstream. Default: one keep-alive agent per proxy(). */
  agent?: http.Agent;
}

/** The middleware, with its connection pool (call `agent.destroy()` to drop idle connections). */
export type ProxyMiddleware = Middleware<Context> & { agent: http.Agent };

// RFC 9110 §7.6.1: hop-by-hop fields, for one connection only, never forwarded; and
// RFC 9113 §8.2.2 / RFC 9114 §4.2: connection-specific fields that HTTP/2 and HTTP/3 forbid.
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings',
]);

const VIA_VERSION: Record<Protocol, string> = { h3: '3', h2: '2', 'http/1.1': '1.1', hq: '0.9' };

/** Field names a `Connection` header lists: hop-by-hop too (RFC 9110 §7.6.1). */
function connectionOptions(values: readonly string[]): Set<string> {
  const s = new Set<string>();
  for (const v of values) for (const t of v.split(',')) if (t.trim()) s.add(t.trim().toLowerCase());
  return s;
}

/** The fields of `pairs` that are end-to-end. */
function endToEnd(pairs: Iterable<[string, string]>, connection: Set<string>): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of pairs) {
    const n = name.toLowerCase();
    if (n.charCodeAt(0) === 0x3a || HOP_BY_HOP.has(n) || connection.has(n)) continue;
    out.push([n, value]);
  }
  return out;
}

function rawPairs(raw: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i], raw[i + 1]]);
  return out;
}

/** A `Forwarded` node (RFC 7239 §6): IPv6 in brackets and quoted, the rest as tokens. */
function forwardedNode(address: string): string {
  if (isIP(address) === 6) return `"[${address}]"`;
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(address) ? address : `"${address.replace(/["\\]/g, '\\$&')}"`;
}

function forwardedValue(v: string): string {
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(v) ? v : `"${v.replace(/["\\]/g, '\\$&')}"`;
}

function timeoutError(): Error {
  return Object.assign(new Error('upstream timed out'), { code: 'HARRIER_ERR_PROXY_TIMEOUT' });
}

/** The path and query to ask the upstream for: its base path, then the request's. */
function upstreamPath(base: URL, target: string): string {
  let t = target;
  if (t !== '*' && !t.startsWith('/')) {
    try {
      const u = new URL(t); // absolute-form (RFC 9112 §3.2.2)
      t = u.pathname + u.search;
    } catch {
      t = `/${t}`;
    }
  }
  const prefix = base.pathname.replace(/\/+$/, '');
  if (t === '*') return prefix || '*';
  return prefix + t;
}

/**
 * Reverse proxy to an HTTP/1.1 upstream, after nginx's proxy_pass: bodies stream both ways
 * with backpressure (never buffered whole), hop-by-hop fields are dropped in both
 * directions, the request gains `Via` and forwarding headers, and the upstream's status,
 * fields (repeated Set-Cookie intact) and trailers reach the client on whatever protocol
 * it used. Put Harrier in front of an existing HTTP/1.1 app and it speaks HTTP/3.
 *
 * Failures: the upstream unreachable or hanging up before its answer is 502
 * (HARRIER_ERR_PROXY_UPSTREAM); silent past `timeoutMs` before its headers is 504
 * (HARRIER_ERR_PROXY_TIMEOUT). After the headers, a failure aborts the response stream.
 */
export function proxy(upstream: string | URL, options: ProxyOptions = {}): ProxyMiddleware {
  const base = new URL(upstream.toString());
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError(`upstream must be http: or https:, not ${base.protocol}`);
  const secure = base.protocol === 'https:';
  const client = secure ? https : http;
  const agent = options.agent ?? new client.Agent({ keepAlive: true, scheduling: 'lifo' });
  const timeoutMs = options.timeoutMs ?? 60_000;
  const mode = options.forwardedHeaders ?? 'append';

  const requestHeaders = (ctx: Context): Record<string, string | string[]> => {
    const req = ctx.request;
    const out: Record<string, string | string[]> = {};
    const add = (name: string, value: string): void => {
      const prev = out[name];
      out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
    };
    const connection = connectionOptions(req.headers.getAll('connection'));
    for (const [name, value] of endToEnd(req.headers, connection)) {
      // Host is set below; Expect was answered by our listener (the upstream must not wait for it);
      // cookies are joined below.
      if (name === 'host' || name === 'expect' || name === 'cookie') continue;
      add(name, value);
    }
    // RFC 9113 §8.2.3 / RFC 9114 §4.2.1: cookie fields split for compression are joined
    // with "; " before going to an HTTP/1.1 connection.
    const cookies = req.headers.getAll('cookie');
    if (cookies.length > 0) out['cookie'] = cookies.join('; ');
    out['host'] = options.preserveHost && req.authority ? req.authority : base.host;
    // TE is hop-by-hop, but "trailers" says the client takes trailers: pass that on (gRPC needs it).
    if ((req.headers.get('te') ?? '').toLowerCase().split(',').some((t) => t.trim() === 'trailers')) {
      out['te'] = 'trailers';
      out['connection'] = 'te'; // RFC 9110 §10.1.4: a sender of TE also sends the "TE" connection option
    }
    if (mode !== 'off') {
      const original = ctx.state.forwarded as ForwardedOriginal | undefined;
      // 'append' adds the hop we saw (our direct peer); 'set' states the client as now known.
      const hop = mode === 'append' && original ? original : { remoteAddress: req.remoteAddress, scheme: req.scheme, authority: req.authority };
      const xff = mode === 'append' ? req.headers.getAll('x-forwarded-for') : [];
      const xfp = mode === 'append' ? req.headers.getAll('x-forwarded-proto') : [];
      const xfh = mode === 'append' ? req.headers.getAll('x-forwarded-host') : [];
      const fwd = mode === 'append' ? req.headers.getAll('forwarded') : [];
      delete out['x-forwarded-for'];
      delete out['x-forwarded-proto'];
      delete out['x-forwarded-host'];
      delete out['forwarded'];
      if (hop.remoteAddress) out['x-forwarded-for'] = [...xff, hop.remoteAddress].join(', ');
      out['x-forwarded-proto'] = [...xfp, hop.scheme].join(', ');
      if (hop.authority) out['x-forwarded-host'] = [...xfh, hop.authority].join(', ');
      // RFC 7239 §4: each proxy appends one forwarded-element.
      const element = [
        hop.remoteAddress ? `for=${forwardedNode(hop.remoteAddress)}` : '',
        hop.authority ? `host=${forwardedValue(hop.authority)}` : '',
        `proto=${hop.scheme}`,
      ].filter(Boolean).join(';');
      out['forwarded'] = [...fwd, element].join(', ');
    }
    // RFC 9110 §7.6.3: an intermediary MUST send Via in each request it forwards, naming
    // the protocol version it received.
    out['via'] = [...req.headers.getAll('via'), `${VIA_VERSION[req.protocol]} harrier`].join(', ');
    for (const [k, v] of Object.entries(options.headers ?? {})) out[k.toLowerCase()] = v;
    return out;
  };

  const middleware = async (ctx: Context): Promise<void> => {
    const req = ctx.request;
    const headers = requestHeaders(ctx);
    const method = req.method;
    const declared = req.headers.get('content-length');
    // Bodiless safe requests are sent without reading the body, and can be retried once
    // when a pooled connection turns out to have been closed by the upstream meanwhile.
    const safe = (method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'TRACE')
      && (declared === undefined || declared === '0') && !req.headers.has('transfer-encoding');
    if (safe) req.body.resume();
    for (let attempt = 0; ; attempt++) {
      try {
        await exchange(ctx, headers, safe);
        return;
      } catch (err) {
        const e = err as Error & { code?: string; reusedSocket?: boolean };
        if (safe && attempt === 0 && e.reusedSocket && e.code === 'ECONNRESET') continue;
        if (err instanceof HttpError) throw err;
        if (e.code === 'HARRIER_ERR_PROXY_TIMEOUT') throw new HttpError(504, 'upstream timed out', { code: 'HARRIER_ERR_PROXY_TIMEOUT', cause: err });
        throw new HttpError(502, `upstream: ${e.message}`, { code: 'HARRIER_ERR_PROXY_UPSTREAM', cause: err });
      }
    }
  };

  /** One upstream request: resolves once the response head is in ctx.response. */
  const exchange = (ctx: Context, headers: Record<string, string | string[]>, bodiless: boolean): Promise<void> => new Promise((resolve, reject) => {
    const req = ctx.request;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let onTimeout = (): void => void upReq.destroy(timeoutError());
    const arm = (): void => {
      clearTimeout(timer);
      if (timeoutMs > 0) timer = setTimeout(() => onTimeout(), timeoutMs);
    };
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(err);
    };
    const upReq = client.request({
      protocol: base.protocol,
      hostname: base.hostname.replace(/^\[|\]$/g, ''),
      port: base.port || (secure ? 443 : 80),
      method: req.method,
      path: upstreamPath(base, req.target),
      headers,
      agent,
      setHost: false,
    });
    arm();
    upReq.on('error', (err) => fail(Object.assign(err, { reusedSocket: upReq.reusedSocket })));
    upReq.on('information', (info) => {
      // RFC 8297: 103 Early Hints are worth passing on; 100 Continue was ours to send already.
      if (info.statusCode === 103) ctx.response.sendInterim(103, endToEnd(rawPairs(info.rawHeaders), new Set()));
    });
    upReq.on('response', (upRes) => {
      if (settled) {
        upRes.destroy();
        return;
      }
      settled = true;
      const res = ctx.response;
      const pairs = endToEnd(rawPairs(upRes.rawHeaders), connectionOptions(upRes.headers.connection ? [upRes.headers.connection] : []));
      for (const [name] of pairs) res.headers.delete(name);
      for (const [name, value] of pairs) res.headers.append(name, value);
      ctx.status = upRes.statusCode ?? 502;
      if (req.method === 'HEAD') {
        clearTimeout(timer);
        upRes.resume();
        res.body = Readable.from([]);
        resolve();
        return;
      }
      // The body streams through; each chunk re-arms the silence timer. When our client is the
      // slow side the buffers are full, and that is not the upstream's fault.
      const body = new Transform({
        transform(chunk, _enc, cb) {
          arm();
          cb(null, chunk);
        },
      });
      onTimeout = () => {
        if (body.readableLength > 0 || body.writableLength > 0 || upRes.readableLength > 0) arm();
        else upRes.destroy(timeoutError());
      };
      arm();
      upRes.on('end', () => {
        clearTimeout(timer);
        const trailers = endToEnd(rawPairs(upRes.rawTrailers), new Set());
        if (trailers.length > 0) res.trailers = new Fields(trailers);
      });
      pipeline(upRes, body, () => clearTimeout(timer));
      res.body = body;
      resolve();
    });
    if (bodiless) {
      upReq.end();
      return;
    }
    // pipe(), not pipeline(): when the upstream fails, the client's request must live on to
    // receive the 502. A body that fails on our side (413 from the limits, a cancelled
    // upload) ends the upstream request and keeps its own error.
    req.body.on('error', (err) => {
      upReq.destroy();
      fail(err instanceof HttpError ? err : new HttpError(400, 'request body failed', { code: 'HARRIER_ERR_REQUEST_BODY', cause: err }));
    });
    req.body.on('data', arm); // an upload in progress is not a silent upstream
    req.body.pipe(upReq);
  });

  return Object.assign(middleware, { agent });
}
