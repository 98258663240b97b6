"""Upstream request and response shaping (issue 15): proxy_next_upstream's status
conditions and non_idempotent, the headers zonegate hides, passes and sets on proxied
answers (Server, Date, proxy_hide_header, proxy_pass_header, server_tokens), the
request it sends up (proxy_http_version, proxy_method, proxy_set_body,
proxy_pass_request_headers/body); each compared with Debian's nginx."""
import http.client
import json
import os

import test_nginx_diff
from zg import Skip, Upstream, Zonegate, free_port, raw, request, wait_for

NEXT = """
    upstream two {{ server {a} max_fails=0; server {b} max_fails=0; }}
    upstream mf {{ zone mf 64k; server {a}; server {b}; }}
    server {{
        listen 127.0.0.1:{port};
        location /plain/ {{ proxy_pass http://two/; }}
        location /n/ {{
            proxy_next_upstream error timeout http_500 http_403 http_404 http_429;
            proxy_pass http://two/;
        }}
        location /mf/ {{
            proxy_next_upstream error http_500 http_403 http_404;
            proxy_pass http://mf/;
        }}
        location /mfplain/ {{ proxy_pass http://mf/; }}
        location /ni/ {{
            proxy_next_upstream error http_500 non_idempotent;
            proxy_pass http://two/;
        }}
    }}
"""


def _nginx_or_skip():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)


def _nginx(body, port, **kw):
    return test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                                 + body + "}}\n", port, **kw)


def _zonegate(body, port, **kw):
    return Zonegate("worker_processes 1;\nhttp {{\n" + body + "}}\n", wait_ports=[port],
                    port=port, **kw)


def _pair(port, method, path, n=2, body=None):
    """n requests on one keep-alive connection: [(status, body)]"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out = []
    try:
        for _ in range(n):
            c.request(method, path, body=body)
            r = c.getresponse()
            out.append((r.status, r.read()))
    finally:
        c.close()
    return out


def _next_script(port):
    out = []
    for code in (500, 403, 404, 429):
        path = "/status?code=%d&on=a" % code
        # without the condition one of two requests (round robin) gets a's answer
        out.append(("plain %d" % code, sorted(s for s, _ in _pair(port, "GET", "/plain" + path))))
        # with it, b answers both
        out.append(("next %d" % code, _pair(port, "GET", "/n" + path)))
    # both peers answer 500: the last one's answer is passed on, not an error page
    got = _pair(port, "GET", "/n/status?code=500")
    out.append(("both 500", [(s, b[:7]) for s, b in got]))
    # POST is not idempotent: not retried once sent, unless non_idempotent
    out.append(("post", sorted(s for s, _ in _pair(port, "POST", "/n/status?code=500&on=a",
                                                    body=b"x"))))
    out.append(("post ni", _pair(port, "POST", "/ni/status?code=500&on=a", body=b"x")))
    # PUT is idempotent
    out.append(("put", _pair(port, "PUT", "/n/status?code=500&on=a", body=b"x")))
    # 403 and 404 are not the peer's failure (max_fails=1), 500 is
    for code in (403, 404, 500):
        _pair(port, "GET", "/mf/status?code=%d&on=a" % code)
        out.append(("mf %d" % code, sorted(bd for _, bd in _pair(port, "GET", "/mfplain/"))))
    return out


def test_next_upstream_statuses_and_non_idempotent():
    a, b = Upstream("a"), Upstream("b")
    port = free_port()
    z = _zonegate(NEXT, port, a=a.addr, b=b.addr)
    try:
        res = dict(_next_script(port))
        for code in (500, 403, 404, 429):
            assert res["plain %d" % code] == [200, code], res
            assert res["next %d" % code] == [(200, b"status b")] * 2, res
        assert res["both 500"] == [(500, b"status ")] * 2, res
        assert res["post"] == [200, 500], res
        assert res["post ni"] == [(200, b"status b")] * 2, res
        assert res["put"] == [(200, b"status b")] * 2, res
        assert res["mf 403"] == res["mf 404"] == [b"ok a", b"ok b"], res
        assert res["mf 500"] == [b"ok b", b"ok b"], res
    finally:
        z.stop()
        a.stop()
        b.stop()


def test_next_upstream_same_as_nginx():
    _nginx_or_skip()
    a, b = Upstream("a"), Upstream("b")
    zport, nport = free_port(), free_port()
    z = _zonegate(NEXT, zport, a=a.addr, b=b.addr)
    n = _nginx(NEXT, nport, a=a.addr, b=b.addr)
    try:
        assert _next_script(zport) == _next_script(nport)
    finally:
        z.stop()
        n.stop()
        a.stop()
        b.stop()


SHAPE = """
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        location / {{ proxy_pass http://app; }}
        location /pass/ {{
            proxy_pass http://app/;
            proxy_pass_header Server;
            proxy_pass_header X-Accel-Expires;
            proxy_hide_header X-Upstream;
        }}
        location /red/ {{ proxy_pass http://app/; }}
        location /redoff/ {{ proxy_pass http://app/; proxy_redirect off; }}
        location /red2/ {{
            proxy_pass http://app/;
            proxy_redirect http://app/a/ /x/;
            proxy_redirect http://other/ http://$host/o/;
            proxy_redirect default;
        }}
        location /rx/ {{
            proxy_pass http://app/;
            proxy_redirect ~^http://([^/]+)/(.*)$ /rx/$2?h=$1;
            proxy_redirect ~*^HTTPS://x(.*) $1;
        }}
        location /tok/ {{ proxy_pass http://app/; server_tokens off; }}
        location /m/ {{ proxy_pass http://app/; proxy_method PUT; proxy_set_body "b=$arg_x"; }}
        location /v10/ {{ proxy_pass http://app/; proxy_http_version 1.0; }}
        location /head/ {{ proxy_pass http://app/; proxy_method HEAD; }}
        location /nobody/ {{
            proxy_pass http://app/;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }}
        location /nohdr/ {{ proxy_pass http://app/; proxy_pass_request_headers off; }}
        location = /local {{ return 200 "x"; }}
        location = /localoff {{ server_tokens off; return 404; }}
        location = /local404 {{ return 404; }}
        location /ie/ {{
            proxy_pass http://app/;
            proxy_intercept_errors on;
            error_page 404 =200 /local;
            error_page 403 /localoff;
        }}
    }}
"""

# what the upstream saw that must be the same: zonegate adds X-Forwarded-For and
# X-Real-IP, and sends the client's Host where nginx sends $proxy_host
_UP_SKIP = ("host", "x-forwarded-for", "x-real-ip")


def _norm(port, st, h, body):
    server = h.get("server", "")
    for name in ("zonegate/", "nginx/"):
        if server.startswith(name):
            server = "TOKEN/VERSION"
    server = {"zonegate": "TOKEN", "nginx": "TOKEN"}.get(server, server)
    loc = h.get("location", "").replace(":%d" % port, ":PORT")
    out = {"status": st, "server": server, "date": "date" in h, "location": loc,
           "refresh": h.get("refresh", "").replace(":%d" % port, ":PORT")}
    for k in ("x-pad", "x-accel-expires", "x-accel-buffering", "x-upstream", "x-other"):
        out[k] = h.get(k)
    if body[:1] == b"{":
        e = json.loads(body)
        out["up"] = (e["method"], e["path"], e["version"], e["length"], e["sha256"],
                     sorted((k.lower(), v) for k, v in e["headers"]
                            if k.lower() not in _UP_SKIP))
    else:
        # the signature of error pages follows server_tokens
        for name in (b"zonegate/", b"nginx/"):
            i = body.find(b"<center>" + name)
            if i >= 0:
                body = body[:i] + b"<center>TOKEN/VERSION</center>" + \
                    body[body.index(b"</center>", i) + 9:]
        out["body"] = body.replace(b"<center>zonegate</center>", b"<center>TOKEN</center>") \
            .replace(b"<center>nginx</center>", b"<center>TOKEN</center>")
    return out


SHAPE_REQS = [
    ("GET", "/echo", None, {"X-Test": "1"}),
    ("GET", "/hdr?X-Pad=1&X-Accel-Expires=3&X-Accel-Buffering=yes&X-Other=o", None, {}),
    ("GET", "/pass/hdr?X-Pad=1&X-Accel-Expires=3&X-Other=o", None, {}),
    ("GET", "/hdr?code=302&Location=http://app/z", None, {}),
    ("GET", "/hdr?code=302&Location=/rel", None, {}),
    ("GET", "/red/hdr?code=301&Location=http://app/a/b", None, {}),
    ("GET", "/red/hdr?code=200&Refresh=5;%20url=http://app/a/r", None, {}),
    ("GET", "/redoff/hdr?code=301&Location=http://app/a/b", None, {}),
    ("GET", "/red2/hdr?code=302&Location=http://app/a/b", None, {}),
    ("GET", "/red2/hdr?code=302&Location=http://other/c", None, {}),
    ("GET", "/red2/hdr?code=302&Location=http://app/c", None, {}),
    ("GET", "/rx/hdr?code=302&Location=http://app/a/b", None, {}),
    ("GET", "/rx/hdr?code=302&Location=https://X/q", None, {}),
    ("GET", "/rx/hdr?code=302&Location=ftp://app/n", None, {}),
    ("GET", "/rx/hdr?code=200&Refresh=0;url=http://up/r", None, {}),
    ("GET", "/tok/hdr", None, {}),
    ("POST", "/m/echo?x=5", b"client body", {}),
    ("GET", "/m/echo?x=7", None, {}),
    ("GET", "/v10/echo", None, {"X-Test": "2"}),
    ("POST", "/v10/echo", b"0123456789", {}),
    ("POST", "/nobody/echo", b"0123456789", {}),
    ("GET", "/nohdr/echo", None, {"X-Test": "3"}),
    ("GET", "/local", None, {}),
    ("GET", "/localoff", None, {}),
    ("GET", "/local404", None, {}),
    ("GET", "/missing-upstream-404?x", None, {}),
    # proxy_intercept_errors with error_page: 404 and 403 answered by the pages, 500
    # (no error_page) passed on
    ("GET", "/ie/status?code=404", None, {}),
    ("GET", "/ie/status?code=403", None, {}),
    ("GET", "/ie/status?code=500", None, {}),
]


def _shape_script(port):
    out = []
    for method, path, body, headers in SHAPE_REQS:
        st, h, b = request(port, method, path, headers=headers, body=body)
        out.append((method, path, _norm(port, st, h, b)))
    # proxy_method HEAD: the upstream's answer has no body (its Content-Length passed
    # on, as nginx does), the request is done and the next one on the connection runs
    got, closed = raw(port, b"GET /head/big?n=10 HTTP/1.1\r\nHost: x\r\n\r\n"
                            b"GET /local HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    heads = [x.split(b"\r\n")[0] for x in got.split(b"\r\n\r\n")[:2]]
    out.append(("head", heads, b"Content-Length: 10" in got, got.endswith(b"\r\n\r\nx"),
                closed))
    return out


def test_shape_headers_redirects_and_request():
    u = Upstream("a")
    port = free_port()
    z = _zonegate(SHAPE, port, up=u.addr)
    try:
        script = _shape_script(port)
        res = {x[:2]: x[2] for x in script[:-1]}
        head = script[-1]
        r = res[("GET", "/echo")]
        assert r["server"] == "TOKEN/VERSION" and r["date"] and r["x-upstream"] == "a", r
        assert ("x-test", "1") in r["up"][5] and r["up"][2] == "HTTP/1.1", r
        # nginx's default hidden set; X-Other passes
        r = res[("GET", "/hdr?X-Pad=1&X-Accel-Expires=3&X-Accel-Buffering=yes&X-Other=o")]
        assert r["x-pad"] is None and r["x-accel-expires"] is None, r
        assert r["x-accel-buffering"] is None and r["x-other"] == "o", r
        # proxy_pass_header, proxy_hide_header
        r = res[("GET", "/pass/hdr?X-Pad=1&X-Accel-Expires=3&X-Other=o")]
        assert r["server"].startswith("upstream") and r["x-accel-expires"] == "3", r
        assert r["x-pad"] is None and r["x-upstream"] is None, r
        # proxy_redirect default (made absolute as nginx's absolute_redirect), off, rules
        assert res[("GET", "/hdr?code=302&Location=http://app/z")]["location"] == \
            "http://127.0.0.1:PORT/z"
        assert res[("GET", "/hdr?code=302&Location=/rel")]["location"] == "/rel"
        assert res[("GET", "/red/hdr?code=301&Location=http://app/a/b")]["location"] == \
            "http://127.0.0.1:PORT/red/a/b"
        assert res[("GET", "/red/hdr?code=200&Refresh=5;%20url=http://app/a/r")]["refresh"] \
            == "5; url=/red/a/r"
        assert res[("GET", "/redoff/hdr?code=301&Location=http://app/a/b")]["location"] == \
            "http://app/a/b"
        assert res[("GET", "/red2/hdr?code=302&Location=http://app/a/b")]["location"] == \
            "http://127.0.0.1:PORT/x/b"
        assert res[("GET", "/red2/hdr?code=302&Location=http://other/c")]["location"] == \
            "http://127.0.0.1/o/c"
        assert res[("GET", "/red2/hdr?code=302&Location=http://app/c")]["location"] == \
            "http://127.0.0.1:PORT/red2/c"
        # regular expressions: TO replaces the rest of the value, with the captures
        assert res[("GET", "/rx/hdr?code=302&Location=http://app/a/b")]["location"] == \
            "http://127.0.0.1:PORT/rx/a/b?h=app"
        assert res[("GET", "/rx/hdr?code=302&Location=https://X/q")]["location"] == \
            "http://127.0.0.1:PORT/q"
        assert res[("GET", "/rx/hdr?code=302&Location=ftp://app/n")]["location"] == \
            "ftp://app/n"
        assert res[("GET", "/rx/hdr?code=200&Refresh=0;url=http://up/r")]["refresh"] == \
            "0;url=/rx/r?h=up"
        # server_tokens
        assert res[("GET", "/tok/hdr")]["server"] == "TOKEN"
        assert res[("GET", "/local")]["server"] == "TOKEN/VERSION"
        assert res[("GET", "/localoff")]["server"] == "TOKEN"
        assert b"<hr><center>TOKEN</center>" in res[("GET", "/localoff")]["body"]
        assert b"<hr><center>TOKEN/VERSION</center>" in res[("GET", "/local404")]["body"]
        # proxy_method, proxy_set_body (with variables)
        r = res[("POST", "/m/echo?x=5")]["up"]
        assert r[0] == "PUT" and r[3] == 3 and ("content-length", "3") in r[5], r
        # proxy_http_version 1.0: no keep-alive up
        r = res[("GET", "/v10/echo")]["up"]
        assert r[2] == "HTTP/1.0" and ("connection", "close") in r[5], r
        # proxy_pass_request_body off, proxy_pass_request_headers off
        r = res[("POST", "/nobody/echo")]["up"]
        assert r[3] == 0 and not any(k == "content-length" for k, _ in r[5]), r
        r = res[("GET", "/nohdr/echo")]["up"]
        assert not any(k == "x-test" for k, _ in r[5]), r
        assert res[("GET", "/ie/status?code=404")]["body"] == b"x"
        assert res[("GET", "/ie/status?code=403")]["status"] == 404
        assert res[("GET", "/ie/status?code=500")]["status"] == 500
        assert head == ("head", [b"HTTP/1.1 200 OK"] * 2, True, True, True), head
        # HTTP/1.0 up and a chunked body: 411 (zonegate streams bodies)
        out, _ = raw(port, b"POST /v10/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                           b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 411"), out
    finally:
        z.stop()
        u.stop()


def test_shape_same_as_nginx():
    _nginx_or_skip()
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = _zonegate(SHAPE, zport, up=u.addr)
    n = _nginx(SHAPE, nport, up=u.addr)
    try:
        a, b = _shape_script(zport), _shape_script(nport)
        for x, y in zip(a, b):
            assert x == y, (x, y)
    finally:
        z.stop()
        n.stop()
        u.stop()


KEEP = """
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        keepalive_timeout 30s 7s;
        keepalive_requests 3;
        location / {{ proxy_pass http://app; }}
        location = /local {{ return 200 "x"; }}
        location /nohdr/ {{ keepalive_timeout 30s; proxy_pass http://app/; }}
        location /many/ {{ keepalive_requests 5; proxy_pass http://app/; }}
    }}
"""


def _keep_script(port):
    """[(path, status, Connection, Keep-Alive)] on one connection until it closes"""
    out = []
    for path in ("/", "/local", "/nohdr/", "/many/"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for _ in range(6):
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                out.append((path, r.status, r.getheader("Connection"),
                            r.getheader("Keep-Alive")))
                if (r.getheader("Connection") or "").lower() == "close":
                    break
        finally:
            c.close()
    return out


def test_keepalive_header_and_requests():
    u = Upstream("a")
    port = free_port()
    z = _zonegate(KEEP, port, up=u.addr)
    try:
        res = _keep_script(port)
        by = {}
        for path, st, conn, ka in res:
            by.setdefault(path, []).append((st, conn, ka))
        assert by["/"] == [(200, "keep-alive", "timeout=7")] * 2 + [(200, "close", None)], by
        assert by["/local"] == by["/"], by
        # as nginx: a keepalive_timeout of one argument keeps the inherited header time
        assert by["/nohdr/"] == by["/"], by
        assert len(by["/many/"]) == 5 and by["/many/"][-1] == (200, "close", None), by
        # the connection is closed after the last one
        out, closed = raw(port, b"GET /local HTTP/1.1\r\nHost: x\r\n\r\n" * 4)
        assert out.count(b"HTTP/1.1 200") == 3 and closed, out
        # an answer that ends with the connection (chunked to an HTTP/1.0 client) has no
        # Keep-Alive header
        out, closed = raw(port, b"GET /big?n=100&chunked=1 HTTP/1.0\r\nConnection: keep-alive"
                                b"\r\n\r\n")
        head = out.split(b"\r\n\r\n")[0]
        assert b"Connection: close" in head and b"Keep-Alive" not in head and closed, out
    finally:
        z.stop()
        u.stop()


def test_keepalive_same_as_nginx():
    _nginx_or_skip()
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = _zonegate(KEEP, zport, up=u.addr)
    n = _nginx(KEEP, nport, up=u.addr)
    try:
        assert _keep_script(zport) == _keep_script(nport)
    finally:
        z.stop()
        n.stop()
        u.stop()


LOGS = """
    map $status $loggable {{ ~^[23] 0; default 1; }}
    log_format s '$uri $status';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/held.log s buffer=64k flush=1h;
        location / {{ proxy_pass http://app; }}
        location /if/ {{ access_log {dir}/if.log s if=$loggable; proxy_pass http://app/; }}
        location /small/ {{ access_log {dir}/small.log s buffer=1k flush=1h; return 200; }}
        location /soon/ {{ access_log {dir}/soon.log s buffer=64k flush=1s; return 200; }}
    }}
"""


def _lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return None


def _logs_script(port):
    for i in range(5):
        request(port, "GET", "/p%d" % i)
    for code in (200, 302, 404, 500):
        request(port, "GET", "/if/status?code=%d" % code)


def test_access_log_buffer_flush_if_reopen_and_exit():
    import signal
    u = Upstream("a")
    port = free_port()
    z = _zonegate(LOGS, port, up=u.addr)
    d = z.dir
    try:
        _logs_script(port)
        # buffered with flush=1h: nothing written yet (the files exist, opened empty)
        assert _lines(d + "/held.log") == [], _lines(d + "/held.log")
        # if=: 2xx and 3xx are not logged; that log has no buffer
        # (a line is written as its request is finalized, maybe after the answer)
        assert wait_for(lambda: _lines(d + "/if.log") == ["/if/status 404", "/if/status 500"],
                        10), _lines(d + "/if.log")
        # flush=1s: written within the flush time, without more traffic
        request(port, "GET", "/soon/a")
        assert wait_for(lambda: _lines(d + "/soon.log") == ["/soon/a 200"], 10)
        # a full buffer is written first, whole lines only
        for i in range(100):
            request(port, "GET", "/small/%03d" % i)
        got = _lines(d + "/small.log")
        assert got and len(got) < 100 and got == ["/small/%03d 200" % i
                                                  for i in range(len(got))], got
        # reopen (USR1): the buffer goes to the old file first
        os.rename(d + "/held.log", d + "/held.log.1")
        z.kill(signal.SIGUSR1)
        want = ["/p%d 200" % i for i in range(5)]
        assert wait_for(lambda: _lines(d + "/held.log.1") == want, 10), \
            _lines(d + "/held.log.1")
        assert wait_for(lambda: _lines(d + "/held.log") == [], 10)
        request(port, "GET", "/after")
        # a graceful stop writes what is left
        assert z.stop(signal.SIGQUIT) == 0
        assert _lines(d + "/held.log") == ["/after 200"], _lines(d + "/held.log")
        assert len(_lines(d + "/small.log")) == 100
    finally:
        z.stop()
        u.stop()


def test_access_log_if_same_as_nginx():
    _nginx_or_skip()
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = _zonegate(LOGS, zport, up=u.addr)
    n = _nginx(LOGS, nport, up=u.addr)
    try:
        _logs_script(zport)
        _logs_script(nport)
        z.stop()
        n.stop()
        # written at exit; nginx runs two workers, each with its buffer: compare sorted
        for name in ("held.log", "if.log"):
            a, b = _lines(os.path.join(z.dir, name)), _lines(os.path.join(n.dir, name))
            assert a and sorted(a) == sorted(b), (name, a, b)
    finally:
        z.stop()
        n.stop()
        u.stop()


PROC = """
worker_processes 2;
worker_cpu_affinity {aff};
worker_shutdown_timeout 1s;
working_directory {wd};
worker_rlimit_core 12m;
events {{
    worker_connections 512;
    multi_accept on;
    accept_mutex off;
    accept_mutex_delay 100ms;
    worker_aio_requests 32;
    use epoll;
}}
http {{
    client_header_buffer_size 1k;
    types_hash_max_size 2048;
    server_names_hash_bucket_size 64;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; }}
    }}
}}
"""


def _proc_status(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    return None


def test_worker_affinity_rlimit_workdir_and_shutdown_timeout():
    import signal
    import socket
    import threading
    import tempfile
    if (os.cpu_count() or 1) < 2:
        raise Skip("needs two CPUs")
    u = Upstream("a")
    wd = tempfile.mkdtemp(prefix="zgwd-")
    os.chmod(wd, 0o755)  # the workers' user enters it
    for aff in ("01 10", "auto"):
        port = free_port()
        z = Zonegate(PROC, wait_ports=[port], port=port, up=u.addr, aff=aff, wd=wd)
        try:
            ws = z.wait_workers(2)

            def applied():
                # set by each worker as it starts: wait until both have
                for w in ws:
                    with open("/proc/%d/limits" % w) as f:
                        core = [ln for ln in f if ln.startswith("Max core file size")][0]
                    if (core.split()[4] != str(12 * 1024 * 1024)
                            or os.readlink("/proc/%d/cwd" % w) != os.path.realpath(wd)):
                        return None
                    # dumpable again after the user change: /proc/PID is the worker's
                    if os.getuid() == 0 and os.stat("/proc/%d/status" % w).st_uid == 0:
                        return None
                return sorted(_proc_status(w, "Cpus_allowed_list") for w in ws)
            assert wait_for(lambda: applied() == ["0", "1"], 10), (aff, applied())
        finally:
            z.stop()
    # graceful stop with a request held at the upstream: closed after 1s
    port = free_port()
    z = Zonegate(PROC, wait_ports=[port], port=port, up=u.addr, aff="auto", wd=wd)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET /slow?hold=q HTTP/1.1\r\nHost: x\r\n\r\n")
        u.wait_held("q", 1)
        z.kill(signal.SIGQUIT)
        # the master and its workers are gone while the upstream still holds it
        assert wait_for(lambda: z.proc.poll() is not None, 20), "still running"
        assert s.recv(100) == b""
        assert u.held("q") == 1
        assert "worker_shutdown_timeout: closing 1 connections" in z.error_log()
        s.close()
    finally:
        u.release("q")
        z.stop()
        u.stop()


def test_proc_directive_errors():
    from zg import zonegate_t
    for conf, err in [
        ("worker_cpu_affinity 012;\nhttp {{ }}\n", "invalid character \"012\""),
        ("worker_cpu_affinity auto 01 10;\nhttp {{ }}\n", "invalid number of arguments"),
        ("working_directory /nonexistent/zg;\nhttp {{ }}\n", "is not a directory"),
        ("events {{ multi_accept maybe; }}\nhttp {{ }}\n", "multi_accept"),
        ("events {{ worker_aio_requests 0; }}\nhttp {{ }}\n", "worker_aio_requests"),
    ]:
        rc, out, _ = zonegate_t(conf)
        assert rc == 1 and err in out, (conf, out)
    rc, out, _ = zonegate_t(PROC, port=free_port(), up="127.0.0.1:9", aff="auto", wd="/tmp")
    assert rc == 0, out


def test_worker_affinity_same_as_nginx():
    _nginx_or_skip()
    if (os.cpu_count() or 1) < 2:
        raise Skip("needs two CPUs")
    u = Upstream("a")
    body = "    upstream app {{ server {up}; }}\n    server {{ listen 127.0.0.1:{port}; }}\n"
    for aff in ("01 10", "10", "auto", "auto 10"):
        zport, nport = free_port(), free_port()
        z = Zonegate("worker_processes 2;\nworker_cpu_affinity %s;\nhttp {{\n%s}}\n"
                     % (aff, body), wait_ports=[zport], port=zport, up=u.addr)
        n = test_nginx_diff.Nginx("worker_cpu_affinity %s;\n" % aff + test_nginx_diff.NGINX_CONF
                                  .split("http {{")[0] + "http {{\n" + body + "}}\n", nport,
                                  up=u.addr)
        try:
            zw = z.wait_workers(2)
            nw = wait_for(lambda: [int(p) for p in os.listdir("/proc") if p.isdigit()
                                   and _ppid(int(p)) == n.proc.pid], 10)
            assert len(nw) == 2, nw

            def got():
                return [sorted(_proc_status(w, "Cpus_allowed_list") for w in ws)
                        for ws in (zw, nw)]
            # the workers bind themselves as they start: wait for the same answer
            assert wait_for(lambda: got()[0] == got()[1] and "0-1" not in got()[0], 10), \
                (aff, got())
        finally:
            z.stop()
            n.stop()
    u.stop()


def _ppid(pid):
    try:
        return int(_proc_status(pid, "PPid"))
    except (OSError, TypeError, ValueError):
        return -1


def test_stream_access_log_buffer_and_if():
    """the stream block's access_log takes buffer=, flush= and if= too"""
    import signal
    import socket
    from test_stream import TcpUpstream
    up = TcpUpstream("name", "n1")
    port = free_port()
    z = Zonegate("""worker_processes 1;
stream {{
    log_format s '$status $upstream_addr';
    upstream b {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_pass b;
        access_log {dir}/s.log s buffer=32k flush=1h if=$status;
    }}
}}
""", wait_ports=[port], port=port, up=up.addr)
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            assert s.recv(100) == b"n1"
            s.close()
        # the sessions end (and are logged) after their upstream closes: written at
        # the graceful stop, not before
        assert _lines(z.dir + "/s.log") == []
        assert z.stop(signal.SIGQUIT) == 0
        got = _lines(z.dir + "/s.log")  # with wait_port's own connection
        assert len(got) >= 3 and set(got) == {"200 %s" % up.addr}, got
    finally:
        z.stop()
        up.proc.kill()
