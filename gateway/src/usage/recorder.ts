/**
 * The gateway's usage recorder: finished requests' records are buffered in memory and sent to
 * the ledger service in batches (every `flushMs`, or at once when `batchMax` are waiting), off the
 * request path. Delivery is at least once: a batch leaves the buffer only when the ledger has
 * acknowledged it, and is retried with exponential backoff while the ledger is unreachable; the
 * ledger skips request ids it already has, so a retried batch stores nothing twice. The buffer is
 * bounded: past `bufferMax` new records are dropped, counted in `usage_records_dropped_total`
 * and reported by one log line per outage. close() flushes what is buffered (bounded in time).
 * With a spool (spool.ts) every accepted record is also on disk until acknowledged, so a killed
 * gateway delivers it after its restart; undelivered records at close stay there too.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { LedgerServiceDefinition, type UsageRecord } from '../../../gen/xerotier/ledger/v1/ledger_service.js';
import { isAppError } from '../../../lib/errors/app-error.js';
import { callOptions, createAppClient, createGrpcChannel, type AppClient } from '../../../lib/grpc/client.js';
import type { GrpcTlsFiles } from '../../../lib/grpc/tls.js';
import type { UsageSpool } from './spool.js';

export type LedgerClient = AppClient<typeof LedgerServiceDefinition>;

export interface RecorderOptions {
  /** Ledger host:port. */
  address: string;
  serviceToken?: string | undefined;
  tls?: GrpcTlsFiles | undefined;
  logger: Logger;
  /** Registry the recorder's metrics are added to (the gateway's). */
  registry: Registry;
  flushMs: number;
  batchMax: number;
  bufferMax: number;
  /** Deadline of one WriteRecords call. */
  timeoutMs: number;
  /** How long close() keeps trying to deliver what is buffered. */
  closeTimeoutMs: number;
  /** Keeps every buffered record on disk until acknowledged (closed by close()). */
  spool?: UsageSpool | undefined;
}

export interface UsageRecorder {
  /** The ledger client (shared with the usage read routes). */
  client: LedgerClient;
  /** Queues one record; never blocks and never throws. */
  add(record: UsageRecord): void;
  /** Records buffered and not yet acknowledged. */
  pending(): number;
  /** Delivers what is buffered (bounded by closeTimeoutMs), then closes the channel. */
  close(): Promise<void>;
}

const MAX_BACKOFF_MS = 5_000;

/** Logged instead of the error object: no stack, no addresses. */
const errorCode = (err: unknown): string => (isAppError(err) ? err.code : 'internal_error');

export function createUsageRecorder(options: RecorderOptions): UsageRecorder {
  const { logger } = options;
  const channel = createGrpcChannel(options.address, options.tls);
  const client = createAppClient(LedgerServiceDefinition, channel, {
    address: options.address,
    target: 'ledger service',
    serviceToken: options.serviceToken,
  });
  const dropped = new Counter({
    name: 'usage_records_dropped_total',
    help: 'Usage records dropped because the gateway buffer was full (ledger unreachable too long).',
    registers: [options.registry],
  });
  const { spool } = options;
  /** Records in arrival order, each with its spool segment (-1 without a spool). */
  const buffer: Array<{ record: UsageRecord; segment: number }> = [...(spool?.recovered ?? [])];
  new Gauge({
    name: 'usage_records_pending',
    help: 'Usage records buffered in the gateway and not yet acknowledged by the ledger.',
    registers: [options.registry],
    collect() {
      this.set(buffer.length);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let failures = 0;
  let dropping = false;
  let closing = false;
  let closed = false;

  const schedule = (ms: number): void => {
    if (timer !== undefined || closing) return;
    timer = setTimeout(() => {
      timer = undefined;
      void send();
    }, ms);
  };

  /** Sends batches until the buffer is empty or a call fails; one sender at a time. */
  const send = (): Promise<void> => {
    if (sending) return sending;
    if (buffer.length === 0) return Promise.resolve();
    sending = (async () => {
      try {
        while (buffer.length > 0) {
          const batch = buffer.slice(0, options.batchMax);
          try {
            await client.writeRecords({ records: batch.map((e) => e.record) }, callOptions('usage-batch', undefined, options.timeoutMs));
          } catch (err) {
            if (isAppError(err) && err.kind === 'invalid_request') {
              // Retrying a batch the ledger refuses can never succeed; keep the rest flowing.
              buffer.splice(0, batch.length);
              spool?.ack(batch.map((e) => e.segment));
              dropped.inc(batch.length);
              logger.error({ code: err.code, count: batch.length }, 'ledger refused a usage batch; records dropped');
              continue;
            }
            if (failures === 0) logger.error({ code: errorCode(err), pending: buffer.length }, 'usage ledger unreachable; buffering records');
            failures++;
            schedule(Math.min(MAX_BACKOFF_MS, options.flushMs * 2 ** Math.min(failures, 10)));
            return;
          }
          buffer.splice(0, batch.length);
          spool?.ack(batch.map((e) => e.segment));
          if (failures > 0) logger.info({ pending: buffer.length }, 'usage ledger reachable again');
          failures = 0;
          dropping = false;
        }
      } finally {
        sending = undefined;
      }
    })();
    return sending;
  };

  if (buffer.length > 0) schedule(0);
  return {
    client,
    add(record) {
      if (closed) {
        // A request that ended after the final flush: nothing will send it any more.
        dropped.inc();
        logger.error({ requestId: record.requestId }, 'usage record after shutdown; dropped');
        return;
      }
      if (buffer.length >= options.bufferMax) {
        dropped.inc();
        if (!dropping) logger.error({ bufferMax: options.bufferMax }, 'usage buffer full; dropping usage records');
        dropping = true;
        return;
      }
      buffer.push({ record, segment: spool ? spool.append(record) : -1 });
      // A full batch goes now unless the ledger is failing (then the backoff timer owns sending).
      if (buffer.length >= options.batchMax && failures === 0) void send();
      else schedule(options.flushMs);
    },
    pending: () => buffer.length,
    async close() {
      closing = true;
      clearTimeout(timer);
      timer = undefined;
      const until = Date.now() + options.closeTimeoutMs;
      while (buffer.length > 0 && Date.now() < until) {
        await (sending ?? send());
        if (buffer.length > 0 && failures > 0) await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, until - Date.now()))));
      }
      if (buffer.length > 0 && spool) {
        logger.warn({ count: buffer.length }, 'usage records not delivered before shutdown; kept in the spool for the next start');
        buffer.length = 0;
      } else if (buffer.length > 0) {
        dropped.inc(buffer.length);
        logger.error({ count: buffer.length }, 'usage records not delivered before shutdown; dropped');
        buffer.length = 0;
      }
      spool?.close();
      closed = true;
      channel.close();
    },
  };
}
