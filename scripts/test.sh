#!/usr/bin/env bash
# Runs the whole test suite: unit, property and end-to-end tests against real vaultd and
# vaultctl processes on loopback. Installs the Python Vault client (hvac) the compatibility
# test drives, if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import hvac' 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check hvac 2>/dev/null \
    || python3 -m pip install --quiet --disable-pip-version-check --user hvac
fi

cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
