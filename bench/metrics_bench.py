#!/usr/bin/env python3
"""Metrics cost (issue 18): authorize and proxy-config throughput of one release build with
metrics on (the default) and off (`telemetry.filter_default: false`, which records nothing), in
one run, alternating on/off/on/off so the host's drift hits both sides. 127.0.0.1 only.

Each agent has 100 intentions and one managed proxy (`web-proxy`, a `sleep` standing in for the
proxy process); wrk -t2 -c64 POSTs authorize, then GETs /v1/agent/connect/proxy/web-proxy.

Usage: python3 bench/metrics_bench.py --bin <release connectd> [--seconds 8] [--rounds 2]
"""
import argparse
import http.client
import json
import os
import statistics
import tempfile

from benchlib import requests_per_second, p99_ms, start_agent, stop_agent, wrk


def measure(binary, metrics_on, seconds):
    work = tempfile.mkdtemp(prefix="connectd-metrics-bench-")
    config = {
        "connect": {"proxy": {"allow_managed_root": True}},
        "services": [{"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/sleep", "3600"]}}}],
    }
    if not metrics_on:
        config["telemetry"] = {"filter_default": False}
    proc, port = start_agent(binary, work, config)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(99):
            conn.request("POST", "/v1/connect/intentions",
                         body=json.dumps({"SourceName": f"src-{i}", "DestinationName": f"dst-{i % 10}", "Action": "deny"}))
            conn.getresponse().read()
        conn.request("POST", "/v1/connect/intentions", body=json.dumps({"SourceName": "web", "DestinationName": "db", "Action": "allow"}))
        conn.getresponse().read()
        conn.request("GET", "/v1/agent/connect/ca/roots")
        trust_domain = json.loads(conn.getresponse().read())["TrustDomain"]
        conn.request("GET", "/v1/agent/metrics?format=prometheus")
        exposition = conn.getresponse().read().decode()
        assert ("connectd_authorize_decisions_total" in exposition) == metrics_on, "metrics on/off as configured"
        body = json.dumps({"Target": "db", "ClientCertURI": f"spiffe://{trust_domain}/ns/default/dc/dc1/svc/web", "ClientCertSerial": "04"})
        script = os.path.join(work, "authorize.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(body))
        authorize = wrk(f"http://127.0.0.1:{port}/v1/agent/connect/authorize", seconds=seconds, script=script)
        config_lines = wrk(f"http://127.0.0.1:{port}/v1/agent/connect/proxy/web-proxy", seconds=seconds)
        for lines in (authorize, config_lines):
            assert not any(line.startswith("Non-2xx") for line in lines), lines
        return {
            "authorize": requests_per_second(authorize), "authorize_p99": p99_ms(authorize),
            "proxy_config": requests_per_second(config_lines), "proxy_config_p99": p99_ms(config_lines),
        }
    finally:
        stop_agent(proc, work)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results = {True: [], False: []}
    for round_number in range(args.rounds):
        for metrics_on in (True, False):
            result = measure(args.bin, metrics_on, args.seconds)
            results[metrics_on].append(result)
            print(f"round {round_number + 1}, metrics {'on ' if metrics_on else 'off'}: "
                  f"authorize {result['authorize']:,.0f} req/s (p99 {result['authorize_p99']:.2f} ms), "
                  f"proxy config {result['proxy_config']:,.0f} req/s (p99 {result['proxy_config_p99']:.2f} ms)")
    for key in ("authorize", "proxy_config"):
        on = statistics.median(r[key] for r in results[True])
        off = statistics.median(r[key] for r in results[False])
        print(f"{key}: median on {on:,.0f} / off {off:,.0f} req/s = {on / off:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
