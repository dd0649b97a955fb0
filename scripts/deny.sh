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

# cargo-deny reads the database from a git checkout under db-path, named after its URL; the
# snapshot is copied there (as a git repository) and cargo-deny runs --offline, so nothing is
# fetched. `cargo fetch` first: offline metadata needs every crate of the lock file.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
db="$work/dbs/advisory-db-3157b0e258782691"
mkdir -p "$db"
cp -R "$snapshot"/. "$db"/
chmod -R u+w "$db"
git -C "$db" init -q
git -C "$db" -c user.email=ci@localhost -c user.name=ci add -A
git -C "$db" -c user.email=ci@localhost -c user.name=ci commit -q -m snapshot
sed -e "s|^db-urls = .*|db-urls = [\"https://github.com/rustsec/advisory-db\"]\ndb-path = \"$work/dbs\"|" deny.toml > "$work/deny.toml"

cargo fetch --locked >/dev/null
cargo deny --locked --offline --config "$work/deny.toml" check advisories licenses bans sources
