/**
 * TLS for internal gRPC, by configuration. With the three files set, every server requires
 * mutual TLS (clients must present a certificate signed by the CA) and every client verifies the
 * server's certificate against the same CA and presents its own. With none set, internal gRPC is
 * plaintext (the embedded default on 127.0.0.1; the service token still applies).
 *
 * Environment (read by each process's config): GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE,
 * GRPC_TLS_KEY_FILE — PEM files; all three or none.
 */
import { readFileSync } from 'node:fs';
import { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import { z } from 'zod';

export interface GrpcTlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** The TLS part of a process's config schema: spread into its zod object, then `grpcTls(config)`. */
export const grpcTlsEnv = {
  GRPC_TLS_CA_FILE: z.string().min(1).optional(),
  GRPC_TLS_CERT_FILE: z.string().min(1).optional(),
  GRPC_TLS_KEY_FILE: z.string().min(1).optional(),
};

type TlsEnv = { GRPC_TLS_CA_FILE?: string | undefined; GRPC_TLS_CERT_FILE?: string | undefined; GRPC_TLS_KEY_FILE?: string | undefined };

/** The configured files, undefined when TLS is off; a partial set is a configuration error. */
export function grpcTls(env: TlsEnv): GrpcTlsFiles | undefined {
  const files = [env.GRPC_TLS_CA_FILE, env.GRPC_TLS_CERT_FILE, env.GRPC_TLS_KEY_FILE];
  if (files.every((f) => f === undefined)) return undefined;
  if (files.some((f) => f === undefined)) {
    throw new Error('invalid configuration: GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE must be set together');
  }
  return { caFile: env.GRPC_TLS_CA_FILE!, certFile: env.GRPC_TLS_CERT_FILE!, keyFile: env.GRPC_TLS_KEY_FILE! };
}

export function serverCredentials(tls: GrpcTlsFiles | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    readFileSync(tls.caFile),
    [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }],
    true,
  );
}

export function channelCredentials(tls: GrpcTlsFiles | undefined): ChannelCredentials {
  if (!tls) return ChannelCredentials.createInsecure();
  return ChannelCredentials.createSsl(readFileSync(tls.caFile), readFileSync(tls.keyFile), readFileSync(tls.certFile));
}
