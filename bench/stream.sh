#!/bin/sh
# bench/stream.sh — the stream proxy vs nginx's stream module, side by side in one run:
# iperf3 bulk throughput both ways, redis-benchmark -P 16 GET/SET, and new connections
# per second with limit_conn and limit_req on (CPU µs per connection).  Writes
# bench/results/stream.md.  Environment: REPS SECONDS REQUESTS (bench/stream.py).
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh bench
[ -x build/zonegate ] || make build/zonegate
mkdir -p bench/results
cp "${ZG_BIN:-build/zonegate}" bench/results/zonegate-stream
ZG_BIN="$PWD/bench/results/zonegate-stream" exec python3 bench/stream.py
