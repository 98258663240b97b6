"""proxy_buffering: with it on (the default) a client that reads slowly does not hold
the upstream connection — the response goes to memory buffers and a temp file, and
the upstream sees its connection closed before the client finished; with it off,
with X-Accel-Buffering: no, or with proxy_max_temp_file_size 0, it does.  The
directives' checks; the same answers as Debian's nginx."""
import hashlib
import json
import os
import socket
import tempfile
import threading

import test_nginx_diff
import upstream
from zg import Skip, Upstream, Zonegate, free_port, get, request, wait_for, zonegate_t

BIG = 24 * 1024 * 1024  # past every socket buffer on the way


def upstream_open(u):
    return int(get(u.port, "/__open")[2])


def slow_client(port, path):
    """sends the request with a small receive buffer and reads only the head and a
    little of the body; returns (socket, bytes read so far)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        assert b, "closed before the head"
        buf += b
    return s, buf


def read_rest(s, buf):
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        buf += b
    s.close()
    head, body = buf.split(b"\r\n\r\n", 1)
    if b"transfer-encoding: chunked" in head.lower():
        out, i = bytearray(), 0
        while True:
            j = body.index(b"\r\n", i)
            n = int(body[i:j], 16)
            if n == 0:
                break
            out += body[j + 2:j + 2 + n]
            i = j + 2 + n + 2
        body = bytes(out)
    return head, body


CONF = """
worker_processes 1;
http {{
    upstream kp {{ server {up}; keepalive 4; }}
    server {{
        location /pool/ {{ proxy_pass http://kp/; }}
        client_max_body_size 10m;
        location /rb/ {{ proxy_pass http://{up}/; client_body_buffer_size 16k;
                         client_body_temp_path {tmp}; }}
        location /rboff/ {{ proxy_pass http://{up}/; proxy_request_buffering off; }}
        listen 127.0.0.1:{port};
        location /on/ {{ proxy_pass http://{up}/; }}
        location /tmpdir/ {{ proxy_pass http://{up}/; proxy_temp_path {tmp} 1 2;
                             proxy_buffers 4 8k; proxy_busy_buffers_size 16k; }}
        location /off/ {{ proxy_pass http://{up}/; proxy_buffering off; }}
        location /notemp/ {{ proxy_pass http://{up}/; proxy_max_temp_file_size 0; }}
    }}
}}
"""


def start():
    u = Upstream()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="zgtmp-")
    os.chmod(tmp, 0o777)  # the workers' user writes there
    z = Zonegate(CONF, wait_ports=[port], port=port, up=u.addr, tmp=tmp)
    return z, u, port


def check_freed(z, u, port, path, freed):
    s, buf = slow_client(port, path)
    try:
        assert wait_for(lambda: upstream_open(u) == 1, 10), "the upstream never saw it"
        if freed:
            # the client has read almost nothing, and the upstream is done with it
            assert wait_for(lambda: upstream_open(u) == 0, 20), \
                "%s: the upstream connection is still held" % path
        else:
            assert not wait_for(lambda: upstream_open(u) == 0, 1.0), \
                "%s: the upstream connection was let go before the client read" % path
        head, body = read_rest(s, buf)
    finally:
        s.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(body) == BIG and \
        hashlib.sha256(body).digest() == hashlib.sha256(upstream.pattern(BIG)).digest()
    assert b"x-accel-buffering" not in head.lower()
    assert wait_for(lambda: upstream_open(u) == 0, 10), (path, upstream_open(u))


def test_buffering_on_frees_the_upstream():
    z, u, port = start()
    try:
        check_freed(z, u, port, "/on/big?n=%d" % BIG, True)
        check_freed(z, u, port, "/tmpdir/big?n=%d&chunked=1" % BIG, True)
        # X-Accel-Buffering: yes turns it on where it is off
        check_freed(z, u, port, "/off/big?n=%d&X-Accel-Buffering=yes" % BIG, True)
    finally:
        z.stop()
        u.stop()
    assert "[crit]" not in z.error_log(), z.error_log()


def test_buffering_on_gives_the_connection_back_to_the_pool():
    z, u, port = start()
    try:
        s, buf = slow_client(port, "/pool/big?n=%d" % BIG)
        try:
            # the upstream wrote its whole answer while the client reads nothing
            assert wait_for(lambda: int(get(u.port, "/__active")[2]) == 0
                            and int(get(u.port, "/__count")[2]) == 1, 20)
            # another request takes the same upstream connection from the pool
            c0 = int(get(u.port, "/__conns")[2])
            st, h, body = get(port, "/pool/")
            # accepted since: only the connection of the first count (a new upstream
            # connection would make it 2)
            c1 = int(get(u.port, "/__conns")[2])
            assert st == 200 and c1 == c0 + 1, (c0, c1)
            head, body = read_rest(s, buf)
        finally:
            s.close()
        assert len(body) == BIG and body == upstream.pattern(BIG)
    finally:
        z.stop()
        u.stop()


def test_buffering_off_holds_the_upstream():
    z, u, port = start()
    try:
        check_freed(z, u, port, "/off/big?n=%d" % BIG, False)
        check_freed(z, u, port, "/on/big?n=%d&X-Accel-Buffering=no" % BIG, False)
        # no temp file: past the memory buffers the upstream waits for the client
        check_freed(z, u, port, "/notemp/big?n=%d" % BIG, False)
    finally:
        z.stop()
        u.stop()


def test_buffering_keepalive_and_small_answers():
    z, u, port = start()
    try:
        for path in ("/on/", "/on/big?n=100000", "/on/big?n=3000000&chunked=1", "/off/"):
            st, h, body = get(port, path)
            assert st == 200, (path, st)
            if "big" in path:
                n = int(path.split("n=")[1].split("&")[0])
                assert body == upstream.pattern(n), path
    finally:
        z.stop()
        u.stop()


def post_in_two_halves(u, port, path, body, chunked=False):
    """sends the head and the first half of the body; returns (socket, whether the
    upstream saw the request before the second half was sent)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    half = len(body) // 2
    if chunked:
        frame = lambda b: b"%x\r\n" % len(b) + b + b"\r\n"  # noqa: E731
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                  b"Connection: close\r\n\r\n" % path.encode() + frame(body[:half]))
    else:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n"
                  b"Connection: close\r\n\r\n" % (path.encode(), len(body)) + body[:half])
    seen = wait_for(lambda: int(get(u.port, "/__count")[2]) > 0, 1.0)
    if chunked:
        s.sendall(frame(body[half:]) + b"0\r\n\r\n")
    else:
        s.sendall(body[half:])
    return s, seen


def test_request_buffering():
    z, u, port = start()
    body = os.urandom(1024 * 1024)
    try:
        for path, chunked, buffered in (("/rb/echo", False, True), ("/rb/echo", True, True),
                                        ("/rboff/echo", False, False)):
            c0 = int(get(u.port, "/__count")[2])
            assert c0 == 0
            s, seen = post_in_two_halves(u, port, path, body, chunked)
            head, out = read_rest(s, b"")
            assert head.startswith(b"HTTP/1.1 200"), head
            info = json.loads(out)
            assert info["length"] == len(body) and \
                info["sha256"] == hashlib.sha256(body).hexdigest(), (path, info["length"])
            # on: the upstream sees nothing before the whole body is read; off: it
            # streams
            assert seen == (not buffered), (path, seen)
            u.stop()
            u = Upstream(port=u.port)
    finally:
        z.stop()
        u.stop()
    assert "[crit]" not in z.error_log(), z.error_log()


def bad_gateway_once():
    """a peer that reads one whole request (Content-Length) and answers 502; returns
    (its port, a list that gets the body length it read)"""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)
    got = []

    def serve():
        c, _ = ls.accept()
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += c.recv(65536)
        head, body = buf.split(b"\r\n\r\n", 1)
        n = int([ln.split(b":")[1] for ln in head.split(b"\r\n")
                 if ln.lower().startswith(b"content-length:")][0])
        while len(body) < n:
            body += c.recv(65536)
        got.append(len(body))
        c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        c.close()
        ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], got


def test_request_buffering_retry_sends_the_whole_body_again():
    bad, got = bad_gateway_once()
    u = Upstream()
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="zgtmp-")
    os.chmod(tmp, 0o777)
    z = Zonegate("""worker_processes 1;
http {{ upstream two {{ server 127.0.0.1:{bad} weight=100; server {up} weight=1; }}
  server {{ listen 127.0.0.1:{port}; client_max_body_size 10m;
    location / {{ proxy_pass http://two; proxy_next_upstream error http_502 non_idempotent;
                 client_body_buffer_size 8k; client_body_temp_path {tmp}; }} }} }}""",
                 wait_ports=[port], port=port, bad=bad, up=u.addr, tmp=tmp)
    body = os.urandom(700 * 1024)
    try:
        st, h, out = request(port, "POST", "/echo", body=body)
        info = json.loads(out)
        assert got == [len(body)], got
        assert st == 200 and info["length"] == len(body) and \
            info["sha256"] == hashlib.sha256(body).hexdigest(), (st, info)
    finally:
        z.stop()
        u.stop()


def test_buffering_directives_checked():
    bad = [
        ("proxy_buffers 1 4k;", "invalid value"),
        ("proxy_buffers 8 4k; proxy_busy_buffers_size 64k;", "must be less than"),
        ("proxy_buffer_size 16k; proxy_busy_buffers_size 8k;", "must be equal to or greater"),
        ("proxy_max_temp_file_size 1k;", "must be equal to zero"),
        ("proxy_temp_path /nonexistent/zg;", "is not a directory"),
        ("proxy_buffering maybe;", "maybe"),
    ]
    for text, msg in bad:
        rc, out, _ = zonegate_t("http {{ server {{ listen 127.0.0.1:1; location / {{ %s "
                                "proxy_pass http://127.0.0.1:2; }} }} }}" % text)
        assert rc != 0 and msg in out, (text, out)
    rc, out, _ = zonegate_t("http {{ proxy_buffering on; proxy_buffers 16 8k; "
                            "proxy_buffer_size 8k; proxy_busy_buffers_size 16k; "
                            "proxy_max_temp_file_size 10m; proxy_temp_file_write_size 16k; "
                            "proxy_temp_path /tmp 1 2; proxy_request_buffering off; "
                            "client_body_buffer_size 16k; client_body_temp_path /tmp; "
                            "server {{ listen 127.0.0.1:1; }} }}")
    assert rc == 0, out


NGINX_BUF = """
    server {{
        listen 127.0.0.1:{port};
        location /on/ {{ proxy_pass http://{up}/; proxy_buffers 4 8k;
                         proxy_busy_buffers_size 16k; }}
        location /off/ {{ proxy_pass http://{up}/; proxy_buffering off; }}
    }}
"""


def test_buffering_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing" % test_nginx_diff.NGINX)
    u = Upstream()
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + NGINX_BUF + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + NGINX_BUF + "}}\n", nport, up=u.addr)
    try:
        for path in ("/on/big?n=300000", "/off/big?n=300000", "/on/big?n=300000&chunked=1",
                     "/on/big?n=1000&X-Accel-Buffering=no", "/on/status?code=404"):
            got = []
            for port in (zport, nport):
                st, h, body = get(port, path)
                got.append((st, "x-accel-buffering" in h, h.get("content-length"),
                            h.get("transfer-encoding"), hashlib.sha256(body).hexdigest()))
            assert got[0] == got[1], (path, got)
    finally:
        n.stop()
        z.stop()
        u.stop()
