#!/usr/bin/env bash
# Fails when the committed gen/ differs from what the protos generate (STYLE.md A-6),
# and when the protos are not buf-lint clean.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx buf generate -o "$tmp"
npx buf build -o "$tmp/gen/descriptor-set.binpb"
if ! diff -r "$tmp/gen" gen >/dev/null; then
  echo "gen/ is out of date: run 'npm run gen' and commit the result" >&2
  diff -r "$tmp/gen" gen | head -20 >&2
  exit 1
fi
echo "gen/ is up to date; buf lint clean"
