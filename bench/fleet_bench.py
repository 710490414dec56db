#!/usr/bin/env python3
"""Fleet mode numbers (issue 15): a real 3-member etcd cluster on loopback and two agents.

1. Intention propagation: 100 times, a deny intention web -> db is created on host A, and host B's
   POST /v1/agent/connect/authorize is polled (one kept-alive connection, no pause) until it says
   Authorized=false; then the intention is deleted on A and B is polled until it allows again.
   Prints p50/p99 of write-on-A -> first-answer-on-B for both directions.
2. Memory per remote instance: host A registers --instances services through its API; once B's
   /v1/catalog/services lists them all, B's anonymous memory (RssAnon) is compared with before.

    swift build -c release --product connectd
    python3 bench/fleet_bench.py --bin .build/release/connectd
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import anon_kib, start_agent, start_etcd, stop_agent  # noqa: E402


def call(conn, method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body))
    response = conn.getresponse()
    return response.status, response.read()


def wait_for(predicate, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--instances", type=int, default=1000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="connectd-fleet-bench-")
    etcd, endpoints = start_etcd(work)
    agents = []
    try:
        hosts = {}
        for node, holder in (("host-a", True), ("host-b", False)):
            directory = os.path.join(work, node)
            os.makedirs(directory)
            proc, port = start_agent(args.bin, directory, {
                "node_name": node, "bind_addr": "127.0.0.1",
                "fleet": {"etcd_endpoints": endpoints, "root_holder": holder}})
            agents.append((proc, directory))
            hosts[node] = (proc, port)
        a = http.client.HTTPConnection("127.0.0.1", hosts["host-a"][1], timeout=10)
        b = http.client.HTTPConnection("127.0.0.1", hosts["host-b"][1], timeout=10)
        assert wait_for(lambda: call(b, "GET", "/v1/agent/connect/ca/leaf/web")[0] == 200), "host-b never got its intermediate"
        trust = json.loads(call(b, "GET", "/v1/agent/connect/ca/roots")[1])["TrustDomain"]
        question = {"Target": "db", "ClientCertURI": f"spiffe://{trust}/ns/default/dc/dc1/svc/web", "ClientCertSerial": "01"}

        def authorized():
            return json.loads(call(b, "POST", "/v1/agent/connect/authorize", question)[1])["Authorized"]

        to_deny, to_allow = [], []
        for _ in range(args.writes):
            start = time.perf_counter()
            status, body = call(a, "POST", "/v1/connect/intentions", {"SourceName": "web", "DestinationName": "db", "Action": "deny"})
            assert status == 200, body
            while authorized():
                pass
            to_deny.append(time.perf_counter() - start)
            start = time.perf_counter()
            status, body = call(a, "DELETE", f"/v1/connect/intentions/{json.loads(body)['ID']}")
            assert status == 200, body
            while not authorized():
                pass
            to_allow.append(time.perf_counter() - start)

        def summary(samples):
            ordered = sorted(samples)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"

        print(f"deny created on A -> B refuses ({args.writes} writes): {summary(to_deny)}")
        print(f"deny deleted on A -> B allows  ({args.writes} writes): {summary(to_allow)}")

        pid_b = hosts["host-b"][0].pid
        time.sleep(2)
        before = anon_kib(pid_b)
        for i in range(args.instances):
            status, body = call(a, "PUT", "/v1/agent/service/register", {"Name": f"svc-{i}", "Port": 10000 + i, "Tags": ["bench"]})
            assert status == 200, body
        assert wait_for(lambda: len(json.loads(call(b, "GET", "/v1/catalog/services")[1])) >= args.instances, 300), "not all seen on B"
        time.sleep(5)
        after = anon_kib(pid_b)
        per = (after - before) * 1024 / args.instances
        print(f"host-b RssAnon: {before} KiB before, {after} KiB with {args.instances} remote instances: {per:.0f} bytes per instance")
    finally:
        for proc, directory in agents:
            stop_agent(proc, directory)
        for proc in etcd:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
