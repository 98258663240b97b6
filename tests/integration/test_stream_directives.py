"""Stream directives of issue 17 the other stream tests leave out:
proxy_next_upstream_timeout (the time budget ends the tries), proxy_upload_rate,
backup peers, listen backlog= and so_keepalive=on."""
import socket
import subprocess
import time

from test_stream import STREAM, TcpUpstream, start, stop_clean, until_closed
from zg import SLOW, Zonegate, free_port, wait_for


class Unanswered:
    """a listener whose accept queue is full: connects to it hang (the SYN is
    dropped) until the connecting side times out"""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fill = []
        # one connection fills a backlog of 0; check the next one hangs
        for _ in range(2):
            c = socket.socket()
            c.settimeout(0.3)
            try:
                c.connect(("127.0.0.1", self.port))
            except socket.timeout:
                pass
            self.fill.append(c)
        probe = socket.socket()
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", self.port))
            raise RuntimeError("the accept queue did not fill")
        except socket.timeout:
            pass
        finally:
            probe.close()
        self.addr = "127.0.0.1:%d" % self.port


# STREAM without its connect timeout: these tests set their own
NO_CT = STREAM.replace("proxy_connect_timeout 2s;", "")


def _timeouts(z):
    return z.error_log().count("upstream timed out")


def test_stream_next_upstream_timeout_ends_the_tries():
    # 8 peers whose connects hang, 500 ms each: without a time budget a session tries
    # all 8; proxy_next_upstream_timeout 1200ms stops once 1.2 s have passed since
    # the session began, i.e. after at most 3 attempts (each takes >= 500 ms)
    h = Unanswered()
    peers = ["server %s max_fails=0;" % h.addr for _ in range(8)]
    port = free_port()
    z = Zonegate(NO_CT, wait_ports=[], port=port, workers=1, zone="",
                 servers="\n        ".join(peers),
                 extra="proxy_connect_timeout 500ms; proxy_next_upstream_timeout 1200ms;")
    assert wait_for(lambda: "started" in z.error_log())
    s = socket.create_connection(("127.0.0.1", port))
    assert until_closed(s, timeout=30) == b""
    s.close()
    assert wait_for(lambda: _timeouts(z) >= 1)
    n = _timeouts(z)
    assert 1 <= n <= 3, z.error_log()
    stop_clean(z)

    # the control: without the budget all 8 are tried
    port = free_port()
    z = Zonegate(NO_CT, wait_ports=[], port=port, workers=1, zone="",
                 servers="\n        ".join(peers), extra="proxy_connect_timeout 100ms;")
    assert wait_for(lambda: "started" in z.error_log())
    s = socket.create_connection(("127.0.0.1", port))
    assert until_closed(s, timeout=30) == b""
    s.close()
    assert wait_for(lambda: _timeouts(z) == 8), z.error_log()
    stop_clean(z)


def test_stream_upload_rate_paces_the_relay():
    # 600 KB up at 200 KB/s cannot take less than ~2.7 s (a lower bound only)
    u = TcpUpstream()
    z, port = start(["server %s;" % u.addr], extra="proxy_half_close on; proxy_upload_rate 200k;")
    data = b"u" * (600 * 1024)
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.time()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    got = until_closed(s, timeout=60)
    elapsed = time.time() - t0
    assert got == data + b"bye %d" % len(data), len(got or b"")
    assert elapsed >= 2.0, elapsed
    stop_clean(z)


def test_stream_backup_used_only_when_primaries_fail():
    a = TcpUpstream("name", "a")
    b = TcpUpstream("name", "b")
    dead = free_port()
    z, port = start(["server %s;" % a.addr, "server %s backup;" % b.addr], workers=1)

    def reached(p):
        s = socket.create_connection(("127.0.0.1", p))
        got = until_closed(s)
        s.close()
        return got
    assert [reached(port) for _ in range(4)] == [b"a"] * 4
    stop_clean(z)
    z, port = start(["server 127.0.0.1:%d;" % dead, "server %s backup;" % b.addr], workers=1)
    assert [reached(port) for _ in range(3)] == [b"b"] * 3
    stop_clean(z)


def _ss(args):
    return subprocess.run(["ss"] + args, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL).stdout.decode()


def test_stream_listen_backlog_and_so_keepalive():
    u = TcpUpstream()
    port = free_port()
    conf = STREAM.replace("listen 127.0.0.1:{port};",
                          "listen 127.0.0.1:{port} backlog=77 so_keepalive=on;")
    conf = conf.replace("proxy_connect_timeout 2s;", "proxy_connect_timeout 2s;\n"
                        "    }}\n    server {{\n        listen 127.0.0.1:{port2};\n"
                        "        proxy_pass backend;")
    port2 = free_port()
    z = Zonegate(conf, wait_ports=[port, port2], port=port, port2=port2, workers=1,
                 zone="", servers="server %s;" % u.addr, extra="")
    # a listening socket's Send-Q is its backlog
    line = [ln for ln in _ss(["-ltnH", "sport = :%d" % port]).splitlines() if ln.strip()]
    assert line and line[0].split()[2] == "77", line
    line2 = [ln for ln in _ss(["-ltnH", "sport = :%d" % port2]).splitlines() if ln.strip()]
    assert line2 and line2[0].split()[2] == "511", line2
    # the accepted socket has a keepalive timer (ss -o), the other server's has none
    s = socket.create_connection(("127.0.0.1", port))
    s2 = socket.create_connection(("127.0.0.1", port2))
    s.settimeout(10 * SLOW)
    s2.settimeout(10 * SLOW)
    for c in (s, s2):
        c.sendall(b"x")
        assert c.recv(1) == b"x"

    def timer_of(p):
        out = _ss(["-tnoH", "state", "established", "sport = :%d" % p])
        return out
    assert wait_for(lambda: "keepalive" in timer_of(port)), timer_of(port)
    assert "keepalive" not in timer_of(port2), timer_of(port2)
    s.close()
    s2.close()
    stop_clean(z)
