#!/usr/bin/env python3
"""The built-in proxy pair against the direct baseline, in one run (issue 17).

Starts two `connectd demo-http` services (web, db) and an agent whose two managed `connectd
proxy` children front them, web with an upstream to db. Then, with wrk (-t2 -c16) on the same
cores, measures db directly and through web's upstream listener (web's proxy -> mutual TLS ->
db's proxy -> db), each with kept-alive connections and with a new connection per request
(`Connection: close`), and prints the ratios (pair / direct). Also each proxy's threads and
anonymous memory idle, after the load, and after a further minute of new connections (--soak).

    swift build -c release --product connectd
    python3 bench/proxy_bench.py --bin .build/release/connectd [--seconds 8] [--perf]

With --perf, db's proxy is profiled (`perf record -g -p <pid>`) during the new-connection load
through the pair, and its CPU is printed by kind (crypto, the rest of TLS, kernel, Swift
runtime and allocation, other).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import anon_kib, free_port, p99_ms, start_agent, stop_agent, wrk  # noqa: E402


def rate(lines):
    return float(next(line.split()[1] for line in lines if line.startswith("Requests/sec")))


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def proxy_pids(agent_pid):
    """The agent's children that run `connectd proxy`, by proxy ID (from CONSUL_PROXY_ID)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
            if parent != agent_pid:
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
            if b"CONSUL_PROXY_ID" in env:
                found[env[b"CONSUL_PROXY_ID"].decode()] = int(entry)
        except OSError:
            continue
    return found


CRYPTO = re.compile(r"ecp_|nistz|fiat_|mlkem|bn_|BN_|aes|gcm|sha|SHA|ecdsa|ECDSA|x25519|X25519|EC_|ec_|p256|"
                    r"CRYPTO_|EVP_|HMAC|hkdf|HKDF|RAND|rand_|chacha|poly1305|ghash", re.I)
TLS = re.compile(r"CNIOBoringSSL|ssl|SSL|tls13|bssl|NIOSSL")


def profile_shares(data):
    """CPU shares of a `perf record` by kind, from `perf report` by symbol."""
    out = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--sort", "symbol"],
                         capture_output=True, text=True).stdout
    shares = {"crypto (BoringSSL primitives)": 0.0, "rest of TLS (BoringSSL, NIOSSL)": 0.0, "kernel": 0.0,
              "Swift runtime and malloc": 0.0, "other": 0.0}
    for line in out.splitlines():
        match = re.match(r"\s+([0-9.]+)%\s+\[(.)\]\s+(.*)", line)
        if not match:
            continue
        share, space, symbol = float(match.group(1)), match.group(2), match.group(3).strip()
        if space == "k":
            shares["kernel"] += share
        elif CRYPTO.search(symbol):
            shares["crypto (BoringSSL primitives)"] += share
        elif TLS.search(symbol):
            shares["rest of TLS (BoringSSL, NIOSSL)"] += share
        elif re.search(r"swift_|malloc|free|_int_|cfree|memmove|memcpy", symbol):
            shares["Swift runtime and malloc"] += share
        else:
            shares["other"] += share
    return shares


def cpu_seconds(pid):
    """User plus system CPU time of `pid` so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def footprint(pids):
    return ", ".join(f"{name}: {threads(pid)} threads, {anon_kib(pid) / 1024:.1f} MiB anon" for name, pid in sorted(pids.items()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--soak", type=int, default=60,
                        help="seconds of new-connection load through the pair before the last memory reading (0: none)")
    parser.add_argument("--perf", action="store_true")
    parser.add_argument("--perf-load", choices=("new connection", "keep-alive"), default="new connection",
                        help="the load through the pair that --perf profiles db's proxy under")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="connectd-proxy-bench-")
    apps = []
    agent = None
    try:
        web_port, db_port, upstream_port = free_port(), free_port(), free_port()
        for name, port in (("web", web_port), ("db", db_port)):
            apps.append(subprocess.Popen([args.bin, "demo-http", "-name", name, "-listen", f"127.0.0.1:{port}"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        agent, agent_port = start_agent(args.bin, work, {
            "bind_addr": "127.0.0.1",
            "connect": {"proxy": {"allow_managed_root": True}},
            "services": [
                {"name": "web", "port": web_port, "connect": {"proxy": {
                    "upstreams": [{"destination_name": "db", "local_bind_port": upstream_port}]}}},
                {"name": "db", "port": db_port, "connect": {"proxy": {}}}]})
        url = f"http://127.0.0.1:{upstream_port}/"
        deadline = time.time() + 30
        while time.time() < deadline:
            out = subprocess.run(["curl", "-s", "-m", "2", url], capture_output=True, text=True).stdout
            if out.startswith("hello from db"):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("the proxy pair never passed traffic")
        pids = proxy_pids(agent.pid)
        time.sleep(2)
        print(f"idle: {footprint(pids)}")
        close = os.path.join(work, "close.lua")
        with open(close, "w") as f:
            f.write('wrk.headers["Connection"] = "close"\n')
        results = {}
        for label, target in (("direct", f"http://127.0.0.1:{db_port}/"), ("pair", url)):
            for mode, script in (("keep-alive", None), ("new connection", close)):
                profiler = None
                if args.perf and label == "pair" and mode == args.perf_load:
                    command = ["perf", "record", "-g", "-o", os.path.join(work, "perf.data"), "-p", str(pids["db-proxy"]),
                               "--", "sleep", str(max(1, args.seconds - 3))]
                    print("profiling db-proxy:", " ".join(command))
                    profiler = subprocess.Popen(["sh", "-c", "sleep 1; exec " + " ".join(command)],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                watched = {"db": apps[1].pid, **pids}
                before = {name: cpu_seconds(pid) for name, pid in watched.items()}
                lines = wrk(target, connections=16, seconds=args.seconds, script=script)
                if profiler is not None:
                    profiler.wait()
                results[(label, mode)] = (rate(lines), p99_ms(lines))
                requests = results[(label, mode)][0] * args.seconds
                costs = ", ".join(f"{name} {(cpu_seconds(pid) - before[name]) / requests * 1e6:.0f}"
                                  for name, pid in watched.items() if cpu_seconds(pid) > before[name])
                print(f"{label:6} {mode:14}: {results[(label, mode)][0]:9.0f} req/s, p99 {results[(label, mode)][1]:.2f} ms; "
                      f"CPU µs per request: {costs}")
        for mode in ("keep-alive", "new connection"):
            (direct, direct_p99), (pair, pair_p99) = results[("direct", mode)], results[("pair", mode)]
            print(f"ratio {mode:14}: {pair / direct:.3f} (pair {pair:.0f} / direct {direct:.0f} req/s); "
                  f"p99 pair {pair_p99:.2f} ms vs direct {direct_p99:.2f} ms (+{pair_p99 - direct_p99:.2f} ms)")
        print(f"after the load: {footprint(pids)}")
        if args.soak > 0:
            lines = wrk(url, connections=16, seconds=args.soak, script=close)
            print(f"after {args.soak} s more of new connections through the pair ({rate(lines):.0f} req/s): {footprint(pids)}")
        if args.perf:
            if os.environ.get("PROXY_BENCH_KEEP_PERF"):
                shutil.copy(os.path.join(work, "perf.data"), os.environ["PROXY_BENCH_KEEP_PERF"])
            shares = profile_shares(os.path.join(work, "perf.data"))
            print(f"db-proxy CPU under the {args.perf_load} load: " + ", ".join(f"{k} {v:.1f} %" for k, v in shares.items()))
    finally:
        if agent is not None:
            stop_agent(agent, work)
        for app in apps:
            app.kill()
            app.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
