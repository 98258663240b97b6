#!/usr/bin/env python3
"""bench/limit_rate.py — limit_rate accuracy, zonegate beside nginx in one run.

Both serve the same SIZE-byte file (default 2 MB) under `limit_rate` (512k, 1m and
1m with `limit_rate_after 512k`); one client reads it as fast as it can, and the rate
is the body's bytes (past limit_rate_after) over the wall time from the request to
the last byte.  The servers alternate run by run; each figure is the median of REPS
runs.  nginx's budget is rate x (whole seconds since the start + 1); zonegate's grows
every millisecond from 8 KB (a tick sends at most a tenth of a second's worth).

Environment: ZG_BIN (build/zonegate), NGINX (/usr/sbin/nginx), REPS (3), SIZE (2097152).
Prints a markdown table."""
import os
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import static  # noqa: E402  (start/stop/free_port of the static-file bench)

REPS = int(os.environ.get("REPS", "3"))
SIZE = int(os.environ.get("SIZE", str(2 * 1024 * 1024)))

CASES = [("512k", 512 * 1024, 0), ("1m", 1024 * 1024, 0),
         ("1m after 512k", 1024 * 1024, 512 * 1024)]

SERVER = """
    server {{
        listen 127.0.0.1:{port};
        root {root};
        access_log off;
        location /r512k/ {{ alias {root}/; limit_rate 512k; }}
        location /r1m/ {{ alias {root}/; limit_rate 1m; }}
        location /after/ {{ alias {root}/; limit_rate 1m; limit_rate_after 512k; }}
    }}
"""
PATHS = {"512k": "/r512k/f.bin", "1m": "/r1m/f.bin", "1m after 512k": "/after/f.bin"}


def fetch(port, path):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    try:
        t0 = time.time()
        s.sendall(b"GET %s HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n" % path.encode())
        buf = b""
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            buf += b
        secs = time.time() - t0
    finally:
        s.close()
    body = buf.split(b"\r\n\r\n", 1)[1]
    assert len(body) == SIZE, len(body)
    return secs


def main():
    tmp = tempfile.mkdtemp(prefix="zglr-")
    os.chmod(tmp, 0o755)
    root = os.path.join(tmp, "root")
    os.makedirs(root)
    with open(os.path.join(root, "f.bin"), "wb") as f:
        f.write(os.urandom(SIZE))
    static.SERVER = SERVER
    res = {}
    servers = {}
    try:
        for kind in ("zonegate", "nginx"):
            servers[kind] = static.start(kind, root, "on", tmp)
        for _ in range(REPS):
            for name, rate, after in CASES:
                for kind in ("zonegate", "nginx"):
                    secs = fetch(servers[kind][1], PATHS[name])
                    res.setdefault((kind, name), []).append((SIZE - after) / secs)
    finally:
        for p, _ in servers.values():
            static.stop(p)
    print("| limit | zonegate bytes/s | error | nginx bytes/s | error |")
    print("|---|---|---|---|---|")
    for name, rate, after in CASES:
        row = ["`limit_rate %s`" % name]
        for kind in ("zonegate", "nginx"):
            m = statistics.median(res[(kind, name)])
            row += ["%.0f" % m, "%+.1f %%" % ((m - rate) * 100.0 / rate)]
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
