"""The proxy: distribution, fail-over, bodies, pipelining, keep-alive (issue 3)."""
import hashlib
import http.client
import json
import os
import socket
import time

from zg import (Upstream, Zonegate, free_port, get, raw, request, status_of, wait_for,
                wait_port)

BASE = """
worker_processes {workers};
http {{
    upstream app {{
        {zone}
        {servers}
        {keepalive}
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_connect_timeout 1s;
            proxy_read_timeout {read_timeout};
            {extra}
        }}
        location = /ret {{ return 200 "here"; }}
    }}
}}
"""


def start(servers, workers=2, zone="zone app 64k;", keepalive="keepalive 16;",
          read_timeout="5s", extra=""):
    port = free_port()
    z = Zonegate(BASE, wait_ports=[port], port=port, workers=workers, zone=zone,
                 servers="\n        ".join(servers), keepalive=keepalive,
                 read_timeout=read_timeout, extra=extra)
    return z, port


def test_basic_proxy_and_headers():
    u = Upstream("a")
    z, port = start(["server %s;" % u.addr])
    st, h, body = get(port, "/")
    assert st == 200 and body == b"ok a", (st, body)
    st, h, body = request(port, "GET", "/echo?x=1", headers={"X-Test": "yes",
                                                            "Connection": "keep-alive, X-Drop",
                                                            "X-Drop": "secret"})
    info = json.loads(body)
    hdrs = {k.lower(): v for k, v in info["headers"]}
    assert info["path"] == "/echo?x=1"
    assert hdrs["x-test"] == "yes"
    assert hdrs["x-forwarded-for"] == "127.0.0.1"
    assert hdrs["x-real-ip"] == "127.0.0.1"
    assert hdrs["host"].startswith("127.0.0.1:%d" % port)
    assert "x-drop" not in hdrs, hdrs  # named in Connection: hop-by-hop
    st, h, body = get(port, "/ret")
    assert st == 200 and body == b"here"
    z.stop()


def test_weighted_distribution_shared_zone():
    a, b = Upstream("a"), Upstream("b")
    z, port = start(["server %s weight=3;" % a.addr, "server %s weight=1;" % b.addr])
    for _ in range(400):
        st, _, _ = get(port, "/")
        assert st == 200
    assert (a.count(), b.count()) == (300, 100), (a.count(), b.count())
    z.stop()


def test_down_peer_and_backup():
    a, b, c = Upstream("a"), Upstream("b"), Upstream("c")
    z, port = start(["server %s;" % a.addr, "server %s down;" % b.addr,
                     "server %s backup;" % c.addr])
    for _ in range(20):
        assert get(port, "/")[2] == b"ok a"
    assert b.count() == 0 and c.count() == 0
    a.stop()
    seen = [get(port, "/")[2] for _ in range(10)]
    assert all(s == b"ok c" for s in seen), seen
    assert b.count() == 0
    z.stop()


def test_failover_dead_peer_then_all_dead_502():
    dead = free_port()
    a = Upstream("a")
    z, port = start(["server 127.0.0.1:%d max_fails=1 fail_timeout=30s;" % dead,
                     "server %s;" % a.addr], workers=1)
    for _ in range(10):
        st, _, body = get(port, "/")
        assert st == 200 and body == b"ok a", (st, body)
    # one failure marked the dead peer down: it is not tried again within fail_timeout
    assert z.error_log().count("while connecting to upstream") == 1, z.error_log()
    a.stop()
    st, _, _ = get(port, "/")
    assert st == 502, st
    z.stop()


def test_slow_peer_504():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr], read_timeout="500ms",
                    extra="proxy_next_upstream off;")
    # the 504 (not the upstream's 200 after 3 s) shows it did not wait for the answer
    t = time.time()
    st, _, _ = get(port, "/slow?ms=3000")
    assert st == 504, st
    assert time.time() - t >= 0.4
    st, _, _ = get(port, "/")
    assert st == 200
    z.stop()


def test_next_upstream_http_502():
    a, b = Upstream("a"), Upstream("b")
    z, port = start(["server %s max_fails=0;" % a.addr, "server %s max_fails=0;" % b.addr],
                    workers=1, extra="proxy_next_upstream error timeout http_502;")
    for _ in range(6):
        st, _, body = get(port, "/status?code=502")
        # the first peer's 502 sends the request on to the second, whose 502 is final
        assert st == 502
    assert a.count() + b.count() == 12, (a.count(), b.count())
    z.stop()


def test_big_bodies_both_ways():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr], read_timeout="60s",
                    extra="client_max_body_size 20m;")
    body = os.urandom(10 * 1024 * 1024)
    st, _, resp = request(port, "POST", "/echo", body=body, timeout=60)
    info = json.loads(resp)
    assert st == 200 and info["length"] == len(body)
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    n = 10 * 1024 * 1024
    for chunked in ("0", "1"):
        st, h, resp = get(port, "/big?n=%d&chunked=%s" % (n, chunked), timeout=60)
        assert st == 200 and len(resp) == n
        assert hashlib.sha256(resp).hexdigest() == hashlib.sha256(
            (bytes(range(256)) * (n // 256 + 1))[:n]).hexdigest()
    z.stop()


def test_chunked_request_body():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    parts = [os.urandom(n) for n in (1, 1000, 70000, 5)]
    c.request("POST", "/echo", body=iter(parts), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    info = json.loads(r.read())
    data = b"".join(parts)
    assert info["length"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    hdrs = {k.lower(): v for k, v in info["headers"]}
    assert hdrs.get("transfer-encoding") == "chunked"
    c.close()
    z.stop()


def test_pipelining_in_order():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr])
    reqs = b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(5))
    reqs += b"GET /ret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out, closed = raw(port, reqs, timeout=10)
    assert closed
    positions = [out.find(b"/echo?n=%d" % i) for i in range(5)]
    assert all(p > 0 for p in positions) and positions == sorted(positions), out[:2000]
    assert out.count(b"HTTP/1.1 200") == 6
    assert out.endswith(b"here")
    z.stop()


def test_upstream_keepalive_reused():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr], workers=1)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(50):
        c.request("GET", "/")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"ok a"
    c.close()
    conns = int(get(a.port, "/__conns")[2])
    assert conns <= 2, conns
    z.stop()


def test_http10_client_and_head():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr])
    out, closed = raw(port, b"GET /big?n=5000&chunked=1 HTTP/1.0\r\n\r\n", timeout=10)
    head, _, body = out.partition(b"\r\n\r\n")
    assert status_of(out) == 200 and closed
    assert b"chunked" not in head.lower() and len(body) == 5000, head
    out, _ = raw(port, b"HEAD /big?n=5000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = out.partition(b"\r\n\r\n")
    assert status_of(out) == 200 and b"Content-Length: 5000" in head and body == b""
    z.stop()


def test_expect_100_continue():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr])
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    first = s.recv(100)
    assert first.startswith(b"HTTP/1.1 100 Continue"), first
    s.sendall(b"hello")
    data = b""
    while b'"length": 5' not in data:
        b = s.recv(65536)
        if not b:
            break
        data += b
    assert b'"length": 5' in data, data
    s.close()
    z.stop()


def test_upstream_dies_mid_body_closes_client():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr])
    out, closed = raw(port, b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert status_of(out) == 200 and closed
    body = out.partition(b"\r\n\r\n")[2]
    assert len(body) < 100000  # truncated, and the connection was closed
    st, _, _ = get(port, "/")
    assert st == 200
    z.stop()


def test_upstream_closes_before_head_502():
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr], extra="proxy_next_upstream off;")
    st, _, _ = get(port, "/close")
    assert st == 502
    z.stop()


def server_side(port, client_port):
    """the inode of zonegate's side of the connection from client_port, if any"""
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            if (int(parts[1].split(":")[1], 16) == port
                    and int(parts[2].split(":")[1], 16) == client_port and parts[9] != "0"):
                return parts[9]
    return None


def held_by(z, inode):
    """a worker has the socket open"""
    for pid in z.workers():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                        return True
                except OSError:
                    pass
        except OSError:
            pass
    return False


def test_send_timeout_closes_a_client_that_stops_reading():
    """a client that asks for 20 MB and reads nothing is closed after send_timeout,
    with the rest of the body never sent, and the worker keeps serving"""
    a = Upstream("a")
    z, port = start(["server %s;" % a.addr], extra="send_timeout 1s;")
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    s.connect(("127.0.0.1", port))
    n = 20 * 1024 * 1024
    s.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
    # read nothing: the proxy's output backs up past its mark, and after send_timeout
    # the worker closes the connection (its descriptor goes)
    inode = wait_for(lambda: (lambda i: i if i and held_by(z, i) else None)(
        server_side(port, s.getsockname()[1])), 5)
    assert inode, "connection not found in a worker"
    assert wait_for(lambda: not held_by(z, inode), 10), "not closed after send_timeout"
    s.settimeout(5)
    got, closed = 0, False
    try:
        while True:
            b = s.recv(1 << 20)
            if not b:
                closed = True
                break
            got += len(b)
    except (ConnectionResetError, socket.timeout):
        closed = True
    s.close()
    assert closed and got < n, (closed, got)
    st, _, body = get(port, "/")
    assert st == 200 and body == b"ok a"
    z.stop()
