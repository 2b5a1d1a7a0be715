// Compiles the runtime code into dist/ (tsc -p tsconfig.build.json) and copies the files the
// compiled code reads next to itself: dist/ mirrors the repository, so
//   dist/lib/grpc/server.js      reads ../../gen/descriptor-set.binpb → dist/gen/descriptor-set.binpb
//   dist/lib/tiers/tier-table.js reads ../../config/tiers.json      → dist/config/tiers.json
//
//   node scripts/build.mjs            build when a source is newer than the last build (npm start)
//   node scripts/build.mjs --force    always build (npm run build)
//
// Plain JavaScript on purpose: it runs before anything is compiled, without a TypeScript loader.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const stamp = path.join(dist, '.build-stamp');
const SOURCE_DIRS = ['lib', 'gen', 'client', 'services', 'gateway', 'scripts', 'bin', 'config'];
const ROOT_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json'];
const ASSETS = [
  ['gen/descriptor-set.binpb', 'gen/descriptor-set.binpb'],
  ['config/tiers.json', 'config/tiers.json'],
];

/** The newest modification time (ms) of any file under `dir`, node_modules and dist left out. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const file = path.join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(file) : statSync(file).mtimeMs);
  }
  return latest;
}

function stale() {
  if (!existsSync(stamp)) return true;
  const built = statSync(stamp).mtimeMs;
  const sources = Math.max(
    ...SOURCE_DIRS.map((d) => (existsSync(path.join(root, d)) ? newest(path.join(root, d)) : 0)),
    ...ROOT_FILES.map((f) => (existsSync(path.join(root, f)) ? statSync(path.join(root, f)).mtimeMs : 0)),
  );
  return sources > built;
}

const force = process.argv.includes('--force');
if (!force && !stale()) process.exit(0);

const started = Date.now();
process.stdout.write('Compiling TypeScript into dist/ (tsc -p tsconfig.build.json)...\n');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const result = spawnSync(
  process.execPath,
  [tsc, '-p', path.join(root, 'tsconfig.build.json'), '--incremental', '--tsBuildInfoFile', path.join(dist, '.tsbuildinfo')],
  { cwd: root, stdio: 'inherit' },
);
if (result.status !== 0) {
  process.stderr.write(`tsc failed (exit ${String(result.status ?? result.signal)}); dist/ is not up to date\n`);
  process.exit(1);
}
for (const [from, to] of ASSETS) {
  mkdirSync(path.dirname(path.join(dist, to)), { recursive: true });
  copyFileSync(path.join(root, from), path.join(dist, to));
}
writeFileSync(stamp, `${new Date().toISOString()}\n`);
process.stdout.write(`Compiled in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
