#!/usr/bin/env python3
"""Fleet mode at scale (issue 16, item 5): one real agent among many simulated hosts.

Publishes --hosts simulated hosts × 10 services into etcd with connectd's key layout (records
like CatalogPublisher's, tied to leases: one lease per 100 hosts), then starts a real root holder
(no services) and one real agent (not a root holder, as most hosts are) with a service whose
managed proxy has 5 upstreams (svc-0 … svc-4), and measures for the latter:
start-up (agent start → its view at etcd's revision and watching), the agent's anonymous memory,
the time from a change of an upstream's instance in etcd to a parked `?index=` health query on
the agent answering (p50/p99 over --changes changes), what a change of a service the agent does
not use costs it (watch events received and CPU time per such change), and its steady-state
requests to etcd (writes, lease keepalives, ranges per second).

    swift build -c release --product connectd
    python3 bench/fleet_scale.py --bin .build/release/connectd --hosts 1000
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from benchlib import anon_kib, start_agent, start_etcd, stop_agent, wrk  # noqa: E402

PREFIX = "connectd/v1/"
SERVICES = 1000   # distinct service names in the fleet; host i runs svc-(10i … 10i+9 mod SERVICES)


def b64(text):
    return base64.b64encode(text.encode()).decode()


class Etcd:
    def __init__(self, endpoint):
        host, port = endpoint.replace("http://", "").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)

    def call(self, path, body):
        self.conn.request("POST", path, body=json.dumps(body))
        response = self.conn.getresponse()
        data = json.loads(response.read() or b"{}")
        if response.status != 200:
            raise SystemExit(f"{path}: {response.status} {data}")
        return data


def record(host, service, port, passing=True):
    return json.dumps({"Node": f"sim-{host}", "NodeID": f"00000000-0000-0000-0000-{host:012d}", "Address": "127.0.0.1",
                       "Datacenter": "dc1", "ServiceID": f"svc-{service}-proxy", "ServiceName": f"svc-{service}-proxy",
                       "Kind": "connect-proxy", "Port": port, "Tags": [], "DestinationName": f"svc-{service}",
                       "DestinationServiceID": f"svc-{service}", "Passing": passing, "Output": "TCP connect: Success"},
                      sort_keys=True)


def catalog_key(host, service):
    # A proxy is stored under the service it fronts.
    return f"{PREFIX}catalog/svc-{service}/sim-{host}/svc-{service}-proxy"


def publish(etcd, hosts):
    leases = {}
    ops = []
    for host in range(hosts):
        group = host // 100
        if group not in leases:
            leases[group] = etcd.call("/v3/lease/grant", {"TTL": "3600"})["ID"]
        for k in range(10):
            service = (host * 10 + k) % SERVICES
            ops.append({"request_put": {"key": b64(catalog_key(host, service)), "value": b64(record(host, service, 20000 + k)),
                                        "lease": leases[group]}})
        ops.append({"request_put": {"key": b64(f"{PREFIX}hosts/sim-{host}"), "lease": leases[group],
                                    "value": b64(json.dumps({"Node": f"sim-{host}", "Address": "127.0.0.1"}))}})
        if len(ops) >= 100:
            etcd.call("/v3/kv/txn", {"success": ops})
            ops = []
    if ops:
        etcd.call("/v3/kv/txn", {"success": ops})
    return etcd.call("/v3/kv/range", {"key": b64(PREFIX), "range_end": b64(PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)),
                                      "count_only": True})


def view_state(conn):
    """(revision, phase) of an agent's view from the one-line summary in /v1/agent/self (cheap:
    /v1/agent/fleet also reads every host from etcd)."""
    conn.request("GET", "/v1/agent/self")
    summary = json.loads(conn.getresponse().read())["Stats"]["connectd"]["fleet"]
    match = re.search(r"view at revision (\d+) \((\w+)", summary)
    return (int(match.group(1)), match.group(2)) if match else (0, summary)


def wait_for_view(conn, revision, started, who):
    """Seconds from `started` until the agent's view is at `revision` or later and watching."""
    while True:
        state = view_state(conn)
        if state[0] >= revision and state[1] == "watching":
            return time.time() - started
        if time.time() - started > 300:
            raise SystemExit(f"{who}'s view never caught up: {state}")
        time.sleep(0.01)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def grpc_messages(endpoints):
    """Messages received per gRPC method, summed over the members (the gateway calls gRPC)."""
    totals = {}
    for endpoint in endpoints:
        host, port = endpoint.replace("http://", "").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("grpc_server_msg_received_total{"):
                method = line.split('grpc_method="', 1)[1].split('"', 1)[0]
                totals[method] = totals.get(method, 0) + float(line.rsplit(" ", 1)[1])
    return totals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default=".build/release/connectd")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="connectd-fleet-scale-")
    etcd_procs, endpoints = start_etcd(work)
    agent = holder = None
    try:
        etcd = Etcd(endpoints[0])
        started = time.time()
        counted = publish(etcd, args.hosts)
        keys = int(counted.get("count", "0"))
        revision = int(counted["header"]["revision"])
        print(f"{args.hosts} simulated hosts × 10 services: {keys} keys in etcd in {time.time() - started:.1f} s")
        holder_dir = os.path.join(work, "holder")
        os.makedirs(holder_dir)
        t0 = time.time()
        holder, holder_port = start_agent(args.bin, holder_dir, {
            "node_name": "root-holder", "bind_addr": "127.0.0.1",
            "fleet": {"etcd_endpoints": endpoints, "root_holder": True}})
        holder_conn = http.client.HTTPConnection("127.0.0.1", holder_port, timeout=120)
        holder_startup = wait_for_view(holder_conn, revision, t0, "the root holder")
        directory = os.path.join(work, "agent")
        os.makedirs(directory)
        upstreams = [{"destination_name": f"svc-{i}", "local_bind_port": 19000 + i} for i in range(5)]
        t0 = time.time()
        agent, port = start_agent(args.bin, directory, {
            "node_name": "real-host", "bind_addr": "127.0.0.1",
            "connect": {"proxy": {"allow_managed_root": True}},
            "fleet": {"etcd_endpoints": endpoints},
            "service": {"name": "client", "port": 1, "connect": {"proxy": {"upstreams": upstreams}}}})
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

        def fleet_view():
            conn.request("GET", "/v1/agent/fleet")
            return json.loads(conn.getresponse().read())["View"]

        startup = wait_for_view(conn, revision, t0, "the agent")
        # Memory before any /v1/agent/fleet call (which reads every host from etcd for the status).
        time.sleep(3)
        holder_kib, agent_kib = anon_kib(holder.pid), anon_kib(agent.pid)
        holder_conn.request("GET", "/v1/agent/fleet")
        holder_view = json.loads(holder_conn.getresponse().read())["View"]
        view = fleet_view()
        print(f"root holder (keeps hosts/ and ca/): start-up {holder_startup:.2f} s, RssAnon {holder_kib / 1024:.1f} MiB "
              f"({holder_view['Keys']} keys in its view)")
        print(f"agent start-up to a complete view: {startup:.2f} s; RssAnon {agent_kib / 1024:.1f} MiB "
              f"({view['Keys']} keys in its view, {len(view['Scopes'])} scopes)")

        # An upstream's instance changes in etcd: how long until a parked health query answers.
        latencies = []
        target_host = 0  # sim-0 runs svc-0 … svc-9, so svc-0 is one of the agent's upstreams
        waiter = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        waiter.request("GET", "/v1/health/connect/svc-0")
        response = waiter.getresponse()
        response.read()
        index = int(response.getheader("X-Consul-Index"))
        for change in range(args.changes):
            result = {}

            def park():
                waiter.request("GET", f"/v1/health/connect/svc-0?index={index}&wait=30s")
                answer = waiter.getresponse()
                answer.read()
                result["at"] = time.perf_counter()
                result["index"] = int(answer.getheader("X-Consul-Index"))

            thread = threading.Thread(target=park)
            thread.start()
            time.sleep(0.02)
            written = time.perf_counter()
            etcd.call("/v3/kv/put", {"key": b64(catalog_key(target_host, 0)),
                                     "value": b64(record(target_host, 0, 20000, passing=change % 2 == 1)),
                                     "lease": "0"})
            thread.join()
            latencies.append(result["at"] - written)
            index = result["index"]
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        print(f"upstream change -> parked health query answered ({args.changes} changes): "
              f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")

        # Changes of a service the agent does not use: events it receives and its CPU per change.
        events_before = fleet_view()["EventsReceived"]
        before = cpu_seconds(agent.pid)
        unrelated = 50
        for change in range(unrelated):
            etcd.call("/v3/kv/put", {"key": b64(catalog_key(5, 55)), "value": b64(record(5, 55, 20005, passing=change % 2 == 1))})
        time.sleep(2)
        spent = cpu_seconds(agent.pid) - before
        events = fleet_view()["EventsReceived"] - events_before
        print(f"{unrelated} changes of a service it does not use: {events / unrelated:.2f} events received per change, "
              f"{spent * 1000 / unrelated:.2f} ms of agent CPU each")

        # Steady state: what the agent asks of etcd per second while nothing changes.
        window = 30
        start_messages = grpc_messages(endpoints)
        start_revision = int(etcd.call("/v3/kv/range", {"key": b64("none")})["header"]["revision"])
        time.sleep(window)
        end_messages = grpc_messages(endpoints)
        rates = {m: (end_messages.get(m, 0) - start_messages.get(m, 0)) / window for m in end_messages}
        writes = (int(etcd.call("/v3/kv/range", {"key": b64("none")})["header"]["revision"]) - start_revision) / window
        print(f"steady state over {window} s (2 real hosts): {writes:.2f} writes/s (revisions), "
              f"{rates.get('LeaseKeepAlive', 0):.2f} lease keepalives/s, {rates.get('Range', 0):.2f} ranges/s, "
              f"{rates.get('Txn', 0) + rates.get('Put', 0):.2f} txn+put/s, "
              f"{rates.get('Watch', 0):.2f} watch requests/s; view {fleet_view()['Keys']} keys, "
              f"{len(fleet_view()['Scopes'])} scopes")

        # etcd's capacity for the per-host steady load: lease keepalives through the gateway
        # (what each host sends every 3 s), wrk with 16 connections for 5 s on one member (a
        # keepalive is answered by the leader), sharing the 2 cores with everything above.
        lease = etcd.call("/v3/lease/grant", {"TTL": "600"})["ID"]
        script = os.path.join(work, "keepalive.lua")
        with open(script, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'
                    % json.dumps(json.dumps({"ID": lease})))
        lines = wrk(endpoints[0] + "/v3/lease/keepalive", connections=16, seconds=5, script=script)
        rate = next((line.split()[1] for line in lines if line.startswith("Requests/sec")), "?")
        errors = [line for line in lines if line.startswith("Non-2xx")]
        print(f"etcd capacity: {rate} lease keepalives/s (wrk -c16 through the gateway, same 2 cores){' ' + errors[0] if errors else ''}")

        # etcd's cost per watch stream (an agent opens one per scope): 2,000 more streams on one
        # member, each an HTTP/1.1 connection to its gateway watching one key.
        import resource
        import socket
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        member = etcd_procs[1]
        host, member_port = endpoints[1].replace("http://", "").split(":")
        before_kib = anon_kib(member.pid)
        streams = []
        for i in range(2000):
            body = json.dumps({"create_request": {"key": b64(f"{PREFIX}ca/acks/stream-{i}"), "progress_notify": True}})
            sock = socket.create_connection((host, int(member_port)), timeout=10)
            sock.sendall(f"POST /v3/watch HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
            streams.append(sock)
        for sock in streams:
            sock.recv(4096)   # the created message
        time.sleep(2)
        per_stream = (anon_kib(member.pid) - before_kib) * 1024 / len(streams)
        for sock in streams:
            sock.close()
        print(f"etcd memory per watch stream (HTTP/1.1 through the gateway): {per_stream / 1024:.1f} KiB")
    finally:
        if agent is not None:
            stop_agent(agent, os.path.join(work, "agent"))
        if holder is not None:
            stop_agent(holder, os.path.join(work, "holder"))
        for proc in etcd_procs:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
