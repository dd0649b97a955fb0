#!/usr/bin/env bash
# Builds release binaries and runs every benchmark scenario beside its same-run baseline.
# Prints a table and writes target/bench/results.json. Flags: --quick, --skip-scale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --workspace --bins
export VAULTD_BIN="$PWD/target/release/vaultd" VAULTCTL_BIN="$PWD/target/release/vaultctl"
exec ./target/release/vaultctl-bench "$@"
