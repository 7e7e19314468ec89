#!/usr/bin/env bash
# Cache round trips through the release daemon, as a plugin sees them: a plugin in the check
# sandbox (no network) talks to COCOV_CACHE_SERVICE_URL, i.e. the relay on the sandbox's loopback,
# the Unix socket, the service, PostgreSQL and the filesystem blob store. For each size it stores
# one artifact, then times RUNS GETs (whole body read) and RUNS HEADs; prints the medians.
#   scripts/bench-cache.sh [RUNS]          (target/release/cocov must exist)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
runs=${1:-20}
plugins=$(mktemp -d /tmp/bench-cache-plugins.XXXXXX)
chmod 755 "$plugins"
bench_extra_cleanup() { rm -rf "$plugins"; }
cat >"$plugins/bench.toml" <<EOF
name = "bench/cache"
command = "/usr/bin/python3"
timeout_seconds = 600
args = ["-c", '''
import http.client, json, os, statistics, time, urllib.parse
u = urllib.parse.urlparse(os.environ["COCOV_CACHE_SERVICE_URL"])
job = {"Cocov-Job-ID": os.environ["COCOV_JOB_IDENTIFIER"]}
def call(method, path, body=None, headers={}):
    c = http.client.HTTPConnection(u.hostname, u.port)
    start = time.perf_counter()
    c.request(method, path, body=body, headers={**job, **headers})
    r = c.getresponse(); data = r.read()
    took = (time.perf_counter() - start) * 1000
    assert r.status in (200, 204), (r.status, data)
    return took, len(data)
out = []
for size in (1024, 1024 * 1024, 32 * 1024 * 1024):
    body = os.urandom(size)
    put, _ = call("POST", f"/artifact/b{size}", body, {"Content-Type": "application/octet-stream", "Filename": f"b{size}"})
    gets = [call("GET", f"/artifact/b{size}") for _ in range($runs)]
    assert all(n == size for _, n in gets)
    heads = [call("HEAD", f"/artifact/b{size}")[0] for _ in range($runs)]
    out.append(f"{size} bytes: POST {put:.1f} ms, GET median {statistics.median(t for t, _ in gets):.1f} ms, HEAD median {statistics.median(heads):.1f} ms")
with open(os.environ["COCOV_OUTPUT_FILE"], "w") as f:
    for n, m in enumerate(out):
        f.write(json.dumps({"kind": "performance", "file": "x", "line_start": 1, "message": m, "uid": str(n)}) + "\0")
''']
EOF
export COCOV_WORKER_PLUGINS_DIR=$plugins
. scripts/bench-daemon.sh
bench_daemon_start cocov-bench-cache '[cache]' 'enabled = true'
# The sandbox's user reaches its work directory and the cache socket below it.
chmod 711 "$work"
git init -q --bare -b main "$work/origin.git"
git init -q -b main "$work/tree"
printf 'version: "0.1.alpha"\nchecks:\n  - plugin: bench/cache\n' >"$work/tree/.cocov.yaml"
echo x >"$work/tree/x"
git -C "$work/tree" add -A
git -C "$work/tree" -c user.name=bench -c user.email=bench@example.invalid commit -qm bench --no-verify
sha=$(git -C "$work/tree" rev-parse HEAD)
git -C "$work/tree" push -q "$work/origin.git" main
bench_register_repository bench
bench_announce "$sha"
for _ in $(seq 1500); do
    state=$(sql "SELECT s.status FROM check_sets s JOIN commits c ON c.id = s.commit_id WHERE c.sha = '$sha'")
    case $state in completed | errored | canceled) break ;; esac
    sleep 0.2
done
[ "$state" = completed ] || { sql "SELECT error_output FROM checks" >&2; exit 1; }
sql "SELECT message FROM issues ORDER BY uid"
