#!/usr/bin/env python3
"""CA benchmarks (issue 5), 127.0.0.1 only, bounded in count and time.

1. Cold issuance: N new service names (default 1,000) fetched from
   /v1/agent/connect/ca/leaf/<name> by C concurrent keep-alive clients (default 8); every request
   is a cache miss, so each one generates a key and signs a certificate.
2. Cached GET throughput of /v1/agent/connect/ca/roots and /v1/agent/connect/ca/leaf/web with
   `wrk -t2 -c64 -d10s` (when wrk is installed).

Usage: python3 bench/ca_bench.py --bin .build/release/connectd [--names 1000] [--clients 8]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

from benchlib import rss_kib, start_agent, stop_agent
from benchlib import wrk as benchlib_wrk


def cold_issuance(port, names, clients):
    work = [f"bench-svc-{i}" for i in range(names)]
    lock = threading.Lock()
    latencies = []
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not work:
                    return
                name = work.pop()
            started = time.perf_counter()
            conn.request("GET", f"/v1/agent/connect/ca/leaf/{name}")
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status != 200 or b"BEGIN CERTIFICATE" not in body:
                    errors.append(response.status)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    total = time.perf_counter() - started
    latencies.sort()
    return total, latencies, errors


def wrk(port, path, connections=64, seconds=10, script=None):
    return benchlib_wrk(f"http://127.0.0.1:{port}{path}", connections=connections, seconds=seconds, script=script)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="connectd-ca-bench-")
    proc, port = start_agent(args.bin, work)
    try:
        total, latencies, errors = cold_issuance(port, args.names, args.clients)
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
        print(f"cold issuance: {args.names} names, {args.clients} clients: {total:.3f} s = {args.names / total:.0f} certs/s; "
              f"latency p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms; errors {len(errors)}; connectd RSS {rss_kib(proc.pid) / 1024:.1f} MiB")
        if shutil.which("wrk"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/v1/agent/connect/ca/leaf/web")
            conn.getresponse().read()
            script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unique_leaf.lua")
            print("wrk -t2 -c8 -d5s, every request a new service name (cold issuance, lighter client):")
            for line in wrk(port, "/", connections=8, seconds=5, script=script):
                print("   ", line)
            for path in ["/v1/agent/connect/ca/roots", "/v1/agent/connect/ca/leaf/web"]:
                print(f"wrk -t2 -c64 -d10s GET {path}:")
                for line in wrk(port, path):
                    print("   ", line)
        else:
            print("wrk is missing: apt-get install -y wrk (cached GET throughput skipped)")
    finally:
        stop_agent(proc, work)


if __name__ == "__main__":
    main()
