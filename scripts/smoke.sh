#!/bin/sh
# `make smoke`: runs `make run` in the background (its exact command: install the run
# packages, build, start zonegate on conf/zonegate.conf), waits until it answers,
# checks /, /slab_stat and /metrics with curl, then stops it by PID.  Bounded in time.
set -u
cd "$(dirname "$0")/.."
URL=http://127.0.0.1:8080
PIDFILE=/tmp/zonegate.pid       # conf/zonegate.conf's `pid`
LOG=$(mktemp /tmp/zonegate-smoke.XXXXXX)
fail() {
    echo "smoke: FAIL: $*" >&2
    echo "--- make run output:" >&2
    cat "$LOG" >&2
    stop
    exit 1
}
stop() {
    if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        kill -TERM "$(cat "$PIDFILE")"
    fi
    i=0
    while kill -0 "$MAKE_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$MAKE_PID" 2>/dev/null; then
        echo "smoke: zonegate did not stop on TERM; killing" >&2
        [ -s "$PIDFILE" ] && kill -KILL "$(cat "$PIDFILE")" 2>/dev/null
        kill -KILL "$MAKE_PID" 2>/dev/null
        return 1
    fi
    return 0
}
if command -v curl >/dev/null && curl -s -o /dev/null "$URL/" 2>/dev/null; then
    echo "smoke: something already answers on $URL; stop it first" >&2
    exit 1
fi
rm -f "$PIDFILE"
make run >"$LOG" 2>&1 &
MAKE_PID=$!
# wait for the answer (the first `make run` on a bare machine installs and builds)
i=0
until curl -s -o /dev/null "$URL/" 2>/dev/null; do
    kill -0 "$MAKE_PID" 2>/dev/null || fail "make run exited before answering"
    [ $i -ge 6000 ] && fail "no answer on $URL after 600 s"
    sleep 0.1
    i=$((i + 1))
done
body=$(curl -sS "$URL/") || fail "curl $URL/"
case "$body" in *"hello from the demo app"*) ;; *) fail "/ answered: $body" ;; esac
echo "smoke: GET / -> $body"
st=$(curl -sS "$URL/slab_stat") || fail "curl /slab_stat"
case "$st" in *"* shared memory: perip"*) ;; *) fail "/slab_stat lacks the perip zone: $st" ;; esac
echo "smoke: GET /slab_stat lists $(echo "$st" | grep -c '^\* shared memory:') zones"
m=$(curl -sS "$URL/metrics") || fail "curl /metrics"
case "$m" in *zonegate_limit_req_*) ;; *) fail "/metrics lacks limit_req counters" ;; esac
echo "smoke: GET /metrics gives $(echo "$m" | grep -vc '^#') samples"
[ -s "$PIDFILE" ] || fail "no pid file $PIDFILE"
stop || { cat "$LOG" >&2; exit 1; }
wait "$MAKE_PID"
rc=$?
[ $rc -eq 0 ] || { echo "smoke: make run exited $rc" >&2; cat "$LOG" >&2; exit 1; }
rm -f "$LOG"
echo "smoke: ok (started, answered, stopped by PID)"
