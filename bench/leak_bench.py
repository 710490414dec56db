#!/usr/bin/env python3
"""Memory under a long run of event-loop answers (issue 14's leak bar).

Starts connectd as http_ratio.py does, then runs `wrk -t2 -c64` with a script that cycles through
GET roots, GET leaf/web, GET proxy config, POST authorize and GET agent/service/web-proxy on
every connection. It reads connectd's VmRSS after the first --warm requests and again after
--total, and prints both. Bar: RSS after 2,000,000 requests within 16 MiB of RSS after the first
100,000. (The leak fixed in issue 14 grew RSS by about 500 bytes per request: ~900 MiB here.)

    swift build -c release --product connectd
    python3 bench/leak_bench.py --bin .build/release/connectd
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import rss_kib, start_agent, stop_agent  # noqa: E402
from http_ratio import AGENT_CONFIG, prepare  # noqa: E402

MIXED = """
local requests = {}
init = function(args)
  requests[1] = wrk.format("GET", "/v1/agent/connect/ca/roots")
  requests[2] = wrk.format("GET", "/v1/agent/connect/ca/leaf/web")
  requests[3] = wrk.format("GET", "/v1/agent/connect/proxy/web-proxy")
  requests[4] = wrk.format("POST", "/v1/agent/connect/authorize", {["Content-Type"] = "application/json"}, %s)
  requests[5] = wrk.format("GET", "/v1/agent/service/web-proxy")
end
local i = 0
request = function()
  i = i %% #requests + 1
  return requests[i]
end
"""


def run_wrk(port, seconds, script):
    """One wrk run; returns (requests, non-2xx count)."""
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{seconds}s", "-s", script, f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    done = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return done, int(bad.group(1)) if bad else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--warm", type=int, default=100_000)
    parser.add_argument("--total", type=int, default=2_000_000)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = tempfile.mkdtemp(prefix="connectd-leak-bench-")
    proc, port = start_agent(args.bin, work, AGENT_CONFIG)
    try:
        authorize = [script for _, _, script in prepare(port, work) if script][0]
        body = re.search(r"wrk.body = (.*)\n", open(authorize).read()).group(1)
        script = os.path.join(work, "mixed.lua")
        with open(script, "w") as f:
            f.write(MIXED % body)
        start = rss_kib(proc.pid)
        done, bad = 0, 0
        while done < args.warm:
            n, b = run_wrk(port, 1, script)
            done, bad = done + n, bad + b
        warm_done, warm = done, rss_kib(proc.pid)
        while done < args.total:
            n, b = run_wrk(port, 10, script)
            done, bad = done + n, bad + b
        after = rss_kib(proc.pid)
        print(f"connectd RSS: {start / 1024:.1f} MiB at start, {warm / 1024:.1f} MiB after {warm_done:,} requests, "
              f"{after / 1024:.1f} MiB after {done:,} requests (non-2xx: {bad})")
        print(f"growth after the first {warm_done:,}: {(after - warm) / 1024:.1f} MiB (bar: <= 16 MiB)")
    finally:
        stop_agent(proc, work)


if __name__ == "__main__":
    main()
