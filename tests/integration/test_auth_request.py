"""auth_request and auth_request_set (issue 15): a subrequest to an auth service (a
Python server here) decides each request: 2xx goes on, 401 (with the service's
WWW-Authenticate) and 403 are the answer, anything else is 500 — the service down or
timing out included.  auth_request_set reads the subrequest's $upstream_* variables.
It runs in the access phase: after limit_req/limit_conn, with allow/deny (`satisfy`).
The differential case runs the same config and script on Debian's nginx."""
import http.server
import json
import os
import socketserver
import threading
import time

import test_nginx_diff
import zg
from zg import Skip, Upstream, Zonegate, free_port


class _AuthHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        srv = self.server
        tok = self.headers.get("X-Token", "")
        with srv.lock:
            srv.seen.append({"method": self.command, "path": self.path,
                             "uri": self.headers.get("X-Original-URI"),
                             "length": self.headers.get("Content-Length"),
                             "token": tok, "port": self.client_address[1],
                             "headers": [(k.lower(), v) for k, v in self.headers.items()]})
        if tok == "slow":
            time.sleep(3)
        code, extra = {
            "good": (200, {"X-User": "alice"}),
            "drop": (200, {"X-User": "dropper"}),
            "nocontent": (204, {"X-User": "bob"}),
            "bad": (401, {"WWW-Authenticate": 'Bearer realm="api"'}),
            "forbid": (403, {}),
            "moved": (302, {"Location": "/login"}),
            "broken": (500, {}),
        }.get(tok, (401, {"WWW-Authenticate": 'Bearer realm="api"'}))
        body = b"auth says %d" % code if code != 204 else b""
        self.send_response(code)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("X-Seen-Method", self.command)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if tok == "drop":
            self.close_connection = True  # closes after answering, without saying so

    do_POST = do_HEAD = do_PUT = do_GET


class _Threaded(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client (the proxy) that gave up on a slow answer


class AuthService:
    def __init__(self):
        self.port = free_port()
        self.srv = _Threaded(("127.0.0.1", self.port), _AuthHandler)
        self.srv.lock = threading.Lock()
        self.srv.seen = []
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        zg.STOPS.append(self.stop)

    @property
    def seen(self):
        with self.srv.lock:
            return list(self.srv.seen)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


CONF = """
    limit_req_zone $http_x_key zone=ar:1m rate=1r/m;
    upstream authsvc {{ server 127.0.0.1:{aport}; }}
    upstream authka {{ server 127.0.0.1:{aport}; keepalive 2; }}
    server {{
        listen 127.0.0.1:{port};
        auth_request /auth;
        auth_request_set $user $upstream_http_x_user;
        auth_request_set $ast "$upstream_status $upstream_http_x_seen_method";
        add_header X-Auth $ast always;
        auth_request_set $aaddr $upstream_addr;
        add_header X-Auth-Addr $aaddr always;
        location = /auth {{
            internal;
            proxy_pass http://authsvc/check;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_read_timeout 1s;
        }}
        location = /auth-down {{ internal; proxy_pass http://127.0.0.1:{dead}/; }}
        location = /auth-204 {{ internal; return 204; }}
        location / {{ proxy_set_header X-User $user; proxy_pass http://{up}; }}
        location /open/ {{ auth_request off; proxy_pass http://{up}; }}
        location /down/ {{ auth_request /auth-down; proxy_pass http://{up}; }}
        location /local/ {{ auth_request /auth-204; proxy_pass http://{up}; }}
        location /any/ {{
            satisfy any; allow 127.0.0.2; deny all;
            proxy_set_header X-User $user; proxy_pass http://{up};
        }}
        location /all/ {{ deny all; proxy_pass http://{up}; }}
        location /lim/ {{ limit_req zone=ar; proxy_pass http://{up}; }}
        location = /auth-ka {{ internal; proxy_pass http://authka/check; }}
        location /ka/ {{ auth_request /auth-ka; proxy_pass http://{up}; }}
        location /ep/ {{ error_page 401 = @login; error_page 403 /denied; proxy_pass http://{up}; }}
        location @login {{ return 302 http://login.example/; }}
        location = /denied {{ auth_request off; return 200 "denied page"; }}
    }}
"""


def _start(workers=2):
    auth, up = AuthService(), Upstream("app")
    port, dead = free_port(), free_port()
    z = Zonegate("worker_processes %d;\nhttp {{\n" % workers + CONF + "}}\n",
                 wait_ports=[port], port=port, aport=auth.port, up=up.addr, dead=dead)
    return auth, up, z, port


def _req(port, path, token=None, method="GET", body=None, key=None):
    h = {}
    if token is not None:
        h["X-Token"] = token
    if key is not None:
        h["X-Key"] = key
    st, hd, b = zg.request(port, method, path, headers=h, body=body)
    return st, hd, b


def _echo_user(b):
    info = json.loads(b)
    return dict((k.lower(), v) for k, v in info["headers"]).get("x-user"), info


def test_auth_request_decides():
    auth, up, z, port = _start()
    # 2xx: the request goes on, with what auth_request_set took from the answer
    st, h, b = _req(port, "/echo/x?a=1", "good")
    assert st == 200, (st, b)
    user, info = _echo_user(b)
    assert user == "alice" and info["path"] == "/echo/x?a=1"
    assert h.get("x-auth") == "200 GET", h
    assert h.get("x-auth-addr") == "127.0.0.1:%d" % auth.port, h
    st, _, b = _req(port, "/echo/y", "nocontent")
    assert st == 200 and _echo_user(b)[0] == "bob"
    # the subrequest: GET of the location's URI, the original headers, no body
    seen = auth.seen
    assert [s["path"] for s in seen] == ["/check", "/check"], seen
    assert seen[0]["uri"] == "/echo/x?a=1" and seen[0]["method"] == "GET"
    st, _, b = _req(port, "/echo/post", "good", method="POST", body=b"x" * 1000)
    assert st == 200 and json.loads(b)["length"] == 1000
    # a body larger than what is read with the head waits in the socket meanwhile
    st, _, b = _req(port, "/echo/big", "good", method="POST", body=b"z" * 300000)
    assert st == 200 and json.loads(b)["length"] == 300000
    assert auth.seen[-1]["length"] is None  # no body, no Content-Length to the service
    # 401 with the service's WWW-Authenticate; 403
    st, h, b = _req(port, "/echo/z", "bad")
    assert st == 401 and h.get("www-authenticate") == 'Bearer realm="api"', (st, h)
    assert h.get("x-auth") == "401 GET"
    st, h, _ = _req(port, "/echo/z", "forbid")
    assert st == 403 and "www-authenticate" not in h
    # anything else: 500
    for tok in ("moved", "broken"):
        st, h, _ = _req(port, "/echo/z", tok)
        assert st == 500, (tok, st)
    assert "auth request unexpected status: 302" in z.error_log()
    # the app saw only the allowed requests
    assert up.count() == 4
    # auth_request off; an auth location answering by itself (return 204)
    n = len(auth.seen)
    assert _req(port, "/open/echo", "bad")[0] == 200
    assert _req(port, "/local/echo", "bad")[0] == 200
    assert len(auth.seen) == n


HDR_CONF = """
worker_processes 1;
http {{
    upstream authsvc {{ server 127.0.0.1:{aport}; }}
    server {{
        listen 127.0.0.1:{port};
        location = /auth-on {{
            internal;
            proxy_pass http://authsvc/check;
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Extra "set";
        }}
        location = /auth-off {{
            internal;
            proxy_pass http://authsvc/check;
            proxy_pass_request_headers off;
            proxy_set_header X-Token $http_x_token;
            proxy_set_header X-Original-URI $request_uri;
        }}
        location = /auth-bare {{
            internal;
            proxy_pass http://authsvc/check;
            proxy_pass_request_headers off;
        }}
        location /on/ {{ auth_request /auth-on; proxy_pass http://{up}; }}
        location /off/ {{ auth_request /auth-off; proxy_pass http://{up}; }}
        location /bare/ {{ auth_request /auth-bare; proxy_pass http://{up}; }}
    }}
}}
"""


def test_auth_request_pass_request_headers_and_set_header():
    """the auth location's proxy_set_header, and its proxy_pass_request_headers off:
    then the service gets only what proxy_set_header sets, as nginx"""
    auth, up = AuthService(), Upstream("app")
    port = free_port()
    z = Zonegate(HDR_CONF, wait_ports=[port], port=port, aport=auth.port, up=up.addr)
    hdrs = {"X-Token": "good", "X-Other": "o", "X-Extra": "client", "User-Agent": "ua/1"}
    try:
        def sent(path):
            n = len(auth.seen)
            st, _, _ = zg.request(port, "GET", path, headers=hdrs)
            got = auth.seen[n:]
            assert len(got) == 1, got
            names = [k for k, _ in got[0]["headers"]]
            return st, dict(got[0]["headers"]), names

        # on (the default): the client's headers, proxy_set_header's replacing theirs
        st, h, names = sent("/on/echo?a=1")
        assert st == 200, (st, h)
        assert h["x-token"] == "good" and h["x-other"] == "o" and h["user-agent"] == "ua/1", h
        assert h["x-original-uri"] == "/on/echo?a=1", h
        assert h["x-extra"] == "set" and names.count("x-extra") == 1, names
        # off: only what proxy_set_header sets (and Host of the upstream)
        st, h, names = sent("/off/echo?b=2")
        assert st == 200, (st, h)
        assert h["x-token"] == "good" and h["x-original-uri"] == "/off/echo?b=2", h
        for name in ("x-other", "x-extra", "user-agent", "accept-encoding"):
            assert name not in h, (name, h)
        assert h["host"] == "authsvc", h
        assert len(names) == len(set(names)), names
        # off and nothing set: the token stays behind, the service says 401
        st, h, names = sent("/bare/echo")
        assert st == 401, st
        assert "x-token" not in h and "x-other" not in h and "user-agent" not in h, h
        assert up.count() == 2, up.count()
    finally:
        z.stop()
        up.stop()
        auth.stop()


def test_auth_service_down_or_slow_is_500():
    auth, up, z, port = _start()
    st, _, _ = _req(port, "/down/echo", "good")
    assert st == 500
    assert "connect() failed" in z.error_log()
    t0 = time.time()
    st, h, _ = _req(port, "/echo/slow", "slow")
    assert st == 500 and h.get("x-auth") == "504 ", (st, h)
    assert "upstream timed out" in z.error_log()
    assert up.count() == 0
    # the service stopped: 500 too, and good requests work again once it is back
    auth.stop()
    assert _req(port, "/echo/a", "good")[0] == 500
    assert time.time() - t0 < 30


def test_auth_request_phase_order():
    auth, up, z, port = _start()
    # deny all (satisfy all): refused before the subrequest
    assert _req(port, "/all/echo", "good")[0] == 403
    assert auth.seen == []
    # satisfy any: allow/deny refuses, the auth service decides
    st, h, b = _req(port, "/any/echo", "good")
    assert st == 200 and h.get("x-auth") == "200 GET" and b == b"ok app", (st, h, b)
    assert _req(port, "/any/echo", "bad")[0] == 401
    assert _req(port, "/any/echo", "forbid")[0] == 403
    # limit_req runs first: a refused request never reaches the auth service
    n = len(auth.seen)
    assert _req(port, "/lim/echo", "good", key="k")[0] == 200
    assert _req(port, "/lim/echo", "good", key="k")[0] == 503
    assert len(auth.seen) == n + 1


def test_auth_request_keepalive():
    """upstream keepalive: the subrequests of a worker share a connection; one the
    service closed meanwhile is replaced without failing the request"""
    auth, up, z, port = _start(workers=1)
    for _ in range(5):
        assert _req(port, "/ka/x", "good")[0] == 200
    assert len({a["port"] for a in auth.seen}) == 1, auth.seen
    n = len(auth.seen)
    for _ in range(3):  # no keepalive: a connection each
        assert _req(port, "/echo/x", "good")[0] == 200
    assert len({a["port"] for a in auth.seen[n:]}) == 3
    for tok in ("drop", "good", "drop", "drop", "good", "good"):
        st, h, _ = _req(port, "/ka/x", tok)
        assert st == 200 and h.get("x-auth") == "200 GET", (tok, st, h)
    assert "prematurely" not in z.error_log()
    assert z.stop() == 0


def test_client_gone_while_waiting():
    """the client closes while the subrequest waits: the answer goes nowhere and the
    worker serves on; a stop while a subrequest is in flight drops it cleanly"""
    auth, up, z, port = _start(workers=1)
    import socket
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /echo/g HTTP/1.1\r\nHost: x\r\nX-Token: slow\r\n\r\n")
        s.close()
    assert zg.wait_for(lambda: len([a for a in auth.seen if a["token"] == "slow"]) == 3)
    assert _req(port, "/echo/ok", "good")[0] == 200
    assert len(z.workers()) == 1
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /echo/g HTTP/1.1\r\nHost: x\r\nX-Token: slow\r\n\r\n")
    assert zg.wait_for(lambda: len([a for a in auth.seen if a["token"] == "slow"]) == 4)
    assert z.stop() == 0
    s.close()
    assert "signal" not in z.error_log() and "alert" not in z.error_log(), z.error_log()


def test_auth_request_config():
    for conf, msg in [
        ("http {{ server {{ listen 127.0.0.1:1; auth_request; }} }}", "invalid number of arguments"),
        ("http {{ server {{ listen 127.0.0.1:1; auth_request x; }} }}", 'invalid value "x"'),
        ("http {{ server {{ listen 127.0.0.1:1; auth_request_set user x; }} }}",
         'invalid variable name "user"'),
        ("http {{ server {{ listen 127.0.0.1:1; auth_request_set $uri x; }} }}", "built in"),
        ("http {{ server {{ listen 127.0.0.1:1; auth_request /a; auth_request /b; }} }}",
         "is duplicate"),
    ]:
        rc, out, _ = zg.zonegate_t(conf)
        assert rc == 1 and msg in out, (conf, out)


def test_auth_request_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    auth, up = AuthService(), Upstream("app")
    zport, nport, dead = free_port(), free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + CONF + "}}\n", wait_ports=[zport],
                 port=zport, aport=auth.port, up=up.addr, dead=dead)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + CONF + "}}\n", nport, aport=auth.port, up=up.addr, dead=dead)
    try:
        script = [
            ("/echo/a?x=1", "good", "GET", None), ("/echo/b", "nocontent", "GET", None),
            ("/echo/c", "bad", "GET", None), ("/echo/d", "forbid", "GET", None),
            ("/echo/e", "moved", "GET", None), ("/echo/f", "broken", "GET", None),
            ("/echo/p", "good", "POST", b"y" * 100), ("/echo/h", "good", "HEAD", None),
            ("/echo/q", "good", "POST", b"w" * 200000),
            ("/open/echo", "bad", "GET", None), ("/local/echo", "bad", "GET", None),
            ("/down/echo", "good", "GET", None), ("/all/echo", "good", "GET", None),
            ("/any/echo", "good", "GET", None), ("/any/echo", "bad", "GET", None),
            ("/any/echo", "forbid", "GET", None), ("/auth", "good", "GET", None),
            ("/ep/x", "bad", "GET", None), ("/ep/x", "forbid", "GET", None),
            ("/ep/x", "good", "GET", None),
        ]

        def summary(port, path, tok, method, body):
            st, h, b = _req(port, path, tok, method, body)
            user = _echo_user(b)[0] if st == 200 and b.startswith(b"{") else None
            return (st, h.get("www-authenticate"), h.get("x-auth"), h.get("x-auth-addr"),
                    h.get("location"), b if b in (b"denied page",) else None, user)

        for step in script:
            before = len(auth.seen)
            a = summary(zport, *step)
            za = [(s["method"], s["path"], s["uri"], s["length"]) for s in auth.seen[before:]]
            before = len(auth.seen)
            b = summary(nport, *step)
            na = [(s["method"], s["path"], s["uri"], s["length"]) for s in auth.seen[before:]]
            assert a == b, (step, a, b)
            assert za == na, (step, za, na)
    finally:
        z.stop()
        n.stop()
