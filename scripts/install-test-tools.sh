#!/usr/bin/env bash
# Installs the real servers and tools the integration tests run against into
# $COCOV_TEST_TOOLS (default: $HOME/.cache/cocov-test-tools). Idempotent: each
# tool is installed only when its binary is missing, so re-running is cheap.
#
#   scripts/install-test-tools.sh            # install everything missing
#   COCOV_TEST_TOOLS=/opt/t scripts/install-test-tools.sh
#
# Layout (the test harnesses look exactly here, then on PATH):
#   $T/venv/bin/<python tools>   e.g. moto_server
#   $T/bin/<cargo tools>         e.g. s3s-fs
#
# To add a tool: write an install_<name> function using the helpers below and
# call it from main.
set -euo pipefail

T="${COCOV_TEST_TOOLS:-$HOME/.cache/cocov-test-tools}"

log() { printf 'install-test-tools: %s\n' "$*" >&2; }

# need COMMAND: fail early, naming the missing prerequisite.
need() {
    command -v "$1" >/dev/null 2>&1 || { log "error: '$1' is required but not on PATH"; exit 1; }
}

# ensure_venv: the one Python virtualenv every PyPI tool goes into.
ensure_venv() {
    if [[ ! -x "$T/venv/bin/pip" ]]; then
        log "creating Python venv in $T/venv"
        if ! python3 -m venv "$T/venv"; then
            # Debian's python3 needs its venv module installed separately.
            log "python3 -m venv failed; installing Debian's python3-venv"
            rm -rf "$T/venv"
            if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
            python3 -m venv "$T/venv"
        fi
    fi
}

# pip_tool BINARY REQUIREMENT: pip-install REQUIREMENT unless BINARY exists.
pip_tool() {
    local bin="$1" req="$2"
    if [[ -x "$T/venv/bin/$bin" ]]; then
        log "$bin already installed ($T/venv/bin/$bin)"
        return
    fi
    need python3
    ensure_venv
    log "pip install '$req' into $T/venv"
    "$T/venv/bin/pip" install --disable-pip-version-check --quiet "$req"
}

# cargo_tool BINARY CRATE VERSION [cargo install args...]: cargo-install a pinned
# crate version unless BINARY exists. Versions are pinned because newer
# releases may need a newer rustc than the project's.
cargo_tool() {
    local bin="$1" crate="$2" version="$3"
    shift 3
    if [[ -x "$T/bin/$bin" ]]; then
        log "$bin already installed ($T/bin/$bin)"
        return
    fi
    need cargo
    log "cargo install $crate $version into $T (this compiles; it takes minutes)"
    cargo install "$crate" --version "$version" --locked --root "$T" "$@"
}

# S3 servers for the storage tests: moto accepts any credentials and has complete
# S3 semantics; s3s-fs verifies SigV4 signatures and stores in a real directory.
install_moto() { pip_tool moto_server 'moto[server]'; }
# Schema-driven API fuzzing (scripts/fuzz-api.sh). Pinned: its CLI options change between
# releases.
install_schemathesis() { pip_tool schemathesis 'schemathesis==4.32.5'; }
# Pinned: a plain `cargo install s3s-fs` picks 0.17, which needs rustc 1.96; 0.14.1 is tested.
install_s3s_fs() { cargo_tool s3s-fs s3s-fs 0.14.1 --features binary; }

# The linters the built-in plugin definitions run, for tests/checks.rs. Debian's packages where
# Debian has them; ruff and bandit from PyPI into a virtualenv made with Debian's python3 (so it
# runs inside the sandbox, which sees /usr only) at a path every user may traverse (the sandbox
# runs as `nobody` when the tests run as root).
LINTERS="${COCOV_TEST_LINTERS:-/opt/cocov-test-linters}"
install_linters() {
    local missing=()
    for pkg in bubblewrap shellcheck cppcheck yamllint; do
        local bin="$pkg"; [[ "$pkg" == bubblewrap ]] && bin=bwrap
        command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [[ -x "$LINTERS/bin/ruff" && -x "$LINTERS/bin/bandit" ]]; then
        log "ruff and bandit already installed ($LINTERS)"
        return
    fi
    if [ ! -x "$LINTERS/bin/pip" ]; then
        /usr/bin/python3 -m venv "$LINTERS" 2>/dev/null || {
            if [ "$(id -u)" -eq 0 ]; then apt-get install -y -qq python3-venv >/dev/null; else sudo apt-get install -y -qq python3-venv >/dev/null; fi
            /usr/bin/python3 -m venv "$LINTERS"
        }
    fi
    log "pip install ruff bandit into $LINTERS"
    "$LINTERS/bin/pip" install --disable-pip-version-check --quiet 'ruff==0.17.6' 'bandit==1.9.4'
    chmod -R a+rX "$LINTERS"
}

# Image plugins (tests/images.rs): a real OCI registry (Debian's distribution server) serving
# images the tests assemble from Debian's static busybox.
install_image_tools() {
    local missing=()
    [[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
    [[ -x /bin/busybox ]] || missing+=(busybox-static)
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
        # The package starts a system registry on :5000; the tests start their own.
        if command -v systemctl >/dev/null 2>&1; then "${sudo[@]}" systemctl disable --now docker-registry >/dev/null 2>&1 || true; fi
    else
        log "docker-registry and busybox already installed"
    fi
}

# The web UI's browser tests (tests/web_ui.rs): Debian's headless Chromium driven through
# chromedriver, and axe-core (npm) injected into each page for accessibility checks.
install_browser() {
    local missing=()
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
    else
        log "chromium and chromedriver already installed"
    fi
    if [[ -f "$T/axe/node_modules/axe-core/axe.min.js" ]]; then
        log "axe-core already installed ($T/axe)"
        return
    fi
    need npm
    mkdir -p "$T/axe"
    log "npm install axe-core into $T/axe"
    (cd "$T/axe" && npm install --no-audit --no-fund --silent 'axe-core@4.14.1')
}

# A real OpenID Provider for tests/oidc.rs: the certified `oidc-provider` npm package, pinned by
# tests/oidc-provider/package-lock.json, installed with `npm ci` (Node.js 20.19 or later).
install_oidc_provider() {
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/oidc-provider"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        log "apt-get install nodejs npm"
        local sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq -o DPkg::Lock::Timeout=600 nodejs npm >/dev/null
    fi
    if [[ -d "$dir/node_modules/oidc-provider" ]]; then
        log "oidc-provider already installed ($dir/node_modules)"
        return
    fi
    log "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
}

main() {
    mkdir -p "$T"
    log "tools directory: $T"
    install_moto
    install_schemathesis
    install_s3s_fs
    install_linters
    install_image_tools
    install_browser
    install_oidc_provider
    log "done"
}

main "$@"
