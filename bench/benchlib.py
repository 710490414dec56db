"""Helpers shared by the benchmark scripts (loopback only)."""
import socket


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
    import subprocess
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
