/**
 * The tier table: configuration, not code (README "Quota: rate limits" lists the tiers).
 * Default is config/tiers.json; TIERS_FILE points at a replacement.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const tierSchema = z.object({
  name: z.string(),
  /** null = unlimited. */
  requestsPerMinute: z.number().int().positive().nullable(),
  tokensPerMinute: z.number().int().positive().nullable(),
  pools: z.array(z.string()).min(1),
  requestTimeoutSeconds: z.number().positive(),
  idleStreamTimeoutSeconds: z.number().positive(),
});

const tableSchema = z.object({ tiers: z.record(z.string(), tierSchema) });

export type Tier = z.infer<typeof tierSchema> & { slug: string };
export type TierTable = ReadonlyMap<string, Tier>;

export const DEFAULT_TIERS_FILE = path.join(import.meta.dirname, '..', '..', 'config', 'tiers.json');

export function loadTierTable(file: string = DEFAULT_TIERS_FILE): TierTable {
  const parsed = tableSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return new Map(Object.entries(parsed.tiers).map(([slug, t]) => [slug, { ...t, slug }]));
}
