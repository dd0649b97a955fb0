#!/usr/bin/env bash
# Supply-chain gate: advisories (offline, against the RustSec snapshot beside the project),
# licenses and banned crates. Installs cargo-deny when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

snapshot="${ADVISORY_DB_SNAPSHOT:-../shared/advisory-db}"
if ! command -v cargo-deny >/dev/null 2>&1; then
  cargo install --locked cargo-deny
fi
if [ ! -d "$snapshot" ]; then
  echo "deny: advisory snapshot not found at $snapshot" >&2
  exit 1
fi

# cargo-deny wants the database as a git repository: copy the snapshot into one, and point a
# temporary copy of deny.toml at it (a local clone, no network).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/advisory-db"
mkdir -p "$db"
cp -R "$snapshot"/. "$db"/
chmod -R u+w "$db"
git -C "$db" init -q
git -C "$db" -c user.email=ci@localhost -c user.name=ci add -A
git -C "$db" -c user.email=ci@localhost -c user.name=ci commit -q -m snapshot
sed -e "s|^db-urls = .*|db-urls = [\"file://$db\"]\ndb-path = \"$work/dbs\"|" deny.toml > "$work/deny.toml"

cargo deny --locked check --config "$work/deny.toml" advisories licenses bans sources
