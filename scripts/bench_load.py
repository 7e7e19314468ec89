#!/usr/bin/env python3
"""Sustained mixed load against a running cocov daemon (driven by scripts/bench-load.sh).

Three kinds of traffic at once, each from its own threads with keep-alive connections:
  announce  POST /v1/repositories/{repo}/commits: new commits at a fixed rate (each one is then
            fetched, archived and stored by the worker), interleaved with re-announcements
  upload    POST /v1/reports/raw (gzip lcov) and POST /v1/reports (zstd-less gzip JSON line
            format) for ingested commits: mapped, merged, stored, gate status set, badges
            invalidated
  badge     GET {badger}/{repo}/coverage and /issues (cache hits, re-rendered after uploads)
Every answer that is not the documented success of its route counts as an error (printed).
Prints one JSON object: per kind requests, requests/s, errors, p50/p90/p99/max in ms.
Configuration comes from the environment (see bench-load.sh).
"""

import base64
import gzip
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"bench_load.py: {name} is required")
    return value


API = urllib.parse.urlsplit(env("BENCH_API"))
BADGER = urllib.parse.urlsplit(env("BENCH_BADGER"))
REPO = env("BENCH_REPO")
TOKEN = env("BENCH_UPLOAD_TOKEN")
DURATION = float(env("BENCH_SECONDS", "600"))
INGESTED = env("BENCH_INGESTED_SHAS").split(",")
NEW_SHAS = [s for s in env("BENCH_NEW_SHAS", "").split(",") if s]
ANNOUNCE_PER_SECOND = float(env("BENCH_ANNOUNCE_PER_SECOND", "2"))
UPLOAD_THREADS = int(env("BENCH_UPLOAD_THREADS", "4"))
BADGE_THREADS = int(env("BENCH_BADGE_THREADS", "4"))
FILES = int(env("BENCH_FILES", "50"))

LOCK = threading.Lock()
RESULTS = {}  # kind -> {"latencies": [...], "errors": n}
ERROR_SAMPLES = []


def record(kind, seconds, ok, detail=""):
    with LOCK:
        r = RESULTS.setdefault(kind, {"latencies": [], "errors": 0})
        r["latencies"].append(seconds)
        if not ok:
            r["errors"] += 1
            if len(ERROR_SAMPLES) < 20:
                ERROR_SAMPLES.append(f"{kind}: {detail}")


class Client:
    """One keep-alive connection, reopened after any failure."""

    def __init__(self, url):
        self.url = url
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
                return response.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                # A keep-alive connection the server closed between requests: one retry on a
                # fresh connection (what every HTTP client does); a second failure counts.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def timed(kind, client, method, path, body, headers, expected):
    started = time.perf_counter()
    try:
        status, data = client.request(method, path, body, headers)
        ok = status in expected
        detail = f"{method} {path} -> {status} {data[:200]!r}"
    except Exception as e:  # noqa: BLE001 - every failure is an error of the run
        ok, detail = False, f"{method} {path} -> {e!r}"
    record(kind, time.perf_counter() - started, ok, detail)


def lcov(seed):
    out = ["TN:"]
    for f in range(FILES):
        out.append(f"SF:src/f{f}.c")
        for line in range(1, 101):
            out.append(f"DA:{line},{(line * (seed + f)) % 3}")
        out.append("end_of_record")
    return gzip.compress(("\n".join(out) + "\n").encode(), 6)


def wire_line_data(seed):
    # The reporter's line format: hit counts as decimal text, lines separated by 0x1E.
    hits = [str((line * (seed + 1)) % 4).encode() for line in range(100)]
    return base64.b64encode(b"\x1e".join(hits)).decode()


def wire(sha, seed):
    data = {f"src/f{f}.c": wire_line_data(seed + f) for f in range(FILES)}
    return gzip.compress(json.dumps({"commit_sha": sha, "data": data}).encode(), 6)


def uploader(index, stop):
    client = Client(API)
    bodies = [lcov(i) for i in range(8)]
    n = index
    while not stop.is_set():
        sha = INGESTED[n % len(INGESTED)]
        headers = {"authorization": f"token {TOKEN}", "content-encoding": "gzip"}
        if n % 2 == 0:
            path = f"/v1/reports/raw?commit_sha={sha}&format=lcov"
            timed("upload_raw", client, "POST", path, bodies[n % 8], headers, {200})
        else:
            headers["content-type"] = "application/json"
            timed("upload_json", client, "POST", "/v1/reports", wire(sha, n % 8), headers, {204})
        n += UPLOAD_THREADS


def announcer(stop):
    client = Client(API)
    headers = {"authorization": f"token {TOKEN}", "content-type": "application/json"}
    path = f"/v1/repositories/{REPO}/commits"
    interval = 1.0 / ANNOUNCE_PER_SECOND
    next_at = time.monotonic()
    n = 0
    while not stop.is_set():
        # Every other announcement is a new commit (until they run out), the rest re-announce
        # an ingested one (a CI retry or a second branch): answered 202 as well.
        fresh = n % 2 == 0 and n // 2 < len(NEW_SHAS)
        sha = NEW_SHAS[n // 2] if fresh else INGESTED[n % len(INGESTED)]
        body = json.dumps({"sha": sha, "branch": "main"}).encode()
        timed("announce", client, "POST", path, body, headers, {202})
        n += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
    with LOCK:
        RESULTS.setdefault("announce", {"latencies": [], "errors": 0})["new_commits"] = min(
            (n + 1) // 2, len(NEW_SHAS)
        )


def badger(index, stop):
    client = Client(BADGER)
    kinds = ["coverage", "issues"]
    n = index
    while not stop.is_set():
        timed("badge", client, "GET", f"/{REPO}/{kinds[n % 2]}", None, {}, {200})
        n += 1


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def main():
    stop = threading.Event()
    threads = [threading.Thread(target=announcer, args=(stop,))]
    threads += [threading.Thread(target=uploader, args=(i, stop)) for i in range(UPLOAD_THREADS)]
    threads += [threading.Thread(target=badger, args=(i, stop)) for i in range(BADGE_THREADS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(DURATION)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    summary = {"seconds": round(elapsed, 1), "kinds": {}}
    for kind, r in sorted(RESULTS.items()):
        lat = sorted(r["latencies"])
        ms = lambda v: None if v is None else round(v * 1000, 2)  # noqa: E731
        summary["kinds"][kind] = {
            "requests": len(lat),
            "per_second": round(len(lat) / elapsed, 1),
            "errors": r["errors"],
            "p50_ms": ms(percentile(lat, 50)),
            "p90_ms": ms(percentile(lat, 90)),
            "p99_ms": ms(percentile(lat, 99)),
            "max_ms": ms(lat[-1] if lat else None),
            **({"new_commits": r["new_commits"]} if "new_commits" in r else {}),
        }
    summary["error_samples"] = ERROR_SAMPLES
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
