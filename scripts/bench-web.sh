#!/usr/bin/env bash
# Server render time of the web UI's heavy pages for a repository with 10,000 issues and 5,000
# coverage files (issue 15's quality bar: p95 <= 50 ms), against a release build of
# `cocov serve` on the local PostgreSQL and Redis.
#   scripts/bench-web.sh            # build first: cargo build --release --locked
# BENCH_RUNS (default 200) timed requests per page after BENCH_WARMUP (default 10), one at a
# time; BENCH_ISSUES (10000) and BENCH_FILES (5000) set the volume.
# Starts the daemon on its own throw-away database, Redis prefix, storage and ports (see
# scripts/bench-daemon.sh); pushes a standalone repository of BENCH_FILES source files (100
# distinct 150-line blobs, written with git plumbing) and has the daemon ingest it; uploads a
# generated lcov report covering every file through /v1/reports/raw (the path CI uses, so the
# coverage rows, totals and status are the daemon's own); stores BENCH_ISSUES issues on the
# commit with the same INSERT the worker's issue registration runs, then the counts the pages
# read (commit and branch issue counts); signs the admin in with a password through
# POST /auth/local; then times each page with scripts/bench_web.py, which checks every answer
# is 200 and shows the expected count. Prints `uptime` before and after (the machine may be
# shared: say so when recording the numbers).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

issues=${BENCH_ISSUES:-10000}
files=${BENCH_FILES:-5000}
. scripts/bench-daemon.sh
bench_daemon_start cocov-bench-web "rate_limit_per_minute = 0"

# The origin: file i is src/m<i/100>/f<i>.rs, with one of 100 blobs of 150 lines of Rust.
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/tree"
blobs=()
for b in $(seq 0 99); do
    blobs+=("$(seq 150 | awk -v b="$b" '{printf "pub fn f%d_%d(x: u32) -> u32 { x.wrapping_mul(%d) + 1 }\n", b, $1, $1}' |
        git -C "$work/tree" hash-object -w --stdin)")
done
printf '%s\n' "${blobs[@]}" |
    awk -v n="$files" '{blob[NR - 1] = $0} END {
        for (i = 0; i < n; i++) printf "100644 %s\tsrc/m%d/f%d.rs\n", blob[i % 100], int(i / 100), i }' |
    git -C "$work/tree" update-index --add --index-info

repo=web
bench_ingest_index "$repo"
log "commit $sha with $files files ingested"

# Coverage: every file, 150 executable lines, file i covering the lines n with
# n % 100 < i * 37 % 101 (so percentages spread over 0-100 and the sort has work to do).
awk -v n="$files" 'BEGIN {
    for (i = 0; i < n; i++) {
        printf "SF:src/m%d/f%d.rs\n", int(i / 100), i
        for (l = 1; l <= 150; l++) printf "DA:%d,%d\n", l, (l % 100 < i * 37 % 101) ? 3 : 0
        print "end_of_record"
    } }' | gzip >"$work/coverage.info.gz"
curl -fsS -o "$work/upload.json" -X POST \
    "$api/v1/reports/raw?commit_sha=$sha&format=lcov&mode=replace" \
    -H "authorization: token $token" -H 'content-encoding: gzip' \
    -H 'content-type: text/plain' --data-binary @"$work/coverage.info.gz"
stored=$(sql "SELECT count(*) FROM coverage_files f JOIN coverage_infos i ON i.id = f.coverage_info_id JOIN commits c ON c.id = i.commit_id WHERE c.sha = '$sha' AND i.status = 'completed'")
[ "$stored" -eq "$files" ] || { log "$stored coverage files stored, not $files: $(cat "$work/upload.json")"; exit 1; }

# Issues: a completed check set with three finished plugins (the issue page's plugin filter
# counts per check), then the worker's INSERT (src/issues/register.rs) fed by generate_series
# instead of the plugins: 8 kinds, spread over the files; then the active count the commit and
# its branch carry (what checks::refresh_status writes).
sql "INSERT INTO check_sets (commit_id, status, started_at, finished_at)
     SELECT id, 'completed', now(), now() FROM commits WHERE sha = '$sha'
     ON CONFLICT (commit_id) DO UPDATE SET status = 'completed', error_kind = NULL,
         error_extra = NULL, started_at = now(), finished_at = now(), deadline_at = NULL"
sql "INSERT INTO checks (check_set_id, plugin_name, status, started_at, finished_at)
     SELECT s.id, p, 'completed', now(), now()
     FROM check_sets s JOIN commits c ON c.id = s.commit_id,
          unnest(ARRAY['cocov/clippy','cocov/semgrep','cocov/gitleaks']) p
     WHERE c.sha = '$sha'"
sql "INSERT INTO issues (commit_id, kind, file, uid, line_start, line_end, message, check_source)
     SELECT c.id,
            (ARRAY['style','performance','security','bug','complexity','duplication','convention','quality'])[1 + g % 8],
            'src/m' || (g % $files) / 100 || '/f' || g % $files || '.rs',
            'bench-' || g, 1 + g * 13 % 140, 1 + g * 13 % 140 + g % 3,
            'Bench finding ' || g || ': this value is computed but never used',
            (ARRAY['cocov/clippy','cocov/semgrep','cocov/gitleaks'])[1 + g % 3]
     FROM commits c, generate_series(0, $issues - 1) g WHERE c.sha = '$sha'"
sql "UPDATE commits SET issues_count = $issues WHERE sha = '$sha'"
sql "UPDATE branches b SET issues = $issues FROM commits c WHERE c.sha = '$sha' AND b.head_commit_id = c.id"
sql "ANALYZE issues, checks, check_sets, coverage_files, coverage_infos, commits, branches"
log "$stored coverage files and $(sql "SELECT count(*) FROM issues") issues stored"

# A browser's session: the admin signs in with a password.
web_password=$(random_hex 16)
printf '%s\n' "$web_password" | "$bin" --config "$work/cocov.toml" admin user set-password admin --password-stdin >/dev/null
cookie=$(curl -fsS -o /dev/null -D - -X POST "$api/auth/local" -H 'content-type: application/json' \
    -d "{\"login\":\"admin\",\"password\":\"$web_password\"}" |
    sed -n 's/^set-cookie: cocov_session=\([^;]*\);.*/\1/ip' | tr -d '\r')
[ -n "$cookie" ] || { log "no session cookie from POST /auth/local"; exit 1; }

# The pages, each with text only the real page shows: the count it must display.
commit=/repos/$repo/commits/$sha
late=$(((files + 49) / 50 - 1))
# A file from the late coverage page, so the file view shows a real row.
file=$(sql "SELECT f.file FROM coverage_files f ORDER BY f.percent_covered, f.file OFFSET $(((late - 1) * 50)) LIMIT 1")
filtered=$(sql "SELECT count(*) FROM issues WHERE kind = 'security' AND check_source = 'cocov/semgrep'")
pages=(
    "repositories|/|>$issues<"
    "repository|/repos/$repo|>$issues</a>"
    "issues|$commit/issues|>$issues issues<"
    "issues-filtered|$commit/issues?kind=security&plugin=cocov%2Fsemgrep&page=3|>$filtered issues matching"
    "coverage|$commit/coverage|>$files files<"
    "coverage-late-page|$commit/coverage?sort=least&page=$late|Page $late of"
    "coverage-file|$commit/coverage/file?path=$file|$file"
)

load_before=$(uptime)
log "load before: $load_before"
BENCH_API=$api BENCH_COOKIE=$cookie python3 scripts/bench_web.py "${pages[@]}" | tee "$work/summary.txt"
load_after=$(uptime)
echo "load before: $load_before"
echo "load after:  $load_after"
errors=$(grep -c ' ERROR ' "$work/serve.log" || true)
echo "daemon log lines at ERROR: $errors"
grep ' ERROR ' "$work/serve.log" | head -5 || true
if [ -n "${BENCH_HOLD:-}" ]; then
    # For profiling: the daemon stays up, seeded and signed in, until this script is stopped.
    log "holding: api $api, cookie $cookie, commit $commit, database $name; stop with kill $$"
    wait "$daemon"
fi
