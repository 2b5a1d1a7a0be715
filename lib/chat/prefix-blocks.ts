/**
 * Prompt prefixes as a chain of block hashes, and a bounded memory of them. An engine with a KV
 * cache reuses the work of a prompt's longest cached prefix; two prompts share a prefix block
 * exactly when their texts agree up to the end of that block. So the prompt text (the messages'
 * contents, in order) is cut into fixed-size character blocks and block i is named by the hash
 * of blocks 0..i (a chain): the gateway's per-worker prefix affinity and the simulator's
 * prefix-cache model both count the leading blocks a memory holds.
 */
import { createHash } from 'node:crypto';

/** Characters per block (≈ 128 tokens at the shared 4-characters-per-token estimate). */
export const DEFAULT_PREFIX_BLOCK_CHARS = 512;

/**
 * Chained hashes of the prompt's complete blocks (a trailing partial block is not named: it is
 * what differs between prompts of one prefix), at most `maxBlocks` of them.
 */
export function prefixBlockHashes(
  messages: ReadonlyArray<{ content: string }>,
  blockChars = DEFAULT_PREFIX_BLOCK_CHARS,
  maxBlocks = 64,
): string[] {
  const text = messages.map((m) => m.content).join('\u0002');
  const hashes: string[] = [];
  let previous = '';
  for (let at = 0; at + blockChars <= text.length && hashes.length < maxBlocks; at += blockChars) {
    previous = createHash('sha256').update(previous).update(text.slice(at, at + blockChars)).digest('base64url').slice(0, 16);
    hashes.push(previous);
  }
  return hashes;
}

/** A bounded, least-recently-used set of block hashes (one per worker). */
export interface PrefixMemory {
  /** How many leading blocks of `blocks` the memory holds (refreshes them). */
  match(blocks: readonly string[]): number;
  /** The same count, refreshing nothing. */
  peek(blocks: readonly string[]): number;
  /**
   * How many blocks it holds that `record(blocks)` would push out (the least recently used,
   * beyond the bound), changing nothing.
   */
  evictions(blocks: readonly string[]): number;
  /** Remembers every block of the prompt; the least recently used go beyond the bound. */
  record(blocks: readonly string[]): void;
  readonly size: number;
}

export function createPrefixMemory(maxBlocks: number): PrefixMemory {
  const held = new Map<string, true>();
  const touch = (b: string): void => {
    held.delete(b);
    held.set(b, true);
  };
  const peek = (blocks: readonly string[]): number => {
    let n = 0;
    while (n < blocks.length && held.has(blocks[n]!)) n += 1;
    return n;
  };
  return {
    peek,
    match(blocks) {
      const n = peek(blocks);
      for (let i = 0; i < n; i++) touch(blocks[i]!);
      return n;
    },
    evictions(blocks) {
      if (maxBlocks <= 0) return 0;
      let added = 0;
      for (const b of blocks) if (!held.has(b)) added += 1;
      // The prompt's own blocks become the most recent: only the others can go.
      return Math.max(0, Math.min(held.size - (blocks.length - added), held.size + added - maxBlocks));
    },
    record(blocks) {
      if (maxBlocks <= 0) return;
      for (const b of blocks) touch(b);
      while (held.size > maxBlocks) held.delete(held.keys().next().value!);
    },
    get size() {
      return held.size;
    },
  };
}
