#!/usr/bin/env bash
# Plain GET throughput of the proxy config endpoint with wrk (issue 4), on 127.0.0.1 only.
# Usage: bench/http_throughput.sh [path-to-connectd]   (default .build/release/connectd)
set -euo pipefail
bin="${1:-.build/release/connectd}"
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/agent.json" <<JSON
{"ports": {"http": $port}, "log_level": "warn",
 "service": {"name": "web", "port": 8080, "connect": {"proxy": {"command": ["/bin/true"], "config": {"foo": "bar"},
   "upstreams": [{"destination_name": "db", "local_bind_port": 9191}]}}}}
JSON
"$bin" agent -data-dir "$work/data" -config-file "$work/agent.json" >/dev/null 2>&1 &
agent=$!
trap 'kill $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "127.0.0.1:$port/v1/agent/self" >/dev/null && break; sleep 0.05; done
for path in /v1/agent/connect/proxy/web-proxy /v1/agent/service/web-proxy /v1/agent/services; do
  echo "== GET $path"
  wrk -t2 -c64 -d10s --latency "http://127.0.0.1:$port$path" | grep -E "Requests/sec|Latency|50%|99%"
done
