#!/bin/sh
# Installs vaultctl and vaultd from a release: picks the archive for this platform, checks it
# against the release's SHA256SUMS, and only then copies the binaries, man pages and shell
# completions under a prefix. Any failure (unknown platform, download error, checksum mismatch)
# stops it with a message and a non-zero exit, and leaves the prefix untouched.
#
#   curl -fsSL https://github.com/OWNER/vaultctl/releases/latest/download/install.sh | sh
#   sh install.sh [--version 0.1.0] [--prefix DIR] [--base-url URL]
#
# --version V    release to install (VAULTCTL_VERSION; default: the latest release)
# --prefix DIR   install under DIR/bin, DIR/share/man/man1, DIR/share/… (VAULTCTL_PREFIX;
#                default: /usr/local as root, else ~/.local)
# --base-url URL folder holding the release's archives and SHA256SUMS (VAULTCTL_BASE_URL;
#                default: the GitHub release of --version in VAULTCTL_REPO, OWNER/NAME)
set -eu

default_repo='@REPOSITORY@' # the release workflow writes the repository here

say() { printf 'install.sh: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

version="${VAULTCTL_VERSION:-}"
prefix="${VAULTCTL_PREFIX:-}"
base_url="${VAULTCTL_BASE_URL:-}"
repo="${VAULTCTL_REPO:-$default_repo}"

while [ $# -gt 0 ]; do
  case "$1" in
    --version) [ $# -ge 2 ] || die "--version needs a value"; version="$2"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix="$2"; shift 2 ;;
    --base-url) [ $# -ge 2 ] || die "--base-url needs a value"; base_url="$2"; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" 2>/dev/null; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
version="${version#v}"
case "$version" in
  "" | latest) version="" ;;
  *[!0-9A-Za-z.+-]*) die "not a version: $version" ;;
esac

# The platform, as the target triple the release archives are named after.
os="$(uname -s)"
arch="$(uname -m)"
case "$arch" in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) die "unknown platform: no vaultctl release for the $arch processor ($os); build from source with cargo" ;;
esac
case "$os" in
  Linux) target="$arch-unknown-linux-gnu" ;; # statically linked: runs on any distribution
  Darwin)
    # An x86_64 shell under Rosetta on Apple silicon still gets the native build.
    if [ "$arch" = x86_64 ] && [ "$(sysctl -n sysctl.proc_translated 2>/dev/null || echo 0)" = 1 ]; then
      arch=aarch64
    fi
    target="$arch-apple-darwin"
    ;;
  *) die "unknown platform: no vaultctl release for $os ($arch); build from source with cargo" ;;
esac

if [ -z "$base_url" ]; then
  case "$repo" in
    @*@ | "") die "no download location: set VAULTCTL_REPO=OWNER/NAME or pass --base-url URL" ;;
  esac
  if [ -n "$version" ]; then
    base_url="https://github.com/$repo/releases/download/v$version"
  else
    base_url="https://github.com/$repo/releases/latest/download"
  fi
fi
base_url="${base_url%/}"

if [ -z "$prefix" ]; then
  if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix="${HOME:?HOME is not set}/.local"; fi
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl --fail --silent --show-error --location --retry 3 --proto '=https,http' -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256_of() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256_of() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  die "neither sha256sum nor shasum is installed: cannot verify the download"
fi

tmp="$(mktemp -d 2>/dev/null || mktemp -d -t vaultctl-install)"
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch "$base_url/SHA256SUMS" "$tmp/SHA256SUMS" || die "cannot download $base_url/SHA256SUMS"
# One line per archive: "<sha256>  vaultctl-<version>-<target>.tar.gz".
if [ -n "$version" ]; then
  archive="vaultctl-$version-$target.tar.gz"
  line="$(awk -v f="$archive" '$2 == f || $2 == "*" f' "$tmp/SHA256SUMS")"
else
  line="$(awk -v t="-$target.tar.gz" 'substr($2, length($2) - length(t) + 1) == t' "$tmp/SHA256SUMS")"
fi
[ -n "$line" ] || die "the release at $base_url has no archive for $target${version:+ in version $version}"
[ "$(printf '%s\n' "$line" | wc -l | tr -d ' ')" = 1 ] || die "SHA256SUMS lists more than one archive for $target"
expected="$(printf '%s\n' "$line" | awk '{ print $1 }')"
archive="$(printf '%s\n' "$line" | awk '{ sub(/^\*/, "", $2); print $2 }')"
case "$archive" in
  vaultctl-*-"$target".tar.gz) ;;
  *) die "unexpected archive name in SHA256SUMS: $archive" ;;
esac
name="${archive%.tar.gz}"

say "downloading $base_url/$archive"
fetch "$base_url/$archive" "$tmp/$archive" || die "cannot download $base_url/$archive"
actual="$(sha256_of "$tmp/$archive")"
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $archive: SHA256SUMS says $expected, the download is $actual. Nothing was installed."
fi

mkdir "$tmp/unpacked"
tar -xzf "$tmp/$archive" -C "$tmp/unpacked" || die "cannot unpack $archive"
src="$tmp/unpacked/$name"
for bin in vaultctl vaultd; do
  [ -f "$src/$bin" ] || die "$archive holds no $bin"
done

mkdir -p "$prefix/bin" || die "cannot create $prefix/bin"
for bin in vaultctl vaultd; do
  # Copy next to the target, then rename: a running vaultctl is never overwritten in place.
  cp "$src/$bin" "$prefix/bin/.$bin.new" && chmod 0755 "$prefix/bin/.$bin.new" \
    && mv -f "$prefix/bin/.$bin.new" "$prefix/bin/$bin" || die "cannot install $prefix/bin/$bin"
done
if [ -d "$src/man" ]; then
  mkdir -p "$prefix/share/man/man1" && cp "$src"/man/*.1 "$prefix/share/man/man1/" \
    || say "warning: could not install the man pages under $prefix/share/man/man1"
fi
if [ -d "$src/completions" ]; then
  (
    set -e
    mkdir -p "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
      "$prefix/share/fish/vendor_completions.d"
    cp "$src/completions/vaultctl.bash" "$prefix/share/bash-completion/completions/vaultctl"
    cp "$src/completions/_vaultctl" "$prefix/share/zsh/site-functions/_vaultctl"
    cp "$src/completions/vaultctl.fish" "$prefix/share/fish/vendor_completions.d/vaultctl.fish"
  ) || say "warning: could not install the shell completions under $prefix/share"
fi

say "installed $name into $prefix/bin (checksum verified)"
case ":${PATH:-}:" in
  *":$prefix/bin:"*) ;;
  *) say "add $prefix/bin to PATH to run vaultctl" ;;
esac
