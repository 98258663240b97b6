"""The config language around the limits (issue 13): variables, the rewrite module,
map, geo, add_header, real_ip, error_page."""
import json

import zg
from limits_util import read_lines
from zg import Upstream, Zonegate, free_port, get, zonegate_t


def start(body, upstream=None):
    port = free_port()
    conf = "worker_processes 1;\nhttp {{\n" + body + "\n}}\n"
    z = Zonegate(conf, wait_ports=[port], port=port,
                 up=upstream.addr if upstream else "")
    return z, port


def test_variables():
    u = Upstream("a")
    z, port = start("""
    server {{
        listen 127.0.0.1:{port};
        location = /v {{ return 200 "$scheme|$https|$proxy_add_x_forwarded_for|$cookie_sid|$server_addr:$server_port|$is_args$args|$zonegate_version"; }}
        location / {{
            proxy_pass http://{up};
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
        }}
    }}""", u)
    try:
        st, h, body = get(port, "/v?a=1", headers={"Cookie": "x=1; sid=abc",
                                                    "X-Forwarded-For": "10.1.1.1"})
        assert st == 200
        assert body.decode() == ("http||10.1.1.1, 127.0.0.1|abc|127.0.0.1:%d|?a=1|"
                                 % port) + body.decode().rsplit("|", 1)[1]
        st, h, body = get(port, "/echo", headers={"X-Forwarded-For": "10.1.1.1"})
        hdrs = {k.lower(): v for k, v in json.loads(body)["headers"]}
        assert hdrs["x-fwd"] == "10.1.1.1, 127.0.0.1"
        assert len(hdrs["x-request-id"]) == 32
    finally:
        z.stop()
        u.stop()


def test_unknown_variable_names_first_use():
    rc, out, path = zonegate_t("""events {{}}
http {{ server {{ listen 127.0.0.1:1;
  location / {{ return 200 "$nosuch"; }} }} }}""")
    assert rc == 1
    assert 'unknown "nosuch" variable in %s:3' % path in out, out


def test_map_geo_allow_list_pattern():
    """nginx's documented pattern: geo marks the trusted, map turns them into an
    empty key, and an empty key is not limited"""
    u = Upstream("a")
    z, port = start("""
    geo $limited {{ default 1; 127.0.0.0/8 0; 127.0.0.2 1; }}
    geo $http_x_ip $g {{ ranges; default none; 10.0.0.0-10.0.0.255 low; 10.0.0.128-10.0.0.200 mid; }}
    map $limited $limit_key {{ 0 ""; 1 $binary_remote_addr; }}
    map $http_x_name $m {{
        default d;
        hostnames;
        Exact.example.com exact;
        *.example.com wild;
        www.example.* pre;
        ~^api(?<ver>\\d+)\\. api-$ver-$1;
    }}
    map $uri $vol {{ volatile; default $arg_a; }}
    limit_req_zone $limit_key zone=z:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location /lim {{ limit_req zone=z; return 200 "ok"; }}
        location /m {{ return 200 "$m|$g"; }}
    }}""", u)
    try:
        # 127.0.0.1 is in 127.0.0.0/8: key "" -> never limited
        assert [get(port, "/lim")[0] for _ in range(4)] == [200] * 4
        def m(name, ip="1.1.1.1"):
            return get(port, "/m", headers={"X-Name": name, "X-Ip": ip})[2].decode()
        assert m("exact.EXAMPLE.com") == "exact|none"
        assert m("a.b.example.com") == "wild|none"
        assert m("www.example.org") == "pre|none"
        assert m("api2.x.org", "10.0.0.5") == "api-2-2|low"
        assert m("other", "10.0.0.150") == "d|mid"
    finally:
        z.stop()
        u.stop()


def test_variables_inside_the_sandbox():
    """$hostname (uname), $server_addr on a wildcard listen (getsockname), $request_id
    (getrandom), $pid: system calls the workers' seccomp allow-list has"""
    import socket
    port = free_port()
    conf = """worker_processes 1;
http {{
    server {{
        listen {port};
        location / {{ return 200 "$hostname|$server_addr|$server_port|$pid|$request_id"; }}
    }}
}}
"""
    z = Zonegate(conf, wait_ports=[port], port=port)
    try:
        st, h, body = get(port, "/")
        assert st == 200, (st, body)
        host, addr, p, pid, rid = body.decode().split("|")
        assert host == socket.gethostname()[:63]
        assert addr == "127.0.0.1" and p == str(port)
        assert int(pid) in z.workers()
        assert len(rid) == 32
    finally:
        z.stop()


PHASES = """
    limit_req_zone $lk zone=byuser:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=old:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location /old/ {{ limit_req zone=old; rewrite ^/old/(.*)$ /new/$1 last; }}
        location /new/ {{ proxy_pass http://{up}; }}
        location /u {{ set $lk $arg_u; limit_req zone=byuser; proxy_pass http://{up}; }}
    }}"""


def test_phase_order_rewrite_before_limits():
    """the location rewrite runs before the limits: /old/'s limit never applies to a
    request it rewrites away; `set` before limit_req gives the limit its key"""
    u = Upstream("a")
    z, port = start(PHASES, u)
    try:
        assert [get(port, "/old/x")[0] for _ in range(3)] == [200, 200, 200]
        assert [get(port, "/u?u=%s" % k)[0] for k in ("a", "b", "a", "")] == \
            [200, 200, 503, 200]
    finally:
        z.stop()
        u.stop()


def test_rewrite_log():
    u = Upstream("a")
    z, port = start("""
    server {{
        listen 127.0.0.1:{port};
        rewrite_log on;
        location /old/ {{ rewrite ^/nomatch$ /x; rewrite ^/old/(.*)$ /new/$1?k=v last; }}
        location /new/ {{ proxy_pass http://{up}; }}
    }}""", u)
    try:
        assert get(port, "/old/x?a=1")[0] == 200
        want = ['"^/nomatch$" does not match "/old/x"', '"^/old/(.*)$" matches "/old/x"',
                'rewritten data: "/new/x", args: "k=v&a=1"']
        log = zg.wait_for(lambda: (lambda t: t if all(w in t for w in want) else None)(
            z.error_log()))
        assert log, z.error_log()
    finally:
        z.stop()
        u.stop()


def test_pipelined_requests_through_internal_redirects():
    """one keep-alive connection: requests that an error_page redirects, that a
    rewrite sends elsewhere and that read map variables, back to back — each gets its
    own answer (the request memory and its variables are reused cleanly)"""
    from zg import raw
    u = Upstream("a")
    z, port = start("""
    map $arg_v $mv {{ default "d"; ~^(?<n>\\d+)$ "num-$n"; }}
    limit_req_zone $binary_remote_addr zone=p:1m rate=1r/m;
    limit_req_status 429;
    server {{
        listen 127.0.0.1:{port};
        error_page 429 /busy;
        location = /busy {{ internal; return 429 "busy $mv"; }}
        location /lim {{ limit_req zone=p; proxy_pass http://{up}; }}
        location /rw {{ rewrite ^/rw/(.*)$ /m?v=$1 last; }}
        location /m {{ return 200 "m $mv"; }}
    }}""", u)
    try:
        req = b""
        for path in ("/lim", "/lim?v=7", "/rw/42", "/m?v=x", "/lim?v=9", "/m"):
            req += b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        req += b"GET /m?v=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        out, closed = raw(port, req)
        bodies = [p.split(b"\r\n\r\n", 1)[1][:40] for p in out.split(b"HTTP/1.1 ")[1:]]
        statuses = [int(p[:3]) for p in out.split(b"HTTP/1.1 ")[1:]]
        assert statuses == [200, 429, 200, 200, 429, 200, 200], (statuses, out)
        # the error page's URI has no args (as nginx): $mv, read there first, is "d"
        assert bodies[1] == b"busy d" and bodies[4] == b"busy d", bodies
        assert bodies[2] == b"m num-42" and bodies[3] == b"m d", bodies
        assert bodies[5] == b"m d" and bodies[6] == b"m num-1", bodies
        assert closed
    finally:
        z.stop()
        u.stop()


RELOAD = """worker_processes 2;
http {{
    map $arg_k $v {{ default none; a {val}; ~^r(?<n>\\d)$ re-$n; }}
    geo $g {{ default out; 127.0.0.0/8 {geo}; }}
    server {{
        listen 127.0.0.1:{port};
        if ($arg_block) {{ return 403 "blocked"; }}
        location / {{ rewrite ^/x/(.*)$ /y/$1 last; return 200 "$uri $v $g"; }}
        location /y/ {{ add_header X-Gen {val}; return 200 "y $v $g"; }}
    }}
}}
"""


def test_reload_with_the_config_language():
    """HUP: the new config's maps, geos, rewrites and headers answer, the old ones are
    freed; every request is answered by one generation or the other"""
    port = free_port()
    z = Zonegate(RELOAD, wait_ports=[port], port=port, val="one", geo="lo1")
    try:
        old = z.wait_workers(2)
        st, h, body = get(port, "/x/1?k=a")
        assert (st, h.get("x-gen"), body) == (200, "one", b"y one lo1"), (st, h, body)
        z.rewrite(RELOAD, port=port, val="two", geo="lo2")
        z.reload()
        z.wait_workers(2, gone=old)
        st, h, body = get(port, "/x/1?k=a")
        assert (st, h.get("x-gen"), body) == (200, "two", b"y two lo2"), (st, h, body)
        assert get(port, "/z?k=r5")[2] == b"/z re-5 lo2"
        assert get(port, "/z?block=1")[:3:2] == (403, b"blocked")
    finally:
        z.stop()


def test_sent_http_of_local_answers():
    """$sent_http_NAME in the access log: zonegate's own answers (their Content-Type,
    Location, add_header lines) and proxied ones (the upstream's headers, not the
    add_header lines: a documented difference from nginx)"""
    u = Upstream("a")
    z, port = start("""
    log_format h '$uri|$sent_http_content_type|$sent_http_location|$sent_http_x_a|$upstream_http_x_upstream';
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/h.log h;
        add_header X-A a always;
        location /r {{ return 302 http://e.example/; }}
        location /t {{ default_type application/json; return 200 '{{}}'; }}
        location /p {{ proxy_pass http://{up}; }}
        location /n {{ return 404; }}
    }}""", u)
    try:
        for p in ("/r", "/t", "/p", "/n"):
            get(port, p)
        path = z.dir + "/h.log"
        lines = zg.wait_for(lambda: (lambda ls: ls if len(ls) >= 4 else None)(read_lines(path)))
        got = sorted(lines or [])
        assert got == sorted(["/r|text/html|http://e.example/|a|-",
                              "/t|application/json|-|a|-",
                              "/p|text/plain|-|-|a",
                              "/n|text/html|-|a|-"]), got
    finally:
        z.stop()
        u.stop()
