#!/usr/bin/env bash
# Builds the .deb and the .rpm from one release build and prints their paths (stdout, one per
# line; progress goes to stderr). Installs cargo-deb and cargo-generate-rpm into ~/.cargo/bin
# when they are missing (about 1 and 4 minutes on a 2-core machine).
#   scripts/package.sh              # both packages
#   DEB_VERSION=0.1.0-2 scripts/package.sh   # another package revision of the same build
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export PATH="$HOME/.cargo/bin:$PATH"

# Versions pinned to what was tested (reference/crates-and-tooling.md §4.3).
need_cargo_tool() {
    local command=$1 crate=$2 version=$3
    if ! command -v "$command" >/dev/null 2>&1; then
        log "cargo install $crate $version"
        cargo install --locked "$crate" --version "$version" >&2
    fi
}
need_cargo_tool cargo-deb cargo-deb 3.8.0
need_cargo_tool cargo-generate-rpm cargo-generate-rpm 0.21.1

# One binary for both packages: build once, then package without rebuilding.
log "cargo build --release"
cargo build --release --locked >&2

log "cargo deb"
deb_args=(--no-build --locked)
if [ -n "${DEB_VERSION:-}" ]; then deb_args+=(--deb-version "$DEB_VERSION"); fi
deb=$(cargo deb "${deb_args[@]}" | tail -n 1)
[ -f "$deb" ] || { log "cargo deb did not report a package path"; exit 1; }

log "cargo generate-rpm"
rm -rf target/generate-rpm
# --auto-req auto: requirements on the shared libraries the binary links (glibc).
cargo generate-rpm --auto-req auto >&2
rpm_file=$(ls target/generate-rpm/*.rpm)
[ "$(printf '%s\n' "$rpm_file" | wc -l)" -eq 1 ] || { log "expected one .rpm, got: $rpm_file"; exit 1; }

realpath "$deb" "$rpm_file"
