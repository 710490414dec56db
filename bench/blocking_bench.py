#!/usr/bin/env python3
"""Blocking-query benchmarks (issue 4): RSS per hash-blocked watcher and wake-up latency.

The default client is bench/watchers.c (compiled with gcc at run time, epoll, one process;
`--connection close` makes the server close each connection after its answer, keep-alive is
the default because a proxy keeps its connection for the next long-poll);
`--client python` uses asyncio instead, whose own reading time dominates at 10,000 watchers.

Starts the connectd binary given by --bin on 127.0.0.1 with one API-registered managed proxy,
parks --watchers asyncio clients on GET /v1/agent/connect/proxy/<id>?hash=<current>&wait=5m,
measures connectd's RSS growth, changes the proxy's config with one registration and measures
when each watcher got its answer. Needs `ulimit -n` above the watcher count.
"""
import argparse
import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

from benchlib import free_port, rss_kib


def register(port, value):
    body = json.dumps({"Name": "web", "Port": 8080,
                       "Connect": {"Proxy": {"Command": ["/bin/true"], "Config": {"v": value}}}}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/agent/service/register", data=body, method="PUT")
    urllib.request.urlopen(req, timeout=10).read()


async def watch(port, path, parked, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    parked.append(1)
    await reader.read(1)  # the first byte of the answer
    results.append(time.monotonic())
    await reader.read()
    writer.close()


async def run(args, port, pid):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agent/connect/proxy/web-proxy", timeout=10) as r:
        current = r.headers["X-Consul-Contenthash"]
    path = f"/v1/agent/connect/proxy/web-proxy?hash={current}&wait=5m"
    parked, results = [], []
    base = rss_kib(pid)
    tasks = []
    for i in range(args.watchers):
        tasks.append(asyncio.create_task(watch(port, path, parked, results)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    while len(parked) < args.watchers:
        await asyncio.sleep(0.05)
    await asyncio.sleep(2)  # let every request reach its parked state
    loaded = rss_kib(pid)
    assert not results, f"{len(results)} watchers answered before the change"
    changed = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, register, port, 2)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    latencies = sorted((t - changed) * 1000 for t in results)
    return base, loaded, latencies


def run_c_client(args, port, pid, work):
    """The same measurement with bench/watchers.c (epoll, no Python in the timing path)."""
    client = os.path.join(work, "watchers")
    subprocess.run(["gcc", "-O2", "-o", client, os.path.join(os.path.dirname(__file__), "watchers.c")], check=True)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/agent/connect/proxy/web-proxy", timeout=10) as r:
        current = r.headers["X-Consul-Contenthash"]
    trigger = os.path.join(work, "go")
    base = rss_kib(pid)
    proc = subprocess.Popen([client, str(port), f"/v1/agent/connect/proxy/web-proxy?hash={current}&wait=5m",
                             str(args.watchers), trigger, args.connection], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "parked"
    time.sleep(2)
    loaded = rss_kib(pid)
    open(trigger, "w").close()
    register(port, 2)
    out, _ = proc.communicate(timeout=120)
    return base, loaded, out.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--watchers", type=int, default=10000)
    parser.add_argument("--client", choices=["python", "c"], default="c")
    parser.add_argument("--connection", choices=["keep-alive", "close"], default="keep-alive",
                        help="C client: keep each connection after its answer (as proxies do) or ask the server to close it")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        with open(os.path.join(work, "agent.json"), "w") as f:
            # Every watcher connects from 127.0.0.1, so the per-client cap (200 by default) is off.
            json.dump({"ports": {"http": port}, "log_level": "warn", "limits": {"http_max_conns_per_client": 0},
                       "connect": {"proxy": {"allow_managed_api_registration": True}}}, f)
        agent = subprocess.Popen([args.bin, "agent", "-data-dir", os.path.join(work, "data"),
                                  "-config-file", os.path.join(work, "agent.json")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    register(port, 1)
                    break
                except OSError:
                    time.sleep(0.05)
            if args.client == "c":
                base, loaded, summary = run_c_client(args, port, agent.pid, work)
                latencies = None
            else:
                base, loaded, latencies = asyncio.run(run(args, port, agent.pid))
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=60)
    print(f"watchers: {args.watchers} ({args.client} client" + (f", {args.connection})" if args.client == "c" else ")"))
    print(f"connectd RSS: {base / 1024:.1f} MiB idle, {loaded / 1024:.1f} MiB with {args.watchers} parked watchers; "
          f"{(loaded - base) * 1024 / args.watchers / 1024:.2f} KiB per watcher")
    if latencies is None:
        print(f"change -> answer (from just before the change request): {summary}")
        return
    n = len(latencies)
    print(f"change -> answer: p50 {latencies[n // 2]:.1f} ms, p99 {latencies[int(n * 0.99) - 1]:.1f} ms, "
          f"last {latencies[-1]:.1f} ms")


if __name__ == "__main__":
    main()
