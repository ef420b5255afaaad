// Development certificate: an ECDSA P-256 key and a short-lived self-signed X.509 v3
// certificate for localhost, built with node:crypto only. Short-lived (13 days by default)
// because Chromium accepts WebTransport serverCertificateHashes only for ECDSA
// certificates valid for at most 14 days.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as der from './der';

export interface DevCertificate {
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  notAfter: Date;
  /** SHA-256 of the DER certificate, lowercase hex: WebTransport serverCertificateHashes. */
  sha256Hex: string;
  /** SHA-256 of the DER SubjectPublicKeyInfo, base64: Chromium --ignore-certificate-errors-spki-list. */
  spkiSha256Base64: string;
  /** True if made by this call, false if an existing certificate was reused. */
  created: boolean;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const DEFAULT_HOSTS = ['localhost', '127.0.0.1', '::1'];

const OID = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return der.sequence(der.oid(id), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

function generalName(host: string): Buffer {
  const family = net.isIP(host);
  if (family === 0) return der.implicit(2, Buffer.from(host, 'ascii')); // dNSName
  return der.implicit(7, ipBytes(host, family)); // iPAddress
}

function ipBytes(ip: string, family: number): Buffer {
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  let text = ip.replace(/%.*$/, ''); // zone id
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text); // ::ffff:1.2.3.4
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number);
    text = text.slice(0, v4.index) + ((a << 8) | b).toString(16) + ':' + ((c << 8) | d).toString(16);
  }
  const split = (s: string): string[] => (s ? s.split(':') : []);
  let groups = split(text);
  if (text.includes('::')) {
    const [head, tail] = text.split('::').map(split);
    groups = [...head, ...Array<string>(8 - head.length - tail.length).fill('0'), ...tail];
  }
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function toPem(label: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Makes a new key and a self-signed certificate; nothing is written to disk. */
export function createDevCertificate(opts: { hosts?: string[]; days?: number; now?: Date } = {}): {
  certPem: string;
  keyPem: string;
  notAfter: Date;
} {
  const hosts = opts.hosts && opts.hosts.length > 0 ? opts.hosts : DEFAULT_HOSTS;
  const days = opts.days ?? 13;
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000) * 1000; // DER times have seconds
  const notBefore = new Date(now - HOUR);
  const notAfter = new Date(now + days * DAY);

  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const ecPoint = spki.subarray(spki.length - 65); // uncompressed P-256 point, end of the SPKI

  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive, and exactly 16 bytes

  const commonName = hosts.find((h) => net.isIP(h) === 0) ?? hosts[0];
  const name = der.sequence(
    der.set(der.sequence(der.oid(OID.organization), der.utf8String('Harrier development'))),
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String(commonName))),
  );
  const signatureAlgorithm = der.sequence(der.oid(OID.ecdsaWithSha256));

  const extensions = der.sequence(
    extension(OID.subjectAltName, false, der.sequence(...hosts.map(generalName))),
    extension(OID.basicConstraints, true, der.sequence()), // cA defaults to FALSE
    extension(OID.keyUsage, true, der.bitString(Buffer.from([0x80]), 7)), // digitalSignature
    extension(OID.extKeyUsage, false, der.sequence(der.oid(OID.serverAuth))),
    extension(OID.subjectKeyIdentifier, false, der.octetString(crypto.createHash('sha1').update(ecPoint).digest())),
  );

  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3
    der.integer(serial),
    signatureAlgorithm,
    name, // issuer
    der.sequence(der.time(notBefore), der.time(notAfter)),
    name, // subject
    spki,
    der.explicit(3, extensions),
  );
  const signature = crypto.sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const cert = der.sequence(tbs, signatureAlgorithm, der.bitString(signature));

  return {
    certPem: toPem('CERTIFICATE', cert),
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    notAfter,
  };
}

/** Per-user folder for the development certificate. */
export function devCertificateDir(): string {
  if (process.env.HARRIER_DEV_CERT_DIR) return process.env.HARRIER_DEV_CERT_DIR;
  const dataHome = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'harrier', 'dev-cert');
}

export function certificateFingerprints(certPem: string): { sha256Hex: string; spkiSha256Base64: string } {
  const x509 = new crypto.X509Certificate(certPem);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    sha256Hex: crypto.createHash('sha256').update(x509.raw).digest('hex'),
    spkiSha256Base64: crypto.createHash('sha256').update(spki).digest('base64'),
  };
}

/** The stored certificate if it is usable at `now` for at least another 24 hours. */
function readUsable(certFile: string, keyFile: string, now: Date): { certPem: string; keyPem: string; notAfter: Date } | null {
  try {
    const certPem = fs.readFileSync(certFile, 'utf8');
    const keyPem = fs.readFileSync(keyFile, 'utf8');
    const x509 = new crypto.X509Certificate(certPem);
    if (!x509.checkPrivateKey(crypto.createPrivateKey(keyPem))) return null;
    const notBefore = new Date(x509.validFrom);
    const notAfter = new Date(x509.validTo);
    if (isNaN(notBefore.getTime()) || isNaN(notAfter.getTime())) return null;
    if (notBefore.getTime() > now.getTime() || notAfter.getTime() - now.getTime() < DAY) return null;
    return { certPem, keyPem, notAfter };
  } catch {
    return null; // missing or unparsable
  }
}

function writeFileAtomic(file: string, data: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode); // the umask may have narrowed or the file may have existed
  fs.renameSync(tmp, file);
}

/**
 * Reuses cert.pem/key.pem in `dir` (default devCertificateDir()) unless missing, unparsable,
 * not matching, or expiring within 24 hours; then makes and stores a new pair.
 */
export function loadOrCreateDevCertificate(opts: { dir?: string; now?: Date } = {}): DevCertificate {
  const dir = opts.dir ?? devCertificateDir();
  const now = opts.now ?? new Date();
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');

  let created = false;
  let pair = readUsable(certFile, keyFile, now);
  if (!pair) {
    pair = createDevCertificate({ now });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(keyFile, pair.keyPem, 0o600);
    writeFileAtomic(certFile, pair.certPem, 0o644);
    created = true;
  }
  return { ...pair, certFile, keyFile, created, ...certificateFingerprints(pair.certPem) };
}

/** Multi-line text for the CLI: where the files are and how to make a browser accept them. */
export function trustInstructions(cert: DevCertificate, port: number): string {
  return [
    `Development certificate (ECDSA P-256, self-signed, valid until ${cert.notAfter.toISOString()}):`,
    `  certificate: ${cert.certFile}`,
    `  private key: ${cert.keyFile}`,
    ``,
    `Chromium, HTTP/3 without installing anything (QUIC ignores --ignore-certificate-errors):`,
    `  chromium --origin-to-force-quic-on=localhost:${port} \\`,
    `    --ignore-certificate-errors-spki-list=${cert.spkiSha256Base64} https://localhost:${port}/`,
    ``,
    `Chromium/Chrome on Linux, trust it in the user's NSS database (HTTP/1.1 and HTTP/2;`,
    `HTTP/3 still needs --origin-to-force-quic-on, since QUIC wants a built-in root):`,
    `  certutil -d sql:$HOME/.pki/nssdb -A -t "P,," -n harrier-dev -i ${cert.certFile}`,
    ``,
    `Node.js clients: pass the certificate as a CA, e.g. NODE_EXTRA_CA_CERTS=${cert.certFile}`,
    ``,
    `WebTransport from a page, no flags needed:`,
    `  new WebTransport('https://localhost:${port}/', { serverCertificateHashes: [{ algorithm: 'sha-256',`,
    `    value: Uint8Array.from('${cert.sha256Hex}'.match(/../g).map((h) => parseInt(h, 16))) }] })`,
    ``,
    `The certificate is renewed automatically a day before it expires; the hash and the SPKI`,
    `value change with it.`,
  ].join('\n');
}
