import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { delay } from 'abort-controller-x';
import { createChannel, createClient, createServer, ServerError, Status, type CallContext } from 'nice-grpc';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthDefinition,
} from 'nice-grpc-server-health/lib/proto/grpc/health/v1/health.js';
import { sampleValue } from '../../test/helpers/exposition.js';
import { createGrpcServerMetrics, grpcMetricsMiddleware, statusOfError } from './grpc.js';
import { createRegistry } from './registry.js';

const CHECK = '/grpc.health.v1.Health/Check';
const WATCH = '/grpc.health.v1.Health/Watch';

/** A hand-written Health service whose behaviour depends on the requested service name. */
const impl = {
  async check(request: { service: string }) {
    if (request.service === 'missing') throw new ServerError(Status.NOT_FOUND, 'unknown service');
    if (request.service === 'boom') throw new Error('unexpected');
    return { status: ServingStatus.SERVING };
  },
  async *watch(_request: { service: string }, context: CallContext) {
    yield { status: ServingStatus.SERVING };
    await delay(context.signal, 60_000);
  },
};

async function withServer(
  metrics: Parameters<typeof grpcMetricsMiddleware>[0],
  run: (client: ReturnType<typeof createClient<typeof HealthDefinition>>) => Promise<void>,
): Promise<void> {
  const server = createServer().use(grpcMetricsMiddleware(metrics));
  server.add(HealthDefinition, impl);
  const port = await server.listen('127.0.0.1:0');
  const channel = createChannel(`127.0.0.1:${port}`);
  try {
    await run(createClient(HealthDefinition, channel));
  } finally {
    channel.close();
    await server.shutdown();
  }
}

function serverMetrics() {
  const registry = createRegistry('auth', { defaultMetrics: false });
  return { registry, ...createGrpcServerMetrics(registry) };
}

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('condition not reached');
}

describe('grpcMetricsMiddleware', () => {
  it('counts completed calls by method and status name', async () => {
    const m = serverMetrics();
    await withServer(m, async (client) => {
      await client.check({ service: '' });
      await client.check({ service: 'x' });
      await assert.rejects(client.check({ service: 'missing' }), (err: { code?: Status }) => err.code === Status.NOT_FOUND);
      await assert.rejects(client.check({ service: 'boom' }), (err: { code?: Status }) => err.code === Status.UNKNOWN);
    });
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'grpc_server_handled_total', { method: CHECK, code: 'OK', service: 'auth' }), 2);
    assert.equal(sampleValue(text, 'grpc_server_handled_total', { method: CHECK, code: 'NOT_FOUND' }), 1);
    assert.equal(sampleValue(text, 'grpc_server_handled_total', { method: CHECK, code: 'UNKNOWN' }), 1);
  });

  it('counts a server stream the client cancels as CANCELLED', async () => {
    const m = serverMetrics();
    await withServer(m, async (client) => {
      const abort = new AbortController();
      const stream = client.watch({ service: '' }, { signal: abort.signal });
      for await (const update of stream) {
        assert.equal(update.status, ServingStatus.SERVING);
        abort.abort();
      }
    }).catch((err: unknown) => {
      if (!(err instanceof Error && err.name === 'AbortError')) throw err;
    });
    await until(async () => sampleValue(await m.registry.metrics(), 'grpc_server_handled_total', { method: WATCH }) !== undefined);
    const text = await m.registry.metrics();
    assert.equal(sampleValue(text, 'grpc_server_handled_total', { method: WATCH, code: 'CANCELLED' }), 1);
  });

  it('passes calls through when metrics are not configured', async () => {
    await withServer(undefined, async (client) => {
      assert.deepEqual(await client.check({ service: '' }), { status: ServingStatus.SERVING });
    });
  });

  it('statusOfError maps ServerError, abort and anything else', () => {
    assert.equal(statusOfError(new ServerError(Status.RESOURCE_EXHAUSTED, 'full')), Status.RESOURCE_EXHAUSTED);
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    assert.equal(statusOfError(abort), Status.CANCELLED);
    assert.equal(statusOfError(new TypeError('x')), Status.UNKNOWN);
  });
});
