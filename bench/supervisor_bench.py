#!/usr/bin/env python3
"""Supervisor benchmarks (issue 3): start time and RSS with N proxies, restart latency after kill -9.

Runs the connectd binary given by --bin (build it with `swift build -c release`) on 127.0.0.1
with N managed proxies whose command is `sleep`, in a temporary data_dir. Bounded in count and time.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.request

from benchlib import free_port, rss_kib


def proxies(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agent/proxies", timeout=5) as r:
        return json.load(r)


def children(pid):
    found = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found.update(int(c) for c in f.read().split())
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--proxies", type=int, default=200)
    parser.add_argument("--kills", type=int, default=50)
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        services = [{"name": f"svc{i}", "port": 10000 + i, "connect": {"proxy": {}}} for i in range(args.proxies)]
        config = {
            "ports": {"http": port, "proxy_min_port": 30000, "proxy_max_port": 30000 + args.proxies + 10},
            "log_level": "warn",
            "connect": {"proxy": {"allow_managed_root": True},
                        "proxy_defaults": {"daemon_command": ["/bin/sleep", "100000"], "stop_grace": "2s",
                                           "restart": {"immediate": 1000}}},
            "services": services,
        }
        with open(os.path.join(work, "agent.json"), "w") as f:
            json.dump(config, f)
        started = time.monotonic()
        agent = subprocess.Popen([args.bin, "agent", "-data-dir", os.path.join(work, "data"),
                                  "-config-file", os.path.join(work, "agent.json")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = started + 60
            running = 0
            while time.monotonic() < deadline:
                try:
                    running = sum(1 for p in proxies(port) if p["State"] == "running")
                except OSError:
                    running = 0
                if running == args.proxies:
                    break
                time.sleep(0.01)
            start_seconds = time.monotonic() - started
            assert running == args.proxies, f"only {running} of {args.proxies} proxies running"
            time.sleep(1)
            rss = rss_kib(agent.pid)

            latencies = []
            for i in range(args.kills):
                target = proxies(port)[i % args.proxies]["Pid"]
                before = children(agent.pid)
                t0 = time.monotonic_ns()
                os.kill(target, signal.SIGKILL)
                new = set()
                while not new and time.monotonic_ns() - t0 < 5_000_000_000:
                    new = children(agent.pid) - before
                latencies.append((time.monotonic_ns() - t0) / 1e6)
                time.sleep(0.05)
            rss_after = rss_kib(agent.pid)
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
        latencies.sort()
        print(f"proxies: {args.proxies}")
        print(f"time until all {args.proxies} proxies running (from exec of connectd): {start_seconds * 1000:.0f} ms")
        print(f"connectd RSS with {args.proxies} proxies: {rss / 1024:.1f} MiB (after {args.kills} restarts: {rss_after / 1024:.1f} MiB)")
        print(f"restart latency after kill -9 (kill -> new child forked), {args.kills} kills: "
              f"median {statistics.median(latencies):.2f} ms, p90 {latencies[int(len(latencies) * 0.9) - 1]:.2f} ms, "
              f"max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    main()
