#!/usr/bin/env bash
# Runs the whole test suite: installs and starts what the tests need when it is missing
# (PostgreSQL, Redis, S3 servers, linters, bubblewrap), then `cargo test`, then (for a whole run)
# the bounded Schemathesis run of tests/api_fuzz.rs against the OpenAPI document.
# Extra arguments go to cargo test, e.g. `scripts/test.sh --test integration storage::`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_commands git git pg_isready postgresql-client redis-cli redis-tools redis-server redis-server \
    zstd zstd python3 python3 bwrap bubblewrap shellcheck shellcheck cppcheck cppcheck \
    yamllint yamllint openssl openssl
ensure_services
scripts/install-test-tools.sh
COCOV_TEST_DATABASE_URL=${COCOV_TEST_DATABASE_URL:-$(superuser_database_url)}
export COCOV_TEST_DATABASE_URL
log "cargo test $*"
cargo test --locked "$@"
if [ $# -eq 0 ]; then
    log "API fuzzing (Schemathesis, bounded)"
    cargo test --locked --test integration api_fuzz -- --ignored
fi
