"""Differential test of the stream proxy: the same stream config and the same
connection script against Debian's nginx with its stream module
(libnginx-mod-stream) and against zonegate give the same round-robin order, the same
fail-over, the same limit_conn accept/close outcomes and the same verdict on good,
odd and broken PROXY protocol headers (issue 17)."""
import os
import signal
import socket
import subprocess
import sys
import tempfile

import zg
from test_stream import TcpUpstream, stop_clean, until_closed
from zg import HERE, SLOW, Skip, Zonegate, free_port, wait_for

NGINX = "/usr/sbin/nginx"
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

STREAM = """
stream {{
    limit_conn_zone $binary_remote_addr zone=lc:1m;
    upstream rr {{ server {a} weight=3; server {b}; server {c} weight=2; }}
    upstream fo {{ server 127.0.0.1:{dead}; server {d}; server {e}; }}
    server {{ listen 127.0.0.1:{p_rr}; proxy_pass rr; }}
    server {{ listen 127.0.0.1:{p_fo}; proxy_pass fo; proxy_connect_timeout 2s; }}
    server {{ listen 127.0.0.1:{p_lc}; limit_conn lc 2; proxy_pass {echo}; }}
    server {{ listen 127.0.0.1:{p_pp} proxy_protocol; proxy_pass {echo}; }}
}}
"""

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_4 = SIG + b"\x21\x11\x00\x0c" + bytes([1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2])
# PROXY headers, good, odd and broken: each is accepted (the bytes after it reach the
# upstream) or the connection is closed, the same way by both
PP_CASES = [
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
    b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
    b"PROXY TCP4 1.2.3.456 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.x 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 ::1 ::1 1 2\r\n",
    b"PROXY TCP6 ::1 ::1 1 2\r\n",
    b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN 1 2 3\r\n",
    b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
    b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
    V2_4,
    SIG + b"\x20" + V2_4[13:],                     # LOCAL
    SIG + b"\x22" + V2_4[13:],                     # command 2
    SIG + b"\x21\x12" + V2_4[14:],                 # datagram
    SIG + b"\x21\x31" + V2_4[14:],                 # unix family
    SIG + b"\x21\x00\x00\x00",                     # UNSPEC
    SIG + b"\x31" + V2_4[13:],                     # version 3
    SIG + b"\x21\x11\x00\x04" + bytes(4),          # too short for TCP4
]


def pp_outcome(port, header):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    try:
        s.sendall(header + b"x")
        return "accepted" if s.recv(1) == b"x" else "closed"
    except OSError:
        return "closed"
    finally:
        s.close()


class NginxStream:
    def __init__(self, conf):
        self.dir = tempfile.mkdtemp(prefix="zgnginx-")
        os.chmod(self.dir, 0o755)
        path = os.path.join(self.dir, "nginx.conf")
        with open(path, "w") as f:
            f.write("load_module %s;\nuser root;\nevents { worker_connections 256; }\n"
                    % STREAM_MODULE + conf)
        g = ("daemon off; master_process on; worker_processes 1; pid %s/nginx.pid; "
             "error_log %s/error.log info;" % (self.dir, self.dir))
        self.proc = zg.spawn([NGINX, "-p", self.dir + "/", "-c", path, "-g", g],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # the pid file is written after the sockets listen; no probe connection,
        # which would take a round-robin turn
        if not wait_for(lambda: os.path.exists(os.path.join(self.dir, "nginx.pid"))
                        or self.proc.poll() is not None):
            raise RuntimeError("nginx did not start")
        if self.proc.poll() is not None:
            raise RuntimeError("nginx exited: %s" % self.proc.stderr.read().decode())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10 * SLOW)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def named(name):
    port = free_port()
    p = zg.spawn([sys.executable, os.path.join(HERE, "tcp_upstream.py"), str(port), "name",
                  name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"ready" in p.stdout.readline()
    return "127.0.0.1:%d" % port


def who(port):
    s = socket.create_connection(("127.0.0.1", port))
    got = until_closed(s)
    s.close()
    return got.decode() if got else "closed"


def held(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(10 * SLOW)
    try:
        s.sendall(b"x")
        if s.recv(1) == b"x":
            return s
    except OSError:
        pass
    s.close()
    return None


def script(ports):
    out = {"rr": [who(ports["p_rr"]) for _ in range(12)],
           "fo": [who(ports["p_fo"]) for _ in range(6)]}
    socks = [held(ports["p_lc"]) for _ in range(4)]
    out["lc"] = [s is not None for s in socks]
    socks[0].close()
    # the closed session's slot comes back: a new session is accepted again
    again = wait_for(lambda: held(ports["p_lc"]))
    out["lc_again"] = again is not None
    out["pp"] = [pp_outcome(ports["p_pp"], h) for h in PP_CASES]
    for s in socks[1:] + [again]:
        if s:
            s.close()
    return out


def test_stream_same_outcomes_as_nginx():
    if not os.path.exists(NGINX) or not os.path.exists(STREAM_MODULE):
        raise Skip("nginx or %s is missing (scripts/deps.sh installs libnginx-mod-stream)"
                   % STREAM_MODULE)
    ups = {k: named(k) for k in "abcde"}
    echo = TcpUpstream()
    results = {}
    for name in ("nginx", "zonegate"):
        ports = {k: free_port() for k in ("p_rr", "p_fo", "p_lc", "p_pp")}
        conf = STREAM.format(dead=free_port(), echo=echo.addr, **ups, **ports)
        if name == "nginx":
            srv = NginxStream(conf)
        else:
            srv = Zonegate("worker_processes 1;\n" + conf.replace("{", "{{").replace("}", "}}"))
            assert wait_for(lambda: "started" in srv.error_log()), srv.error_log()
        try:
            results[name] = script(ports)
        finally:
            if name == "zonegate":
                stop_clean(srv)
            else:
                srv.stop()
    assert results["zonegate"] == results["nginx"], results
    # and what nginx does is what the test means
    assert results["nginx"]["rr"][:6] == ["a", "c", "a", "b", "c", "a"], results
    assert results["nginx"]["lc"] == [True, True, False, False], results
    assert results["nginx"]["pp"].count("accepted") >= 10, results["nginx"]["pp"]
    # the dead peer was tried first, failed, and was skipped from then on
    assert results["nginx"]["fo"] == ["d", "e", "d", "e", "d", "e"], results
