#!/usr/bin/env python3
"""GET /v1/agent/connect/ca/roots latency idle and while `connectd ca rotate` runs in a loop.

Issue 13's bar: the p99 during rotations stays within 2x the idle p99 (readers take the
published snapshot; key generation, signing and fsyncs happen in the state actor). Both sides
are measured in one run with `wrk -t2 -c16 -d10s --latency`, on a release build:

    swift build -c release --product connectd
    python3 bench/rotation_bench.py .build/release/connectd
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import p99_ms, start_agent, stop_agent, wrk  # noqa: E402


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/connectd"
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    work = tempfile.mkdtemp(prefix="connectd-rotation-bench-")
    proc, port = start_agent(binary, work)
    url = f"http://127.0.0.1:{port}/v1/agent/connect/ca/roots"
    try:
        idle = wrk(url, connections=16, seconds=10)
        rotations = [0]
        stop = threading.Event()

        def rotate():
            while not stop.is_set():
                done = subprocess.run([binary, "ca", "rotate", "-http-addr", f"127.0.0.1:{port}"], capture_output=True, text=True)
                if done.returncode == 0:
                    rotations[0] += 1

        thread = threading.Thread(target=rotate)
        thread.start()
        busy = wrk(url, connections=16, seconds=10)
        stop.set()
        thread.join()
        print("idle:", *idle, sep="\n  ")
        print(f"during {rotations[0]} rotations (connectd ca rotate in a loop):", *busy, sep="\n  ")
        a, b = p99_ms(idle), p99_ms(busy)
        if a and b:
            print(f"p99 idle {a:.2f} ms, during rotations {b:.2f} ms: ratio {b / a:.2f} (bar: <= 2.0)")
    finally:
        stop_agent(proc, work)


if __name__ == "__main__":
    main()
