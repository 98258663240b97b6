"""Request paths are normalised once, before a location is chosen (the security
issue): every spelling of a limited, denied or `return`ed path gets the answer of
that path.  SPELL_COMMON and spell_script() are also run against Debian's nginx by
test_nginx_diff.py, which compares the statuses and the access logs."""
import json
import socket

import zg
from limits_util import read_lines
from zg import Upstream, Zonegate, free_port, raw, status_of

# /login: limit_req 1r/m (the first request passes, every other spelling is refused);
# /k/: limit_req keyed on $uri, so "/k/a" and "/k//a" are one key; /admin: deny all;
# = /secret: return 403; /pe/: proxy_pass with a URI part; /echo: without one.
SPELL_COMMON = """
    limit_req_zone $binary_remote_addr zone=login:1m rate=1r/m;
    limit_req_zone $uri zone=byuri:1m rate=1r/m;
    log_format uri '$uri $status';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log uri;
        limit_req_status 429;
        location /login {{ limit_req zone=login; proxy_pass http://app; }}
        location /k/ {{ limit_req zone=byuri; proxy_pass http://app; }}
        location /admin {{ deny all; proxy_pass http://app; }}
        location = /secret {{ return 403; }}
        location /pe/ {{ proxy_pass http://app/echo/; }}
        location /echo {{ proxy_pass http://app; }}
        location / {{ proxy_pass http://app; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name public.example;
        location / {{ return 200 "public $host $uri"; }}
    }}
"""

# (target, status); in order: the first /login passes, then every spelling of it
# is refused by the 1r/m limit
SPELLINGS = [  # (target, status, $uri in the access log)
    ("/login", 200, "/login"),
    ("//login", 429, "/login"),
    ("/%6cogin", 429, "/login"),
    ("/%6Cogin", 429, "/login"),
    ("/%6C%6f%67%69%6E", 429, "/login"),
    ("/x/../login", 429, "/login"),
    ("/./login", 429, "/login"),
    ("/login/.", 429, "/login/"),
    ("/login/x/..", 429, "/login/"),
    ("/login#frag", 429, "/login"),
    ("/login?a=b", 429, "/login"),
    ("/admin", 403, "/admin"),
    ("/a/b/../../admin/", 403, "/admin/"),
    ("/x/..%2fadmin", 403, "/admin"),
    ("/x/..%2Fadmin", 403, "/admin"),
    ("/x/%2e%2e/admin", 403, "/admin"),
    ("/x/%2E%2e/admin", 403, "/admin"),
    ("/x/.%2e/admin", 403, "/admin"),
    ("//./admin/", 403, "/admin/"),
    ("/%2fadmin", 403, "/admin"),
    ("/admin/.", 403, "/admin/"),
    ("/admin/x/..", 403, "/admin/"),
    ("/secret", 403, "/secret"),
    ("/secret#f", 403, "/secret"),
    ("/%73ecret", 403, "/secret"),
    ("/%73ECRET", 200, "/sECRET"),
    ("/secret?x=1", 403, "/secret"),
    ("/login/../secret", 403, "/secret"),
    ("/k/a", 200, "/k/a"),
    ("/k//a", 429, "/k/a"),
    ("/k/./a", 429, "/k/a"),
    ("/k/%61", 429, "/k/a"),
    ("/k/b", 200, "/k/b"),
    ("/../x", 400, None),
    ("/..", 400, None),
    ("/%2e%2e", 400, None),
    ("/%2e%2e/x", 400, None),
    ("/a/../../x", 400, None),
    ("/a%00b", 400, None),
    ("/a%0", 400, None),
    ("/a%zz", 400, None),
    ("/ok%3f/x", 200, "/ok?/x"),
    ("/ok/..%3f", 200, "/ok/..?"),
]

# what the upstream is asked for: proxy_pass with a URI part forwards the
# normalised path (escaped again); without one, the target as received
FORWARDED = [
    "/pe/a//b/../%41%3f%20?x=1#frag",
    "/pe/%2e/x",
    "/pe/%7e",
    "/echo/a//b/../%41?x#y",
    "/echo/%2e%2e/x",
]

ABSOLUTE = [
    b"GET http://public.example/x/../y HTTP/1.1\r\nHost: internal.example\r\n"
    b"Connection: close\r\n\r\n",
    b"GET http://PUBLIC.example HTTP/1.1\r\nHost: internal.example\r\n"
    b"Connection: close\r\n\r\n",
    b"GET /y HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n",
]


def http10(port, target):
    """one HTTP/1.0 request with a raw target: (status, body)"""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET " + target.encode("latin-1") + b" HTTP/1.0\r\n\r\n")
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    finally:
        s.close()
    return status_of(out), out.split(b"\r\n\r\n", 1)[-1]


def spell_script(port):
    """[(what, answer)]: statuses of SPELLINGS, the path the upstream saw for
    FORWARDED, the bodies of ABSOLUTE"""
    out = [(t, http10(port, t)[0]) for t, _, _ in SPELLINGS]
    for t in FORWARDED:
        st, body = http10(port, t)
        out.append((t, json.loads(body)["path"] if st == 200 else st))
    for data in ABSOLUTE:
        resp, _ = raw(port, data)
        out.append((data.split(b"\r\n")[0].decode(), resp.split(b"\r\n\r\n", 1)[-1].decode()))
    return out


SPELL_EXPECTED = [(t, st) for t, st, _ in SPELLINGS] + [
    ("/pe/a//b/../%41%3f%20?x=1#frag", "/echo/a/A%3F%20?x=1"),
    ("/pe/%2e/x", "/echo/x"),
    ("/pe/%7e", "/echo/~"),
    ("/echo/a//b/../%41?x#y", "/echo/a//b/../%41?x#y"),
    ("/echo/%2e%2e/x", "/echo/%2e%2e/x"),
    ("GET http://public.example/x/../y HTTP/1.1", "public public.example /y"),
    ("GET http://PUBLIC.example HTTP/1.1", "public public.example /"),
    ("GET /y HTTP/1.1", "public public.example /y"),
]


def spell_log_expected():
    """the access-log lines ($uri $status) of the script, less the 400s: zonegate
    does not log a request refused before its head is parsed"""
    lines = ["%s %d" % (uri, st) for _, st, uri in SPELLINGS if uri is not None]
    lines += ["/pe/a/A?  200", "/pe/x 200", "/pe/~ 200", "/echo/a/A 200", "/x 200"]
    return sorted(lines)  # the server of ABSOLUTE has no access_log


def test_every_spelling_gets_the_same_answer():
    u = Upstream("a")
    port = free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + SPELL_COMMON + "}}\n",
                 wait_ports=[port], port=port, up=u.addr)
    got = spell_script(port)
    for (what, ans), (_, want) in zip(got, SPELL_EXPECTED):
        print("%-45s %s" % (what, ans))
    assert got == SPELL_EXPECTED, [(g, w) for g, w in zip(got, SPELL_EXPECTED) if g != w]
    # the log has the normalised path of every request that got past the parser
    log = z.dir + "/access.log"
    want = spell_log_expected()
    assert zg.wait_for(lambda: len(read_lines(log)) == len(want), 5), read_lines(log)
    assert sorted(read_lines(log)) == want, sorted(read_lines(log))
    z.stop()
    u.stop()


HEADERS_CONF = """
worker_processes 1;
http {{
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_headers 6;
        location /echo {{ proxy_pass http://app; }}
        location /v {{ return 200 "[$http_x_a|$http_x_b_c]"; }}
        location /r {{ return 302 http://x$uri; }}
        location /hdr/ {{ proxy_set_header X-Uri $uri; proxy_pass http://app/echo/; }}
        location / {{ return 200 "$uri"; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        merge_slashes off;
        underscores_in_headers on;
        location /login {{ return 200 "login $uri"; }}
        location /v {{ return 200 "[$http_x_a|$http_x_b_c]"; }}
        location / {{ return 200 "other $uri"; }}
    }}
    server {{
        listen 127.0.0.1:{port3};
        ignore_invalid_headers off;
        location /v {{ return 200 "[$http_x_a|$http_x_b_c|$http_x_dot]"; }}
        location /echo {{ proxy_pass http://app; }}
    }}
}}
"""


def body_of(resp):
    return resp.split(b"\r\n\r\n", 1)[-1]


def test_header_names_and_slashes_directives():
    u = Upstream("a")
    port, port2, port3 = free_port(), free_port(), free_port()
    z = Zonegate(HEADERS_CONF, wait_ports=[port, port2, port3], port=port, port2=port2,
                 port3=port3, up=u.addr)
    req = (b"GET /v HTTP/1.1\r\nHost: x\r\nX_A: 1\r\nX-B-C: 2\r\nX.Dot: 3\r\n"
           b"Connection: close\r\n\r\n")
    # default: names with '_' (or other bytes) are ignored, not seen as $http_
    assert body_of(raw(port, req)[0]) == b"[|2]"
    assert body_of(raw(port2, req)[0]) == b"[1|2]"
    # "X.Dot" is kept but no $http_ name matches it (nginx maps only '-' to '_')
    assert body_of(raw(port3, req)[0]) == b"[1|2|]"
    # and not forwarded
    out, _ = raw(port, req.replace(b"/v", b"/echo"))
    names = [k.lower() for k, _ in json.loads(body_of(out))["headers"]]
    assert "x-b-c" in names and "x_a" not in names and "x.dot" not in names, names
    out, _ = raw(port3, req.replace(b"/v", b"/echo"))
    names = [k.lower() for k, _ in json.loads(body_of(out))["headers"]]
    assert "x_a" in names and "x.dot" in names, names
    # Transfer_Encoding is no Transfer-Encoding: the body is read as the next
    # request, which is bad (nginx answers the same)
    out, closed = raw(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked"
                      b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ") and b"}HTTP/1.1 400 " in out, out
    assert json.loads(body_of(out.split(b"HTTP/1.1 400")[0]))["length"] == 0, out
    assert closed
    # merge_slashes off: "//login" is not "/login"
    assert body_of(raw(port, b"GET //login HTTP/1.0\r\n\r\n")[0]) == b"/login"
    assert body_of(raw(port2, b"GET //login HTTP/1.0\r\n\r\n")[0]) == b"other //login"
    assert body_of(raw(port2, b"GET /x/..%2flogin HTTP/1.0\r\n\r\n")[0]) == b"login /login"
    # client_max_headers 6
    six = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(5))
    assert status_of(raw(port, six + b"Connection: close\r\n\r\n")[0]) == 431
    assert status_of(raw(port, six + b"\r\n", read_all=False)[0]) == 200
    # a decoded CR LF in $uri adds no header line (nginx would let it through)
    out, _ = raw(port, b"GET /r%0d%0aSet-Cookie:%20a=b HTTP/1.0\r\n\r\n")
    head = out.split(b"\r\n\r\n")[0].lower()
    assert b"\r\nlocation: http://x/r%0d%0aset-cookie: a=b" in head, out
    assert b"\r\nset-cookie" not in head, out
    out, _ = raw(port, b"GET /hdr/%0d%0aX-Evil:%201 HTTP/1.0\r\n\r\n")
    hdrs = json.loads(body_of(out))["headers"]
    assert ["X-Uri", "/hdr/%0D%0AX-Evil: 1"] in hdrs and "X-Evil" not in dict(hdrs), hdrs
    # HTTP/1.2 is served as HTTP/1.1
    out, closed = raw(port, b"GET /a HTTP/1.2\r\nHost: x\r\n\r\n", timeout=1)
    assert status_of(out) == 200 and not closed, out
    z.stop()
    u.stop()
