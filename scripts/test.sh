#!/usr/bin/env bash
# Runs the whole test suite: unit, property and end-to-end tests against real vaultd and
# vaultctl processes on loopback — once on the embedded sled store, then the end-to-end suite
# again with every `vaultd dev` on a PostgreSQL database (a throwaway cluster this script
# starts). The replica tests start clusters of their own. Installs the Python clients the
# compatibility tests drive (hvac; boto3 and google-auth for the cloud web-identity tests), if
# missing; PostgreSQL itself comes from Debian's `postgresql` package (`.ci/run` installs it),
# as is buildah for the container-image test; the Action test needs Node.js 20+. Ends with one
# summary line:
# "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

for pair in hvac:hvac boto3:boto3 google.auth:google-auth; do
  module="${pair%%:*}" package="${pair#*:}"
  if ! python3 -c "import $module" 2>/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check "$package" 2>/dev/null \
      || python3 -m pip install --quiet --disable-pip-version-check --user "$package"
  fi
done

cargo build --workspace --bins --locked
# The distribution tests: pinned Python tools, and the static vaultd the container image ships.
scripts/ci-tools.sh >/dev/null
static_started=$SECONDS
VAULTD_STATIC_BIN="$(scripts/build-static.sh)"
export VAULTD_STATIC_BIN
echo "static vaultd for the image test: $((SECONDS - static_started)) s"
log="$(mktemp)"
pg_dir="$(mktemp -d /tmp/vaultd-suite-pg.XXXXXX)"
trap 'rm -f "$log"; scripts/pg-cluster.sh stop "$pg_dir"' EXIT
status=0
cargo test --workspace --all-targets --locked --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?

echo "== end-to-end suite on PostgreSQL"
pg_port="$(scripts/pg-cluster.sh start "$pg_dir")"
# Every end-to-end file but the replica tests, which bring their own clusters, and the
# distribution tests, which test packaging (the storage under them is the first pass's).
targets=()
for file in tests/tests/*.rs; do
  name="$(basename "$file" .rs)"
  case "$name" in replicas|failover|distribution) ;; *) targets+=(--test "$name") ;; esac
done
VAULTD_TEST_PG_PORT="$pg_port" cargo test -p e2e "${targets[@]}" --locked --no-fail-fast "$@" 2>&1 \
  | tee -a "$log" || status=$?

passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
echo
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
