"""proxy_splice (issue 17): the stream relay through splice(2) moves 100 MB both ways
intact with half-close, on and off alike; a counter in /metrics shows which sessions
went through splice: a bulk flow switches to it (also after sending a PROXY header),
small messages stay buffered, and none does with proxy_splice off or a rate."""
import hashlib
import socket
import threading

from limits_util import metric
from test_stream import TcpUpstream, stop_clean, until_closed
from zg import SLOW, Zonegate, free_port

CONF = """
worker_processes 2;
http {{
    server {{
        listen 127.0.0.1:{admin};
        location = /metrics {{ metrics; }}
    }}
}}
stream {{
    upstream backend {{ zone backend 64k; server {upstream}; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_pass backend;
        {extra}
    }}
}}
"""


def start(upstream, extra=""):
    port, admin = free_port(), free_port()
    # no probe of the stream port (it would be a session the counter counts): the
    # master opens every listener before the workers that answer on admin start
    z = Zonegate(CONF, wait_ports=[admin], port=port, admin=admin, upstream=upstream,
                 extra=extra)
    return z, port, admin


def spliced(admin):
    return metric(admin, "zonegate_stream_splice_sessions_total")


def transfer(port, size, pp=False):
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
    s.close()
    assert got is not None
    head = b""
    if pp:
        # the upstream echoes the PROXY header zonegate sent before the bytes
        head = got[:got.index(b"\r\n") + 2]
        assert head.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 "), head
    # the upstream echoes everything, then "bye N" once it read the client's EOF
    bye = b"bye %d" % (len(head) + size)
    assert got.endswith(bye), got[-20:]
    body = got[len(head):-len(bye)]
    assert len(body) == size
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def _big(extra, want_spliced):
    u = TcpUpstream()
    z, port, admin = start(u.addr, extra)
    before = spliced(admin)
    transfer(port, 100 * 1024 * 1024)
    assert spliced(admin) - before == want_spliced
    stop_clean(z)


def test_splice_100mb_both_ways_half_close():
    _big("proxy_half_close on;", 1)


def test_splice_off_100mb_both_ways_half_close():
    _big("proxy_half_close on; proxy_splice off;", 0)


def test_splice_not_used_with_a_rate():
    u = TcpUpstream()
    z, port, admin = start(u.addr, "proxy_half_close on; proxy_download_rate 100m;")
    before = spliced(admin)
    transfer(port, 1024 * 1024)
    assert spliced(admin) == before
    stop_clean(z)


def test_splice_after_the_proxy_protocol_header():
    # the PROXY header goes out first through the buffered path, then splice
    u = TcpUpstream()
    z, port, admin = start(u.addr, "proxy_half_close on; proxy_protocol on;")
    before = spliced(admin)
    transfer(port, 16 * 1024 * 1024, pp=True)
    assert spliced(admin) - before == 1, (before, spliced(admin))
    stop_clean(z)


def test_small_messages_stay_buffered():
    # no read fills a 64 KB chunk: the session never switches to splice
    u = TcpUpstream()
    z, port, admin = start(u.addr)
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    for i in range(200):
        msg = b"%03d" % i * 30
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(4096)
        assert got == msg
    s.close()
    assert spliced(admin) == 0
    stop_clean(z)


def send_bulk(s, size):
    """sends size bytes from a thread; returns the thread"""
    data = b"b" * size

    def run():
        try:
            s.sendall(data)
        except OSError:
            pass
    t = threading.Thread(target=run)
    t.start()
    return t


def test_splice_half_close_off_ends_at_the_first_eof():
    # proxy_half_close off (nginx's default): the client's EOF ends the session once
    # its bytes went out; the upstream's "bye" after it never reaches the client
    u = TcpUpstream()
    z, port, admin = start(u.addr)
    s = socket.create_connection(("127.0.0.1", port))
    t = send_bulk(s, 16 * 1024 * 1024)
    got = bytearray()
    s.settimeout(30 * SLOW)
    while len(got) < 16 * 1024 * 1024 - (1 << 20):
        b = s.recv(1 << 20)
        assert b, len(got)
        got += b
    t.join()
    s.shutdown(socket.SHUT_WR)
    rest = until_closed(s, timeout=30)
    s.close()
    assert rest is not None and b"bye" not in got + rest, (got + rest)[-20:]
    assert spliced(admin) == 1
    stop_clean(z)


def test_splice_idle_timeout_closes():
    u = TcpUpstream()
    z, port, admin = start(u.addr, "proxy_timeout 500ms;")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(30 * SLOW)
    size = 16 * 1024 * 1024
    t = send_bulk(s, size)
    got = 0
    while got < size:
        b = s.recv(1 << 20)
        assert b, got
        got += len(b)
    t.join()
    assert spliced(admin) == 1
    # idle: proxy_timeout closes the spliced session
    assert until_closed(s) == b""
    s.close()
    stop_clean(z)
