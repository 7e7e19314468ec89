#!/usr/bin/env bash
# Sustained mixed load: announcements, coverage uploads and badge requests together against a
# release build of `cocov serve` (api, badger and worker roles in one process, filesystem
# storage, the local PostgreSQL and Redis), for BENCH_SECONDS (default 600).
#   scripts/bench-load.sh            # build first: cargo build --release --locked
# Starts the daemon on its own throw-away database, Redis prefix, storage and ports; registers a
# standalone repository whose origin holds BENCH_FILES source files and one commit per new
# announcement; ingests a few commits first (uploads go to those); then runs
# scripts/bench_load.py while sampling the daemon's RSS every BENCH_RSS_EVERY seconds (default
# 10). At the end it checks that every announced commit was ingested and every accepted upload
# stored, and prints the load generator's JSON summary, the RSS samples and `uptime` before and
# after (the machine may be shared: say so when recording the numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

seconds=${BENCH_SECONDS:-600}
rss_every=${BENCH_RSS_EVERY:-10}
files=${BENCH_FILES:-50}
announce_rate=${BENCH_ANNOUNCE_PER_SECOND:-2}
need_commands git git psql postgresql-client redis-cli redis-tools curl curl
ensure_services
bin=$PWD/target/release/cocov
[ -x "$bin" ] || { log "build first: cargo build --release --locked"; exit 1; }

work=$(mktemp -d /tmp/cocov-bench-load.XXXXXX)
name=cocov_load_$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
admin_url=$(superuser_database_url)
password=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')
daemon=""
sampler=""
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
    [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
    psql "$admin_url" -qc "DROP ROLE IF EXISTS $name" >/dev/null 2>&1 || true
    redis-cli -h 127.0.0.1 --scan --pattern "$name:*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE ROLE $name LOGIN PASSWORD '$password'" \
    -c "CREATE DATABASE $name OWNER $name" >/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
api_port=$(free_port)
badger_port=$(free_port)
mkdir -p "$work/storage" "$work/work"
(umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' >"$work/secret.key")
cat >"$work/cocov.toml" <<TOML
[server]
bind_address = "127.0.0.1:$api_port"

[badger]
bind_port = $badger_port
rate_limit_per_minute = 0

[database]
host = "127.0.0.1"
name = "$name"
username = "$name"
password = "$password"

[redis]
key_prefix = "$name:"

[storage]
mode = "local"
local_path = "$work/storage"

[worker]
work_dir = "$work/work"

[security]
cryptographic_key_file = "$work/secret.key"
TOML
cocov() { "$bin" --config "$work/cocov.toml" "$@"; }
cocov migrate >/dev/null
admin=$(cocov admin create-user --login admin --admin | sed -n 's/.*(shown once): //p')
[ -n "$admin" ] || { log "no admin token"; exit 1; }

"$bin" --config "$work/cocov.toml" serve >"$work/serve.log" 2>&1 &
daemon=$!
api=http://127.0.0.1:$api_port
badger=http://127.0.0.1:$badger_port
for _ in $(seq 300); do
    curl -fsS "$api/readyz" >/dev/null 2>&1 && break
    kill -0 "$daemon" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
    sleep 0.2
done
log "daemon $daemon ready on $api, badges on $badger"

# The origin: BENCH_FILES C files of 100 lines, then one (empty) commit per new announcement
# the run can make, written with plumbing so thousands take seconds.
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/tree"
for f in $(seq 0 $((files - 1))); do
    mkdir -p "$work/tree/src"
    seq 100 | sed 's/.*/    x();/' >"$work/tree/src/f$f.c"
done
git -C "$work/tree" add -A
git -C "$work/tree" -c user.name=bench -c user.email=bench@example.invalid commit -qm base
tree=$(git -C "$work/tree" rev-parse 'HEAD^{tree}')
parent=$(git -C "$work/tree" rev-parse HEAD)
new_commits=$(python3 -c "import math; print(math.ceil($seconds * $announce_rate / 2) + 10)")
ingested_count=4
shas=()
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
for i in $(seq $((new_commits + ingested_count))); do
    parent=$(echo "commit $i" | git -C "$work/tree" commit-tree "$tree" -p "$parent")
    shas+=("$parent")
done
git -C "$work/tree" update-ref refs/heads/main "$parent"
git -C "$work/tree" push -q "$work/origin.git" main
log "origin: $files files, ${#shas[@]} commits"

repo=load
token=$(curl -fsS -X POST "$api/v1/repositories" -H "authorization: bearer $admin" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"$repo\",\"git_url\":\"file://$work/origin.git\",\"default_branch\":\"main\"}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
sql() { psql "postgres://$name:$password@127.0.0.1/$name" -Atqc "$1"; }
ingested=("${shas[@]:0:$ingested_count}")
for sha in "${ingested[@]}"; do
    curl -fsS -o /dev/null -X POST "$api/v1/repositories/$repo/commits" -H "authorization: token $token" \
        -H 'content-type: application/json' -d "{\"sha\":\"$sha\",\"branch\":\"main\"}"
done
for sha in "${ingested[@]}"; do
    for _ in $(seq 600); do
        state=$(sql "SELECT ingest_status FROM commits WHERE sha = '$sha'")
        [ "$state" = completed ] && break
        [ "$state" = errored ] && { sql "SELECT ingest_error FROM commits WHERE sha = '$sha'" >&2; exit 1; }
        sleep 0.2
    done
    [ "$state" = completed ] || { log "commit $sha was not ingested: $state"; exit 1; }
done
log "${#ingested[@]} commits ingested; warming the badges"
curl -fsS -o /dev/null "$badger/$repo/coverage"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$daemon/status"; }
(
    start=$(date +%s)
    while kill -0 "$daemon" 2>/dev/null; do
        echo "$(($(date +%s) - start)) $(rss)"
        sleep "$rss_every"
    done
) >"$work/rss.txt" &
sampler=$!

load_before=$(uptime)
log "load before: $load_before"
log "running the load for $seconds s"
join() { local IFS=,; echo "$*"; }
BENCH_API=$api BENCH_BADGER=$badger BENCH_REPO=$repo BENCH_UPLOAD_TOKEN=$token \
    BENCH_SECONDS=$seconds BENCH_FILES=$files BENCH_ANNOUNCE_PER_SECOND=$announce_rate \
    BENCH_INGESTED_SHAS=$(join "${ingested[@]}") \
    BENCH_NEW_SHAS=$(join "${shas[@]:$ingested_count}") \
    python3 scripts/bench_load.py >"$work/summary.json"
load_after=$(uptime)
kill "$sampler" 2>/dev/null || true
sampler=""

# Every announced commit ingested (the queue drains within a minute), nothing errored.
announced=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kinds"]["announce"].get("new_commits", 0))' "$work/summary.json")
expected=$((announced + ingested_count))
for _ in $(seq 300); do
    done_count=$(sql "SELECT count(*) FROM commits WHERE ingest_status = 'completed'")
    [ "$done_count" -ge "$expected" ] && break
    sleep 0.2
done
not_done=$(sql "SELECT count(*) FROM commits WHERE ingest_status <> 'completed'")
uploads_stored=$(sql "SELECT count(*) FROM coverage_files")

cat "$work/summary.json"
echo "commits ingested: $done_count of $expected announced; not completed: $not_done"
echo "coverage file rows stored: $uploads_stored"
echo "load before: $load_before"
echo "load after:  $load_after"
echo "daemon RSS samples (seconds since start, KiB):"
cat "$work/rss.txt"
awk 'NR==1 {first=$2} {if (min=="" || $2<min) min=$2; if ($2>max) max=$2; last=$2}
     END {printf "RSS first %.1f MiB, min %.1f, max %.1f, last %.1f\n", first/1024, min/1024, max/1024, last/1024}' "$work/rss.txt"
errors=$(grep -c ' ERROR ' "$work/serve.log" || true)
echo "daemon log lines at ERROR: $errors"
grep ' ERROR ' "$work/serve.log" | head -5 || true
[ "$not_done" -eq 0 ]
