#!/usr/bin/env bash
# Fails when the committed gen/ differs from what the protos generate, when the protos are not
# buf-lint clean, and when the public gateway API (proto/xerotier/gateway) breaks compatibility
# with the main branch.
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

# xerotier.gateway.v1 is public: no wire- or source-incompatible change against main. The base is
# the local branch main, else origin/main (a fresh clone of main has only that branch; then the
# comparison is main against itself). buf reads the base from the repository's git directory
# (the common one, so this also works in a git worktree).
GATEWAY_PROTO=proto/xerotier/gateway
base=""
for ref in main origin/main; do
  if git rev-parse --verify --quiet "$ref^{commit}" >/dev/null; then base=$ref; break; fi
done
if [ -z "$base" ]; then
  echo "buf breaking: no main branch to compare with" >&2
  exit 1
fi
if ! git cat-file -e "$base:$GATEWAY_PROTO" 2>/dev/null; then
  echo "buf breaking: skipped, $GATEWAY_PROTO does not exist on $base yet"
  exit 0
fi
npx buf breaking --against "$(git rev-parse --git-common-dir)#ref=$base" --path "$GATEWAY_PROTO"
echo "buf breaking: $GATEWAY_PROTO is compatible with $base"
