"""The response pipeline (header and body filters): a filter module sees proxied
and local answers, and the body, its length and its framing stay right; expires
is the first filter (nginx's headers module), compared with Debian's nginx."""
import calendar
import email.utils
import os

import test_nginx_diff
from zg import Skip, Upstream, Zonegate, free_port, raw, request, status_of

CONF = """
worker_processes 2;
http {{
    upstream app {{ server {up}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; expires 1h; }}
        location /mod/ {{ proxy_pass http://app/; expires modified 2h; }}
        location /epoch/ {{ proxy_pass http://app/; expires epoch; }}
        location /max/ {{ proxy_pass http://app/; expires max; }}
        location /neg/ {{ proxy_pass http://app/; expires -1; }}
        location /off/ {{ proxy_pass http://app/; expires off; }}
        location /plain/ {{ proxy_pass http://app/; }}
        location = /ret {{ expires 30m; return 200 "local"; }}
        location = /missing {{ expires 30m; return 404; }}
        location = /redir {{ expires 10m; return 302 /elsewhere; }}
    }}
}}
"""


def _start():
    u = Upstream("a")
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, up=u.addr)
    return u, z, port


def _epoch(http_date):
    return calendar.timegm(email.utils.parsedate(http_date))


def test_expires_on_proxied_answers():
    u, z, port = _start()
    try:
        st, h, body = request(port, "GET", "/big?n=5000")
        assert st == 200 and len(body) == 5000, (st, len(body))
        assert h["cache-control"] == "max-age=3600", h
        assert abs(_epoch(h["expires"]) - _epoch(h["date"]) - 3600) <= 1, h
        assert h["content-length"] == "5000", h
        # a chunked upstream answer stays chunked and whole
        st, h, body = request(port, "GET", "/big?n=200000&chunked=1")
        assert st == 200 and len(body) == 200000 and h.get("transfer-encoding") == "chunked", h
        # the upstream's own Cache-Control and Expires are replaced, not doubled
        out, _ = raw(port, b"GET /hdr?Cache-Control=private&Expires=0 HTTP/1.1\r\n"
                           b"Host: x\r\nConnection: close\r\n\r\n")
        head = out.split(b"\r\n\r\n", 1)[0].lower()
        assert head.count(b"cache-control:") == 1 and b"cache-control: max-age=3600" in head, out
        assert head.count(b"\r\nexpires:") == 1, out
        # not on statuses outside nginx's list
        st, h, _ = request(port, "GET", "/status?code=500")
        assert st == 500 and "expires" not in h and "cache-control" not in h, h
        st, h, _ = request(port, "GET", "/status?code=404")
        assert st == 404 and "expires" not in h, h
        # HEAD: the length of the GET, no body
        st, h, body = request(port, "HEAD", "/big?n=777")
        assert st == 200 and body == b"" and h["content-length"] == "777", h
        assert h["cache-control"] == "max-age=3600"
        # the kinds of time
        st, h, _ = request(port, "GET", "/epoch/")
        assert h["expires"] == "Thu, 01 Jan 1970 00:00:01 GMT" and h["cache-control"] == "no-cache"
        st, h, _ = request(port, "GET", "/max/")
        assert h["expires"] == "Thu, 31 Dec 2037 23:55:55 GMT"
        assert h["cache-control"] == "max-age=315360000"
        st, h, _ = request(port, "GET", "/neg/")
        assert h["cache-control"] == "no-cache", h
        st, h, _ = request(port, "GET", "/off/hdr?Cache-Control=private")
        assert h["cache-control"] == "private" and "expires" not in h, h
        st, h, _ = request(port, "GET", "/plain/")
        assert "expires" not in h and "cache-control" not in h, h
        # modified: from the upstream's Last-Modified
        lm = "Mon, 01 Jan 2024 00:00:00 GMT"
        st, h, _ = request(port, "GET", "/mod/hdr?Last-Modified=" + lm.replace(" ", "%20"))
        assert h["expires"] == "Mon, 01 Jan 2024 02:00:00 GMT", h
        assert h["cache-control"] == "no-cache", h  # long past
        st, h, _ = request(port, "GET", "/mod/")  # no Last-Modified: from now
        assert h["cache-control"] == "max-age=7200", h
    finally:
        z.stop()
        u.stop()


def test_expires_on_local_answers_and_http10():
    u, z, port = _start()
    try:
        st, h, body = request(port, "GET", "/ret")
        assert st == 200 and body == b"local" and h["cache-control"] == "max-age=1800", h
        assert h["content-length"] == "5" and h["server"] == "zonegate/0.1.0", h
        st, h, body = request(port, "GET", "/missing")
        assert st == 404 and b"404" in body and "expires" not in h, h
        st, h, _ = request(port, "GET", "/redir")
        assert st == 302 and h["location"].endswith("/elsewhere") and \
            h["cache-control"] == "max-age=600", h
        # an HTTP/1.0 client of a chunked upstream: no chunks, the body until close
        out, closed = raw(port, b"GET /big?n=3000&chunked=1 HTTP/1.0\r\n\r\n")
        head, body = out.split(b"\r\n\r\n", 1)
        assert status_of(out) == 200 and closed and len(body) == 3000, head
        assert b"chunked" not in head.lower() and b"max-age=3600" in head, head
        # keep-alive: two answers on one connection, the second after a filtered one
        out, _ = raw(port, b"GET /big?n=10 HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /ret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 2 and out.endswith(b"local"), out
    finally:
        z.stop()
        u.stop()


DIFF = """
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; expires 1h; }}
        location /epoch/ {{ proxy_pass http://app/; expires epoch; }}
        location /max/ {{ proxy_pass http://app/; expires max; }}
        location = /ret {{ expires 30m; return 200 "local"; }}
        location = /missing {{ expires 30m; return 404; }}
    }}
"""


def test_expires_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + DIFF + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + DIFF + "}}\n", nport, up=u.addr)
    try:
        for path in ["/", "/big?n=100", "/epoch/", "/max/", "/ret", "/missing",
                     "/status?code=500", "/hdr?Cache-Control=private"]:
            got = []
            for port in (zport, nport):
                st, h, body = request(port, "GET", path)
                exp = h.get("expires")
                if exp and exp.startswith(("Thu, 01 Jan 1970", "Thu, 31 Dec 2037")):
                    rel = exp
                else:
                    rel = None if exp is None else _epoch(exp) - _epoch(h["date"])
                got.append((st, h.get("cache-control"), rel))
            a, b = got
            assert a[0] == b[0] and a[1] == b[1], (path, a, b)
            if isinstance(a[2], int) and isinstance(b[2], int):
                assert abs(a[2] - b[2]) <= 1, (path, a, b)
            else:
                assert a[2] == b[2], (path, a, b)
    finally:
        z.stop()
        n.stop()
        u.stop()
