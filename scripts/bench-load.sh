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
. scripts/bench-daemon.sh
sampler=""
bench_extra_cleanup() { [ -n "$sampler" ] && kill "$sampler" 2>/dev/null; true; }
bench_daemon_start cocov-bench-load "rate_limit_per_minute = 0"

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
bench_register_repository "$repo"
ingested=("${shas[@]:0:$ingested_count}")
for sha in "${ingested[@]}"; do bench_announce "$sha"; done
for sha in "${ingested[@]}"; do bench_wait_ingested "$sha"; done
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
