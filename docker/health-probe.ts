/**
 * Container health probe: a tiny node script shipped in the image instead of a
 * downloaded grpc-health-probe binary. Compose runs it as the healthcheck of every service.
 *
 *   node dist/docker/health-probe.js host:port [service]   gRPC grpc.health.v1.Health/Check
 *   node dist/docker/health-probe.js http://host:port/path HTTP GET (the gateway's /healthz)
 *
 * Exit codes: 0 healthy (SERVING / HTTP 2xx), 1 unhealthy or unreachable, 2 bad usage.
 * Health checks need no SERVICE_TOKEN (lib/grpc/service-auth.ts lets grpc.health.v1 through).
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ClientError, Status, createChannel, createClient } from 'nice-grpc';
import { HealthDefinition } from 'nice-grpc-server-health';

/** grpc.health.v1.HealthCheckResponse.ServingStatus values. */
const SERVING_STATUS: readonly string[] = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];
const SERVING = 1;

export const DEFAULT_TIMEOUT_MS = 3000;

export interface ProbeResult {
  healthy: boolean;
  /** One line for `docker inspect` (health log). */
  detail: string;
}

/** Asks host:port's health service about `service` ('' = the whole server). */
export async function probeGrpc(address: string, service = '', timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ProbeResult> {
  const channel = createChannel(address);
  try {
    const client = createClient(HealthDefinition, channel);
    const response = await client.check({ service }, { signal: AbortSignal.timeout(timeoutMs) });
    const name = SERVING_STATUS[response.status] ?? `status ${response.status}`;
    return { healthy: response.status === SERVING, detail: `${address} ${service || '(server)'}: ${name}` };
  } catch (err) {
    const reason =
      err instanceof ClientError
        ? `${Status[err.code]}: ${err.details}`
        : err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')
          ? `no answer within ${timeoutMs} ms`
          : String(err);
    return { healthy: false, detail: `${address} ${service || '(server)'}: ${reason}` };
  } finally {
    channel.close();
  }
}

/** GET url; healthy on any 2xx. */
export async function probeHttp(url: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<ProbeResult> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return { healthy: res.ok, detail: `${url}: HTTP ${res.status}` };
  } catch (err) {
    const reason =
      err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')
        ? `no answer within ${timeoutMs} ms`
        : err instanceof Error
          ? (err.cause instanceof Error ? err.cause.message : err.message)
          : String(err);
    return { healthy: false, detail: `${url}: ${reason}` };
  }
}

const USAGE = 'usage: health-probe host:port [service] | health-probe http://host:port/path';

/** Runs the probe for argv (without node and script) and returns the exit code. */
export async function main(argv: readonly string[], log: (line: string) => void = console.log): Promise<number> {
  const [target, service, ...rest] = argv;
  if (!target || rest.length > 0) {
    log(USAGE);
    return 2;
  }
  let result: ProbeResult;
  if (/^https?:\/\//.test(target)) {
    if (service !== undefined) {
      log(USAGE);
      return 2;
    }
    result = await probeHttp(target);
  } else {
    if (!/^[^\s:]+:\d+$/.test(target) && !/^\[[0-9a-fA-F:.]+\]:\d+$/.test(target)) {
      log(USAGE);
      return 2;
    }
    result = await probeGrpc(target, service ?? '');
  }
  log(result.detail);
  return result.healthy ? 0 : 1;
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv.slice(2));
