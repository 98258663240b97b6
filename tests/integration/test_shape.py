"""Upstream request and response shaping (issue 15): proxy_next_upstream's status
conditions and non_idempotent, the headers zonegate hides, passes and sets on proxied
answers (Server, Date, proxy_hide_header, proxy_pass_header, server_tokens), the
request it sends up (proxy_http_version, proxy_method, proxy_set_body,
proxy_pass_request_headers/body); each compared with Debian's nginx."""
import http.client
import json
import os

import test_nginx_diff
from zg import Skip, Upstream, Zonegate, free_port, raw, request

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
