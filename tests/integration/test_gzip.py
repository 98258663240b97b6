"""gzip (issue 15): nginx's gzip module on proxied and local answers — which answers
are compressed, the headers that change, bodies that round-trip byte-exact through
`gzip -d` and Python's zlib, and the same decisions as Debian's nginx."""
import os
import subprocess
import zlib

import test_nginx_diff
from zg import Skip, Upstream, Zonegate, free_port, raw, request, status_of

HTTP = """
    upstream app {{ server {up}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        gzip on;
        gzip_types application/json application/octet-stream;
        gzip_min_length 100;
        location / {{ proxy_pass http://app; }}
        location /vary/ {{ proxy_pass http://app/; gzip_vary on; }}
        location /level9/ {{ proxy_pass http://app/; gzip_comp_level 9; }}
        location /proxied/ {{ proxy_pass http://app/; gzip_proxied any; }}
        location /expired/ {{ proxy_pass http://app/; gzip_proxied expired; }}
        location /v10/ {{ proxy_pass http://app/; gzip_http_version 1.0; }}
        location /noua/ {{ proxy_pass http://app/; gzip_disable "curl|Wget"; }}
        location /off/ {{ proxy_pass http://app/; gzip off; }}
        location /any/ {{ proxy_pass http://app/; gzip_types *; }}
        location = /page {{ return 404; }}
        location /gunzip/ {{ proxy_pass http://app/; gunzip on; gunzip_buffers 16 8k; }}
    }}
"""
CONF = "worker_processes 2;\nhttp {{\n" + HTTP + "}}\n"
GZ = {"Accept-Encoding": "gzip"}


def _start():
    u = Upstream("a")
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, up=u.addr)
    return u, z, port


def _plain(u, path):
    return request(u.port, "GET", path)[2]


def test_gzip_round_trips_byte_exact():
    u, z, port = _start()
    try:
        for path in ["/json?n=10000", "/json?n=300000&chunked=1", "/big?n=2000000",
                     "/level9/json?n=50000"]:
            st, h, body = request(port, "GET", path, headers=GZ)
            want = _plain(u, path.replace("/level9", ""))
            assert st == 200 and h.get("content-encoding") == "gzip", (path, h)
            assert "content-length" not in h and h.get("transfer-encoding") == "chunked", h
            assert len(body) < len(want), (path, len(body), len(want))
            assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == want, path
            out = subprocess.run(["gzip", "-d", "-c"], input=body, stdout=subprocess.PIPE,
                                 check=True).stdout
            assert out == want, path
        # level 9 compresses at least as well as level 1
        l1 = request(port, "GET", "/json?n=50000", headers=GZ)[2]
        l9 = request(port, "GET", "/level9/json?n=50000", headers=GZ)[2]
        assert len(l9) <= len(l1), (len(l9), len(l1))
        # keep-alive: a compressed answer then another on the same connection
        out, _ = raw(port, b"GET /json?n=5000 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
                           b"GET /json?n=5000 HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n"
                           b"Connection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 2 and out.endswith(b"0\r\n\r\n"), out[-40:]
        # HTTP/1.0 with gzip_http_version 1.0: no chunks, the body until close
        out, closed = raw(port, b"GET /v10/json?n=8000 HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
        head, body = out.split(b"\r\n\r\n", 1)
        assert closed and b"content-encoding: gzip" in head.lower(), head
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == _plain(u, "/json?n=8000")
        # HEAD: the headers of a compressed answer, no body
        st, h, body = request(port, "HEAD", "/json?n=10000", headers=GZ)
        assert st == 200 and body == b"", h
    finally:
        z.stop()
        u.stop()


def test_gzip_decisions():
    u, z, port = _start()
    try:
        def enc(path, headers=GZ, method="GET"):
            st, h, _ = request(port, method, path, headers=headers)
            return st, h.get("content-encoding"), h
        assert enc("/json?n=5000", headers={})[1] is None          # client does not accept
        assert enc("/json?n=5000", headers={"Accept-Encoding": "gzip;q=0"})[1] is None
        assert enc("/json?n=5000", headers={"Accept-Encoding": "br, GZIP;q=0.5"})[1] == "gzip"
        assert enc("/json?n=5000", headers={"Accept-Encoding": "deflate, gzip"})[1] == "gzip"
        assert enc("/json?n=50")[1] is None                        # under gzip_min_length
        assert enc("/big?n=5000&chunked=1")[1] == "gzip"            # length unknown
        assert enc("/hdr?body=" + "x" * 500)[1] is None             # text/plain: not a type
        assert enc("/any/hdr?body=" + "x" * 500)[1] == "gzip"       # gzip_types *
        assert enc("/status?code=500")[1] is None                   # status
        assert enc("/off/json?n=5000")[1] is None
        # already encoded by the upstream
        st, e, h = enc("/any/hdr?Content-Encoding=br&body=" + "x" * 500)
        assert e == "br", h
        # HTTP/1.0 under the default gzip_http_version 1.1
        out, _ = raw(port, b"GET /json?n=5000 HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
        assert b"content-encoding" not in out.split(b"\r\n\r\n")[0].lower()
        # Vary: whatever the client accepts, where the answer could be compressed
        assert enc("/vary/json?n=5000", headers={})[2].get("vary") == "Accept-Encoding"
        assert enc("/vary/json?n=5000")[2].get("vary") == "Accept-Encoding"
        assert "vary" not in enc("/vary/json?n=10")[2]
        # proxied requests (Via): off by default, any, expired
        via = {"Accept-Encoding": "gzip", "Via": "1.1 cdn"}
        assert enc("/json?n=5000", headers=via)[1] is None
        assert enc("/proxied/json?n=5000", headers=via)[1] == "gzip"
        assert enc("/expired/json?n=5000", headers=via)[1] is None
        # gzip_disable on the User-Agent
        assert enc("/noua/json?n=5000", headers={"Accept-Encoding": "gzip",
                                                 "User-Agent": "curl/7.88"})[1] is None
        assert enc("/noua/json?n=5000", headers={"Accept-Encoding": "gzip",
                                                 "User-Agent": "Mozilla/5.0"})[1] == "gzip"
        # a strong ETag becomes weak
        st, e, h = enc('/big?n=5000&etag="abc"')
        assert e == "gzip" and h["etag"] == 'W/"abc"', h
        # zonegate's own error page (text/html) is compressed too
        st, e, h = enc("/page")
        assert st == 404 and e == "gzip", h
    finally:
        z.stop()
        u.stop()


def _summary(port, path, headers):
    st, h, body = request(port, "GET", path, headers=headers)
    if h.get("content-encoding") == "gzip":
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    return (st, h.get("content-encoding"), h.get("vary"), h.get("etag"),
            "content-length" in h, body)


def test_gzip_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + HTTP + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + HTTP + "}}\n", nport, up=u.addr)
    try:
        via = {"Accept-Encoding": "gzip", "Via": "1.1 cdn"}
        script = [
            ("/json?n=10000", GZ), ("/json?n=10000", {}), ("/json?n=50", GZ),
            ("/json?n=20000&chunked=1", GZ), ("/hdr?body=" + "x" * 500, GZ),
            ("/any/hdr?body=" + "x" * 500, GZ), ("/status?code=500", GZ),
            ("/vary/json?n=5000", {}), ("/vary/json?n=5000", GZ), ("/vary/json?n=5", GZ),
            ("/json?n=5000", via), ("/proxied/json?n=5000", via),
            ("/json?n=5000", {"Accept-Encoding": "gzip;q=0"}),
            ("/noua/json?n=5000", {"Accept-Encoding": "gzip", "User-Agent": "Wget/1.21"}),
            ('/big?n=5000&etag="abc"', GZ), ("/off/json?n=5000", GZ),
            ("/gunzip/gz?n=20000", {}), ("/gunzip/gz?n=20000", GZ), ("/gz?n=20000", {}),
        ]
        for path, hdrs in script:
            a = _summary(zport, path, hdrs)
            b = _summary(nport, path, hdrs)
            assert a == b, (path, hdrs, a[:5], b[:5])
    finally:
        z.stop()
        n.stop()
        u.stop()


def test_gunzip_for_clients_without_gzip():
    u, z, port = _start()
    try:
        import gzip as gzipmod
        want = gzipmod.decompress(_plain(u, "/gz?n=300000"))
        assert len(want) == 300000
        # a client without gzip gets the bytes inflated, chunked, a weak ETag
        for path in ("/gunzip/gz?n=300000", "/gunzip/gz?n=300000&chunked=1"):
            st, h, body = request(port, "GET", path)
            assert st == 200 and "content-encoding" not in h, h
            assert body == want and h.get("transfer-encoding") == "chunked", (path, h)
            assert h["etag"] == 'W/"gz1"', h
        # a client that takes gzip gets the upstream's bytes as they are
        st, h, body = request(port, "GET", "/gunzip/gz?n=300000", headers=GZ)
        assert h.get("content-encoding") == "gzip" and body == _plain(u, "/gz?n=300000"), h
        # without gunzip the client gets gzip whatever it said (as nginx)
        st, h, body = request(port, "GET", "/gz?n=1000")
        assert h.get("content-encoding") == "gzip", h
    finally:
        z.stop()
        u.stop()
