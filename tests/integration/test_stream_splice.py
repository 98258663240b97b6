"""proxy_splice (issue 17): the stream relay through splice(2) moves 100 MB both ways
intact with half-close, on and off alike; a counter in /metrics shows which sessions
went through splice: none with proxy_splice off or a rate, the ones sending a PROXY
header first with it on."""
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
    transfer(port, 4 * 1024 * 1024, pp=True)
    assert spliced(admin) - before == 1, (before, spliced(admin))
    stop_clean(z)


def test_splice_half_close_off_ends_at_the_first_eof():
    # proxy_half_close off (nginx's default): the client's EOF ends the session once
    # its bytes went out; the upstream's "bye" after it never reaches the client
    u = TcpUpstream()
    z, port, admin = start(u.addr)
    before = spliced(admin)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"hello" * 1000)
    s.shutdown(socket.SHUT_WR)
    got = until_closed(s)
    s.close()
    assert got is not None and b"bye" not in got, got[-20:]
    assert spliced(admin) - before == 1
    stop_clean(z)


def test_splice_idle_timeout_closes():
    u = TcpUpstream()
    z, port, admin = start(u.addr, "proxy_timeout 300ms;")
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    # idle: proxy_timeout closes the spliced session
    assert until_closed(s) is not None
    s.close()
    assert spliced(admin) >= 1
    stop_clean(z)
