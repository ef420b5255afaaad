// Small node:http / node:http2 / node:https clients for the server-*.test.ts files.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: string; error?: string }

/** One HTTP/1.1 request (http or https by URL), collecting the whole response. */
export function h1(url: string, options: https.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const { body, ...opts } = options;
    const req = mod.request(url, { rejectUnauthorized: false, ...opts }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An HTTP/1.1 request over a Unix socket. */
export function unixGet(socketPath: string, target: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: target }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request on a new session (closed afterwards). */
export async function h2(origin: string, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply> {
  const session = http2.connect(origin, { rejectUnauthorized: false });
  try {
    return await h2On(session, headers, body);
  } finally {
    session.close();
  }
}

/** One HTTP/2 request on an existing session; a reset stream resolves with `error`. */
export function h2On(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    session.once('error', onError);
    const stream = session.request(headers, { endStream: body === undefined });
    let status = 0;
    let head: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      head = h as Record<string, string | string[] | undefined>;
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('close', () => session.off('error', onError));
    stream.on('end', () => resolve({ status, headers: head, body: Buffer.concat(chunks).toString() }));
    stream.on('error', (e: Error) => resolve({ status, headers: head, body: Buffer.concat(chunks).toString(), error: (e as NodeJS.ErrnoException).code ?? e.message }));
    if (body !== undefined) stream.end(body);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
