/**
 * The tier table: configuration, not code (README "Quota: rate limits" lists the tiers).
 * Default is config/tiers.json; TIERS_FILE points at a replacement.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

/** Completion tokens reserved for a request without max_tokens, unless its tier says otherwise. */
export const DEFAULT_RESERVED_COMPLETION_TOKENS = 1024;

const tierSchema = z.object({
  name: z.string(),
  /** null = unlimited. */
  requestsPerMinute: z.number().int().positive().nullable(),
  tokensPerMinute: z.number().int().positive().nullable(),
  pools: z.array(z.string()).min(1),
  requestTimeoutSeconds: z.number().positive(),
  idleStreamTimeoutSeconds: z.number().positive(),
  /**
   * Completion tokens reserved against tokens/min when a request omits max_tokens (the
   * generation itself may still use the whole context left; the reservation is settled to the
   * real usage afterwards). Clamped to the context left.
   */
  reservedCompletionTokens: z.number().int().positive().default(DEFAULT_RESERVED_COMPLETION_TOKENS),
});

const tableSchema = z.object({ tiers: z.record(z.string(), tierSchema) });

export type Tier = z.infer<typeof tierSchema> & { slug: string };
export type TierTable = ReadonlyMap<string, Tier>;

export const DEFAULT_TIERS_FILE = path.join(import.meta.dirname, '..', '..', 'config', 'tiers.json');

export function loadTierTable(file: string = DEFAULT_TIERS_FILE): TierTable {
  const parsed = tableSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  return new Map(Object.entries(parsed.tiers).map(([slug, t]) => [slug, { ...t, slug }]));
}
