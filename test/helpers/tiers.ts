/** Writes a tier table like config/tiers.json with some cpu_standard values replaced (tests only). */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DEFAULT_TIERS_FILE } from '../../lib/tiers/tier-table.js';

export function cpuStandardTiers(overrides: Record<string, number | null>): string {
  const table = JSON.parse(readFileSync(DEFAULT_TIERS_FILE, 'utf8')) as { tiers: Record<string, Record<string, unknown>> };
  Object.assign(table.tiers['cpu_standard']!, overrides);
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'tiers-')), 'tiers.json');
  writeFileSync(file, JSON.stringify(table));
  return file;
}

/** cpu_standard without practical limits, so tests that are not about quota are not throttled. */
export function unthrottledTiers(timeouts: { requestTimeoutSeconds?: number; idleStreamTimeoutSeconds?: number } = {}): string {
  return cpuStandardTiers({ requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000, ...timeouts });
}
