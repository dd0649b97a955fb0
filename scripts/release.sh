#!/usr/bin/env bash
# Builds the release archive of one platform: vaultctl-<version>-<target>.tar.gz holding
# vaultd, vaultctl, their man pages (man/), vaultctl's shell completions (completions/),
# README.md and LICENSE; then (re)writes SHA256SUMS over every archive in the output folder.
# The release workflow runs it on each platform; the test suite runs it on the debug binaries.
#
#   scripts/release.sh archive --target TRIPLE (--bin-dir DIR | --build) [--out DIR]
#                              [--host-bin-dir DIR]
#   scripts/release.sh sums DIR
#   scripts/release.sh version        (prints the workspace version)
#
# --build        cargo build --release of vaultd and vaultctl for TRIPLE; Linux targets are
#                linked statically (crt-static), so one archive runs on any distribution.
# --bin-dir      take vaultd and vaultctl from DIR instead (already built).
# --host-bin-dir binaries that run on this machine, to write the man pages and completions
#                with when TRIPLE's do not (default: the archive's own).
# --out          where the archive and SHA256SUMS go (default: target/release-archives).
#
# The archive is reproducible from the same binaries: entries sorted, owned by 0:0, dated
# SOURCE_DATE_EPOCH (default: the last commit's time), gzip without a name or time stamp.
set -euo pipefail
cd "$(dirname "$0")/.."

die() {
  echo "release.sh: $*" >&2
  exit 1
}

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$@"
  else
    shasum -a 256 "$@"
  fi
}

workspace_version() {
  # The [workspace.package] version: every crate of the workspace inherits it.
  awk '
    /^\[/ { in_pkg = ($0 == "[workspace.package]") }
    in_pkg && /^version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
  ' Cargo.toml
}

write_sums() {
  local dir="$1"
  [ -d "$dir" ] || die "no such folder: $dir"
  (
    cd "$dir"
    shopt -s nullglob
    local archives=(vaultctl-*.tar.gz)
    [ "${#archives[@]}" -gt 0 ] || die "no vaultctl-*.tar.gz in $dir"
    # Sorted, in the `sha256sum` format that install.sh, the Action and `sha256sum -c` read.
    sha256 "${archives[@]}" | LC_ALL=C sort -k2 >SHA256SUMS.tmp
    mv SHA256SUMS.tmp SHA256SUMS
  )
  echo "release.sh: wrote $dir/SHA256SUMS"
}

# Runs one of the binaries' documentation commands, saying clearly which binary lacks it.
run_doc_command() {
  local what="$1"
  shift
  if ! "$@"; then
    die "\`$(basename "$1") ${*:2}\` failed: writing $what needs a $(basename "$1") built from this tree"
  fi
}

pack() {
  local stage_parent="$1" name="$2" archive="$3"
  if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    tar -C "$stage_parent" --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -n >"$archive"
  elif command -v gtar >/dev/null 2>&1; then
    gtar -C "$stage_parent" --sort=name --owner=0 --group=0 --numeric-owner \
      --mtime="@$SOURCE_DATE_EPOCH" -cf - "$name" | gzip -n >"$archive"
  else
    # bsdtar (macOS without GNU tar): owners normalised, order as the file system gives it.
    find "$stage_parent/$name" -exec touch -h -t "$(date -u -r "$SOURCE_DATE_EPOCH" +%Y%m%d%H%M.%S)" {} +
    tar -C "$stage_parent" --uid 0 --gid 0 --uname root --gname root -cf - "$name" \
      | gzip -n >"$archive"
  fi
}

archive() {
  local target="" bin_dir="" host_bin_dir="" out="target/release-archives" build=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --target) target="${2:?--target needs a value}"; shift 2 ;;
      --bin-dir) bin_dir="${2:?--bin-dir needs a value}"; shift 2 ;;
      --host-bin-dir) host_bin_dir="${2:?--host-bin-dir needs a value}"; shift 2 ;;
      --out) out="${2:?--out needs a value}"; shift 2 ;;
      --build) build=true; shift ;;
      *) die "unknown argument: $1 (see the header of scripts/release.sh)" ;;
    esac
  done
  [ -n "$target" ] || die "--target TRIPLE is required (e.g. x86_64-unknown-linux-gnu)"
  case "$target" in
    *[!A-Za-z0-9_.-]*) die "not a target triple: $target" ;;
  esac
  if $build; then
    [ -z "$bin_dir" ] || die "give --build or --bin-dir, not both"
    local rustflags="${RUSTFLAGS:-}"
    case "$target" in
      *-linux-gnu) rustflags="$rustflags -C target-feature=+crt-static" ;;
    esac
    # Stripped, without the debug line tables the workspace's release profile keeps for
    # profiling: a smaller download for every job that installs vaultctl.
    RUSTFLAGS="$rustflags" CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
      cargo build --release --locked --target "$target" -p vaultd -p vaultctl
    bin_dir="${CARGO_TARGET_DIR:-target}/$target/release"
  fi
  [ -n "$bin_dir" ] || die "give --bin-dir DIR (built binaries) or --build"
  for bin in vaultd vaultctl; do
    [ -x "$bin_dir/$bin" ] || die "$bin_dir/$bin is missing or not executable"
  done
  host_bin_dir="${host_bin_dir:-$bin_dir}"

  local version
  version="$(workspace_version)"
  [ -n "$version" ] || die "cannot read the workspace version from Cargo.toml"
  local reported
  reported="$("$host_bin_dir/vaultctl" --version)" || die "$host_bin_dir/vaultctl --version failed"
  case "$reported" in
    "vaultctl $version"*) ;;
    *) die "$host_bin_dir/vaultctl reports \"$reported\", but the workspace version is $version" ;;
  esac

  if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
  fi
  export SOURCE_DATE_EPOCH

  local name="vaultctl-$version-$target"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  # Global, so the EXIT trap still sees it.
  stage="$(mktemp -d "${TMPDIR:-/tmp}/vaultctl-release.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  local root="$stage/$name"
  mkdir -p "$root/man" "$root/completions"

  cp "$bin_dir/vaultd" "$bin_dir/vaultctl" "$root/"
  chmod 0755 "$root/vaultd" "$root/vaultctl"
  cp README.md LICENSE "$root/"
  chmod 0644 "$root/README.md" "$root/LICENSE"

  run_doc_command "the man pages" "$host_bin_dir/vaultctl" man --dir "$root/man"
  run_doc_command "the man pages" "$host_bin_dir/vaultd" man --dir "$root/man"
  ls "$root/man"/*.1 >/dev/null 2>&1 || die "no man pages were written to man/"

  local shell file
  for shell in bash zsh fish powershell; do
    case "$shell" in
      bash) file=vaultctl.bash ;;
      zsh) file=_vaultctl ;;
      fish) file=vaultctl.fish ;;
      powershell) file=_vaultctl.ps1 ;;
    esac
    run_doc_command "the completions" "$host_bin_dir/vaultctl" completions "$shell" \
      >"$root/completions/$file"
    [ -s "$root/completions/$file" ] || die "vaultctl completions $shell printed nothing"
  done
  find "$root/man" "$root/completions" -type f -exec chmod 0644 {} +

  pack "$stage" "$name" "$out/$name.tar.gz"
  echo "release.sh: wrote $out/$name.tar.gz"
  write_sums "$out"
}

case "${1:-}" in
  archive) shift; archive "$@" ;;
  sums) shift; [ $# -eq 1 ] || die "usage: scripts/release.sh sums DIR"; write_sums "$1" ;;
  version) workspace_version ;;
  *) die "usage: scripts/release.sh archive --target TRIPLE (--bin-dir DIR | --build) [--out DIR] | sums DIR | version" ;;
esac
