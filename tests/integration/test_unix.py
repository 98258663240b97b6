"""Unix domain sockets (issue 15): `listen unix:PATH` in http and stream, `server
unix:PATH` in upstreams, `proxy_pass http://unix:PATH:/uri` and stream's `proxy_pass
unix:PATH`.  Clients are curl --unix-socket and Python sockets; the app is a Python
HTTP server on a unix socket.  $remote_addr and $binary_remote_addr of a unix client
are "unix:" as in nginx, so a limit keyed on the address counts every unix client as
one; the differential case runs the same config on Debian's nginx."""
import http.server
import os
import re
import socket
import socketserver
import stat
import sys
import subprocess
import tempfile
import threading

import test_nginx_diff
import zg
from zg import Skip, Upstream, Zonegate, free_port, wait_for, wait_port


def _sockdir():
    """a directory the workers (user nobody) can reach"""
    d = tempfile.mkdtemp(prefix="zgunix-")
    os.chmod(d, 0o755)
    return d


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = ("app %s %s host=%s" % (self.server.name, self.path,
                                       self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-App", self.server.name)
        self.end_headers()
        self.wfile.write(body)


class _UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class UnixApp:
    """an HTTP app on a unix socket, answering "app NAME PATH host=HOST" """

    def __init__(self, path, name="a"):
        self.path = path
        self.srv = _UnixHTTP(path, _Handler)
        self.srv.name = name
        os.chmod(path, 0o666)
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()
        zg.STOPS.append(self.stop)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def curl_unix(sock, path="/", extra=()):
    """(status, body) of curl --unix-socket"""
    out = subprocess.run(["curl", "-s", "--unix-socket", sock, "-o", "-", "-w", "\n%{http_code}",
                          *extra, "http://localhost" + path],
                         stdout=subprocess.PIPE, timeout=10 * zg.SLOW).stdout.decode()
    body, _, code = out.rpartition("\n")
    return int(code), body


def wait_unix(path, proc=None):
    def up():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return True
        except OSError:
            return False
        finally:
            s.close()
    assert wait_for(up), "%s not listening" % path


HTTP_LISTEN = """
worker_processes 2;
http {{
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        listen unix:{sock};
        location / {{ return 200 "ra=$remote_addr srv=$server_addr\\n"; }}
        location /lim {{ limit_req zone=one; proxy_pass http://unix:{app}; }}
    }}
}}
"""


def test_listen_unix_two_workers_reload_and_exit():
    d = _sockdir()
    sock = os.path.join(d, "zg.sock")
    # a socket file left by a process that is gone: removed, not an error
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock)
    stale.close()
    port = free_port()
    z = Zonegate(HTTP_LISTEN, wait_ports=[port], port=port, sock=sock, app=sock)
    wait_unix(sock, z.proc)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
    workers = z.wait_workers(2)
    for _ in range(6):
        assert curl_unix(sock) == (200, "ra=unix: srv=unix:%s\n" % sock)
    # TCP clients are unaffected
    assert zg.get(port, "/")[0] == 200
    # one listening socket shared by the workers: both accept on it
    for pid in workers:
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                inodes.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
        assert any(i.startswith("socket:") for i in inodes)
    # a reload keeps the socket (same file) and serves on it with the new workers
    ino = os.stat(sock).st_ino
    z.reload()
    z.wait_workers(2, gone=workers)
    assert os.stat(sock).st_ino == ino
    assert curl_unix(sock) == (200, "ra=unix: srv=unix:%s\n" % sock)
    # a reload that drops the address removes the file
    z.rewrite(HTTP_LISTEN.replace("listen unix:{sock};", ""), port=port, sock=sock, app=sock)
    now = z.wait_workers(2)
    z.reload()
    z.wait_workers(2, gone=now)
    assert wait_for(lambda: not os.path.exists(sock)), "socket file left after reload"
    # ... and adding it back creates it again; stopping removes it
    z.rewrite(HTTP_LISTEN, port=port, sock=sock, app=sock)
    now = z.wait_workers(2)
    z.reload()
    wait_unix(sock, z.proc)
    assert curl_unix(sock)[0] == 200
    assert z.stop() == 0
    assert not os.path.exists(sock), "socket file left after exit"


def test_listen_unix_in_use_is_refused():
    d = _sockdir()
    sock = os.path.join(d, "busy.sock")
    busy = socket.socket(socket.AF_UNIX)
    busy.bind(sock)
    busy.listen(1)
    try:
        port = free_port()
        z = Zonegate(HTTP_LISTEN, port=port, sock=sock, app=sock)
        z.proc.wait(10 * zg.SLOW)
        assert z.proc.returncode != 0
        out = z.proc.stdout.read().decode(errors="replace") + z.error_log()
        assert "bind() to unix:%s failed" % sock in out, out
        assert os.path.exists(sock)
    finally:
        busy.close()


def test_limit_by_address_counts_unix_clients_as_one():
    d = _sockdir()
    sock = os.path.join(d, "zg.sock")
    app = os.path.join(d, "app.sock")
    UnixApp(app, "a")
    port = free_port()
    z = Zonegate(HTTP_LISTEN, wait_ports=[port], port=port, sock=sock, app=app)
    wait_unix(sock, z.proc)
    # "unix:" is one key: a second unix client (new connection) is refused ...
    assert curl_unix(sock, "/lim")[0] == 200
    assert curl_unix(sock, "/lim")[0] == 503
    # ... while a TCP client has its own
    assert zg.get(port, "/lim")[0] == 200


PROXY = """
worker_processes 2;
http {{
    upstream app {{ server unix:{app}; keepalive 4; }}
    upstream two {{ server unix:{app}; server unix:{app2}; }}
    server {{
        listen 127.0.0.1:{port};
        location /named/ {{ proxy_pass http://app; }}
        location /both/ {{ proxy_pass http://two; add_header X-Up $upstream_addr; }}
        location /direct/ {{ proxy_pass http://unix:{app}:/inner/; }}
        location /nouri/ {{ proxy_pass http://unix:{app}; }}
        location /gone/ {{ proxy_pass http://unix:{dir}/nothing.sock:/; }}
    }}
}}
"""


def test_proxy_to_unix_upstreams():
    d = _sockdir()
    app, app2 = os.path.join(d, "app.sock"), os.path.join(d, "app2.sock")
    UnixApp(app, "a")
    UnixApp(app2, "b")
    port = free_port()
    z = Zonegate(PROXY, wait_ports=[port], port=port, app=app, app2=app2)
    def get(path):
        st, h, body = zg.get(port, path)
        return st, h, body.decode()

    st, _, body = get("/named/x")
    assert (st, body) == (200, "app a /named/x host=127.0.0.1:%d" % port), body
    # the keep-alive pool works for unix peers as for IP ones
    for i in range(5):
        assert get("/named/k%d" % i)[2] == "app a /named/k%d host=127.0.0.1:%d" % (i, port)
    st, _, body = get("/direct/y?q=1")
    assert (st, body) == (200, "app a /inner/y?q=1 host=127.0.0.1:%d" % port), body
    st, _, body = get("/nouri/z")
    assert (st, body) == (200, "app a /nouri/z host=127.0.0.1:%d" % port), body
    # without a Host from the client, the upstream's: "localhost" for a unix socket,
    # as nginx's $proxy_host, the name for a named upstream
    out, _ = zg.raw(port, b"GET /direct/h HTTP/1.0\r\n\r\n")
    assert out.endswith(b"app a /inner/h host=localhost"), out
    out, _ = zg.raw(port, b"GET /named/h HTTP/1.0\r\n\r\n")
    assert out.endswith(b"app a /named/h host=app"), out
    seen = set()
    for _ in range(4):
        st, h, body = get("/both/")
        assert st == 200
        seen.add((body.split()[1], h.get("x-up")))
    assert seen == {("a", "unix:" + app), ("b", "unix:" + app2)}, seen
    # nothing listens there: 502, as for a refused TCP connect
    assert zg.get(port, "/gone/")[0] == 502
    assert "connect() failed" in z.error_log()


def test_unix_both_ways_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    d = _sockdir()
    app = os.path.join(d, "app.sock")
    UnixApp(app, "a")
    conf = """
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        listen unix:{sock};
        location / {{ return 200 "ra=$remote_addr bra=$binary_remote_addr\\n"; }}
        location /srv {{ return 200 "sa=$server_addr sp=$server_port rp=$remote_port\\n"; }}
        location /lim {{ limit_req zone=one; proxy_pass http://unix:{app}; }}
        location /p/ {{ proxy_pass http://unix:{app}:/in/; }}
        location /deny/ {{ deny unix:; proxy_pass http://unix:{app}:/in/; }}
        location /allow/ {{ allow unix:; deny all; proxy_pass http://unix:{app}:/in/; }}
        location /rip/ {{
            set_real_ip_from unix:; real_ip_header X-Real-IP;
            proxy_pass http://unix:{app}:/in/; add_header X-RA $remote_addr;
        }}
        location /norip/ {{
            set_real_ip_from 127.0.0.1; real_ip_header X-Real-IP;
            proxy_pass http://unix:{app}:/in/; add_header X-RA $remote_addr;
        }}
    }}
"""
    zport, nport = free_port(), free_port()
    zsock, nsock = os.path.join(d, "z.sock"), os.path.join(d, "n.sock")
    z = Zonegate("worker_processes 2;\nhttp {{\n" + conf + "}}\n", wait_ports=[zport],
                 port=zport, sock=zsock, app=app)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + conf + "}}\n", nport, sock=nsock, app=app)
    try:
        wait_unix(zsock, z.proc)
        wait_unix(nsock, n.proc)
        script = ["/", "/lim", "/lim", "/p/a?b=c", "/deny/", "/allow/x", "/rip/", "/norip/",
                  "/srv"]
        hdr = ("-H", "X-Real-IP: 192.0.2.7", "-D", "/dev/stdout")

        def run(sock):
            out = []
            for p in script:
                st, body = curl_unix(sock, p, hdr)
                ra = [ln for ln in body.splitlines() if ln.lower().startswith("x-ra:")]
                body = body.split("\r\n\r\n", 1)[-1]
                out.append((st, body, ra))
            return out
        a, b = run(zsock), run(nsock)
        # the error pages differ by the server's name only
        def norm(t):
            return re.sub(r"(zonegate|nginx)/[0-9.]+", "SERVER/VERSION", t)
        a = [(s, norm(t), r) for s, t, r in a]
        b = [(s, norm(t.replace(nsock, zsock)), r) for s, t, r in b]
        assert a == b, (a, b)
        assert a[0][:2] == (200, "ra=unix: bra=unix:\n"), a
        assert [s for s, _, _ in a] == [200, 200, 503, 200, 403, 200, 200, 200, 200], a
        assert a[6][2] == ["X-RA: 192.0.2.7"] and a[7][2] == ["X-RA: unix:"], a
        assert a[8][1] == "sa=unix:%s sp= rp=\n" % zsock, a[8]
        assert stat.S_IMODE(os.stat(zsock).st_mode) == stat.S_IMODE(os.stat(nsock).st_mode)
    finally:
        z.stop()
        n.stop()


STREAM = """
worker_processes 2;
stream {{
    upstream echo {{ server unix:{echo}; }}
    proxy_half_close on;
    server {{ listen unix:{sock}; proxy_pass 127.0.0.1:{tcp}; }}
    server {{ listen 127.0.0.1:{port}; proxy_pass echo; }}
    server {{ listen 127.0.0.1:{port2}; proxy_pass unix:{echo}; }}
}}
"""


def _unix_echo(path):
    """a unix echo server: echoes, and on EOF sends "bye N" """
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o666)
    srv.listen(16)

    def serve(c):
        n = 0
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                n += len(b)
                c.sendall(b)
            c.sendall(b"bye %d" % n)
        except OSError:
            pass
        finally:
            c.close()

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()

    def stop():
        srv.close()
    zg.STOPS.append(stop)


def _talk(s, data):
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    out = b""
    s.settimeout(10 * zg.SLOW)
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b


def test_stream_unix_both_ways():
    d = _sockdir()
    echo, sock = os.path.join(d, "echo.sock"), os.path.join(d, "st.sock")
    _unix_echo(echo)
    tcp = free_port()
    up = zg.spawn([sys.executable, os.path.join(zg.HERE, "tcp_upstream.py"), str(tcp), "echo"],
                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert b"ready" in up.stdout.readline()
    port, port2 = free_port(), free_port()
    z = Zonegate(STREAM, wait_ports=[port, port2], port=port, port2=port2, tcp=tcp,
                 sock=sock, echo=echo)
    wait_unix(sock, z.proc)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
    for _ in range(4):
        c = socket.socket(socket.AF_UNIX)
        c.connect(sock)
        got = _talk(c, b"hello")
        assert got == b"hellobye 5", got
        c.close()
    for p in (port, port2):
        c = socket.create_connection(("127.0.0.1", p))
        got = _talk(c, b"abc")
        assert got == b"abcbye 3", (p, got)
        c.close()
    assert z.stop() == 0
    assert not os.path.exists(sock)


def test_unix_config_errors():
    for conf, msg in [
        ("http {{ server {{ listen unix:; }} }}", 'invalid address "unix:"'),
        ("http {{ server {{ listen unix:/" + "x" * 120 + "; }} }}", "invalid address"),
        ("http {{ server {{ listen 127.0.0.1:1; location / {{ proxy_pass http://unix:/a.sock:x; }} }} }}",
         "invalid URL"),
    ]:
        rc, out, _ = zg.zonegate_t(conf)
        assert rc == 1 and msg in out, (conf, out)
    rc, out, _ = zg.zonegate_t(
        "http {{ upstream u {{ server unix:/run/a.sock; }}\n"
        "server {{ listen unix:/run/zg.sock; location / {{ proxy_pass http://u; }} }} }}\n"
        "stream {{ server {{ listen unix:/run/st.sock; proxy_pass unix:/run/b.sock; }} }}")
    assert rc == 0, out


def test_stream_unix_same_as_nginx():
    import test_stream_nginx_diff as sd
    if not os.path.exists(sd.NGINX) or not os.path.exists(sd.STREAM_MODULE):
        raise Skip("nginx or its stream module is missing (scripts/deps.sh installs them)")
    d = _sockdir()
    echo = os.path.join(d, "echo.sock")
    _unix_echo(echo)
    conf = """
stream {{
    log_format u '$remote_addr $binary_remote_addr $upstream_addr $status $server_addr';
    proxy_half_close on;
    server {{ listen unix:{sock}; proxy_pass unix:{echo}; access_log {dir}/s.log u; }}
}}
"""
    zsock, nsock = os.path.join(d, "zs.sock"), os.path.join(d, "ns.sock")
    zd, nd = _sockdir(), _sockdir()
    z = Zonegate("worker_processes 2;\n" + conf, sock=zsock, echo=echo, dir=zd)
    n = sd.NginxStream(conf.format(sock=nsock, echo=echo, dir=nd))
    try:
        wait_unix(zsock, z.proc)
        wait_unix(nsock, n.proc)
        out = []
        for sock in (zsock, nsock):
            c = socket.socket(socket.AF_UNIX)
            c.connect(sock)
            out.append(_talk(c, b"ping"))
            c.close()
        assert out[0] == out[1] == b"pingbye 4", out
        logs = []
        for ld in (zd, nd):
            path = os.path.join(ld, "s.log")
            # the probe of wait_unix and the session above
            assert wait_for(lambda: os.path.exists(path)
                            and len(open(path).read().splitlines()) == 2), path
            logs.append(open(path).read().replace(nsock, zsock).splitlines())
        assert logs[0] == logs[1] == ["unix: unix: unix:%s 200 unix:%s" % (echo, zsock)] * 2, logs
        assert stat.S_IMODE(os.stat(zsock).st_mode) == stat.S_IMODE(os.stat(nsock).st_mode)
    finally:
        z.stop()
        n.stop()


def test_stream_realip_from_unix():
    """stream `set_real_ip_from unix:`: a PROXY header from a unix client names the
    client; without it the address stays "unix:" """
    d = _sockdir()
    echo = os.path.join(d, "echo.sock")
    _unix_echo(echo)
    conf = """
worker_processes 1;
stream {{
    log_format a '$remote_addr $proxy_protocol_addr';
    proxy_half_close on;
    server {{ listen unix:{dir}/t.sock proxy_protocol; set_real_ip_from unix:;
             proxy_pass unix:{echo}; access_log {dir}/t.log a; }}
    server {{ listen unix:{dir}/u.sock proxy_protocol;
             proxy_pass unix:{echo}; access_log {dir}/u.log a; }}
}}
"""
    z = Zonegate(conf, echo=echo, dir=d)
    for name in ("t", "u"):
        sock = os.path.join(d, name + ".sock")
        wait_unix(sock, z.proc)
    for name in ("t", "u"):
        c = socket.socket(socket.AF_UNIX)
        c.connect(os.path.join(d, name + ".sock"))
        assert _talk(c, b"PROXY TCP4 192.0.2.9 192.0.2.1 4000 80\r\nhi") == b"hibye 2"
        c.close()
    lines = {}
    for name in ("t", "u"):
        path = os.path.join(d, name + ".log")
        # the probe of wait_unix (no header: 400) and the session above
        assert wait_for(lambda: os.path.exists(path)
                        and "192.0.2.9" in open(path).read()), path
        lines[name] = [ln for ln in open(path).read().splitlines() if "192.0.2.9" in ln]
    assert lines == {"t": ["192.0.2.9 192.0.2.9"], "u": ["unix: 192.0.2.9"]}, lines
