#!/bin/sh
# bench/sync.sh — limit_req with Redis sync on vs off, same machine, same run.
# zonegate (2 workers) proxies to bench/upstream.c; limit_req on $binary_remote_addr
# (one key) or $http_x_key with a new key per request (KEYS=many, bench/keys.lua);
# wrk -t1 -c32 for DURATION s; off/on alternate; REPS repetitions; prints every run
# and the medians.  Needs redis-server and wrk (scripts/deps.sh installs both).
set -e
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DURATION=${DURATION:-8}
ZG=${ZG_BIN:-build/zonegate}
D=$(mktemp -d /tmp/zgsync.XXXXXX)
fp() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cc -O2 -o "$D/upstream" bench/upstream.c -luv
UP=$(fp); RP=$(fp)
"$D/upstream" "$UP" >/dev/null 2>&1 & UPPID=$!
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >/dev/null 2>&1 & RPID=$!
trap 'kill $UPPID $RPID 2>/dev/null; rm -rf "$D"' EXIT
sleep 0.5
run() { # $1 = on|off, $2 = one|many
    P=$(fp)
    if [ "$2" = one ]; then KEYVAR=binary_remote_addr; else KEYVAR=http_x_key; fi
    if [ "$1" = on ]; then S="sync=redis://127.0.0.1:$RP sync_interval=100ms"; else S=""; fi
    cat > "$D/z.conf" <<EOC
error_log $D/error.log notice;
pid $D/zg.pid;
worker_processes 2;
http {
  access_log off;
  limit_req_zone \$$KEYVAR zone=keys:64m rate=1000000r/s $S;
  limit_req_log_level info;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$P;
    location / { limit_req zone=keys burst=100000 nodelay; proxy_pass http://app; }
    location = /metrics { metrics; } }
}
EOC
    "$ZG" -c "$D/z.conf" & ZP=$!
    sleep 0.4
    W=$(KEYS=$2 wrk -t1 -c32 -d"${DURATION}"s -s bench/keys.lua "http://127.0.0.1:$P/")
    R=$(echo "$W" | awk '/Requests\/sec/ {print $2}')
    B=$(curl -s "http://127.0.0.1:$P/metrics" | awk '/^zonegate_sync_keys_total/ {print $2}')
    kill $ZP; wait $ZP 2>/dev/null || true
    echo "$1 $2 $R synced_keys=${B:-0}"
}
for rep in $(seq "$REPS"); do
    for k in one many; do run off $k; run on $k; done
done | tee "$D/runs.txt"
echo "medians (req/s):"
for k in one many; do
    off=$(awk -v k=$k '$1=="off" && $2==k {print $3}' "$D/runs.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    on=$(awk -v k=$k '$1=="on" && $2==k {print $3}' "$D/runs.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    echo "$k key(s): off $off on $on ratio $(echo "$on $off" | awk '{printf "%.3f", $1/$2}')"
done
