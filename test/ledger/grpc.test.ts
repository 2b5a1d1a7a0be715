/** The ledger service over real gRPC on both stores: idempotent writes, validation, retention. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { GroupBy, LedgerServiceDefinition, type UsageRecord } from '../../gen/xerotier/ledger/v1/ledger_service.js';
import { isAppError } from '../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../lib/grpc/client.js';
import { createLogger } from '../../lib/logging/logger.js';
import { loadLedgerConfig } from '../../services/ledger/src/config.js';
import { startLedgerService, type RunningLedgerService } from '../../services/ledger/src/start.js';
import { STORE_KINDS, createPgSchema, PG_TEST_URL } from './helpers.js';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);

const rec = (requestId: string, startTime: Date, extra: Partial<UsageRecord> = {}): UsageRecord => ({
  requestId,
  projectId: 'proj_a',
  endpoint: 'chat',
  keyId: 'key_a',
  model: 'm',
  workerId: 'cpu-1',
  hardwarePool: 'cpu',
  tier: 'cpu_standard',
  httpStatus: 200,
  errorCode: '',
  promptTokens: 3,
  completionTokens: 4,
  cachedTokens: 0,
  timeToFirstTokenMs: 5,
  durationMs: 9,
  startTime,
  cancelled: false,
  ...extra,
});

for (const kind of STORE_KINDS) {
  describe(`ledger gRPC service (${kind})`, () => {
    let ledger: RunningLedgerService;
    let client: AppClient<typeof LedgerServiceDefinition>;
    let close: () => Promise<void>;
    before(async () => {
      let env: Record<string, string> = { LEDGER_SQLITE_PATH: ':memory:' };
      let drop = async (): Promise<void> => undefined;
      if (kind === 'postgres') {
        const s = await createPgSchema();
        env = { LEDGER_DATABASE_URL: PG_TEST_URL, LEDGER_DATABASE_SCHEMA: s.schema };
        drop = s.drop;
      }
      ledger = await startLedgerService(
        loadLedgerConfig({ LEDGER_PORT: '0', LEDGER_RETENTION_DAYS: '30', ...env }),
        { logger: createLogger('ledger', 'silent'), now: () => NOW },
      );
      const channel = createGrpcChannel(`127.0.0.1:${ledger.port}`);
      client = createAppClient(LedgerServiceDefinition, channel, { address: '', target: 'ledger' });
      close = async () => {
        channel.close();
        await ledger.stop();
        await drop();
      };
    });
    after(async () => {
      await close?.();
    });

    it('a batch sent twice is stored once', async () => {
      const batch = [rec('r1', new Date(NOW - 1000)), rec('r2', new Date(NOW - 500))];
      assert.deepEqual(await client.writeRecords({ records: batch }, callOptions('t')), { inserted: 2, duplicates: 0 });
      assert.deepEqual(await client.writeRecords({ records: batch }, callOptions('t')), { inserted: 0, duplicates: 2 });
      const page = await client.listRecords({ projectId: 'proj_a', startTime: new Date(0), endTime: new Date(NOW), pageSize: 10, after: '' }, callOptions('t'));
      assert.deepEqual(page.records.map((r) => r.requestId), ['r1', 'r2']);
      assert.deepEqual(page.records[0], batch[0]);
    });

    it('refuses malformed calls with INVALID_ARGUMENT naming the field', async () => {
      const refused = async (call: Promise<unknown>, param: string) =>
        assert.rejects(call, (err: unknown) => isAppError(err) && err.kind === 'invalid_request' && err.message.includes(param));
      await refused(client.writeRecords({ records: [rec('', new Date(NOW))] }, callOptions('t')), 'request_id');
      await refused(client.writeRecords({ records: [rec('x', new Date(NOW), { httpStatus: 7 })] }, callOptions('t')), 'http_status');
      await refused(client.writeRecords({ records: [rec('x', new Date(NOW), { promptTokens: -1 })] }, callOptions('t')), 'prompt_tokens');
      const q = { projectId: 'proj_a', startTime: new Date(0), endTime: new Date(NOW), pageSize: 10, after: '' };
      await refused(client.queryUsage({ ...q, groupBy: GroupBy.GROUP_BY_UNSPECIFIED }, callOptions('t')), 'group_by');
      await refused(client.queryUsage({ ...q, groupBy: GroupBy.GROUP_BY_KEY, pageSize: 0 }, callOptions('t')), 'page_size');
      await refused(client.queryUsage({ ...q, groupBy: GroupBy.GROUP_BY_KEY, projectId: '' }, callOptions('t')), 'project_id');
      await assert.rejects(client.listRecords({ ...q, after: 'unknown' }, callOptions('t')), (err: unknown) => isAppError(err) && err.kind === 'not_found');
    });

    it('retention deletes what is older than LEDGER_RETENTION_DAYS and keeps the rest', async () => {
      await client.writeRecords({ records: [rec('old', new Date(NOW - 31 * DAY)), rec('recent', new Date(NOW - 29 * DAY))] }, callOptions('t'));
      assert.equal(await ledger.applyRetention(), 1);
      const page = await client.listRecords({ projectId: 'proj_a', startTime: new Date(0), endTime: new Date(NOW), pageSize: 10, after: '' }, callOptions('t'));
      assert.ok(page.records.some((r) => r.requestId === 'recent'));
      assert.ok(!page.records.some((r) => r.requestId === 'old'));
    });
  });
}
