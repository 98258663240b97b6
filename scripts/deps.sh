#!/bin/sh
# Installs, with apt-get, the Debian packages zonegate needs that are missing.
# Idempotent.  Usage: deps.sh run|test|bench
#   run    what building and running need (`make run`)
#   test   run + the test tools (`make test`)
#   bench  test + the benchmark tools (`make bench`)
# ZG_DEPS_EXTRA adds packages.  Works on a bare Debian 12 root with empty apt lists.
set -e
RUN="make build-essential pkg-config libuv1-dev node-llhttp libhiredis-dev libcrypt-dev libpcre2-dev \
libssl-dev libseccomp-dev libjansson-dev zlib1g-dev curl"
TEST="$RUN libcmocka-dev python3 procps clang libclang-rt-14-dev nginx libnginx-mod-stream \
redis-server redis-tools redis-sentinel prometheus chromium openssl testssl.sh"
BENCH="$TEST wrk haproxy gnuplot-nox valgrind strace iperf3"
case "${1:-test}" in
    run) PKGS="$RUN" ;;
    test) PKGS="$TEST" ;;
    bench) PKGS="$BENCH" ;;
    *) echo "usage: deps.sh run|test|bench" >&2; exit 2 ;;
esac
[ "${ZG_DEPS_EXTRA:-}" ] && PKGS="$PKGS $ZG_DEPS_EXTRA"
missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# services must not start on install (no init here; tests start their own)
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -qq --no-install-recommends $missing >/dev/null
