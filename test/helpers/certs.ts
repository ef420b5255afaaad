import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface TestCert { dir: string; certFile: string; keyFile: string; cert: string; key: string }

/**
 * A throwaway ECDSA P-256 certificate for localhost, 127.0.0.1 and ::1, made by openssl so
 * that tests do not depend on the code under test to produce it.
 */
export function makeTestCert(kind: 'ec' | 'rsa' | 'ec-traditional' = 'ec'): TestCert {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'harrier-test-cert-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  const keyArgs = kind === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  const r = spawnSync('openssl', ['req', '-x509', ...keyArgs, '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '14', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1'],
  { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  if (kind === 'ec-traditional') {
    // "BEGIN EC PRIVATE KEY" (SEC 1) instead of PKCS#8.
    const t = spawnSync('openssl', ['ec', '-in', keyFile, '-out', keyFile], { encoding: 'utf8' });
    if (t.status !== 0) throw new Error(`openssl ec failed: ${t.stderr}`);
  }
  return { dir, certFile, keyFile, cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}
