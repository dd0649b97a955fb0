#!/usr/bin/env bash
# Builds a statically linked, stripped release vaultd for this machine (what the container image
# ships) and prints its path. Only the vaultd package, in a target folder of its own
# (VAULTD_STATIC_TARGET_DIR, default target/static) so the workspace's debug build is untouched;
# point it at a folder that outlives the checkout to make later builds incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

triple="$(rustc -vV | sed -n 's/^host: //p')"
case "$triple" in
  *-linux-gnu) ;;
  *) echo "build-static.sh: static builds are for Linux (glibc) hosts; this is $triple" >&2; exit 1 ;;
esac
target_dir="${VAULTD_STATIC_TARGET_DIR:-target/static}"
# Run from a test, cargo's per-crate variables are in the environment; some build scripts
# (ring's) track CARGO_MANIFEST_DIR, so they would rebuild everything each time.
while read -r name; do unset "$name"; done < <(compgen -e | grep -E '^CARGO_(MANIFEST_|PKG_|CRATE_|BIN_|PRIMARY_|TARGET_TMPDIR|RUSTC_CURRENT_DIR)' || true)
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=0 \
  CARGO_PROFILE_RELEASE_STRIP=symbols CARGO_TARGET_DIR="$target_dir" \
  cargo build --release --locked -p vaultd --target "$triple" >&2
binary="$(cd "$target_dir/$triple/release" && pwd)/vaultd"
# Static means nothing to load at run time: the image has no libc.
if command -v ldd >/dev/null 2>&1 && ldd "$binary" 2>&1 | grep -q '=>'; then
  echo "build-static.sh: $binary is dynamically linked" >&2
  exit 1
fi
echo "$binary"
