"""Differential test of the config language (issue 13): the same config and the same
requests against Debian's nginx and zonegate must give the same status, the same
response headers the constructs set (Location of redirects, add_header) and the same
request at the upstream (path after rewrite and proxy_pass, X-Forwarded-For)."""
import http.client
import json
import os

from test_nginx_diff import NGINX, Nginx
from zg import Skip, Upstream, Zonegate, free_port, raw

COMMON = r"""
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        if ($http_x_block = "yes") {{ return 403 "blocked"; }}
        rewrite ^/old/(.*)$ /echo/new/$1 last;
        location /r/ {{
            rewrite ^/r/(\w+)/(\d+)$ /echo/$2/$1?x=1 break;
            proxy_pass http://app;
        }}
        location /l/ {{ rewrite ^/l/(.*)$ /echo/l/$1 last; }}
        location /q/ {{ rewrite ^/q/(.*)$ /echo/q/$1? last; }}
        location /echo {{
            proxy_pass http://app;
            proxy_set_header X-Fwd $proxy_add_x_forwarded_for;
        }}
        location /red {{ rewrite ^/red/(.*)$ http://example.com/$1 permanent; }}
        location /rel {{ rewrite ^ /target redirect; }}
        location /ret444 {{ return 444; }}
        location /retu {{ return https://example.org/x; }}
        location /ret301 {{ return 301 /moved; }}
        location /set {{
            set $a "v-$arg_q";
            if ($a ~ "^v-(\d+)$") {{ return 200 "num $1"; }}
            return 200 "other $a";
        }}
        location /named {{
            if ($uri ~ ^/named/(?<id>[a-z]+)) {{ return 200 "id=$id"; }}
            return 404;
        }}
        location /ua {{
            if ($http_user_agent ~* "bot") {{ return 429 "slow"; }}
            if ($http_user_agent !~* "^curl") {{ return 200 "not curl"; }}
            return 200 "curl";
        }}
        location /loop {{ rewrite ^ /loop last; }}
        location /ne {{
            if ($request_method != GET) {{ return 405; }}
            if ($arg_x) {{ return 200 "x is true"; }}
            return 204;
        }}
        location /brk {{ set $b 1; break; set $b 2; return 200 "b=$b"; }}
        location /r200 {{ return 200; }}
        location /json {{ default_type application/json; return 200 '{{"a":1}}'; }}
        location /chain {{
            rewrite ^/chain/a$ /chain/b;
            rewrite ^/chain/b$ /echo/chained;
        }}
    }}
"""

ZG_CONF = "worker_processes 1;\nhttp {{\n" + COMMON + "}}\n"

NGINX_CONF = """
user root;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
""" + COMMON + "}}\n"

REQUESTS = [
    ("GET", "/old/thing?a=1", {}),
    ("GET", "/r/abc/42?orig=1", {}),
    ("GET", "/r/abc/xx", {}),
    ("GET", "/l/deep/path?k=v", {}),
    ("GET", "/q/drop?k=v", {}),
    ("GET", "/echo/x", {"X-Forwarded-For": "10.9.8.7"}),
    ("GET", "/red/p/q?z=1", {}),
    ("GET", "/rel?a=b", {}),
    ("GET", "/ret444", {}),
    ("GET", "/retu", {}),
    ("GET", "/ret301", {}),
    ("GET", "/set?q=123", {}),
    ("GET", "/set?q=abc", {}),
    ("GET", "/named/abc", {}),
    ("GET", "/named/123", {}),
    ("GET", "/ua", {"User-Agent": "GoogleBot/2"}),
    ("GET", "/ua", {"User-Agent": "curl/8"}),
    ("GET", "/ua", {"User-Agent": "wget"}),
    ("GET", "/loop", {}),
    ("POST", "/ne", {}),
    ("GET", "/ne?x=0", {}),
    ("GET", "/ne?x=1", {}),
    ("GET", "/brk", {}),
    ("GET", "/r200", {}),
    ("GET", "/json", {}),
    ("GET", "/chain/a", {}),
    ("GET", "/echo/x", {"X-Block": "yes"}),
]

HEADERS = ("location",)


def one(port, method, path, headers, src="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(src, 0))
    try:
        c.request(method, path, headers=headers)
        r = c.getresponse()
        body = r.read()
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return ("closed",)
    finally:
        c.close()
    hdrs = {k.lower(): v.replace(str(port), "PORT") for k, v in r.getheaders()}
    out = [r.status] + [(h, hdrs.get(h)) for h in HEADERS]
    if hdrs.get("content-type") == "application/json" and body.startswith(b'{"method"'):
        info = json.loads(body)
        h = {k.lower(): v for k, v in info["headers"]}
        out.append(("upstream", info["path"], h.get("x-fwd")))
    elif r.status < 300 or hdrs.get("content-type", "").startswith(("text/plain",
                                                                     "application/json")):
        out.append(("body", hdrs.get("content-type"), body))
    return tuple(out)


def run(port, requests=None):
    return [one(port, *req) for req in (requests or REQUESTS)]


def differential(common, requests, upstream):
    """runs requests against both servers; returns nginx's results after checking
    zonegate's are the same"""
    if not os.path.exists(NGINX):
        raise Skip("no nginx")
    zg_conf = "worker_processes 1;\nhttp {{\n" + common + "}}\n"
    ngx_conf = NGINX_CONF.replace(COMMON, common)
    zp, np_ = free_port(), free_port()
    z = Zonegate(zg_conf, wait_ports=[zp], port=zp, up=upstream.addr)
    try:
        n = Nginx(ngx_conf, np_, up=upstream.addr)
    except BaseException:
        z.stop()
        raise
    try:
        zr, nr = run(zp, requests), run(np_, requests)
    finally:
        z.stop()
        n.stop()
    diffs = [(req, a, b) for req, a, b in zip(requests, zr, nr) if a != b]
    assert not diffs, "\n".join("%s\n  zonegate %s\n  nginx    %s" % d for d in diffs)
    return nr


MAP_GEO = r"""
    geo $limited {{ default 1; 127.0.0.0/8 0; 127.0.0.2 1; }}
    geo $http_x_ip $g {{ ranges; default none; 10.0.0.0-10.0.0.255 low; 10.0.0.128-10.0.0.200 mid; }}
    geo $http_x_ip $c {{ default no; 10.0.0.0/8 ten; 10.1.0.0/16 ten-one; ::1 six; delete 10.1.0.0/16; }}
    geo $t {{ default out; proxy 127.0.0.0/8; 192.168.0.0/16 lan; }}
    map $limited $limit_key {{ 0 ""; 1 $binary_remote_addr; }}
    map $http_x_name $m {{
        default d;
        hostnames;
        Exact.example.com exact;
        *.example.com wild;
        .example.org dot;
        www.example.* pre;
        ~^api(?<ver>\d+)\. api-$ver-$1;
        ~*^CASE case;
    }}
    map $http_x_name $plain {{ A.b x; \default esc; default none; }}
    limit_req_zone $limit_key zone=z:1m rate=1r/m;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location /lim {{ limit_req zone=z; proxy_pass http://app; }}
        location /m {{ return 200 "$m|$g|$c|$plain|$t"; }}
    }}
"""


def test_map_and_geo_like_nginx():
    def m(name, ip="1.1.1.1", xff=None):
        h = {"X-Name": name, "X-Ip": ip}
        if xff:
            h["X-Forwarded-For"] = xff
        return ("GET", "/m", h)
    reqs = [("GET", "/lim", {})] * 3 + [("GET", "/lim", {}, "127.0.0.2")] * 2 + [
        m("exact.EXAMPLE.com"), m("a.b.example.com"), m("example.com"),
        m("example.org"), m("x.example.org"), m("www.example.net"),
        m("api2.x.org", "10.0.0.5"), m("other", "10.0.0.150"), m("casey", "10.1.2.3"),
        m("a.b", "::1"), m("default", "bad"), m("x", "1.1.1.1", "192.168.1.1"),
        m("x", "1.1.1.1", "8.8.8.8, 192.168.1.1"),
    ]
    u = Upstream("a")
    try:
        nr = differential(MAP_GEO, reqs, u)
    finally:
        u.stop()
    # the allow-list pattern: the trusted address is never limited, the other is
    assert [r[0] for r in nr[:5]] == [200, 200, 200, 200, 503], nr[:5]


def test_rewrite_module_like_nginx():
    if not os.path.exists(NGINX):
        raise Skip("no nginx")
    u = Upstream("a")
    zp, np_ = free_port(), free_port()
    z = Zonegate(ZG_CONF, wait_ports=[zp], port=zp, up=u.addr)
    n = Nginx(NGINX_CONF, np_, up=u.addr)
    try:
        zr, nr = run(zp), run(np_)
        diffs = [(req, a, b) for req, a, b in zip(REQUESTS, zr, nr) if a != b]
        assert not diffs, "\n".join("%s\n  zonegate %s\n  nginx    %s" % d for d in diffs)
        # the test tests something: the constructs took effect
        assert nr[0][-1] == ("upstream", "/echo/new/thing?a=1", "127.0.0.1"), nr[0]
        assert nr[8] == ("closed",)
    finally:
        z.stop()
        n.stop()
        u.stop()


HEADERS_CONF = r"""
    add_header X-Http http-level;
    limit_req_zone $binary_remote_addr zone=hz:1m rate=1r/m;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        add_header X-Srv srv;
        add_header X-Always yes always;
        add_header X-Empty $http_x_none;
        location /inherit {{ return 200 "i"; }}
        location /own {{ add_header X-Own "own $uri"; return 200 "o"; }}
        location /err {{ return 404; }}
        location /red {{ return 302 /x; }}
        location /p {{ add_header X-Proxied p; add_header X-PA pa always; proxy_pass http://app; }}
        location /lim {{ add_header X-Lim lim always; add_header X-Never no; limit_req zone=hz; proxy_pass http://app; }}
        location /none {{ return 204; }}
    }}
"""

HDRS = ("x-http", "x-srv", "x-always", "x-empty", "x-own", "x-proxied", "x-pa", "x-lim",
        "x-never", "location")


def test_add_header_like_nginx():
    global HEADERS
    saved = HEADERS
    HEADERS = HDRS
    reqs = [("GET", p, {}) for p in ("/inherit", "/own", "/err", "/red", "/p/status?code=500",
                                     "/p/x", "/none", "/lim", "/lim")]
    u = Upstream("a")
    try:
        nr = differential(HEADERS_CONF, reqs, u)
    finally:
        HEADERS = saved
        u.stop()
    assert nr[0][1:4] == (("x-http", None), ("x-srv", "srv"), ("x-always", "yes")), nr[0]
    assert nr[8][0] == 503 and ("x-lim", "lim") in nr[8], nr[8]


REALIP_CONF = r"""
    upstream app {{ server {up}; }}
    limit_req_zone $binary_remote_addr zone=rz:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        set_real_ip_from 127.0.0.0/8;
        set_real_ip_from 10.0.0.0/8;
        real_ip_header X-Forwarded-For;
        location /echo {{
            proxy_pass http://app;
            proxy_set_header X-Fwd "$proxy_add_x_forwarded_for|$remote_addr|$realip_remote_addr";
        }}
        location /rec/ {{
            real_ip_recursive on;
            proxy_pass http://app/echo/;
            proxy_set_header X-Fwd "$proxy_add_x_forwarded_for|$remote_addr|$realip_remote_addr";
        }}
        location /hdr/ {{
            real_ip_header X-Client;
            proxy_pass http://app/echo/;
            proxy_set_header X-Fwd "$remote_addr";
        }}
        location /lim {{ limit_req zone=rz; proxy_pass http://app; }}
    }}
"""


def test_real_ip_like_nginx():
    x = "X-Forwarded-For"
    reqs = [
        ("GET", "/echo/a", {}),
        ("GET", "/echo/a", {x: "1.2.3.4"}),
        ("GET", "/echo/a", {x: "1.2.3.4, 10.1.1.1"}),
        ("GET", "/rec/a", {x: "1.2.3.4, 10.1.1.1"}),
        ("GET", "/rec/a", {x: "10.2.2.2, 10.1.1.1"}),
        ("GET", "/rec/a", {x: "garbage, 10.1.1.1"}),
        ("GET", "/echo/a", {x: "2001:db8::1"}),
        ("GET", "/hdr/a", {"X-Client": "5.6.7.8"}),
        ("GET", "/hdr/a", {x: "5.6.7.8"}),
        # the limit keys on the real address: two clients behind the same proxy
        ("GET", "/lim", {x: "1.1.1.1"}),
        ("GET", "/lim", {x: "1.1.1.2"}),
        ("GET", "/lim", {x: "1.1.1.1"}),
    ]
    u = Upstream("a")
    try:
        nr = differential(REALIP_CONF, reqs, u)
    finally:
        u.stop()
    # the server's (non-recursive) setting changed the address first: the location's
    # real_ip_recursive does not run again, as nginx
    assert nr[3][-1] == ("upstream", "/echo/a", "1.2.3.4, 10.1.1.1, 10.1.1.1|10.1.1.1|127.0.0.1"), nr[3]
    assert nr[7][-1] == ("upstream", "/echo/a", "5.6.7.8"), nr[7]
    assert [r[0] for r in nr[-3:]] == [200, 200, 503], nr[-3:]


ERROR_PAGE_CONF = r"""
    upstream app {{ server {up}; }}
    limit_req_zone $binary_remote_addr zone=e1:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=e2:1m rate=1r/m;
    limit_req_status 429;
    server {{
        listen 127.0.0.1:{port};
        error_page 429 /429.json;
        location = /429.json {{
            internal;
            default_type application/json;
            return 429 '{{"error":"rate limited"}}';
        }}
        location /api {{ limit_req zone=e1; proxy_pass http://app; }}
        location /named {{ error_page 429 = @too; limit_req zone=e2; proxy_pass http://app; }}
        location @too {{ return 429 '{{"named":"$uri"}}'; }}
        location /deny {{ deny all; error_page 403 =200 /echo/denied?a=1; }}
        location /deny2 {{ deny all; error_page 403 /echo/d2; }}
        location /url {{ deny all; error_page 403 http://example.com/forbidden; }}
        location /url301 {{ deny all; error_page 403 =301 http://example.com/x; }}
        location = /internal-only {{ internal; return 200 "secret"; }}
        location /missing {{ error_page 404 /internal-only; }}
        location /loop {{ error_page 404 /loop2; }}
        location /loop2 {{ }}
        location /ret {{ error_page 404 = /echo/ret; return 404; }}
        location /retbody {{ error_page 404 /echo/x; return 404 "own body"; }}
        location /echo {{ proxy_pass http://app; proxy_set_header X-Fwd $request_method; }}
    }}
"""


def test_error_page_like_nginx():
    reqs = [("GET", "/api", {}), ("GET", "/api", {}), ("GET", "/named", {}),
            ("GET", "/named", {}), ("GET", "/deny", {}), ("POST", "/deny2", {}),
            ("GET", "/url", {}), ("GET", "/url301", {}), ("GET", "/internal-only", {}),
            ("GET", "/429.json", {}), ("GET", "/missing", {}), ("GET", "/loop", {}),
            ("GET", "/ret", {}), ("GET", "/retbody", {})]
    u = Upstream("a")
    try:
        nr = differential(ERROR_PAGE_CONF, reqs, u)
    finally:
        u.stop()
    assert nr[1] == (429, ("location", None), ("body", "application/json",
                                                 b'{"error":"rate limited"}')), nr[1]
    assert nr[3] == (429, ("location", None), ("body", "text/plain",
                                                 b'{"named":"/named"}')), nr[3]
    assert nr[5][0] == 403, nr[5]  # the proxied page keeps the original status


PROXY_VARS_CONF = r"""
    upstream app {{ server {up}; }}
    map $http_x_pool $pool {{ default app; other nosuch; }}
    server {{
        listen 127.0.0.1:{port};
        location /v1var/ {{ proxy_pass http://app/echo$request_uri; }}
        location /echo/hv {{ proxy_pass http://$pool; }}
        location /both/ {{ proxy_pass http://$pool/echo/both$is_args$args; }}
        location /static/ {{ proxy_pass http://app/echo/s/; }}
        location /brk/ {{ rewrite ^/brk/(.*)$ /echo/b/$1 break; proxy_pass http://app/ignored/; }}
    }}
"""


def test_proxy_pass_variables_like_nginx():
    reqs = [("GET", "/v1var/users?x=1", {}), ("GET", "/echo/hv/a?q=2", {}),
            ("GET", "/both/z?k=v", {}), ("GET", "/both/z", {}),
            ("GET", "/both/z", {"X-Pool": "other"}), ("GET", "/static/a/b?c=d", {}),
            ("GET", "/brk/x?y=1", {})]
    u = Upstream("a")
    try:
        nr = differential(PROXY_VARS_CONF, reqs, u)
    finally:
        u.stop()
    assert nr[0][-1][:2] == ("upstream", "/echo/v1var/users?x=1"), nr[0]
    assert nr[4][0] == 502, nr[4]


INTERCEPT_CONF = r"""
    upstream app {{ server {up}; }}
    upstream dead {{ server {dead}; }}
    server {{
        listen 127.0.0.1:{port};
        location /i/ {{
            proxy_pass http://app/;
            proxy_intercept_errors on;
            error_page 404 500 /oops;
        }}
        location /noi/ {{ proxy_pass http://app/; error_page 404 /oops; }}
        location /eq/ {{ proxy_pass http://app/; proxy_intercept_errors on; error_page 404 = @fb; }}
        location @fb {{ return 200 "fallback $upstream_status"; }}
        location /down {{
            proxy_pass http://dead;
            proxy_connect_timeout 2s;
            error_page 502 504 = /echo/maintenance;
        }}
        location = /oops {{ internal; return 200 "oops"; }}
        location /echo {{ proxy_pass http://app; }}
    }}
"""


def test_proxy_intercept_errors_like_nginx():
    reqs = [("GET", p, {}) for p in ("/i/status?code=404", "/i/status?code=500",
                                     "/i/status?code=503", "/i/status?code=200",
                                     "/noi/status?code=404", "/eq/status?code=404",
                                     "/down")]
    u = Upstream("a")
    try:
        nr = differential(INTERCEPT_CONF.replace("{dead}", "127.0.0.1:%d" % free_port()),
                          reqs, u)
    finally:
        u.stop()
    assert nr[0] == (404, ("location", None), ("body", "text/plain", b"oops")), nr[0]
    assert nr[5][0] == 200, nr[5]
    assert nr[6][-1][:2] == ("upstream", "/echo/maintenance"), nr[6]


IF_LOCATION_CONF = r"""
    upstream app {{ server {up}; }}
    upstream other {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location /echo/api/ {{
            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin *;
                add_header X-If yes;
                return 204;
            }}
            if ($arg_up) {{ add_header X-Up up; }}
            add_header X-Loc loc;
            proxy_pass http://app;
        }}
        location /echo/ifp/ {{
            if ($arg_alt) {{ proxy_pass http://other; }}
            proxy_pass http://app;
            proxy_set_header X-Fwd "$uri $args";
        }}
        location /iferr {{ if ($arg_e) {{ error_page 404 =200 /echo/e; }} return 404; }}
    }}
"""


def test_if_in_location_like_nginx():
    global HEADERS
    saved = HEADERS
    HEADERS = ("location", "access-control-allow-origin", "x-if", "x-up", "x-loc")
    reqs = [("OPTIONS", "/echo/api/x", {}), ("GET", "/echo/api/x", {}),
            ("GET", "/echo/api/x?up=1", {}), ("GET", "/echo/ifp/a?alt=1", {}),
            ("GET", "/echo/ifp/a", {}), ("GET", "/iferr?e=1", {}), ("GET", "/iferr", {})]
    u = Upstream("a")
    try:
        nr = differential(IF_LOCATION_CONF, reqs, u)
    finally:
        HEADERS = saved
        u.stop()
    assert nr[0][:4] == (204, ("location", None), ("access-control-allow-origin", "*"),
                         ("x-if", "yes")), nr[0]
    assert ("x-up", "up") in nr[2] and ("x-loc", None) in nr[2], nr[2]


PHASES_CONF = r"""
    upstream app {{ server {up}; }}
    limit_req_zone $lk zone=byuser:1m rate=1r/m;
    limit_req_zone $binary_remote_addr zone=old:1m rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location /old/ {{ limit_req zone=old; rewrite ^/old/(.*)$ /echo/new/$1 last; }}
        location /echo/ {{ proxy_pass http://app; }}
        location /u {{ set $lk $arg_u; limit_req zone=byuser; proxy_pass http://app; }}
        location /d {{ deny all; return 200 "returned before access"; }}
    }}
"""


def test_phase_order_like_nginx():
    reqs = [("GET", "/old/x", {})] * 3 + [("GET", "/u?u=%s" % k, {}) for k in "aba"] + \
        [("GET", "/u", {}), ("GET", "/u", {}), ("GET", "/d", {})]
    u = Upstream("a")
    try:
        nr = differential(PHASES_CONF, reqs, u)
    finally:
        u.stop()
    assert [r[0] for r in nr] == [200, 200, 200, 200, 200, 503, 200, 200, 200], nr


DUP_HEADERS_CONF = r"""
    server {{
        listen 127.0.0.1:{port};
        location / {{
            return 200 "[$http_x_forwarded_for][$http_cookie][$http_x_a][$cookie_b][$proxy_add_x_forwarded_for]";
        }}
    }}
"""


def test_repeated_headers_like_nginx():
    """$http_x_forwarded_for and $http_cookie join repeated lines (", " and "; "), other
    $http_NAME take the first, as nginx 1.22"""
    if not os.path.exists(NGINX):
        raise Skip("no nginx")
    req = (b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\n"
           b"X-Forwarded-For: 2.2.2.2\r\nCookie: a=1\r\nCookie: b=2\r\nX-A: one\r\n"
           b"X-A: two\r\nConnection: close\r\n\r\n")
    zp, np_ = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + DUP_HEADERS_CONF + "}}\n",
                 wait_ports=[zp], port=zp)
    try:
        n = Nginx(NGINX_CONF.replace(COMMON, DUP_HEADERS_CONF), np_)
        try:
            bodies = [raw(p, req)[0].split(b"\r\n\r\n", 1)[1] for p in (np_, zp)]
        finally:
            n.stop()
    finally:
        z.stop()
    assert bodies[0] == bodies[1], bodies
    assert bodies[0] == b"[1.1.1.1, 2.2.2.2][a=1; b=2][one][2][1.1.1.1, 2.2.2.2, 127.0.0.1]"


GATEWAY_CONF = r"""
    set_real_ip_from 127.0.0.0/8;
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    map $http_authorization $api_key {{
        default $http_x_api_key;
        "~^Bearer (?<tok>.+)$" $tok;
    }}
    limit_req_zone $api_key zone=perkey:1m rate=1r/m;
    limit_req_status 429;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        error_page 429 /errors/429.json;
        location ^~ /errors/ {{
            internal;
            default_type application/json;
            location = /errors/429.json {{ return 429 '{{"error":"too many requests"}}'; }}
        }}
        location /echo/ {{
            if ($request_method = OPTIONS) {{
                add_header Access-Control-Allow-Origin $http_origin always;
                return 204;
            }}
            limit_req zone=perkey;
            add_header Access-Control-Allow-Origin $http_origin always;
            proxy_set_header X-Fwd "$remote_addr $api_key";
            proxy_pass http://app;
        }}
    }}
"""


def test_api_gateway_like_nginx():
    """the constructs together, as corpus/14-cors-api-gateway.conf uses them"""
    global HEADERS
    saved = HEADERS
    HEADERS = ("access-control-allow-origin",)
    o = {"Origin": "https://app.example"}
    reqs = [("OPTIONS", "/echo/x", o),
            ("GET", "/echo/x", dict(o, Authorization="Bearer k1", **{"X-Forwarded-For": "9.9.9.9"})),
            ("GET", "/echo/x", dict(o, Authorization="Bearer k1")),
            ("GET", "/echo/x", dict(o, **{"X-Api-Key": "k2"})),
            ("GET", "/echo/x", {}), ("GET", "/echo/x", {}),
            ("GET", "/errors/429.json", {})]
    u = Upstream("a")
    try:
        nr = differential(GATEWAY_CONF, reqs, u)
    finally:
        HEADERS = saved
        u.stop()
    assert nr[1][-1] == ("upstream", "/echo/x", "9.9.9.9 k1"), nr[1]
    # the error page's location has no add_header: nginx's (and zonegate's) 429 has no
    # Access-Control-Allow-Origin unless that location adds it
    assert nr[2] == (429, ("access-control-allow-origin", None),
                     ("body", "application/json", b'{"error":"too many requests"}')), nr[2]


CACHE_CONF = r"""
    map $uri $mu {{ default other; /a is-a; /b is-b; }}
    map $uri $mv {{ volatile; default other; /a is-a; /b is-b; }}
    server {{
        listen 127.0.0.1:{port};
        location /a {{ set $x "$mu$mv"; rewrite ^ /b last; }}
        location /b {{ return 200 "$mu $mv"; }}
    }}
"""


def test_variable_cache_like_nginx():
    """a map read before a rewrite keeps its value for the request, unless volatile"""
    u = Upstream("a")
    try:
        nr = differential(CACHE_CONF, [("GET", "/a", {}), ("GET", "/b", {})], u)
    finally:
        u.stop()
    assert nr[0][-1] == ("body", "text/plain", b"is-a is-b"), nr[0]
