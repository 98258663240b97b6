"""Differential test of stream access-log lines (issue 17): the same stream config
and the same connection script against Debian's nginx stream module and zonegate
give the same $status, $bytes_sent/$bytes_received, $upstream_addr,
$upstream_bytes_sent/_received and $limit_conn_status, line for line (ports
renamed, as each proxy listens on its own)."""
import os
import socket
import tempfile

from test_stream import TcpUpstream, stop_clean, until_closed
from test_stream_nginx_diff import NGINX, STREAM_MODULE, NginxStream
from zg import SLOW, Skip, Zonegate, free_port, wait_for

STREAM = """
stream {{
    log_format d '$server_port $status $bytes_sent $bytes_received [$upstream_addr] '
                 '[$upstream_bytes_sent] [$upstream_bytes_received] $limit_conn_status';
    access_log {log} d;
    limit_conn_zone $binary_remote_addr zone=lc:1m;
    upstream fo {{ server 127.0.0.1:{dead}; server {echo}; }}
    server {{ listen 127.0.0.1:{p_echo}; limit_conn lc 1; proxy_pass {echo}; }}
    server {{ listen 127.0.0.1:{p_fo}; proxy_pass fo; proxy_connect_timeout 2s; }}
    server {{ listen 127.0.0.1:{p_none}; proxy_pass 127.0.0.1:{dead}; }}
    server {{ listen 127.0.0.1:{p_deny}; deny all; proxy_pass {echo}; }}
    server {{ listen 127.0.0.1:{p_pp} proxy_protocol; proxy_pass {echo}; }}
}}
"""
PORTS = ("p_echo", "p_fo", "p_none", "p_deny", "p_pp")


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


def exchange(port, data):
    """sends data, reads its echo, closes: a session whose byte counts are known"""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        b = s.recv(65536)
        if not b:
            break
        got += b
    return s, got


def script(ports, log):
    """each step waits for its log line, so the lines come in the script's order"""
    n = 0

    def logged():
        assert wait_for(lambda: len(lines(log)) >= n), (n, lines(log))
    s, got = exchange(ports["p_echo"], b"hello" * 1000)
    assert got == b"hello" * 1000
    s.close()
    n += 1
    logged()
    held, got = exchange(ports["p_echo"], b"x")
    assert got == b"x"
    over = socket.create_connection(("127.0.0.1", ports["p_echo"]))
    assert until_closed(over) == b""
    over.close()
    n += 1
    logged()
    held.close()
    n += 1
    logged()
    s, got = exchange(ports["p_fo"], b"ab")
    assert got == b"ab"
    s.close()
    n += 1
    logged()
    for p, data in (("p_none", b""), ("p_deny", b""), ("p_pp", b"GARBAGE\r\n")):
        s = socket.create_connection(("127.0.0.1", ports[p]))
        if data:
            s.sendall(data)
        until_closed(s)
        s.close()
        n += 1
        logged()
    return lines(log)


def test_stream_access_log_same_as_nginx():
    if not os.path.exists(NGINX) or not os.path.exists(STREAM_MODULE):
        raise Skip("nginx or %s is missing (scripts/deps.sh installs libnginx-mod-stream)"
                   % STREAM_MODULE)
    echo = TcpUpstream()
    dead = free_port()
    results = {}
    for name in ("nginx", "zonegate"):
        ports = {k: free_port() for k in PORTS}
        if name == "nginx":
            log = os.path.join(tempfile.mkdtemp(prefix="zgnginx-log-"), "stream.log")
            conf = STREAM.format(dead=dead, echo=echo.addr, log=log, **ports)
            srv = NginxStream(conf)
        else:
            srv = Zonegate("worker_processes 1;\n" + STREAM.replace(
                "{log}", "{dir}/stream.log"), dead=dead, echo=echo.addr, **ports)
            log = os.path.join(srv.dir, "stream.log")
            assert wait_for(lambda: "started" in srv.error_log()), srv.error_log()
        try:
            got = script(ports, log)
        finally:
            if name == "zonegate":
                stop_clean(srv)
            else:
                srv.stop()
        # the proxies' own ports are named, the upstreams' are the same for both
        for k, p in ports.items():
            got = [ln.replace(str(p), k) for ln in got]
        results[name] = got
    assert results["zonegate"] == results["nginx"], results
    # and what nginx logs is what the test means
    ng = results["nginx"]
    assert ng[0].startswith("p_echo 200 5000 5000 [%s] [5000] [5000] PASSED" % echo.addr), ng
    assert ng[1].startswith("p_echo 503 0 0 [-]") and ng[1].endswith("REJECTED"), ng
    assert ng[3].startswith("p_fo 200 2 2 [127.0.0.1:%d, %s] [0, 2] [0, 2]"
                            % (dead, echo.addr)), ng
    assert [ln.split()[1] for ln in ng[4:]] == ["502", "403", "400"], ng
