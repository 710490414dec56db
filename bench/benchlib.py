"""Helpers shared by the benchmark scripts (loopback only)."""
import http.client
import json
import os
import re
import socket
import subprocess
import time


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    """VmRSS of `pid` in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wrk(url, connections=64, seconds=10, script=None):
    """The summary lines of `wrk -t2 -c<connections> -d<seconds>s --latency` against `url`."""
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script:
        command += ["-s", script]
    out = subprocess.run(command + [url], capture_output=True, text=True, timeout=seconds + 50).stdout
    return [line.strip() for line in out.splitlines()
            if line.strip().startswith(("Requests/sec", "Latency", "50%", "90%", "99%", "Non-2xx"))]


def stop_agent(proc, work):
    """SIGTERM the agent, wait for it, and remove its work directory."""
    import shutil
    proc.terminate()
    proc.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)


def start_agent(binary, work, config=None):
    """Starts `binary agent` with `config` (merged over an HTTP port and log level warn) and
    waits until it answers; returns (process, port)."""
    port = free_port()
    path = os.path.join(work, "agent.json")
    with open(path, "w") as f:
        json.dump({"ports": {"http": port}, "log_level": "warn", **(config or {})}, f)
    proc = subprocess.Popen([binary, "agent", "-data-dir", os.path.join(work, "data"), "-config-file", path],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/v1/agent/self")
            conn.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("agent did not start")


def p99_ms(lines):
    """The 99th percentile latency in milliseconds from wrk's --latency lines."""
    for line in lines:
        if line.startswith("99%"):
            value = line.split()[1]
            number = float(re.match(r"[0-9.]+", value).group())
            if value.endswith("us"):
                return number / 1000
            if value.endswith("ms"):
                return number
            return number * 1000
    return None


def requests_per_second(lines):
    """Requests/sec from wrk's summary lines."""
    for line in lines:
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
    return None


def anon_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    return 0


def start_etcd(work):
    ports = [(free_port(), free_port()) for _ in range(3)]
    cluster = ",".join(f"e{i}=http://127.0.0.1:{peer}" for i, (_, peer) in enumerate(ports))
    procs = []
    for i, (client, peer) in enumerate(ports):
        procs.append(subprocess.Popen([
            "/usr/bin/etcd", "--name", f"e{i}", "--data-dir", os.path.join(work, f"etcd-{i}"),
            "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", cluster, "--initial-cluster-state", "new", "--pre-vote",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--experimental-watch-progress-notify-interval", "5s", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    endpoints = [f"http://127.0.0.1:{client}" for client, _ in ports]
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", ports[0][0], timeout=1)
            conn.request("POST", "/v3/kv/put", body=json.dumps({"key": "YmVuY2g=", "value": "MQ=="}))
            if b"revision" in conn.getresponse().read():
                return procs, endpoints
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("etcd did not start")
