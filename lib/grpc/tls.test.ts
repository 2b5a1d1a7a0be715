/**
 * Internal gRPC over mutual TLS: a client with a certificate from the configured CA is served; a
 * client whose certificate comes from another CA, and a plaintext client, are refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient } from 'nice-grpc';
import { HealthCheckResponse_ServingStatus, HealthDefinition } from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import pino from 'pino';
import { makeTestCa } from '../../test/helpers/dev-certs.js';
import { createGrpcChannel } from './client.js';
import { createGrpcServer, setHealth, type GrpcServer } from './server.js';
import { grpcTls, type GrpcTlsFiles } from './tls.js';

describe('internal gRPC with mutual TLS', () => {
  let good: GrpcTlsFiles;
  let other: GrpcTlsFiles;
  let server: GrpcServer;
  let port: number;
  before(async () => {
    good = makeTestCa('platform');
    other = makeTestCa('stranger');
    server = createGrpcServer({ logger: pino({ level: 'silent' }), serviceNames: ['test.v1.Nothing'], tls: good });
    port = await server.listen('127.0.0.1', 0);
    setHealth(server.health, ['test.v1.Nothing'], true);
  });
  after(async () => server.shutdown(100));

  const check = async (tls: GrpcTlsFiles | undefined) => {
    const channel = createGrpcChannel(`127.0.0.1:${port}`, tls);
    try {
      return await createClient(HealthDefinition, channel).check({ service: '' }, { signal: AbortSignal.timeout(3000) });
    } finally {
      channel.close();
    }
  };

  it('serves a client whose certificate is signed by the configured CA', async () => {
    const res = await check(good);
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
  });

  it('refuses a client with a certificate from another CA', async () => {
    await assert.rejects(check(other));
  });

  it('refuses a plaintext client', async () => {
    await assert.rejects(check(undefined));
  });

  it('needs all three files or none', () => {
    assert.equal(grpcTls({}), undefined);
    assert.deepEqual(grpcTls({ GRPC_TLS_CA_FILE: 'a', GRPC_TLS_CERT_FILE: 'b', GRPC_TLS_KEY_FILE: 'c' }), { caFile: 'a', certFile: 'b', keyFile: 'c' });
    assert.throws(() => grpcTls({ GRPC_TLS_CA_FILE: 'a' }), /must be set together/);
  });
});
