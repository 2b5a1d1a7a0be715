/** Starts a real auth service (port 0) on a fresh SQLite or PostgreSQL database, plus a client. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Channel } from 'nice-grpc';
import { AuthServiceDefinition } from '../../gen/xerotier/auth/v1/auth_service.js';
import { createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import { startAuthService, type RunningAuthService } from '../../services/auth/src/start.js';
import { loadAuthConfig } from '../../services/auth/src/config.js';
import { testDatabaseEnv, type StoreKind } from '../support/auth-stores.js';
import { captureLogger, type CapturedLogs } from '../helpers/log-capture.js';

export const TEST_PEPPER = 'test-pepper-0123456789abcdef';
export const TEST_SERVICE_TOKEN = 'test-service-token';

export interface TestAuth {
  auth: RunningAuthService;
  address: string;
  client: AppClient<typeof AuthServiceDefinition>;
  channel: Channel;
  demoKey: string;
  logs: CapturedLogs;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startTestAuth(kind: StoreKind, extraEnv: Record<string, string> = {}): Promise<TestAuth> {
  const dir = mkdtempSync(path.join(tmpdir(), 'xero-auth-'));
  const database = await testDatabaseEnv(kind);
  const logs = captureLogger();
  const env: Record<string, string> = {
    AUTH_PORT: '0',
    AUTH_KEY_PEPPER: TEST_PEPPER,
    AUTH_DEMO_KEY_FILE: path.join(dir, 'demo-api-key'),
    SERVICE_TOKEN: TEST_SERVICE_TOKEN,
    ...database.env,
    ...extraEnv,
  };
  let auth: RunningAuthService;
  try {
    auth = await startAuthService(loadAuthConfig(env), { logger: logs.logger });
  } catch (err) {
    await database.cleanup();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const address = `127.0.0.1:${auth.port}`;
  const channel = createGrpcChannel(address);
  const client = createAppClient(AuthServiceDefinition, channel, { address, target: 'auth service', serviceToken: TEST_SERVICE_TOKEN });
  const demoKeyFile = env['AUTH_DEMO_KEY_FILE'] ?? '';
  const demoKey = env['AUTH_SEED_DEMO'] === 'false' ? '' : readFileSync(demoKeyFile, 'utf8').trim();
  return {
    auth,
    address,
    client,
    channel,
    demoKey,
    logs,
    env,
    async stop() {
      channel.close();
      await auth.stop();
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
