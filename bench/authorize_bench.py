#!/usr/bin/env python3
"""Authorize benchmark (issue 6), 127.0.0.1 only, bounded in time.

Starts connectd, creates N intentions through the API (default 1,000: `src-i => dst-(i % 100)`
plus one `web => db`), then runs `wrk -t2 -c64 -d10s` POSTing an authorize request for
`web => db` (the matching intention sits among 10 others for `db`; every request walks the
precedence-ordered list for its target).

Usage: python3 bench/authorize_bench.py --bin .build/release/connectd [--intentions 1000]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time

from benchlib import free_port, rss_kib, wrk, stop_agent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--intentions", type=int, default=1000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="connectd-authz-bench-")
    port = free_port()
    config = os.path.join(work, "agent.json")
    with open(config, "w") as f:
        json.dump({"ports": {"http": port}, "log_level": "warn"}, f)
    proc = subprocess.Popen([args.bin, "agent", "-data-dir", os.path.join(work, "data"), "-config-file", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        for _ in range(300):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/v1/agent/connect/ca/roots")
                roots = json.loads(conn.getresponse().read())
                break
            except OSError:
                time.sleep(0.05)
        started = time.perf_counter()
        for i in range(args.intentions - 1):
            body = json.dumps({"SourceName": f"src-{i}", "DestinationName": f"dst-{i % 100}", "Action": "deny"})
            conn.request("POST", "/v1/connect/intentions", body=body)
            assert conn.getresponse().read()
        conn.request("POST", "/v1/connect/intentions", body=json.dumps({"SourceName": "web", "DestinationName": "db", "Action": "allow"}))
        conn.getresponse().read()
        print(f"created {args.intentions} intentions in {time.perf_counter() - started:.2f} s")
        uri = f"spiffe://{roots['TrustDomain']}/ns/default/dc/dc1/svc/web"
        body = json.dumps({"Target": "db", "ClientCertURI": uri, "ClientCertSerial": "04"})
        conn.request("POST", "/v1/agent/connect/authorize", body=body)
        print("answer:", conn.getresponse().read().decode())
        script = os.path.join(work, "authorize.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(body))
        print("wrk -t2 -c64 -d10s POST /v1/agent/connect/authorize:")
        for line in wrk(f"http://127.0.0.1:{port}/v1/agent/connect/authorize", script=script):
            print("   ", line)
        print(f"connectd RSS {rss_kib(proc.pid) / 1024:.1f} MiB")
    finally:
        stop_agent(proc, work)


if __name__ == "__main__":
    main()
