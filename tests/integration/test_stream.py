"""The stream (TCP) proxy: redis through zonegate, fail-over, max_conns, half-close,
inactivity timeout, a large transfer both ways, reload, config errors (issue 17)."""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from zg import (HERE, Skip, SLOW, Zonegate, free_port, spawn, wait_for, wait_port,
                zonegate_t)


def need(tool):
    if shutil.which(tool) is None:
        raise Skip("%s is not installed (redis-tools / redis-server)" % tool)


class Redis:
    def __init__(self):
        need("redis-server")
        self.port = free_port()
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, proc=self.proc)
        self.addr = "127.0.0.1:%d" % self.port


class TcpUpstream:
    def __init__(self, mode="echo", path=None):
        self.port = free_port()
        argv = [sys.executable, os.path.join(HERE, "tcp_upstream.py"), str(self.port), mode]
        if path:
            argv.append(path)
        self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if b"ready" not in self.proc.stdout.readline():
            raise RuntimeError("tcp upstream did not start")
        self.addr = "127.0.0.1:%d" % self.port


def cli(port, *args, timeout=20):
    need("redis-cli")
    p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout * SLOW)
    return p.stdout.decode(errors="replace").strip()


STREAM = """
worker_processes {workers};
stream {{
    upstream backend {{
        {zone}
        {servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_pass backend;
        proxy_connect_timeout 2s;
        {extra}
    }}
}}
"""


def start(servers, workers=2, zone="zone backend 64k;", extra=""):
    port = free_port()
    z = Zonegate(STREAM, wait_ports=[port], port=port, workers=workers, zone=zone,
                 servers="\n        ".join(servers), extra=extra)
    return z, port


def stop_clean(z):
    """stops zonegate and fails the test if a sanitizer reported anything (the ASan
    build's reports go to the master's and workers' stderr)"""
    z.stop()
    out = z.proc.stdout.read() if z.proc.stdout else b""
    assert b"Sanitizer" not in out and b"runtime error" not in out, out[-3000:]


def until_closed(s, timeout=10):
    """everything s receives until the peer closes (or an error); None on timeout"""
    s.settimeout(timeout * SLOW)
    out = bytearray()
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                return bytes(out)
            out += b
    except ConnectionResetError:
        return bytes(out)
    except socket.timeout:
        return None


def test_stream_redis_roundtrip():
    r = Redis()
    z, port = start(["server %s;" % r.addr])
    assert cli(port, "SET", "k1", "hello world") == "OK"
    assert cli(port, "GET", "k1") == "hello world"
    # many sessions, over both workers
    for i in range(20):
        assert cli(port, "INCR", "n") == str(i + 1)
    assert cli(r.port, "GET", "n") == "20"  # the real server saw them
    stop_clean(z)


def test_stream_redis_benchmark():
    need("redis-benchmark")
    r = Redis()
    z, port = start(["server %s;" % r.addr])
    p = subprocess.run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q",
                        "-n", "2000", "-c", "20", "-P", "16", "-t", "set,get"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60 * SLOW)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0 and "GET:" in out and "SET:" in out, out
    assert cli(r.port, "DBSIZE") != "0"
    stop_clean(z)


def test_stream_dead_peer_fails_over_and_is_marked_across_workers():
    r = Redis()
    dead = free_port()  # nothing listens there
    z, port = start(["server 127.0.0.1:%d max_fails=1 fail_timeout=60s;" % dead,
                     "server %s max_fails=1 fail_timeout=60s;" % r.addr])
    for i in range(12):
        assert cli(port, "PING") == "PONG"
    log = z.error_log()
    # the first pick of the dead peer failed, the session went on to the next peer;
    # the failure marked the peer in the zone, so no worker tried it again
    assert log.count("connect() failed") == 1, log
    assert "while connecting to upstream" in log and "127.0.0.1:%d" % dead in log
    stop_clean(z)


def test_stream_next_upstream_off_closes():
    u = TcpUpstream()
    dead = free_port()
    # max_fails=0: the dead peer is never marked, round-robin alternates
    z, port = start(["server 127.0.0.1:%d max_fails=0;" % dead, "server %s;" % u.addr],
                    workers=1, extra="proxy_next_upstream off;")
    outcomes = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10 * SLOW)
        s.sendall(b"ping")
        try:
            outcomes.append(s.recv(10))  # the echo, or b"" when closed
        except ConnectionResetError:
            outcomes.append(b"")
        s.close()
    # every other session met the dead peer and was closed without a next try
    assert sorted(outcomes) == [b"", b"", b"ping", b"ping"], outcomes
    stop_clean(z)


def test_stream_max_conns():
    u = TcpUpstream()
    z, port = start(["server %s max_conns=1;" % u.addr])
    def hold():
        # the probe of the harness may still hold the peer's one connection
        a = socket.create_connection(("127.0.0.1", port))
        a.settimeout(10 * SLOW)
        try:
            a.sendall(b"one")
            if a.recv(10) == b"one":
                return a
        except OSError:
            pass
        a.close()
        return None
    a = wait_for(hold)
    assert a  # a holds the only connection the peer takes
    b = socket.create_connection(("127.0.0.1", port))
    b.sendall(b"two")
    assert until_closed(b) == b""  # no peer can take it: closed
    b.close()
    a.close()

    def third():
        c = socket.create_connection(("127.0.0.1", port))
        c.settimeout(10 * SLOW)
        try:
            c.sendall(b"three")
            return c.recv(10)  # the echo, or b"" when refused
        except OSError:
            return b""
        finally:
            c.close()
    # once a is gone (the worker saw its close), the peer takes a connection again
    assert wait_for(lambda: third() == b"three")
    stop_clean(z)


def test_stream_half_close_propagated():
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr], extra="proxy_half_close on;")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    # the upstream answers "bye" only after it read the client's EOF
    assert until_closed(s) == b"hellobye 5"
    stop_clean(z)


def test_stream_half_close_off_closes_after_flush():
    # nginx's default (proxy_half_close off): the client's EOF ends the session once
    # its bytes went out; the upstream's "bye" after that never reaches the client
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr])
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    got = until_closed(s)
    assert got is not None and b"bye" not in got, got
    stop_clean(z)


def test_stream_proxy_timeout_closes_both():
    # the recording upstream writes its line when its side of the session ends
    rec = os.path.join(tempfile.mkdtemp(prefix="zgrec-"), "rec")
    u = TcpUpstream("record", rec)
    z, port = start(["server %s;" % u.addr], extra="proxy_timeout 300ms;")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"x")
    s.settimeout(10 * SLOW)
    assert s.recv(1) == b"x"
    # idle: zonegate closes the client's side ...
    got = until_closed(s)
    assert got is not None, "not closed on proxy_timeout"
    # ... and the upstream's, while the client's socket here is still open (the
    # harness's probe connection recorded an empty line before)
    assert wait_for(lambda: os.path.exists(rec) and "78" in open(rec).read().split())
    s.close()
    stop_clean(z)


def test_stream_large_transfer_both_ways():
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr], extra="proxy_half_close on;")
    size = 100 * 1024 * 1024  # the 100 MB, both ways
    data = hashlib.sha256(b"seed").digest() * (size // 32)
    s = socket.create_connection(("127.0.0.1", port))

    def send():
        view = memoryview(data)
        for i in range(0, len(data), 1 << 20):
            s.sendall(view[i:i + (1 << 20)])
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send)
    t.start()
    got = until_closed(s, timeout=100)
    t.join()
    assert got is not None
    assert got.endswith(b"bye %d" % size), got[-20:]
    body = got[:-len(b"bye %d" % size)]
    assert len(body) == size
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
    stop_clean(z)


def test_stream_reload_keeps_open_sessions():
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr])
    old = z.wait_workers(2)
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    s.sendall(b"before")
    assert s.recv(100) == b"before"
    z.reload()
    # the new generation starts; the worker holding s stays until s ends
    new = wait_for(lambda: [p for p in z.workers() if p not in old]
                   if len([p for p in z.workers() if p not in old]) == 2 else None)
    assert new, z.workers()
    s.sendall(b"after")
    assert s.recv(100) == b"after"
    s.shutdown(socket.SHUT_WR)
    assert until_closed(s) is not None
    s.close()
    assert z.wait_workers(2, gone=old) == sorted(new)
    # new sessions are served by the new workers
    c = socket.create_connection(("127.0.0.1", port))
    c.settimeout(10 * SLOW)
    c.sendall(b"again")
    assert c.recv(100) == b"again"
    c.close()
    stop_clean(z)


def test_stream_graceful_quit_waits_for_sessions():
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr], workers=1)
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    s.sendall(b"a")
    assert s.recv(1) == b"a"
    z.kill(signal.SIGQUIT)
    # the worker stopped listening; its open session still relays
    assert wait_for(lambda: "stream: gracefully shutting down, 1 sessions open"
                    in z.error_log()), z.error_log()
    s.sendall(b"b")
    assert s.recv(1) == b"b"
    assert z.proc.poll() is None
    s.close()
    z.proc.wait(10 * SLOW)
    assert z.proc.returncode == 0


def test_stream_config_errors():
    cases = [
        ("stream { server { listen 127.0.0.1:1; proxy_pass nowhere; } }",
         'no port in upstream "nowhere"', 1),
        ("stream { server { proxy_pass 127.0.0.1:1; } }",
         'no "listen" is defined for server', 1),
        ("stream { server { listen 127.0.0.1:1; } }", "no handler for server", 1),
        ("stream { upstream u { server 127.0.0.1:1; keepalive 2; }\n"
         "server { listen 127.0.0.1:1; proxy_pass u; } }",
         '"keepalive" directive is not allowed here', 1),
        ("stream { upstream u { server 127.0.0.1; } }", 'no port in upstream "127.0.0.1"', 1),
        ("stream {\n server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; }\n"
         " server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2; } }",
         'duplicate "127.0.0.1:1" address and port pair', 3),
        ("stream { server { listen 127.0.0.1:1 bogus; proxy_pass 127.0.0.1:2; } }",
         'the invalid "bogus" parameter', 1),
        ("stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2;\n"
         " location / { } } }", '"location" directive is not allowed here', 2),
        ("stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2;\n"
         " proxy_read_timeout 1s; } }", '"proxy_read_timeout" directive is not allowed here', 2),
        ("stream { server { listen 127.0.0.1:1; proxy_pass 127.0.0.1:2;\n"
         " proxy_bogus 1s; } }", 'unknown directive "proxy_bogus"', 2),
        ("stream { }\nstream { }", '"stream" directive is duplicate', 2),
        ("http { server { listen 127.0.0.1:1; location / { proxy_timeout 1s; } } }",
         '"proxy_timeout" directive is not allowed here', 1),
    ]
    for text, msg, line in cases:
        rc, out, path = zonegate_t(text.replace("{", "{{").replace("}", "}}"))
        assert rc == 1, (text, out)
        assert msg in out and "%s:%d" % (path, line) in out, (text, msg, out)


def test_stream_beside_http_and_upstream_namespaces():
    # an http and a stream upstream may share a name; each block sees its own
    r = Redis()
    hport, sport = free_port(), free_port()
    z = Zonegate("""
worker_processes 1;
http {{
    upstream same {{ server 127.0.0.1:1; }}
    server {{ listen 127.0.0.1:{hport}; location / {{ return 200 "http"; }} }}
}}
stream {{
    upstream same {{ server {redis}; }}
    server {{ listen 127.0.0.1:{sport}; proxy_pass same; }}
}}
""", wait_ports=[hport, sport], hport=hport, sport=sport, redis=r.addr)
    assert cli(sport, "PING") == "PONG"
    stop_clean(z)


def test_stream_download_rate_paces_the_relay():
    # 600 KB back at 200 KB/s cannot take less than ~2.7 s (a lower bound only: a slow
    # machine makes it longer, never shorter); uploads are not limited
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr],
                    extra="proxy_half_close on; proxy_download_rate 200k;")
    data = b"r" * (600 * 1024)
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = until_closed(s, timeout=60)
    elapsed = time.time() - t0
    assert got == data + b"bye %d" % len(data), len(got or b"")
    assert elapsed >= 2.0, elapsed
    stop_clean(z)


def test_stream_next_upstream_tries():
    # four peers refusing connections: tries=2 gives up after two, each logged once
    dead = ["server 127.0.0.1:%d max_fails=0;" % free_port() for _ in range(4)]
    port = free_port()
    z = Zonegate(STREAM, port=port, workers=1, zone="", servers="\n        ".join(dead),
                 extra="proxy_next_upstream_tries 2;")
    assert wait_for(lambda: "started" in z.error_log())
    s = socket.create_connection(("127.0.0.1", port))
    assert until_closed(s) == b""
    s.close()
    assert wait_for(lambda: z.error_log().count("connect() failed") >= 2)
    assert z.error_log().count("connect() failed") == 2, z.error_log()
    stop_clean(z)


def _rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def test_stream_back_pressure_bounds_memory():
    # the upstream sends 64 MB at once to a client that reads nothing yet: the worker
    # stops reading the upstream while its queue for the client is full, so its memory
    # stays far below what it would hold if it read everything (a slow machine can
    # only make this pass more easily, never fail it); then the client reads it all
    size = 64 * 1024 * 1024
    u = TcpUpstream("flood", str(size))
    z, port = start(["server %s;" % u.addr], workers=1)
    pids = z.wait_workers(1)
    base = _rss_kb(pids)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    grew = wait_for(lambda: _rss_kb(pids) - base > 32 * 1024, timeout=2)
    assert not grew, (base, _rss_kb(pids))
    got = until_closed(s, timeout=60)
    assert got is not None and len(got) == size
    assert got == (bytes(range(256)) * 256) * (size // 65536)
    stop_clean(z)
