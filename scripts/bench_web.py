#!/usr/bin/env python3
"""Times the web UI's pages for scripts/bench-web.sh.

Environment: BENCH_API (base URL), BENCH_COOKIE (the cocov_session value), BENCH_RUNS,
BENCH_WARMUP, BENCH_TARGET_MS. Arguments: one LABEL|PATH|TEXT triple per page (split on the
first two '|'), where TEXT must appear in the page, so an error or empty page cannot pass.

Each page is requested BENCH_WARMUP times, then BENCH_RUNS times sequentially on one
keep-alive connection; the time of a request is measured on the client from sending it to
reading its last byte (what curl's %{time_total} reports on a reused loopback connection).
Prints one line per page and a JSON summary; exits non-zero on any non-200 answer or missing
text (not on a missed target: the caller reports that).
"""

import http.client
import json
import os
import sys
import time
import urllib.parse


def percentile(sorted_values, fraction):
    # Nearest rank: the smallest value with at least `fraction` of the samples at or below it.
    rank = max(1, -(-len(sorted_values) * fraction // 1))
    return sorted_values[int(rank) - 1]


def fetch(conn, path, cookie):
    start = time.perf_counter()
    conn.request("GET", path, headers={"cookie": f"cocov_session={cookie}"})
    answer = conn.getresponse()
    body = answer.read()
    return time.perf_counter() - start, answer.status, body


def main():
    base = urllib.parse.urlsplit(os.environ["BENCH_API"])
    cookie = os.environ["BENCH_COOKIE"]
    runs = int(os.environ.get("BENCH_RUNS", "200"))
    warmup = int(os.environ.get("BENCH_WARMUP", "10"))
    target = float(os.environ.get("BENCH_TARGET_MS", "50"))
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=60)
    summary, failed = {}, False
    for spec in sys.argv[1:]:
        label, path, text = spec.split("|", 2)
        times = []
        for i in range(warmup + runs):
            seconds, status, body = fetch(conn, path, cookie)
            page = body.decode("utf-8", "replace")
            if status != 200 or text not in page:
                print(f"{label}: GET {path} answered {status} without {text!r}: {page[:500]}",
                      file=sys.stderr)
                failed = True
                break
            if i >= warmup:
                times.append(seconds * 1000)
        if len(times) < runs:
            continue
        times.sort()
        row = {
            "path": path,
            "runs": runs,
            "bytes": len(body),
            "p50_ms": round(percentile(times, 0.50), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "max_ms": round(times[-1], 1),
        }
        row["meets_target"] = row["p95_ms"] <= target
        summary[label] = row
        print(f"{label:<22} p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
              f"max {row['max_ms']:7.1f} ms  {row['bytes']:>7} B  {path}", flush=True)
    print(json.dumps(summary, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
