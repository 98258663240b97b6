"""Static files, follow-ups of issue 15: gzip_static on|off|always, multipart/byteranges
(several ranges, max_ranges, If-Range, Range beside gzip), and the same requests
against Debian's nginx: statuses, headers and bodies byte for byte (the multipart
boundary aside)."""
import gzip
import os
import re
import zlib

import test_nginx_diff
import test_static
from zg import Skip, Zonegate, free_port, raw, request

MIME = test_static.MIME
JS = b"var app = 'plain';\n" * 40
JS_GZ = gzip.compress(b"var app = 'from the .gz file';\n" * 40, mtime=0)
CSS_GZ = gzip.compress(b"body { margin: 0 }\n" * 10, mtime=0)


def make_root():
    root = test_static.make_root()
    files = {"gz/app.js": JS, "gz/app.js.gz": JS_GZ, "gz/only.css.gz": CSS_GZ,
             "gz/dir.js.gz/x": b"x\n", "gz/dir.js": b"a file beside a directory .gz\n",
             "gz/idx/index.html": b"<p>index</p>\n" * 10,
             "gz/idx/index.html.gz": gzip.compress(b"<p>gz index</p>\n" * 10, mtime=0)}
    for name, body in files.items():
        p = os.path.join(root, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(body)
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, "gz")):
        for n in dirnames:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
    # a link to the .gz (refused with disable_symlinks on) beside a plain file
    with open(os.path.join(root, "gz/lnk.js"), "wb") as f:
        f.write(b"plain link target\n")
    os.chmod(os.path.join(root, "gz/lnk.js"), 0o644)
    os.symlink("app.js.gz", os.path.join(root, "gz/lnk.js.gz"))
    # the .gz file has its own date: its Last-Modified and ETag are the answer's
    os.utime(os.path.join(root, "gz/app.js"), (1700000000, 1700000000))
    os.utime(os.path.join(root, "gz/app.js.gz"), (1700001000, 1700001000))
    os.utime(os.path.join(root, "gz/only.css.gz"), (1700002000, 1700002000))
    return root


HTTP = """
    include {mime};
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /gz/ {{ gzip_static on; }}
        location /gzv/ {{ alias {root}/gz/; gzip_static on; gzip_vary on; }}
        location /gza/ {{ alias {root}/gz/; gzip_static always; }}
        location /gzoff/ {{ alias {root}/gz/; gzip_static off; }}
        location /gzgzip/ {{ alias {root}/gz/; gzip_static on; gzip on; gzip_vary on;
                            gzip_types application/javascript text/css; gzip_min_length 1; }}
        location /gzpx/ {{ alias {root}/gz/; gzip_static on; gzip_proxied any; }}
        location /gztry/ {{ alias {root}/gz/; gzip_static on; try_files $uri $uri.css =404; }}
        location /gzep/ {{ alias {root}/gz/; gzip_static on; error_page 404 /gz/app.js; }}
        location /gzsym/ {{ alias {root}/gz/; gzip_static on; disable_symlinks on; }}
        location /gzgun/ {{ alias {root}/gz/; gzip_static always; gunzip on; gzip_vary on; }}
        location /gz10/ {{ alias {root}/gz/; gzip_static on; gzip_http_version 1.1; }}
        location /utf/ {{ alias {root}/; charset utf-8; }}
        location /mr1/ {{ alias {root}/; max_ranges 1; }}
        location /mr2/ {{ alias {root}/; max_ranges 2; }}
        location /mr0/ {{ alias {root}/; max_ranges 0; }}
        location /zip/ {{ alias {root}/; gzip on; gzip_min_length 1;
                         gzip_types application/octet-stream text/plain; }}
        location /sf/ {{ alias {root}/; sendfile on; }}
        location /noetag/ {{ alias {root}/; etag off; }}
        location /ep200/ {{ alias {root}/bare/; error_page 403 =200 /bin.dat; }}
        location /ep404/ {{ alias {root}/bare/; error_page 403 /bin.dat; }}
    }}
"""
GZ = {"Accept-Encoding": "gzip"}
WHOLE = bytes(range(256)) * 40
BOUNDARY = re.compile(rb"\d{20}")


def start(root):
    port = free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + HTTP + "}}\n", wait_ports=[port],
                 port=port, root=root, mime=MIME)
    return z, port


def parts(h, body):
    """the parts of a multipart/byteranges answer: [(content-type, content-range, bytes)]"""
    m = re.match(r"multipart/byteranges; boundary=(\d{20})$", h["content-type"])
    assert m, h
    b = m.group(1).encode()
    assert body.startswith(b"\r\n--" + b + b"\r\n"), body[:60]
    assert body.endswith(b"\r\n--" + b + b"--\r\n"), body[-60:]
    out = []
    for chunk in body[:-len(b"\r\n--" + b + b"--\r\n")].split(b"\r\n--" + b + b"\r\n")[1:]:
        head, data = chunk.split(b"\r\n\r\n", 1)
        hd = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        out.append((hd.get("Content-Type"), hd["Content-Range"], data))
    return out


def test_gzip_static():
    root = make_root()
    z, port = start(root)
    try:
        # a client that takes gzip: the .gz file as it is, with its own validators
        st, h, body = request(port, "GET", "/gz/app.js", headers=GZ)
        assert st == 200 and body == JS_GZ and h["content-encoding"] == "gzip", (st, h)
        assert h["content-type"] == "application/javascript", h
        assert h["content-length"] == str(len(JS_GZ)), h
        assert h["last-modified"] == "Tue, 14 Nov 2023 22:30:00 GMT", h
        assert h["etag"] == '"%x-%x"' % (1700001000, len(JS_GZ)), h
        assert h["accept-ranges"] == "bytes" and "vary" not in h, h
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS).startswith(b"var app = 'from")
        # one that does not: the file itself
        for hdrs in [{}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "br"}]:
            st, h, body = request(port, "GET", "/gz/app.js", headers=hdrs)
            assert st == 200 and body == JS and "content-encoding" not in h, (hdrs, h)
            assert h["etag"] == '"%x-%x"' % (1700000000, len(JS)), h
        # only the .gz exists: it answers those that take it, 404 for the others
        st, h, body = request(port, "GET", "/gz/only.css", headers=GZ)
        assert st == 200 and body == CSS_GZ and h["content-type"] == "text/css", h
        assert request(port, "GET", "/gz/only.css")[0] == 404
        # a directory named FILE.gz is not a .gz file
        st, h, body = request(port, "GET", "/gz/dir.js", headers=GZ)
        assert st == 200 and "content-encoding" not in h and body.startswith(b"a file"), h
        # gzip_vary: Vary whichever file answers
        for hdrs, want in [(GZ, JS_GZ), ({}, JS)]:
            st, h, body = request(port, "GET", "/gzv/app.js", headers=hdrs)
            assert st == 200 and body == want and h["vary"] == "Accept-Encoding", h
        # always: the .gz to every client, no Vary
        st, h, body = request(port, "GET", "/gza/app.js")
        assert st == 200 and body == JS_GZ and h["content-encoding"] == "gzip", h
        assert "vary" not in h, h
        # always with gunzip: a client that takes no gzip gets the .gz inflated
        st, h, body = request(port, "GET", "/gzgun/app.js")
        assert st == 200 and "content-encoding" not in h and h["vary"] == "Accept-Encoding", h
        assert body == gzip.decompress(JS_GZ) and h["etag"].startswith('W/"'), h
        st, h, body = request(port, "GET", "/gzgun/app.js", headers=GZ)
        assert st == 200 and body == JS_GZ and h["content-encoding"] == "gzip", h
        # off: the file
        st, h, body = request(port, "GET", "/gzoff/app.js", headers=GZ)
        assert st == 200 and body == JS and "content-encoding" not in h, h
        # with gzip on: the .gz is not compressed again, one Vary either way
        out, _ = raw(port, b"GET /gzgzip/app.js HTTP/1.1\r\nHost: x\r\n"
                           b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n")
        head, body = out.split(b"\r\n\r\n", 1)
        assert body == JS_GZ and head.lower().count(b"vary: accept-encoding") == 1, head
        out, _ = raw(port, b"GET /gzgzip/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, body = out.split(b"\r\n\r\n", 1)
        assert head.lower().count(b"vary: accept-encoding") == 1, head
        assert b"content-encoding" not in head.lower() and body == JS, head
        # gzip_proxied: a request with Via takes the .gz only when allowed
        via = {"Accept-Encoding": "gzip", "Via": "1.1 proxy"}
        assert request(port, "GET", "/gz/app.js", headers=via)[2] == JS
        assert request(port, "GET", "/gzpx/app.js", headers=via)[2] == JS_GZ
        # HTTP/1.0 under gzip_http_version 1.1: the file
        out, _ = raw(port, b"GET /gz10/app.js HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
        assert out.endswith(JS) and b"content-encoding" not in out.lower(), out[:200]
        # conditions and ranges apply to the .gz file
        etag = '"%x-%x"' % (1700001000, len(JS_GZ))
        assert request(port, "GET", "/gz/app.js",
                       headers={"Accept-Encoding": "gzip", "If-None-Match": etag})[0] == 304
        st, h, body = request(port, "GET", "/gz/app.js",
                              headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
        assert st == 206 and body == JS_GZ[:10], (st, h)
        assert h["content-range"] == "bytes 0-9/%d" % len(JS_GZ), h
        # POST: 405 as without it
        assert request(port, "POST", "/gz/app.js", headers=GZ, body=b"x")[0] == 405
    finally:
        z.stop()


def test_gzip_static_config():
    from zg import zonegate_t
    rc, out, _ = zonegate_t("http {{ server {{ listen 127.0.0.1:1; gzip_static maybe; }} }}")
    assert rc == 1 and "gzip_static" in out and "must be" in out, out
    rc, out, _ = zonegate_t("http {{ gzip_static on; gzip_static off; }}")
    assert rc == 1 and "duplicate" in out, out
    rc, out, _ = zonegate_t("http {{ max_ranges x; }}")
    assert rc == 1 and "max_ranges" in out, out


def test_multipart_byteranges():
    root = make_root()
    z, port = start(root)
    try:
        st, h, body = request(port, "GET", "/bin.dat", headers={"Range": "bytes=0-1,5-6,-3"})
        assert st == 206 and "content-range" not in h and "accept-ranges" not in h, h
        assert h["content-length"] == str(len(body)), h
        assert parts(h, body) == [
            ("application/octet-stream", "bytes 0-1/10240", WHOLE[0:2]),
            ("application/octet-stream", "bytes 5-6/10240", WHOLE[5:7]),
            ("application/octet-stream", "bytes 10237-10239/10240", WHOLE[10237:])]
        # overlapping ranges stay apart; an unsatisfiable one is dropped
        st, h, body = request(port, "GET", "/bin.dat",
                              headers={"Range": "bytes=0-99,50-149,99999-"})
        assert st == 206 and [p[1:] for p in parts(h, body)] == [
            ("bytes 0-99/10240", WHOLE[0:100]), ("bytes 50-149/10240", WHOLE[50:150])], h
        # one satisfiable left of several: a plain 206
        st, h, body = request(port, "GET", "/bin.dat", headers={"Range": "bytes=5-6,99999-"})
        assert st == 206 and h["content-range"] == "bytes 5-6/10240" and body == WHOLE[5:7]
        # adding up to more than the file: the whole file
        st, h, body = request(port, "GET", "/bin.dat",
                              headers={"Range": "bytes=0-6000,4000-9000"})
        assert st == 200 and body == WHOLE and h["accept-ranges"] == "bytes", h
        # many tiny parts whose heads outweigh the file (nginx 1.29.5's limit)
        many = ",".join("%d-%d" % (i * 2, i * 2) for i in range(60))
        st, h, body = request(port, "GET", "/bin.dat", headers={"Range": "bytes=" + many})
        assert st == 200 and body == WHOLE, st
        # charset: each part's type has it
        st, h, body = request(port, "GET", "/utf/a.txt", headers={"Range": "bytes=0-1,3-4"})
        assert st == 206 and parts(h, body)[0][0] == "text/plain; charset=utf-8", body
        # max_ranges: more than it allows gets the whole file; 0 turns ranges off
        st, h, body = request(port, "GET", "/mr1/bin.dat", headers={"Range": "bytes=0-1,3-4"})
        assert st == 200 and body == WHOLE and h["accept-ranges"] == "bytes", h
        st, h, body = request(port, "GET", "/mr1/bin.dat", headers={"Range": "bytes=3-4"})
        assert st == 206 and body == WHOLE[3:5], h
        st, h, body = request(port, "GET", "/mr2/bin.dat", headers={"Range": "bytes=0-1,3-4"})
        assert st == 206 and len(parts(h, body)) == 2, h
        st, h, body = request(port, "GET", "/mr0/bin.dat", headers={"Range": "bytes=3-4"})
        assert st == 200 and body == WHOLE and "accept-ranges" not in h, h
        # If-Range that does not match: the whole file
        st, h, body = request(port, "GET", "/bin.dat",
                              headers={"Range": "bytes=0-1,5-6", "If-Range": '"x"'})
        assert st == 200 and body == WHOLE, st
        # sendfile on: the parts are read (same bytes); HEAD: the head only
        st, h, body = request(port, "GET", "/sf/bin.dat", headers={"Range": "bytes=0-1,5-6"})
        assert st == 206 and [p[2] for p in parts(h, body)] == [WHOLE[0:2], WHOLE[5:7]]
        st, h2, body = request(port, "HEAD", "/bin.dat", headers={"Range": "bytes=0-1,5-6"})
        assert st == 206 and body == b"" and h2["content-length"] == h["content-length"], h2
        # keep-alive: a multipart answer, then another request on the connection
        out, _ = raw(port, b"GET /bin.dat HTTP/1.1\r\nHost: x\r\nRange: bytes=0-1,5-6\r\n\r\n"
                           b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 206") == 1 and out.endswith(b"hello static\n"), out[-80:]
        # a big file: parts larger than a read piece
        with open(os.path.join(root, "big.dat"), "wb") as f:
            f.write(os.urandom(1 << 20))
        os.chmod(os.path.join(root, "big.dat"), 0o644)
        big = open(os.path.join(root, "big.dat"), "rb").read()
        for path in ("/big.dat", "/sf/big.dat"):  # read, and sendfile part by part
            st, h, body = request(port, "GET", path, timeout=30,
                                  headers={"Range": "bytes=0-199999,500000-899999,-100"})
            assert st == 206 and [p[2] for p in parts(h, body)] == [
                big[:200000], big[500000:900000], big[-100:]], path
        # a slow reader of a sendfile multipart answer gets it all
        import socket
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /sf/big.dat HTTP/1.1\r\nHost: x\r\nRange: bytes=0-299999,400000-\r\n"
                  b"Connection: close\r\n\r\n")
        out = b""
        while True:
            b = s.recv(8192)
            if not b:
                break
            out += b
        s.close()
        head, body = out.split(b"\r\n\r\n", 1)
        hd = dict(l.split(": ", 1) for l in head.decode().lower().split("\r\n")[1:])
        assert [p[2] for p in parts(hd, body)] == [big[:300000], big[400000:]]
    finally:
        z.stop()


def test_range_beside_gzip():
    """nginx ignores Range when gzip compresses the answer: a gzip client gets the
    whole file compressed (no Accept-Ranges); another gets its 206"""
    root = make_root()
    z, port = start(root)
    try:
        st, h, body = request(port, "GET", "/zip/bin.dat",
                              headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9,20-29"})
        assert st == 200 and h["content-encoding"] == "gzip" and "accept-ranges" not in h, h
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == WHOLE
        st, h, body = request(port, "GET", "/zip/bin.dat",
                              headers={"Accept-Encoding": "gzip", "Range": "bytes=99999-"})
        assert st == 200 and h["content-encoding"] == "gzip", (st, h)
        st, h, body = request(port, "GET", "/zip/bin.dat", headers={"Range": "bytes=0-9"})
        assert st == 206 and body == WHOLE[:10] and "content-encoding" not in h, h
        st, h, body = request(port, "GET", "/zip/bin.dat", headers={"Range": "bytes=99999-"})
        assert st == 416 and h["content-range"] == "bytes */10240", h
    finally:
        z.stop()


def _norm(h, body):
    ct = h.get("content-type")
    if ct is not None:
        ct = re.sub(r"\d{20}", "B", ct)
    if body is not None and ct is not None and ct.startswith("multipart/byteranges"):
        body = BOUNDARY.sub(b"B", body)
    return ct, body


def test_static_more_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    root = make_root()
    nport = free_port()
    z, zport = start(root)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + HTTP + "}}\n", nport, root=root, mime=MIME)
    via = {"Accept-Encoding": "gzip", "Via": "1.1 p"}
    cases = [
        ("GET", "/gz/app.js", GZ), ("GET", "/gz/app.js", {}), ("HEAD", "/gz/app.js", GZ),
        ("GET", "/gz/app.js", {"Accept-Encoding": "gzip;q=0"}),
        ("GET", "/gz/app.js", {"Accept-Encoding": "deflate, gzip"}),
        ("GET", "/gz/only.css", GZ), ("GET", "/gz/only.css", {}), ("GET", "/gz/dir.js", GZ),
        ("GET", "/gzv/app.js", GZ), ("GET", "/gzv/app.js", {}), ("GET", "/gzv/only.css", {}),
        ("GET", "/gza/app.js", {}), ("GET", "/gza/app.js", GZ), ("GET", "/gzoff/app.js", GZ),
        ("GET", "/gzgzip/app.js", GZ), ("GET", "/gzgzip/app.js", {}),
        ("GET", "/gz/app.js", via), ("GET", "/gzpx/app.js", via),
        ("GET", "/gz/idx/", GZ), ("GET", "/gz/idx/", {}), ("GET", "/gztry/only", GZ),
        ("GET", "/gztry/only", {}), ("GET", "/gzep/nothing", GZ), ("GET", "/gzep/nothing", {}),
        ("GET", "/gzsym/app.js", GZ), ("GET", "/gzsym/lnk.js", GZ), ("GET", "/gzsym/lnk.js", {}),
        ("GET", "/gzgun/app.js", GZ), ("GET", "/gzgun/app.js", {}),
        ("HEAD", "/gzgun/app.js", {}), ("GET", "/gzgun/app.js", {"Range": "bytes=0-9"}),
        ("GET", "/gz/app.js", dict(GZ, **{"If-None-Match": '"6553f4e8-%x"' % len(JS_GZ)})),
        ("GET", "/gz/app.js", dict(GZ, **{"If-Modified-Since": "Tue, 14 Nov 2023 22:30:00 GMT"})),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,5-6"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,5-6,-3"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-99,50-149"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-99,99999-"}),
        ("GET", "/bin.dat", {"Range": "bytes=5-6,99999-,7-8"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-6000,4000-9000"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-5000,4000-9000"}),
        ("GET", "/bin.dat", {"Range": "bytes=99999-,88888-"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,x"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1, 4-5"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,5-6", "If-Range": '"6553f100-2800"'}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,5-6", "If-Range": '"x"'}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1,5-6",
                             "If-Range": "Tue, 14 Nov 2023 22:13:20 GMT"}),
        ("GET", "/noetag/bin.dat", {"Range": "bytes=0-1", "If-Range": '"6553f100-2800"'}),
        ("HEAD", "/bin.dat", {"Range": "bytes=0-1,5-6"}),
        ("GET", "/sf/bin.dat", {"Range": "bytes=0-1,5-6"}),
        ("GET", "/utf/a.txt", {"Range": "bytes=0-1,3-4"}),
        ("GET", "/mr1/bin.dat", {"Range": "bytes=0-1,3-4"}),
        ("GET", "/mr1/bin.dat", {"Range": "bytes=3-4"}),
        ("GET", "/mr2/bin.dat", {"Range": "bytes=0-1,3-4"}),
        ("GET", "/mr2/bin.dat", {"Range": "bytes=0-1,3-4,6-7"}),
        ("GET", "/mr0/bin.dat", {"Range": "bytes=3-4"}),
        ("GET", "/zip/bin.dat", dict(GZ, Range="bytes=0-9")),
        ("GET", "/zip/bin.dat", dict(GZ, Range="bytes=0-9,20-29")),
        ("GET", "/zip/bin.dat", {"Range": "bytes=0-9,20-29"}),
        ("GET", "/zip/a.txt", dict(GZ, Range="bytes=0-1")),
        ("GET", "/ep200/", {}), ("GET", "/ep200/", {"Range": "bytes=0-1"}),
        ("GET", "/ep200/", {"Range": "bytes=0-1,4-5"}),
        ("GET", "/ep200/", {"If-None-Match": '"6553f100-2800"'}),
        ("GET", "/ep200/", {"If-Match": '"x"'}),
        ("GET", "/ep404/", {"Range": "bytes=0-1"}),
        ("GET", "/ep404/", {"If-None-Match": '"6553f100-2800"'}),
    ]
    names = ["content-length", "content-encoding", "vary", "last-modified", "etag",
             "content-range", "accept-ranges"]
    try:
        for method, path, hdrs in cases:
            got = []
            for port in (zport, nport):
                st, h, body = request(port, method, path, headers=dict(hdrs))
                kept = {k: h.get(k) for k in names}
                ct, body = _norm(h, body)
                if h.get("content-encoding") == "gzip" and not path.startswith("/gz"):
                    # compressed here and there: the same bytes once inflated
                    body = zlib.decompress(body, 16 + zlib.MAX_WBITS) if body else body
                    kept["content-length"] = None
                if h.get("content-encoding") == "gzip" and path.startswith("/gz"):
                    # a .gz file takes ranges since nginx 1.23.4 (Debian's is 1.22)
                    kept["accept-ranges"] = None
                if st >= 400:
                    kept["content-length"] = ct = body = None  # the error pages differ
                got.append((st, ct, kept, body))
            assert got[0] == got[1], (method, path, hdrs, got[0], got[1])
    finally:
        z.stop()
        n.stop()


VARS = """
    server {{
        listen 127.0.0.1:{port};
        root {root}/link;
        location /r/ {{ return 200 "$document_root|$realpath_root|$request_filename\\n"; }}
        location /al/ {{ alias {root}/link/sub/;
                        return 200 "$document_root|$realpath_root|$request_filename\\n"; }}
        location ~ ^/re/([a-z]+)/(.*)$ {{ alias {root}/link/$1/$2;
                        return 200 "$document_root|$realpath_root|$request_filename\\n"; }}
        location /hdr/ {{ alias {root}/link/; add_header X-File $request_filename;
                         add_header X-Real $realpath_root; }}
        location /gone/ {{ root {root}/nowhere;
                          return 200 "[$document_root|$realpath_root|$request_filename]\\n"; }}
        location /try/ {{ try_files $uri.txt =404; }}
    }}
"""


def vars_root():
    d = test_static.make_root()
    real = os.path.join(d, "real")
    os.makedirs(os.path.join(real, "sub"))
    os.chmod(real, 0o755)
    os.chmod(os.path.join(real, "sub"), 0o755)
    with open(os.path.join(real, "a.txt"), "wb") as f:
        f.write(b"a\n")
    os.chmod(os.path.join(real, "a.txt"), 0o644)
    os.symlink("real", os.path.join(d, "link"))
    return d


def test_document_root_realpath_root_request_filename():
    """the three variables, read by a sandboxed worker (realpath(3) reads links), with
    root, alias, a regex alias with captures, and a root that does not exist"""
    root = vars_root()
    port = free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + VARS + "}}\n", wait_ports=[port],
                 port=port, root=root)
    try:
        link, real = root + "/link", os.path.realpath(root + "/real")
        for path, want in [
                ("/r/x.txt", "%s|%s|%s/r/x.txt" % (link, real, link)),
                ("/al/b/c", "%s/sub/|%s/sub|%s/sub/b/c" % (link, real, link)),
                ("/re/sub/d.txt", "%s/sub/d.txt|%s/sub/d.txt|%s/sub/d.txt" % (link, real, link)),
                ("/gone/x", "[%s/nowhere||%s/nowhere/gone/x]" % (root, root))]:
            st, _, body = request(port, "GET", path)
            if path.startswith("/re/"):
                # realpath of a file that is not there fails: empty
                want = "%s/sub/d.txt||%s/sub/d.txt" % (link, link)
            assert st == 200 and body.decode() == want + "\n", (path, body, want)
        st, h, body = request(port, "GET", "/hdr/a.txt")
        assert st == 200 and body == b"a\n", (st, body)
        assert h["x-file"] == link + "/a.txt" and h["x-real"] == real, h
        assert z.proc.poll() is None and len(z.workers()) == 1  # the sandbox let it be
    finally:
        z.stop()


def test_variables_config_errors():
    from zg import zonegate_t
    rc, out, _ = zonegate_t("http {{ server {{ listen 127.0.0.1:1; root /x/$realpath_root; }} }}")
    assert rc == 1 and "$realpath_root variable cannot be used" in out, out
    rc, out, _ = zonegate_t("http {{ map $uri $document_root {{ default x; }} "
                            "server {{ listen 127.0.0.1:1; }} }}")
    assert rc == 1 and 'duplicate "document_root" variable' in out, out


def test_variables_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    root = vars_root()
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + VARS + "}}\n", wait_ports=[zport],
                 port=zport, root=root)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + VARS + "}}\n", nport, root=root)
    try:
        for path in ["/r/x.txt", "/r/", "/al/b/c", "/al/", "/re/sub/d.txt", "/re/x/",
                     "/gone/x", "/hdr/a.txt", "/try/a", "/try/zz"]:
            got = []
            for port in (zport, nport):
                st, h, body = request(port, "GET", path)
                got.append((st, h.get("x-file"), h.get("x-real"),
                            body if st == 200 else None))
            assert got[0] == got[1], (path, got[0], got[1])
    finally:
        z.stop()
        n.stop()
