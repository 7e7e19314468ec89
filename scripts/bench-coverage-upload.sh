#!/usr/bin/env bash
# Upload-to-final-status time for a large Cobertura report against a running release daemon.
#   scripts/bench-coverage-upload.sh REPORT.xml [RUNS]
# REPORT.xml: e.g. the 70 MB report benches/coverage_parse.rs generates
#   (COVERAGE_BENCH_DIR=/tmp/cov cargo bench --bench coverage_parse keeps it as coverage.xml).
# Starts target/release/cocov serve on its own throw-away database, Redis prefix, storage and
# ports; registers a standalone repository whose one commit holds every file the report names
# (all the same 1000-line blob, so the repository stays small); pushes and announces the commit
# and waits for its ingestion; then, RUNS times (default 3), POSTs the gzip-compressed report to
# /v1/reports/raw (replace mode) and measures the time until the answer, which comes after the
# coverage is stored and the cocov/coverage status is set (the upload is applied synchronously
# for an ingested commit). Prints one line per run and checks the status row in PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

report=${1:?usage: $0 REPORT.xml [RUNS]}
runs=${2:-3}
report=$(realpath "$report")
. scripts/bench-daemon.sh
bench_daemon_start cocov-bench-upload

# The commit: every filename of the report under src/main/java/ (the report's <source> ends
# in src/main/java), all pointing at one blob, written through the index without a checkout.
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/tree"
blob=$(seq 1000 | sed 's/.*/    x();/' | git -C "$work/tree" hash-object -w --stdin)
grep -o 'filename="[^"]*"' "$report" | sed 's/^filename="//; s/"$//' | sort -u |
    awk -v b="$blob" '{print "100644 " b "\tsrc/main/java/" $0}' |
    git -C "$work/tree" update-index --add --index-info
files=$(git -C "$work/tree" ls-files | wc -l)

repo=bench
bench_ingest_index "$repo"
log "commit $sha with $files files ingested"

gz=$work/report.xml.gz
gzip -c "$report" >"$gz"
size=$(stat -c %s "$report")
gz_size=$(stat -c %s "$gz")
log "report: $size bytes, gzip: $gz_size bytes"
for run in $(seq "$runs"); do
    out=$(curl -sS -o "$work/answer.json" -w '%{http_code} %{time_total}' -X POST \
        "$api/v1/reports/raw?commit_sha=$sha&format=cobertura&mode=replace" \
        -H "authorization: token $token" -H 'content-encoding: gzip' \
        -H 'content-type: application/xml' --data-binary @"$gz")
    read -r code seconds <<<"$out"
    [ "$code" = 200 ] ||
        { log "upload answered $code: $(head -c 2000 "$work/answer.json")"; exit 1; }
    status=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d.get("files_matched"), d.get("files_unmatched"))' "$work/answer.json")
    gate=$(sql "SELECT s.state || ' ' || s.description FROM commit_statuses s JOIN commits c ON c.id = s.commit_id WHERE c.sha = '$sha' AND s.context = 'cocov/coverage'")
    if [ -z "$gate" ] || [ "${gate%% *}" = pending ]; then
        log "no final cocov/coverage status: $gate"
        exit 1
    fi
    printf 'run %s: HTTP %s in %.2f s; answer: %s (matched, unmatched); cocov/coverage: %s\n' \
        "$run" "$code" "$seconds" "$status" "$gate"
done
# What a reader sees afterwards: the stored coverage of the commit.
curl -fsS "$api/v1/repositories/$repo/commits/$sha/coverage/summary" -H "authorization: bearer $admin" |
    python3 -c 'import json,sys; print("coverage summary:", json.dumps(json.load(sys.stdin))[:400])'
stored=$(sql "SELECT count(*) FROM coverage_files f JOIN coverage_infos i ON i.id = f.coverage_info_id JOIN commits c ON c.id = i.commit_id WHERE c.sha = '$sha'")
echo "coverage file rows stored for the commit: $stored"
ps -o rss= -p "$daemon" | awk '{printf "daemon RSS after the uploads: %.0f MB\n", $1 / 1024}'
