#!/usr/bin/env bash
# Runs the whole test suite: unit, property and end-to-end tests against real vaultd and
# vaultctl processes on loopback. Installs the Python Vault client (hvac) the compatibility
# test drives, if it is missing. Ends with one summary line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import hvac' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check hvac 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --user hvac
fi

cargo build --workspace --bins --locked
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace --all-targets --locked "$@" 2>&1 | tee "$log" || status=$?
passed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
failed=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
echo
echo "tests: ${passed:-0} passed, ${failed:-0} failed"
exit "$status"
