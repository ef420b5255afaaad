import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/config';
import { createServer } from '../../src';
import { makeTestCert } from '../helpers/certs';
import { h1 } from './server-util';

describe('server config file (loadConfig)', function () {
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-config-'));
    const cert = makeTestCert();
    fs.mkdirSync(path.join(dir, 'certs'));
    fs.copyFileSync(cert.certFile, path.join(dir, 'certs', 'cert.pem'));
    fs.copyFileSync(cert.keyFile, path.join(dir, 'certs', 'key.pem'));
  });

  const write = (name: string, value: unknown): string => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
    return f;
  };

  it('reads every option with the ServerOptions shape; file paths are relative to the config file', () => {
    const file = write('full.json', {
      endpoints: [{ host: '127.0.0.1', port: 8443, protocols: ['h3', 'h2'], altSvc: false }, { port: 8080, tls: false }, { path: 'run/h.sock' }],
      tls: { cert: 'certs/cert.pem', key: 'certs/key.pem' },
      limits: { maxRequestBodySize: 1_000_000, maxRequestHeaderCount: 50, maxConnections: 10, minRequestBodyDataRate: 0 },
      quic: { retry: true, qlogDir: 'qlog', congestionControl: 'bbr2', h3: { qpackMaxTableCapacity: 0 } },
      shutdownTimeoutMs: 5000,
      metrics: { path: '/stats' },
    });
    const o = loadConfig(file);
    assert.deepEqual(o, {
      endpoints: [{ host: '127.0.0.1', port: 8443, protocols: ['h3', 'h2'], altSvc: false }, { port: 8080, tls: false }, { path: path.join(dir, 'run', 'h.sock') }],
      tls: { cert: path.join(dir, 'certs', 'cert.pem'), key: path.join(dir, 'certs', 'key.pem') },
      limits: { maxRequestBodySize: 1_000_000, maxRequestHeaderCount: 50, maxConnections: 10, minRequestBodyDataRate: 0 },
      quic: { retry: true, qlogDir: path.join(dir, 'qlog'), congestionControl: 'bbr2', h3: { qpackMaxTableCapacity: 0 } },
      shutdownTimeoutMs: 5000,
      metrics: { path: '/stats' },
    });
  });

  it('reads several certificates with hosts', () => {
    const o = loadConfig(write('sni.json', { tls: { certificates: [
      { cert: 'certs/cert.pem', key: 'certs/key.pem', hosts: ['a.example', '*.b.example'] },
      { cert: 'certs/cert.pem', key: 'certs/key.pem' },
    ] }, metrics: true }));
    assert.deepEqual(o.tls, { certificates: [
      { cert: path.join(dir, 'certs', 'cert.pem'), key: path.join(dir, 'certs', 'key.pem'), hosts: ['a.example', '*.b.example'] },
      { cert: path.join(dir, 'certs', 'cert.pem'), key: path.join(dir, 'certs', 'key.pem') },
    ] });
    assert.equal(o.metrics, true);
  });

  const bad: Array<[string, unknown, string]> = [
    ['body size', { limits: { maxRequestBodySize: -1 } }, 'bad.json: limits.maxRequestBodySize must be a positive integer (got -1)'],
    ['fraction', { limits: { keepAliveTimeoutMs: 1.5 } }, 'bad.json: limits.keepAliveTimeoutMs must be a positive integer (got 1.5)'],
    ['string for a number', { shutdownTimeoutMs: '10s' }, 'bad.json: shutdownTimeoutMs must be a non-negative integer (got "10s")'],
    ['unknown top-level key', { endpoint: [] }, 'bad.json: endpoint is not a known option (known here: endpoints, tls, limits, quic, shutdownTimeoutMs, metrics)'],
    ['unknown nested key', { limits: { maxBody: 1 } }, 'bad.json: limits.maxBody is not a known option'],
    ['port range', { endpoints: [{ port: 70000 }] }, 'bad.json: endpoints[0].port must be an integer from 0 to 65535 (got 70000)'],
    ['protocol', { endpoints: [{ protocols: ['h3', 'spdy'] }] }, 'bad.json: endpoints[0].protocols[1] must be one of "h3", "h2", "http/1.1" (got "spdy")'],
    ['path and port', { endpoints: [{ path: 'x.sock', port: 80 }] }, 'bad.json: endpoints[0] takes either path (a Unix socket) or host/port, not both'],
    ['missing key file', { tls: { cert: 'certs/cert.pem' } }, 'bad.json: tls.key is required'],
    ['cert not found', { tls: { cert: 'nope.pem', key: 'certs/key.pem' } }, 'bad.json: tls.cert file not found:'],
    ['empty certificates', { tls: { certificates: [] } }, 'bad.json: tls.certificates must not be empty'],
    ['boolean', { quic: { retry: 'yes' } }, 'bad.json: quic.retry must be true or false (got "yes")'],
    ['congestion control', { quic: { congestionControl: 'vegas' } }, 'bad.json: quic.congestionControl must be one of "cubic", "reno", "bbr2" (got "vegas")'],
    ['metrics path', { metrics: { path: 'metrics' } }, 'bad.json: metrics.path must start with "/" (got "metrics")'],
    ['not an object', [1, 2], 'bad.json: the top level must be an object'],
  ];
  for (const [what, value, message] of bad) {
    it(`rejects ${what} with a one-line message`, () => {
      const file = write('bad.json', value);
      assert.throws(() => loadConfig(file), (e: Error) => {
        assert.ok(e instanceof ConfigError);
        assert.equal((e as ConfigError).code, 'HARRIER_ERR_CONFIG');
        assert.ok(e.message.startsWith(message), `${e.message}\n  should start with\n${message}`);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
    });
  }

  it('reports bad JSON and a missing file in one line', () => {
    assert.throws(() => loadConfig(write('broken.json', '{ "limits": ')), /^ConfigError: broken\.json: not valid JSON \(.+\)$/);
    assert.throws(() => loadConfig(path.join(dir, 'absent.json')), /^ConfigError: absent\.json: cannot read .+absent\.json \(ENOENT\)$/);
  });

  it('parseConfig takes an object already parsed', () => {
    assert.deepEqual(parseConfig({ limits: { maxConnections: 5 } }), { limits: { maxConnections: 5 } });
  });

  it('a server built from a config file serves with its limits', async () => {
    const file = write('run.json', { endpoints: [{ host: '127.0.0.1', port: 0, tls: false }], limits: { maxRequestLineSize: 100 }, metrics: {} });
    const server = createServer(loadConfig(file));
    server.get('/a', (ctx) => {
      ctx.body = 'a';
    });
    const [addr] = await server.listen();
    try {
      assert.equal((await h1(`${addr.url}a`, { agent: false })).status, 200);
      assert.equal((await h1(`${addr.url}a?${'x'.repeat(200)}`, { agent: false })).status, 414);
      assert.match((await h1(`${addr.url}metrics`, { agent: false })).body, /harrier_requests_total\{protocol="http\/1\.1",status="414"\} 1/);
    } finally {
      await server.close({ timeoutMs: 500 });
    }
  });

  it('programmatic options are checked the same way for limits', () => {
    assert.throws(() => createServer({ limits: { maxRequestBodySize: -5 } }), /limits\.maxRequestBodySize must be a non-negative integer \(got -5\)/);
  });
});
