#!/usr/bin/env bash
# The committed Action bundle (dist/) must be exactly what its sources and package-lock.json
# build: a fresh `npm ci && npm run build` in a scratch copy, compared byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="$(mktemp -d "${TMPDIR:-/tmp}/vaultctl-action-build.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
cp -R package.json package-lock.json action "$scratch/"
(
  cd "$scratch"
  # No install scripts run: esbuild finds its platform binary through its optional dependency.
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
  npm run --silent build
)
status=0
for file in dist/*; do
  name="$(basename "$file")"
  if ! cmp -s "$file" "$scratch/dist/$name"; then
    echo "action bundle: $file differs from a fresh build: run \`npm ci && npm run build\` and commit dist/" >&2
    status=1
  fi
done
for file in "$scratch"/dist/*; do
  [ -e "dist/$(basename "$file")" ] || { echo "action bundle: dist/$(basename "$file") is not committed" >&2; status=1; }
done
[ "$status" = 0 ] && echo "action bundle: dist/ matches a fresh build"
exit "$status"
