#!/usr/bin/env bash
# The test command (README, .ci/run): typecheck, lint (eslint.config.js), proto checks, then
# every *.test.ts with node's test runner (Node 20 expands no globs, so the files are listed here).
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc --noEmit -p tsconfig.json
npm run --silent lint
bash scripts/check-gen.sh
files=$(find lib services gateway bin scripts test bench -name '*.test.ts' -not -path '*/node_modules/*' | sort)
exec node --import tsx --test --test-timeout=180000 --test-concurrency=1 $files
