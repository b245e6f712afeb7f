#!/usr/bin/env bash
# Measures GET /v1/health/service/web on one dev agent holding 100
# instances of "web", with wrk (apt-get install wrk). Prints wrk's report.
#   scripts/bench-http.sh [DURATION] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10s}
conns=${2:-16}
command -v wrk >/dev/null || { echo "bench-http: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

bin=$(mktemp -d)/shoal
go build -o "$bin" ./cmd/shoal
addr=127.0.0.1:18500
"$bin" agent --dev --node bench --port 0 --http-addr "$addr" --dns-addr "" --log-level warn &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do "$bin" --http-addr "$addr" members >/dev/null 2>&1 && break; sleep 0.1; done

echo "registering 100 instances of web" >&2
for i in $(seq 0 99); do
  "$bin" --http-addr "$addr" register --name web --id "web-$i" --port $((8000 + i)) \
    --address "10.0.$((i / 250)).$((i % 250 + 1))" --tag v1 --tag "zone-$((i % 3))" --meta version=1.2 >/dev/null
done
echo "wrk -t2 -c$conns -d$duration --latency http://$addr/v1/health/service/web" >&2
wrk -t2 -c"$conns" -d"$duration" --latency "http://$addr/v1/health/service/web"
