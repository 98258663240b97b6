"""limit_conn, limit_req and allow/deny on stream sessions, with redis through
zonegate and 2 workers (issue 17)."""
import os
import signal
import socket
import time

from limits_util import metric
from test_stream import stop_clean, Redis, TcpUpstream, cli, until_closed
from zg import SLOW, Zonegate, free_port, get, wait_for

CONF = """
worker_processes 2;
http {{
    server {{
        listen 127.0.0.1:{admin};
        location = /metrics {{ metrics; }}
        location = /slab_stat {{ slab_stat; }}
    }}
}}
stream {{
    limit_conn_zone $binary_remote_addr zone=sconn:1m;
    limit_req_zone $binary_remote_addr zone=sreq:1m rate={rate};
    upstream backend {{ zone backend 64k; server {upstream}; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_pass backend;
        {extra}
    }}
}}
"""


def start(upstream, extra, rate="1r/m"):
    port, admin = free_port(), free_port()
    # no probe of the stream port: a probe would be a session the limits count
    z = Zonegate(CONF, wait_ports=[admin], port=port, admin=admin, upstream=upstream,
                 extra=extra, rate=rate)
    return z, port, admin


def session(port):
    """a session that sent PING: the socket if it got PONG (it stays open), None if
    zonegate closed it"""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    try:
        s.sendall(b"PING\r\n")
        if s.recv(100) == b"+PONG\r\n":
            return s
    except OSError:
        pass
    s.close()
    return None


def test_stream_limit_conn_holds_across_workers():
    r = Redis()
    z, port, admin = start(r.addr, "limit_conn sconn 3;")
    held = [session(port) for _ in range(3)]
    assert all(held), held
    # N+k clients: k closed, whatever worker they land on
    extra = [session(port) for _ in range(4)]
    assert extra == [None] * 4, extra
    assert metric(admin, "zonegate_limit_conn_current", zone="sconn") == 3
    assert metric(admin, "zonegate_limit_conn_requests_total", zone="sconn",
                  result="rejected") == 4
    assert z.error_log().count('limiting connections by zone "sconn"') == 4
    # a session that ends gives its slot back
    held.pop().close()
    assert wait_for(lambda: metric(admin, "zonegate_limit_conn_current", zone="sconn") == 2)
    again = session(port)
    assert again
    for s in held + [again]:
        s.close()
    assert wait_for(lambda: metric(admin, "zonegate_limit_conn_current", zone="sconn") == 0)
    stop_clean(z)


def test_stream_limit_conn_given_back_when_a_worker_dies():
    r = Redis()
    z, port, admin = start(r.addr, "limit_conn sconn 2;")
    workers = z.wait_workers(2)
    held = [session(port) for _ in range(2)]
    assert all(held)
    assert session(port) is None
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    z.wait_workers(2, gone=workers)
    # the master subtracted the dead workers' shares
    assert wait_for(lambda: metric(admin, "zonegate_limit_conn_current", zone="sconn") == 0)
    fresh = [session(port) for _ in range(2)]
    assert all(fresh)
    for s in held + fresh:
        s.close()
    stop_clean(z)


def test_stream_limit_conn_dry_run_and_log_level():
    r = Redis()
    z, port, admin = start(r.addr, "limit_conn sconn 1; limit_conn_dry_run on;"
                                   " limit_conn_log_level warn;")
    a, b = session(port), session(port)
    assert a and b  # dry run: nothing is closed
    log = z.error_log()
    assert '[warn]' in log and 'limiting connections, dry run, by zone "sconn"' in log, log
    a.close()
    b.close()
    stop_clean(z)


def test_stream_limit_req_on_connections_nodelay():
    r = Redis()
    z, port, admin = start(r.addr, "limit_req zone=sreq burst=2 nodelay;")
    out = [session(port) for _ in range(6)]
    # 1 + burst 2 new connections pass at once, the rest are closed (rate 1 a minute)
    assert [s is not None for s in out] == [True] * 3 + [False] * 3, out
    assert metric(admin, "zonegate_limit_req_requests_total", zone="sreq",
                  result="rejected") == 3
    for s in out:
        if s:
            s.close()
    stop_clean(z)


def test_stream_limit_req_delays_the_session():
    r = Redis()
    z, port, admin = start(r.addr, "limit_req zone=sreq burst=5;", rate="20r/s")
    # each excess connection is accepted and held for its delay, then proxied
    out = [session(port) for _ in range(4)]
    assert all(out), out
    assert metric(admin, "zonegate_limit_req_requests_total", zone="sreq",
                  result="delayed") >= 1
    assert "delaying request" in z.error_log()
    for s in out:
        s.close()
    stop_clean(z)


def test_stream_allow_deny():
    u = TcpUpstream()
    denied, allowed = free_port(), free_port()
    z = Zonegate("""
worker_processes 1;
stream {{
    deny 127.0.0.1;
    server {{ listen 127.0.0.1:{denied}; proxy_pass {u}; }}
    server {{ listen 127.0.0.1:{allowed}; allow 127.0.0.0/8; deny all; proxy_pass {u}; }}
}}
""", wait_ports=[allowed], denied=denied, allowed=allowed, u=u.addr)
    s = socket.create_connection(("127.0.0.1", denied))
    s.sendall(b"x")
    assert until_closed(s) == b""  # the stream level's deny, inherited
    assert "access forbidden by rule, client: 127.0.0.1, server: 127.0.0.1:%d" % denied \
        in z.error_log()
    s = socket.create_connection(("127.0.0.1", allowed))
    s.settimeout(10 * SLOW)
    s.sendall(b"y")
    assert s.recv(1) == b"y"
    s.close()
    stop_clean(z)


def test_stream_access_log_variables_and_status():
    u = TcpUpstream()
    dead = free_port()
    port, denied, limited = free_port(), free_port(), free_port()
    z = Zonegate("""
worker_processes 1;
stream {{
    log_format s '$remote_addr:$remote_port>$server_port $status $bytes_sent '
                 '$bytes_received $session_time [$upstream_addr] [$upstream_bytes_sent] '
                 '[$upstream_bytes_received] [$upstream_connect_time] '
                 '$limit_conn_status/$limit_req_status';
    access_log {dir}/stream.log s;
    limit_conn_zone $binary_remote_addr zone=one:1m;
    upstream backend {{ server 127.0.0.1:{dead} max_fails=0; server {u}; }}
    server {{ listen 127.0.0.1:{port}; proxy_pass backend; proxy_half_close on; }}
    server {{ listen 127.0.0.1:{denied}; deny all; proxy_pass backend; }}
    server {{ listen 127.0.0.1:{limited}; limit_conn one 1; proxy_pass {u}; }}
}}
""", port=port, denied=denied, limited=limited, dead=dead, u=u.addr)
    path = os.path.join(z.dir, "stream.log")
    wait_for(lambda: "started" in z.error_log())
    # round-robin sends the first session to the dead peer first, then to the live one
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"hello")
    s.shutdown(socket.SHUT_WR)
    assert until_closed(s) == b"hellobye 5"
    lport = s.getsockname()[1]
    s.close()
    d = socket.create_connection(("127.0.0.1", denied))
    assert until_closed(d) == b""
    d.close()
    held = socket.create_connection(("127.0.0.1", limited))
    held.settimeout(10 * SLOW)
    held.sendall(b"x")
    assert held.recv(1) == b"x"
    over = socket.create_connection(("127.0.0.1", limited))
    assert until_closed(over) == b""
    over.close()
    held.close()

    def lines():
        try:
            with open(path) as f:
                return f.read().splitlines()
        except OSError:
            return []
    got = wait_for(lambda: len(lines()) >= 4 and lines())
    assert got and len(got) == 4, got
    first = got[0].split(" ")
    assert first[0] == "127.0.0.1:%d>%d" % (lport, port), got[0]
    assert first[1:4] == ["200", "10", "5"], got[0]
    assert got[0].endswith("[127.0.0.1:%d, %s] [0, 5] [0, 10] [-, %s] -/-"
                           % (dead, u.addr, got[0].split("[-, ")[1].split("]")[0])), got[0]
    assert " 403 0 0 " in got[1] and "[-] [-] [-] [-] -/-" in got[1], got[1]
    # the rejected session is logged first, while the held one is still open
    assert got[2].split(" ")[1] == "503" and got[2].endswith("REJECTED/-"), got[2]
    assert got[3].split(" ")[1] == "200" and got[3].endswith("PASSED/-"), got[3]
    stop_clean(z)


def test_stream_zones_in_metrics_and_slab_stat():
    r = Redis()
    dead = free_port()
    # the stream upstream is named as an http one could be: its families are apart
    z, port, admin = start(r.addr + " max_fails=0; server 127.0.0.1:%d max_fails=0" % dead,
                           "limit_conn sconn 2;")
    socks = [session(port) for _ in range(3)]
    assert [s is not None for s in socks] == [True, True, False], socks
    for s in socks:
        if s:
            s.close()
    # each session sent "PING\r\n" (6 bytes) and got "+PONG\r\n" (7 bytes)
    peer = dict(upstream="backend", peer=r.addr)
    assert wait_for(lambda: metric(admin, "zonegate_stream_upstream_peer_bytes_total",
                                   direction="received", **peer) == 14)
    assert metric(admin, "zonegate_stream_upstream_peer_bytes_total", direction="sent",
                  **peer) == 12
    assert metric(admin, "zonegate_stream_upstream_peer_connections_total", **peer) == 2
    assert metric(admin, "zonegate_stream_upstream_peer_active", **peer) == 0
    assert metric(admin, "zonegate_stream_upstream_peer_state", state="up", **peer) == 1
    # round-robin sent one session to the dead peer first: a failure, then the next peer
    dpeer = dict(upstream="backend", peer="127.0.0.1:%d" % dead)
    assert metric(admin, "zonegate_stream_upstream_peer_failures_total", **dpeer) >= 1
    assert metric(admin, "zonegate_upstream_peer_requests_total", upstream="backend") == 0
    assert metric(admin, "zonegate_limit_conn_requests_total", zone="sconn",
                  result="rejected") == 1
    st, _, body = get(admin, "/slab_stat")
    text = body.decode()
    for zone in ("backend", "sconn", "sreq"):
        assert "* shared memory: %s\n" % zone in text, text
    stop_clean(z)


def test_stream_reload_keeps_counts_and_sessions():
    # two sessions hold the zone's two slots; after a reload (same zone name, kind and
    # size) they stay open on the old workers and still count for the new ones
    r = Redis()
    z, port, admin = start(r.addr, "limit_conn sconn 2;")
    old = z.wait_workers(2)
    held = [session(port) for _ in range(2)]
    assert all(held)
    z.reload()
    assert wait_for(lambda: len([p for p in z.workers() if p not in old]) == 2)
    assert session(port) is None  # the new generation sees the old sessions' counts
    for s in held:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"  # still relayed by the old workers
        s.close()
    assert z.wait_workers(2, gone=old)
    assert wait_for(lambda: metric(admin, "zonegate_limit_conn_current", zone="sconn") == 0)
    again = session(port)
    assert again
    again.close()
    stop_clean(z)


def test_stream_limit_req_holds_within_theory():
    # new connections as fast as the client makes them, for ~1.5 s, against rate=20r/s
    # burst=5 nodelay: the leaky bucket admits 1 + 5 + 20 per second of the span
    # between zonegate's first and last decision.  That span is bounded from the
    # client's side by [end of the first attempt .. start of the last] and
    # [start of the first .. end of the last], so the bounds below hold however slow
    # the machine is (the client only gets fewer attempts).
    r = Redis()
    z, port, admin = start(r.addr, "limit_req zone=sreq burst=5 nodelay;", rate="20r/s")
    attempts = []
    t_end = time.time() + 1.5
    while time.time() < t_end or len(attempts) < 10:
        t0 = time.time()
        s = session(port)
        attempts.append((t0, time.time(), s is not None))
        if s:
            s.close()
    passed = sum(1 for a in attempts if a[2])
    span_min = attempts[-1][0] - attempts[0][1]
    span_max = attempts[-1][1] - attempts[0][0]
    low, high = min(6 + 20 * span_min, len(attempts)), 6 + 20 * span_max
    assert low - 2 <= passed <= high + 2, (passed, low, high, len(attempts))
    assert metric(admin, "zonegate_limit_req_requests_total", zone="sreq",
                  result="passed") == passed
    assert metric(admin, "zonegate_limit_req_requests_total", zone="sreq",
                  result="rejected") == len(attempts) - passed
    stop_clean(z)


def test_stream_limit_conn_given_back_after_upstream_failure():
    # limit_conn 1 before a dead upstream: every session ends with 502, none with 503,
    # so each one's slot came back when it failed
    dead, port = free_port(), free_port()
    z = Zonegate("""
worker_processes 1;
stream {{
    log_format st '$status $limit_conn_status';
    access_log {dir}/stream.log st;
    limit_conn_zone $binary_remote_addr zone=one:1m;
    server {{ listen 127.0.0.1:{port}; limit_conn one 1; proxy_pass 127.0.0.1:{dead}; }}
}}
""", port=port, dead=dead)
    assert wait_for(lambda: "started" in z.error_log())
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        assert until_closed(s) == b""
        s.close()
    path = os.path.join(z.dir, "stream.log")
    lines = wait_for(lambda: os.path.exists(path) and len(open(path).read().split("\n")) > 3
                     and open(path).read().splitlines())
    assert lines == ["502 PASSED"] * 3, lines
    stop_clean(z)
