#!/bin/sh
# Installs, with apt-get, only the Debian packages zonegate needs that are missing.
# Idempotent; called first by `make run`, `make test` and `make bench`.
set -e
PKGS="build-essential pkg-config libuv1-dev node-llhttp libcmocka-dev curl wrk nginx \
python3 clang libclang-rt-14-dev redis-server libhiredis-dev procps prometheus \
libseccomp-dev"
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
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends $missing >/dev/null
rm -f /usr/sbin/policy-rc.d
