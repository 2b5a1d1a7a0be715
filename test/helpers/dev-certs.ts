/**
 * A throwaway certificate authority for TLS tests: a CA and one certificate for 127.0.0.1 and
 * localhost (usable as server and client certificate), made with the openssl command line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { GrpcTlsFiles } from '../../lib/grpc/tls.js';

export function makeTestCa(name: string): GrpcTlsFiles {
  const dir = mkdtempSync(path.join(tmpdir(), `ca-${name}-`));
  const p = (f: string): string => path.join(dir, f);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name} test CA`,
    '-keyout', p('ca.key'), '-out', p('ca.pem'));
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name} service`, '-keyout', p('tls.key'), '-out', p('tls.csr'));
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  ssl('x509', '-req', '-in', p('tls.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('tls.pem'));
  return { caFile: p('ca.pem'), certFile: p('tls.pem'), keyFile: p('tls.key') };
}
