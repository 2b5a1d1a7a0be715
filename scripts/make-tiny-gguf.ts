/**
 * CLI over the tiny test model writer (services/inference/src/engines/llama-cpp/tiny-gguf.ts,
 * which documents the model): writes the GGUF file to the given path.
 *
 *   node --import tsx scripts/make-tiny-gguf.ts out.gguf [--seed N]
 *
 * Code (tests, benchmarks, the inference service's offline fallback) imports tiny-gguf.ts.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeTinyGguf } from '../services/inference/src/engines/llama-cpp/tiny-gguf.js';


function isMainModule(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

async function main(argv: string[]): Promise<void> {
  const [out, flag, seedText] = argv;
  const seed = seedText === undefined ? undefined : Number(seedText);
  const validSeed = seed === undefined || (Number.isInteger(seed) && seed >= 0);
  if (out === undefined || (flag !== undefined && (flag !== '--seed' || seed === undefined)) || !validSeed) {
    process.stderr.write('usage: node --import tsx scripts/make-tiny-gguf.ts <out.gguf> [--seed N]\n');
    process.exitCode = 2;
    return;
  }
  await writeTinyGguf(out, { seed });
  process.stdout.write(`wrote ${out}\n`);
}

if (isMainModule()) {
  await main(process.argv.slice(2));
}
