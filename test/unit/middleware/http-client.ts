import * as http2 from 'node:http2';
import * as https from 'node:https';
import { createServer, type Server } from '../../../src/server';
import { makeTestCert, type TestCert } from '../../helpers/certs';

/** The TCP protocols the middleware tests run over (HTTP/3 is in test/integration/middleware-h3.test.ts). */
export const PROTOCOLS = ['http/1.1', 'h2'] as const;
export type TcpProtocol = (typeof PROTOCOLS)[number];

export interface Reply {
  status: number;
  /** Lowercase names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** The protocol the server saw, when the test echoes it; otherwise the one asked for. */
  protocol: TcpProtocol;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
}

let cert: TestCert | undefined;

/** A real Harrier server on 127.0.0.1 (HTTP/2 + HTTP/1.1 over TLS) and clients for it. */
export class TestServer {
  private session: http2.ClientHttp2Session | undefined;

  private constructor(readonly server: Server, readonly port: number) {}

  static async start(setup: (server: Server) => void): Promise<TestServer> {
    cert ??= makeTestCert();
    const server = createServer({ endpoints: [{ host: '127.0.0.1', port: 0, protocols: ['h2', 'http/1.1'] }], tls: { cert: cert.cert, key: cert.key } });
    server.on('error', () => undefined);
    setup(server);
    await server.listen();
    return new TestServer(server, server.tcpListeners[0].port);
  }

  request(protocol: TcpProtocol, path: string, options: RequestOptions = {}): Promise<Reply> {
    return protocol === 'h2' ? this.h2(path, options) : this.h1(path, options);
  }

  private h1(path: string, o: RequestOptions): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1', port: this.port, method: o.method ?? 'GET', path, headers: o.headers,
        rejectUnauthorized: false, agent: false,
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(parts), protocol: 'http/1.1' });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(o.body);
    });
  }

  private h2(path: string, o: RequestOptions): Promise<Reply> {
    if (!this.session || this.session.closed || this.session.destroyed) {
      this.session = http2.connect(`https://127.0.0.1:${this.port}`, { rejectUnauthorized: false });
      this.session.on('error', () => undefined);
    }
    const session = this.session;
    return new Promise((resolve, reject) => {
      const stream = session.request({ ':method': o.method ?? 'GET', ':path': path, ...o.headers }, { endStream: o.body === undefined });
      let status = 0;
      const headers: Record<string, string> = {};
      stream.on('response', (h) => {
        status = Number(h[':status']);
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
      });
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => resolve({ status, headers, body: Buffer.concat(parts), protocol: 'h2' }));
      stream.on('error', reject);
      if (o.body !== undefined) stream.end(o.body);
    });
  }

  async close(): Promise<void> {
    this.session?.close();
    await this.server.close({ timeoutMs: 1000 });
  }
}
