#!/usr/bin/env bash
# Benchmarks cached badges: a release build of `cocov serve` with only the badger role, pinned to
# CPU 0 with taskset (its Tokio runtime would otherwise use every core; confined to one, the
# result is "per core"), against a throw-away database seeded with one repository, loaded by wrk
# from a second process pinned to CPU 1. The rate limit is off (a single client would hit it).
# Prints wrk's report; the daemon is stopped and the database dropped on exit.
#
# Environment: BENCH_PORT (default 4190), BENCH_DURATION (default 15s), BENCH_CONNECTIONS (32),
# BENCH_NICE (e.g. -20: run both processes at that niceness, so that other work on a shared
# machine, such as compilers, cannot take their cores; taskset pins but does not reserve).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

port=${BENCH_PORT:-4190}
duration=${BENCH_DURATION:-15s}
connections=${BENCH_CONNECTIONS:-32}
prio=()
if [ -n "${BENCH_NICE:-}" ]; then prio=(nice -n "$BENCH_NICE"); fi

need_commands wrk wrk taskset util-linux curl curl psql postgresql-client
ensure_services

log "building cocov (release)"
cargo build --release --locked

admin_url=$(superuser_database_url)
db="cocov_bench_$$_$(date +%s)"
db_url="${admin_url%/*}/$db"
work=$(mktemp -d)
daemon_pid=""

cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 -p 6379 --scan --pattern "$db:*" | xargs -r redis-cli -h 127.0.0.1 -p 6379 del >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

psql "$admin_url" -q -c "CREATE DATABASE $db" >/dev/null
: > "$work/cocov.toml"
mkdir -p "$work/storage"

log "starting the badger on 127.0.0.1:$port, pinned to CPU 0"
COCOV_CONFIG="$work/cocov.toml" \
    COCOV_ROLES=badger \
    COCOV_DATABASE_URL="$db_url" \
    COCOV_REDIS_KEY_PREFIX="$db:" \
    COCOV_BADGER_BIND_PORT="$port" \
    COCOV_BADGER_RATE_LIMIT_PER_MINUTE=0 \
    COCOV_STORAGE_LOCAL_PATH="$work/storage" \
    "${prio[@]}" taskset -c 0 target/release/cocov serve >"$work/daemon.log" 2>&1 &
daemon_pid=$!

base="http://127.0.0.1:$port"
badger_up() { curl -fsS "$base/health" >/dev/null 2>&1; }
if ! wait_for "the badger" badger_up; then
    cat "$work/daemon.log" >&2
    exit 1
fi

log "seeding repository 'bench' (coverage 97.0 on main)"
psql "$db_url" -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
INSERT INTO repositories (name, default_branch, git_url, upload_token_hash)
VALUES ('bench', 'main', 'https://git.example/bench.git', repeat('ab', 32));
INSERT INTO branches (repository_id, name, coverage, issues)
SELECT id, 'main', 97.0, 4 FROM repositories WHERE name = 'bench';
SQL

url="$base/bench/coverage"
log "warming the cache"
curl -fsS -o "$work/badge.svg" "$url"
grep -q '>97%</text>' "$work/badge.svg"

log "${prio[*]} taskset -c 1 wrk -t1 -c$connections -d$duration --latency $url"
"${prio[@]}" taskset -c 1 wrk -t1 -c"$connections" -d"$duration" --latency "$url"
