#!/bin/sh
# bench/sync.sh — limit_req (and limit_conn) with Redis sync on vs off, per sync mode,
# same machine, same run.
# zonegate (2 workers) proxies to bench/upstream.c; limit_req on $binary_remote_addr
# (one key) or $http_x_key with a new key per request (KEYS=many, bench/keys.lua),
# plus limit_conn on the same key in the "conn" mode; wrk -t1 -c32 for DURATION s.
# Modes (MODES, default all): off, redis (redis://), auth (redis:// with a password),
# sentinel (redis-sentinel://, one sentinel over the same Redis), cluster
# (redis-cluster://, three masters), conn (limit_conn_zone sync= besides limit_req).
# Modes alternate within a repetition; REPS repetitions; prints every run (with the
# Redis commands per second this host caused) and the medians.
# Needs redis-server, redis-sentinel, redis-cli and wrk (scripts/deps.sh bench).
set -e
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
DURATION=${DURATION:-5}
MODES=${MODES:-off redis auth sentinel cluster conn}
ZG=${ZG_BIN:-build/zonegate}
D=$(mktemp -d /tmp/zgsync.XXXXXX)
fp() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
cc -O2 -o "$D/upstream" bench/upstream.c -luv
UP=$(fp); RP=$(fp); AP=$(fp); SP=$(fp)
PIDS=""
"$D/upstream" "$UP" >/dev/null 2>&1 & PIDS="$PIDS $!"
rs() { # port [args...]: a redis-server in its own directory
    p=$1; shift
    mkdir -p "$D/r$p"
    redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$D/r$p" "$@" >/dev/null 2>&1 &
    PIDS="$PIDS $!"
}
rs "$RP"
rs "$AP" --requirepass benchpw
printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor m 127.0.0.1 %s 1\n' "$SP" "$D" "$RP" \
    > "$D/sentinel.conf"
redis-sentinel "$D/sentinel.conf" >/dev/null 2>&1 & PIDS="$PIDS $!"
CP=""
for i in 1 2 3; do p=$(fp); CP="$CP $p"; rs "$p" --cluster-enabled yes \
    --cluster-config-file nodes.conf --cluster-port "$(fp)"; done
trap 'kill $PIDS 2>/dev/null; rm -rf "$D"' EXIT
sleep 0.5
redis-cli --cluster create $(for p in $CP; do printf '127.0.0.1:%s ' "$p"; done) \
    --cluster-replicas 0 --cluster-yes >/dev/null
C1=$(echo $CP | cut -d' ' -f1)
until redis-cli -p "$C1" cluster info | grep -q cluster_state:ok; do sleep 0.2; done

cmds() { # Redis commands processed so far, over every server of the mode
    case "$1" in
        auth) redis-cli -p "$AP" -a benchpw --no-auth-warning info stats ;;
        cluster) for p in $CP; do redis-cli -p "$p" info stats; done ;;
        *) redis-cli -p "$RP" info stats ;;
    esac | awk -F: '/^total_commands_processed/ {s += $2} END {print s + 0}'
}

run() { # $1 = mode, $2 = one|many
    P=$(fp)
    if [ "$2" = one ]; then KEYVAR=binary_remote_addr; else KEYVAR=http_x_key; fi
    case "$1" in
        off) S="" ;;
        redis|conn) S="sync=redis://127.0.0.1:$RP sync_interval=100ms" ;;
        auth) S="sync=redis://:benchpw@127.0.0.1:$AP sync_interval=100ms" ;;
        sentinel) S="sync=redis-sentinel://127.0.0.1:$SP/m sync_interval=100ms" ;;
        cluster) S="sync=redis-cluster://127.0.0.1:$C1 sync_interval=100ms" ;;
    esac
    if [ "$1" = conn ]; then
        CZ="limit_conn_zone \$$KEYVAR zone=conns:64m $S;"; CL="limit_conn conns 60000;"
    else
        CZ="limit_conn_zone \$$KEYVAR zone=conns:64m;"; CL="limit_conn conns 60000;"
    fi
    cat > "$D/z.conf" <<EOC
error_log $D/error.log notice;
pid $D/zg.pid;
worker_processes 2;
http {
  access_log off;
  keepalive_requests 100000000;
  limit_req_zone \$$KEYVAR zone=keys:64m rate=1000000r/s $S;
  $CZ
  limit_req_log_level info;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server { listen 127.0.0.1:$P;
    location / { limit_req zone=keys burst=100000 nodelay; $CL proxy_pass http://app; }
    location = /metrics { metrics; } }
}
EOC
    "$ZG" -c "$D/z.conf" & ZP=$!
    sleep 0.6
    c0=$(cmds "$1")
    W=$(KEYS=$2 wrk -t1 -c32 -d"${DURATION}"s -s bench/keys.lua "http://127.0.0.1:$P/")
    c1=$(cmds "$1")
    R=$(echo "$W" | awk '/Requests\/sec/ {print $2}')
    B=$(curl -s "http://127.0.0.1:$P/metrics" |
        awk '/^zonegate_sync_keys_total/ {s += $2} END {print s + 0}')
    kill $ZP; wait $ZP 2>/dev/null || true
    if [ "$1" = off ]; then c1=$c0; fi
    echo "$1 $2 $R synced_keys=${B:-0} redis_cmds_per_s=$(( (c1 - c0) / DURATION ))"
}
for rep in $(seq "$REPS"); do
    for k in one many; do for m in $MODES; do run "$m" "$k"; done; done
done | tee "$D/runs.txt"
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "medians (req/s, Redis commands/s):"
for k in one many; do
    off=$(awk -v k=$k '$1=="off" && $2==k {print $3}' "$D/runs.txt" | med)
    for m in $MODES; do
        on=$(awk -v k=$k -v m=$m '$1==m && $2==k {print $3}' "$D/runs.txt" | med)
        c=$(awk -v k=$k -v m=$m '$1==m && $2==k {sub("redis_cmds_per_s=", "", $5); print $5}' \
            "$D/runs.txt" | med)
        echo "$k key(s) $m: $on req/s, ratio to off $(echo "$on $off" | awk '{printf "%.3f", $1/$2}'), redis $c cmds/s"
    done
done
