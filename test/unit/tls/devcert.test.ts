import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  certificateFingerprints,
  createDevCertificate,
  devCertificateDir,
  loadOrCreateDevCertificate,
  trustInstructions,
} from '../../../src/tls/devcert';
import * as der from '../../../src/tls/der';

const DAY = 24 * 3600_000;

function openssl(args: string[], input?: Buffer | string): Buffer {
  const r = spawnSync('openssl', args, { input });
  assert.equal(r.status, 0, `openssl ${args.join(' ')} failed: ${r.stderr?.toString()}`);
  return r.stdout;
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-devcert-'));
  tempDirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/** TLS handshake against a server using the pair; resolves with the client socket's view. */
function handshake(
  pair: { certPem: string; keyPem: string },
  client: tls.ConnectionOptions,
): Promise<{ authorized: boolean; error?: Error; peer: tls.PeerCertificate }> {
  const server = tls.createServer({ cert: pair.certPem, key: pair.keyPem }, (s) => s.end());
  return new Promise((resolve, reject) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const socket = tls.connect({ host: '127.0.0.1', port, ca: pair.certPem, ...client }, () => {
        resolve({ authorized: socket.authorized, peer: socket.getPeerCertificate() });
        socket.end();
        server.close();
      });
      socket.on('error', (error) => {
        server.close();
        reject(error);
      });
    });
  });
}

describe('tls/der', () => {
  it('encodes lengths, integers and OIDs in DER', () => {
    assert.equal(der.integer(0).toString('hex'), '020100');
    assert.equal(der.integer(2).toString('hex'), '020102');
    assert.equal(der.integer(128).toString('hex'), '02020080');
    assert.equal(der.integer(Buffer.from([0, 0, 0x7f])).toString('hex'), '02017f');
    assert.equal(der.oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
    assert.equal(der.octetString(Buffer.alloc(200)).subarray(0, 3).toString('hex'), '0481c8');
    assert.equal(der.octetString(Buffer.alloc(300)).subarray(0, 4).toString('hex'), '0482012c');
  });

  it('writes UTCTime before 2050 and GeneralizedTime after', () => {
    assert.equal(der.time(new Date('2030-01-02T03:04:05.678Z')).toString('latin1'), '\x17\x0d300102030405Z');
    assert.equal(der.time(new Date('2050-01-02T03:04:05Z')).toString('latin1'), '\x18\x0f20500102030405Z');
  });
});

describe('tls/devcert', () => {
  // Made when mocha loads the file, which may be minutes before these tests run.
  const madeAt = Date.now();
  const made = createDevCertificate();
  const x509 = new crypto.X509Certificate(made.certPem);

  it('makes a self-signed ECDSA P-256 certificate for localhost that node:crypto accepts', () => {
    assert.match(x509.subject, /CN=localhost/);
    assert.match(x509.subject, /O=Harrier development/);
    assert.equal(x509.issuer, x509.subject);
    const san = x509.subjectAltName ?? '';
    assert.match(san, /DNS:localhost/);
    assert.match(san, /IP Address:127\.0\.0\.1/);
    assert.match(san, /IP Address:0:0:0:0:0:0:0:1|IP Address:::1/i);
    assert.equal(x509.publicKey.asymmetricKeyType, 'ec');
    assert.equal(x509.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(x509.verify(x509.publicKey), true);
    assert.equal(x509.checkPrivateKey(crypto.createPrivateKey(made.keyPem)), true);
    assert.equal(x509.ca, false);
    assert.match(x509.serialNumber, /^[0-7][0-9A-F]{31}$/); // positive, 16 bytes
    assert.match(made.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('is valid from an hour ago for 13 days, at most 14 days in all (Chromium serverCertificateHashes)', () => {
    const from = new Date(x509.validFrom).getTime();
    const to = new Date(x509.validTo).getTime();
    assert.equal(to, made.notAfter.getTime());
    // notBefore is an hour before creation, in whole seconds.
    assert.ok(from <= madeAt - 3599_000 && from >= madeAt - 3601_000, `notBefore ${x509.validFrom}`);
    assert.ok(to <= madeAt + 14 * DAY);
    assert.ok(to - from <= 14 * DAY);
    assert.ok(to >= madeAt + 13 * DAY - 60_000);
  });

  it('each call makes a new key and serial', () => {
    const other = createDevCertificate();
    assert.notEqual(other.keyPem, made.keyPem);
    assert.notEqual(new crypto.X509Certificate(other.certPem).serialNumber, x509.serialNumber);
  });

  it('honours hosts, days and now', () => {
    const now = new Date('2031-05-06T07:08:09.999Z');
    const pair = createDevCertificate({ hosts: ['dev.example', '10.1.2.3', 'fe80::1:2', '::ffff:192.0.2.1'], days: 2, now });
    const cert = new crypto.X509Certificate(pair.certPem);
    assert.match(cert.subject, /CN=dev\.example/);
    assert.match(cert.subjectAltName ?? '', /DNS:dev\.example/);
    assert.match(cert.subjectAltName ?? '', /IP Address:10\.1\.2\.3/);
    assert.match(cert.subjectAltName ?? '', /IP Address:FE80:0:0:0:0:0:1:2/i);
    assert.equal(tls.checkServerIdentity('fe80::1:2', { subjectaltname: cert.subjectAltName } as tls.PeerCertificate), undefined);
    assert.equal(tls.checkServerIdentity('::ffff:192.0.2.1', { subjectaltname: cert.subjectAltName } as tls.PeerCertificate), undefined);
    assert.equal(pair.notAfter.toISOString(), '2031-05-08T07:08:09.000Z');
    assert.equal(new Date(cert.validFrom).toISOString(), '2031-05-06T06:08:09.000Z');
  });

  it('openssl parses it', () => {
    const text = openssl(['x509', '-noout', '-text'], made.certPem).toString();
    assert.match(text, /ecdsa-with-SHA256/);
    assert.match(text, /X509v3 Subject Alternative Name/);
    assert.match(text, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature/);
    assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication/);
    assert.match(text, /X509v3 Subject Key Identifier/);
    assert.match(text, /Version: 3/);
    // openssl also verifies the self-signature
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'cert.pem'), made.certPem);
    const verified = openssl(['verify', '-CAfile', path.join(dir, 'cert.pem'), path.join(dir, 'cert.pem')]).toString();
    assert.match(verified, /OK/);
  });

  it('completes a TLS handshake verified by name (localhost)', async () => {
    const r = await handshake(made, { servername: 'localhost' });
    assert.equal(r.authorized, true);
    assert.equal(r.peer.subject.CN, 'localhost');
  });

  it('completes a TLS handshake verified by IP SAN (127.0.0.1) and matches ::1', async () => {
    let checkedHost = '';
    const r = await handshake(made, {
      checkServerIdentity: (host, cert) => {
        checkedHost = host;
        return tls.checkServerIdentity(host, cert);
      },
    });
    assert.equal(r.authorized, true);
    assert.equal(checkedHost, '127.0.0.1');
    assert.equal(tls.checkServerIdentity('127.0.0.1', r.peer), undefined);
    assert.equal(tls.checkServerIdentity('::1', r.peer), undefined);
    assert.ok(tls.checkServerIdentity('example.com', r.peer) instanceof Error);
    assert.ok(tls.checkServerIdentity('127.0.0.2', r.peer) instanceof Error);
  });

  it('a client without the CA rejects it', async () => {
    await assert.rejects(handshake(made, { servername: 'localhost', ca: undefined }), /self[- ]signed/i);
  });

  it('fingerprints match openssl', () => {
    const fp = certificateFingerprints(made.certPem);
    const certDer = openssl(['x509', '-outform', 'der'], made.certPem);
    const hash = openssl(['dgst', '-sha256', '-r'], certDer).toString().split(' ')[0];
    assert.equal(fp.sha256Hex, hash);
    assert.match(fp.sha256Hex, /^[0-9a-f]{64}$/);
    const pub = openssl(['x509', '-pubkey', '-noout'], made.certPem);
    const spkiDer = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
    const spki = openssl(['dgst', '-sha256', '-binary'], spkiDer).toString('base64');
    assert.equal(fp.spkiSha256Base64, spki);
  });
});

describe('tls/devcert storage', () => {
  it('creates, then reuses, the pair in the folder, key 0600 and folder 0700', () => {
    const dir = path.join(tempDir(), 'nested', 'dev-cert');
    const first = loadOrCreateDevCertificate({ dir });
    assert.equal(first.created, true);
    assert.equal(first.certFile, path.join(dir, 'cert.pem'));
    assert.equal(first.keyFile, path.join(dir, 'key.pem'));
    assert.equal(fs.readFileSync(first.certFile, 'utf8'), first.certPem);
    assert.equal(fs.readFileSync(first.keyFile, 'utf8'), first.keyPem);
    if (process.platform !== 'win32') {
      assert.equal(fs.statSync(first.keyFile).mode & 0o777, 0o600);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    }
    assert.deepEqual(
      { sha256Hex: first.sha256Hex, spkiSha256Base64: first.spkiSha256Base64 },
      certificateFingerprints(first.certPem),
    );
    assert.deepEqual(fs.readdirSync(dir).sort(), ['cert.pem', 'key.pem']);

    const second = loadOrCreateDevCertificate({ dir });
    assert.equal(second.created, false);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
    assert.equal(second.sha256Hex, first.sha256Hex);
    assert.equal(second.notAfter.getTime(), first.notAfter.getTime());
  });

  it('renews a certificate that has expired or expires within 24 hours', () => {
    const dir = tempDir();
    const first = loadOrCreateDevCertificate({ dir });
    const later = (ms: number) => new Date(first.notAfter.getTime() - ms);
    assert.equal(loadOrCreateDevCertificate({ dir, now: later(2 * DAY) }).created, false);
    const renewed = loadOrCreateDevCertificate({ dir, now: later(12 * 3600_000) });
    assert.equal(renewed.created, true);
    assert.notEqual(renewed.sha256Hex, first.sha256Hex);
    const farFuture = loadOrCreateDevCertificate({ dir, now: new Date('2100-01-01T00:00:00Z') });
    assert.equal(farFuture.created, true);
    assert.equal(new crypto.X509Certificate(farFuture.certPem).validTo.includes('2100'), true);
    assert.equal(fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8'), farFuture.certPem);
    // and the stored one is reused at that time
    assert.equal(loadOrCreateDevCertificate({ dir, now: new Date('2100-01-02T00:00:00Z') }).created, false);
  });

  it('renews an unparsable, missing or mismatched pair', () => {
    const dir = tempDir();
    const first = loadOrCreateDevCertificate({ dir });
    fs.writeFileSync(first.certFile, 'not a certificate');
    const second = loadOrCreateDevCertificate({ dir });
    assert.equal(second.created, true);

    fs.unlinkSync(second.keyFile);
    const third = loadOrCreateDevCertificate({ dir });
    assert.equal(third.created, true);

    fs.writeFileSync(third.keyFile, createDevCertificate().keyPem); // a key of another certificate
    const fourth = loadOrCreateDevCertificate({ dir });
    assert.equal(fourth.created, true);
    assert.equal(new crypto.X509Certificate(fourth.certPem).checkPrivateKey(crypto.createPrivateKey(fourth.keyPem)), true);
    if (process.platform !== 'win32') assert.equal(fs.statSync(fourth.keyFile).mode & 0o777, 0o600);
  });

  it('devCertificateDir follows HARRIER_DEV_CERT_DIR, then XDG_DATA_HOME, then ~/.local/share', () => {
    const saved = { a: process.env.HARRIER_DEV_CERT_DIR, b: process.env.XDG_DATA_HOME };
    try {
      process.env.HARRIER_DEV_CERT_DIR = '/x/certs';
      process.env.XDG_DATA_HOME = '/y/data';
      assert.equal(devCertificateDir(), '/x/certs');
      delete process.env.HARRIER_DEV_CERT_DIR;
      assert.equal(devCertificateDir(), path.join('/y/data', 'harrier', 'dev-cert'));
      delete process.env.XDG_DATA_HOME;
      assert.equal(devCertificateDir(), path.join(os.homedir(), '.local', 'share', 'harrier', 'dev-cert'));
    } finally {
      for (const [k, v] of [['HARRIER_DEV_CERT_DIR', saved.a], ['XDG_DATA_HOME', saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('trustInstructions names the files, the port, the SPKI flag, certutil and the hash', () => {
    const cert = loadOrCreateDevCertificate({ dir: tempDir() });
    const text = trustInstructions(cert, 4433);
    assert.ok(text.includes(cert.certFile));
    assert.ok(text.includes(cert.keyFile));
    assert.ok(text.includes(`--ignore-certificate-errors-spki-list=${cert.spkiSha256Base64}`));
    assert.ok(text.includes('--origin-to-force-quic-on=localhost:4433'));
    assert.ok(text.includes(`certutil -d sql:$HOME/.pki/nssdb -A -t "P,," -n harrier-dev -i ${cert.certFile}`));
    assert.ok(text.includes(cert.sha256Hex));
    assert.ok(text.split('\n').length > 5);
  });
});
