#!/usr/bin/env python3
"""connectd's HTTP server against a bare SwiftNIO server in one run (issue 14).

Starts connectd (one service `web` with a managed proxy whose command is not run, one intention
`web => db`) and `bench-constant-server` (NIOHTTP1's standard pipeline answering a constant JSON
body), then for each endpoint runs `wrk -t2 -c64 -d<seconds>s --latency` against the bare server
and against connectd, alternating, `--rounds` times. The authorize run POSTs the same body to
both. Bar: connectd >= 0.7x the bare server's requests/s and p99 <= 1.25x its p99.

    swift build -c release --product connectd --product bench-constant-server
    python3 bench/http_ratio.py --bin .build/release/connectd --floor .build/release/bench-constant-server
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import free_port, p99_ms, requests_per_second, start_agent, stop_agent, wrk  # noqa: E402

AGENT_CONFIG = {
    "service": {"name": "web", "port": 8080, "connect": {"proxy": {
        "command": ["/bin/true"], "config": {"foo": "bar"},
        "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}},
}


def wait_for_port(port):
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def prepare(port, work):
    """Creates the intention, warms the leaf, and writes the authorize wrk script; returns the
    endpoints as (name, path, script)."""
    base = f"http://127.0.0.1:{port}"
    request = urllib.request.Request(base + "/v1/connect/intentions", method="POST",
                                     data=json.dumps({"SourceName": "web", "DestinationName": "db", "Action": "allow"}).encode())
    urllib.request.urlopen(request, timeout=10).read()
    roots = json.loads(urllib.request.urlopen(base + "/v1/agent/connect/ca/roots", timeout=10).read())
    urllib.request.urlopen(base + "/v1/agent/connect/ca/leaf/web", timeout=10).read()
    body = json.dumps({"Target": "db", "ClientCertURI": f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/web",
                       "ClientCertSerial": "04"})
    script = os.path.join(work, "authorize.lua")
    with open(script, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(body))
    return [("proxy config", "/v1/agent/connect/proxy/web-proxy", None),
            ("roots", "/v1/agent/connect/ca/roots", None),
            ("leaf", "/v1/agent/connect/ca/leaf/web", None),
            ("authorize", "/v1/agent/connect/authorize", script)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--floor", default=".build/release/bench-constant-server")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--body-bytes", type=int, default=512, help="size of the bare server's constant body")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = tempfile.mkdtemp(prefix="connectd-ratio-bench-")
    proc, port = start_agent(args.bin, work, AGENT_CONFIG)
    floor_port = free_port()
    floor = subprocess.Popen([args.floor, str(floor_port), str(args.body_bytes)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port(floor_port)
        endpoints = prepare(port, work)
        rows = []
        for name, path, script in endpoints:
            runs = []
            for _ in range(args.rounds):
                bare = wrk(f"http://127.0.0.1:{floor_port}{path}", seconds=args.seconds, script=script)
                ours = wrk(f"http://127.0.0.1:{port}{path}", seconds=args.seconds, script=script)
                if any(line.startswith("Non-2xx") for line in ours):
                    raise SystemExit(f"{name}: connectd answered non-2xx: {ours}")
                runs.append((requests_per_second(bare), p99_ms(bare), requests_per_second(ours), p99_ms(ours)))
            rows.append((name, runs))
        print(f"wrk -t2 -c64 -d{args.seconds}s, {args.rounds} alternating rounds; bare server body {args.body_bytes} bytes")
        print("| endpoint | bare req/s | connectd req/s | ratio (>= 0.7) | bare p99 | connectd p99 | ratio (<= 1.25) |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for name, runs in rows:
            def col(i, fmt):
                return " / ".join(fmt(run[i]) for run in runs)
            rate = statistics.median(run[2] / run[0] for run in runs)
            tail = statistics.median(run[3] / run[1] for run in runs)
            print(f"| {name} | {col(0, lambda v: f'{v / 1000:.1f}k')} | {col(2, lambda v: f'{v / 1000:.1f}k')} | {rate:.2f} "
                  f"| {col(1, lambda v: f'{v:.2f} ms')} | {col(3, lambda v: f'{v:.2f} ms')} | {tail:.2f} |")
    finally:
        floor.terminate()
        floor.wait(timeout=10)
        stop_agent(proc, work)


if __name__ == "__main__":
    main()
