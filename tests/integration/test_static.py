"""Static files (root, alias, index, try_files, types, etag, if_modified_since, ranges,
sendfile, disable_symlinks, charset) against a temp root; large files byte-exact with
sendfile, without it and over TLS; the same requests against Debian's nginx."""
import hashlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import test_nginx_diff
import test_tls
from zg import (Skip, Upstream, Zonegate, free_port, raw, request, spawn, status_of,
                wait_for, zonegate_t)


def make_root():
    """a root readable by the workers' user: files, a subdirectory with an index, a
    directory without one, a directory named like an index file"""
    d = tempfile.mkdtemp(prefix="zgstatic-")
    os.chmod(d, 0o755)
    files = {
        "a.txt": b"hello static\n",
        "index.html": b"<h1>root index</h1>\n",
        "page.HTML": b"<p>upper case extension</p>\n",
        "style.css": b"body { color: red }\n",
        "data.json": b'{"a": 1}\n',
        "noext": b"no extension\n",
        "empty.txt": b"",
        "sub/index.htm": b"sub index.htm\n",
        "sub/file.js": b"var x = 1;\n",
        "bare/x.txt": b"x\n",
        "dirindex/index.html/inner.txt": b"inner\n",
        "app/main.txt": b"app main\n",
        "fallback.html": b"<p>fallback</p>\n",
        "sp ace.txt": b"space\n",
    }
    for name, body in files.items():
        p = os.path.join(d, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(body)
    with open(os.path.join(d, "bin.dat"), "wb") as f:
        f.write(bytes(range(256)) * 40)  # 10240 bytes
    for dirpath, dirnames, filenames in os.walk(d):
        for n in dirnames:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
            os.utime(os.path.join(dirpath, n), (1700000000, 1700000000))
    return d


MIME = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "conf", "mime.types")

CONF = """
worker_processes 2;
http {{
    include {mime};
    default_type application/octet-stream;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html index.htm;
        location /files/ {{ alias {root}/; }}
        location ~ ^/re/(.+)$ {{ alias {root}/$1; }}
        location /try/ {{ try_files $uri /fallback.html; }}
        location /try404/ {{ try_files $uri =404; }}
        location /tryapp/ {{ try_files $uri $uri/ @app; }}
        location /tryalias/ {{ alias {root}/app/; try_files $uri =410; }}
        location @app {{ proxy_pass http://app; }}
        location /noetag/ {{ alias {root}/; etag off; }}
        location /exact/ {{ alias {root}/; if_modified_since exact; }}
        location /before/ {{ alias {root}/; if_modified_since before; }}
        location /imsoff/ {{ alias {root}/; if_modified_since off; }}
        location /quiet/ {{ alias {root}/; log_not_found off; }}
        location /types/ {{ alias {root}/; types {{ text/x-custom txt; }} default_type text/x-default; }}
        location /utf/ {{ alias {root}/; charset UTF-8; }}
        location /mapped/ {{ root {root}/sub; }}
        location /proxied/ {{ proxy_pass http://app/; }}
        location /nothing/ {{ }}
        location /ep/ {{ error_page 404 /fallback.html; error_page 403 =200 /a.txt; }}
        location = /maint {{ error_page 503 /fallback.html; return 503; }}
    }}
    server {{
        listen 127.0.0.1:{bare};
        location / {{ }}
    }}
}}
"""


def start(root=None, conf=CONF, **kw):
    root = root or make_root()
    u = Upstream("app")
    port, bare = free_port(), free_port()
    z = Zonegate(conf, wait_ports=[port, bare], port=port, bare=bare, root=root, up=u.addr,
                 mime=MIME, **kw)
    z.bare = bare
    return z, port, root, u


def test_static_files_index_and_directories():
    z, port, root, u = start()
    try:
        st, h, body = request(port, "GET", "/a.txt")
        assert st == 200 and body == b"hello static\n", (st, body)
        assert h["content-type"] == "text/plain" and h["content-length"] == "13", h
        assert h["accept-ranges"] == "bytes", h
        assert h["last-modified"] == "Tue, 14 Nov 2023 22:13:20 GMT", h
        assert h["etag"] == '"%x-%x"' % (1700000000, 13), h
        # types from mime.types, an extension in capitals, default_type
        for path, ct in [("/style.css", "text/css"), ("/data.json", "application/json"),
                         ("/page.HTML", "text/html"), ("/noext", "application/octet-stream"),
                         ("/sub/file.js", "application/javascript"),
                         ("/types/a.txt", "text/x-custom"), ("/types/style.css", "text/x-default")]:
            st, h, _ = request(port, "GET", path)
            assert st == 200 and h["content-type"] == ct, (path, st, h)
        # index: the first that exists, an internal redirect (index.htm in sub/)
        st, h, body = request(port, "GET", "/")
        assert st == 200 and body == b"<h1>root index</h1>\n", (st, body)
        st, h, body = request(port, "GET", "/sub/")
        assert st == 200 and body == b"sub index.htm\n" and h["content-type"] == "text/html", h
        # a directory without the slash: 301 to it, with the arguments
        st, h, _ = request(port, "GET", "/sub?x=1")
        assert st == 301 and h["location"] == "http://127.0.0.1:%d/sub/?x=1" % port, h
        # a directory without an index: 403; missing: 404 (logged), HEAD, POST, PUT
        st, _, _ = request(port, "GET", "/bare/")
        assert st == 403
        st, _, _ = request(port, "GET", "/missing/")
        assert st == 404
        st, _, _ = request(port, "GET", "/missing.txt")
        assert st == 404
        assert wait_for(lambda: '"%s/missing.txt" failed (2: No such file or directory)'
                        % root in z.error_log()), z.error_log()
        st, _, _ = request(port, "GET", "/quiet/nothere.txt")
        assert st == 404
        st, _, _ = request(port, "GET", "/missing2.txt")  # logged after the quiet one
        assert wait_for(lambda: "missing2.txt" in z.error_log())
        assert "nothere.txt" not in z.error_log()  # log_not_found off
        st, h, body = request(port, "HEAD", "/a.txt")
        assert st == 200 and body == b"" and h["content-length"] == "13", h
        st, _, _ = request(port, "POST", "/a.txt", body=b"x=1")
        assert st == 405
        st, _, _ = request(port, "POST", "/missing.txt", body=b"x=1")
        assert st == 404
        st, _, _ = request(port, "PUT", "/a.txt", body=b"x")
        assert st == 405
        st, _, _ = request(port, "DELETE", "/bare/")
        assert st == 405
        # an index that is a directory: its redirect goes on to a 301 (as nginx)
        st, h, _ = request(port, "GET", "/dirindex/")
        assert st == 301 and h["location"].endswith("/dirindex/index.html/"), h
        # alias: prefix and regex locations; root in a location
        st, _, body = request(port, "GET", "/files/sub/file.js")
        assert st == 200 and body == b"var x = 1;\n"
        st, _, body = request(port, "GET", "/re/app/main.txt")
        assert st == 200 and body == b"app main\n"
        st, _, body = request(port, "GET", "/mapped/index.htm")
        assert st == 404  # root + the whole URI: {root}/sub/mapped/index.htm
        st, _, body = request(port, "GET", "/sp%20ace.txt")
        assert st == 200 and body == b"space\n"
        # an empty file, proxying beside static files, a location of a server with no
        # root anywhere answers 404 as before
        st, h, body = request(port, "GET", "/empty.txt")
        assert st == 200 and body == b"" and h["content-length"] == "0", h
        st, _, body = request(port, "GET", "/proxied/x")
        assert st == 200 and body == b"ok app", body
        st, _, body = request(port, "GET", "/nothing/a.txt")
        assert st == 404  # root inherited: {root}/nothing/a.txt does not exist
        st, _, _ = request(z.bare, "GET", "/a.txt")
        assert st == 404
        # error pages: a file error_page redirected to keeps the status, no ranges, no 304
        st, h, body = request(port, "GET", "/ep/missing", headers={"Range": "bytes=0-1"})
        assert st == 404 and body == b"<p>fallback</p>\n" and h["content-type"] == "text/html"
        assert "accept-ranges" not in h and "last-modified" not in h and h["etag"], h
        st, h, body = request(port, "GET", "/ep/missing",
                              headers={"If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT"})
        assert st == 404 and body == b"<p>fallback</p>\n", st
        st, _, body = request(port, "GET", "/maint")
        assert st == 503 and body == b"<p>fallback</p>\n", (st, body)
        # keep-alive: several answers on one connection, a file then a 404 then a file
        out, _ = raw(port, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                           b"GET /bin.dat HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert out.count(b"HTTP/1.1 200") == 2 and out.count(b"HTTP/1.1 404") == 1, out[:300]
        assert out.endswith(bytes(range(256)) * 40)
    finally:
        z.stop()
        u.stop()


def test_static_conditional_requests():
    z, port, root, u = start()
    lm = "Tue, 14 Nov 2023 22:13:20 GMT"
    etag = '"%x-%x"' % (1700000000, 13)
    try:
        st, h, body = request(port, "GET", "/a.txt", headers={"If-Modified-Since": lm})
        assert st == 304 and body == b"", (st, h)
        assert h["etag"] == etag and h["last-modified"] == lm, h
        assert "content-type" not in h and "accept-ranges" not in h, h
        # exact (the default): another date is "modified", even a later one
        st, _, _ = request(port, "GET", "/a.txt",
                           headers={"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"})
        assert st == 200
        st, _, _ = request(port, "GET", "/exact/a.txt",
                           headers={"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"})
        assert st == 200
        st, _, _ = request(port, "GET", "/exact/a.txt", headers={"If-Modified-Since": lm})
        assert st == 304
        st, _, _ = request(port, "GET", "/before/a.txt",
                           headers={"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"})
        assert st == 304
        st, _, _ = request(port, "GET", "/a.txt",
                           headers={"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"})
        assert st == 200
        st, _, _ = request(port, "GET", "/imsoff/a.txt", headers={"If-Modified-Since": lm})
        assert st == 200
        # If-None-Match: the ETag, a list, W/, *; a different one
        for inm in [etag, '"x", ' + etag, "W/" + etag, "*"]:
            st, _, _ = request(port, "GET", "/a.txt", headers={"If-None-Match": inm})
            assert st == 304, inm
        st, _, _ = request(port, "GET", "/a.txt", headers={"If-None-Match": '"other"'})
        assert st == 200
        st, _, _ = request(port, "GET", "/a.txt",
                           headers={"If-None-Match": '"other"', "If-Modified-Since": lm})
        assert st == 200  # both must say "not modified"
        st, h, _ = request(port, "GET", "/noetag/a.txt")
        assert st == 200 and "etag" not in h, h
        # If-Match / If-Unmodified-Since: 412
        st, _, _ = request(port, "GET", "/a.txt", headers={"If-Match": '"nope"'})
        assert st == 412
        st, _, _ = request(port, "GET", "/a.txt", headers={"If-Match": etag})
        assert st == 200
        st, _, _ = request(port, "GET", "/a.txt",
                           headers={"If-Unmodified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"})
        assert st == 412
    finally:
        z.stop()
        u.stop()


def test_static_ranges():
    z, port, root, u = start()
    whole = bytes(range(256)) * 40
    try:
        for rng, a, b in [("bytes=0-99", 0, 99), ("bytes=100-", 100, 10239),
                          ("bytes=-10", 10230, 10239), ("bytes=10000-20000", 10000, 10239),
                          ("BYTES=5-5", 5, 5), ("bytes= 1 - 2", 1, 2)]:
            st, h, body = request(port, "GET", "/bin.dat", headers={"Range": rng})
            assert st == 206, (rng, st)
            assert h["content-range"] == "bytes %d-%d/10240" % (a, b), (rng, h)
            assert body == whole[a:b + 1] and h["content-length"] == str(b - a + 1), rng
            assert "accept-ranges" not in h and h["etag"], h
        for rng in ["bytes=20000-", "bytes=-0", "bytes=x-1", "bytes=5-1"]:
            st, h, body = request(port, "GET", "/bin.dat", headers={"Range": rng})
            assert st == 416 and h["content-range"] == "bytes */10240", (rng, st, h)
        # several ranges: multipart/byteranges (test_static_more.py)
        st, h, body = request(port, "GET", "/bin.dat", headers={"Range": "bytes=0-1,5-6"})
        assert st == 206 and h["content-type"].startswith("multipart/byteranges"), (st, h)
        # not a byte range: ignored
        st, _, body = request(port, "GET", "/bin.dat", headers={"Range": "items=0-1"})
        assert st == 200 and body == whole
        # If-Range: the ETag or the date must match, else the whole body
        st, h, _ = request(port, "GET", "/bin.dat")
        for ifr, want in [(h["etag"], 206), ('"old"', 200), (h["last-modified"], 206),
                          ("Mon, 13 Nov 2023 00:00:00 GMT", 200)]:
            st, _, _ = request(port, "GET", "/bin.dat",
                               headers={"Range": "bytes=0-0", "If-Range": ifr})
            assert st == want, (ifr, st)
        # HEAD with a range
        st, h, body = request(port, "HEAD", "/bin.dat", headers={"Range": "bytes=0-9"})
        assert st == 206 and body == b"" and h["content-length"] == "10", h
    finally:
        z.stop()
        u.stop()


def test_static_try_files_fallbacks():
    z, port, root, u = start()
    try:
        # found: served from this location
        st, _, body = request(port, "GET", "/try/../a.txt")
        assert st == 200 and body == b"hello static\n"
        os.makedirs(os.path.join(root, "try"), mode=0o755)
        with open(os.path.join(root, "try", "t.txt"), "wb") as f:
            f.write(b"in try\n")
        os.chmod(os.path.join(root, "try", "t.txt"), 0o644)
        st, _, body = request(port, "GET", "/try/t.txt")
        assert st == 200 and body == b"in try\n"
        # URI fall-back: an internal redirect, the args kept
        st, h, body = request(port, "GET", "/try/none.txt?q=1")
        assert st == 200 and body == b"<p>fallback</p>\n" and h["content-type"] == "text/html"
        # =CODE
        st, _, _ = request(port, "GET", "/try404/none.txt")
        assert st == 404
        # @named proxies to the upstream; $uri/ finds a directory and its index
        st, _, body = request(port, "GET", "/tryapp/none")
        assert st == 200 and body == b"ok app", body
        os.makedirs(os.path.join(root, "tryapp", "d"), mode=0o755)
        os.chmod(os.path.join(root, "tryapp"), 0o755)
        with open(os.path.join(root, "tryapp", "d", "index.html"), "wb") as f:
            f.write(b"tryapp dir index\n")
        os.chmod(os.path.join(root, "tryapp", "d", "index.html"), 0o644)
        st, _, body = request(port, "GET", "/tryapp/d")
        assert st == 200 and body == b"tryapp dir index\n", (st, body)
        # try_files under alias
        st, _, body = request(port, "GET", "/tryalias/main.txt")
        assert st == 200 and body == b"app main\n", (st, body)
        st, _, _ = request(port, "GET", "/tryalias/none.txt")
        assert st == 410
    finally:
        z.stop()
        u.stop()


def test_static_paths_never_leave_the_root():
    outside = tempfile.mkdtemp(prefix="zgoutside-")
    os.chmod(outside, 0o755)
    with open(os.path.join(outside, "secret.txt"), "wb") as f:
        f.write(b"secret\n")
    os.chmod(os.path.join(outside, "secret.txt"), 0o644)
    root = make_root()
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(root, "out.txt"))
    os.symlink(outside, os.path.join(root, "outdir"))
    os.symlink(os.path.join(root, "a.txt"), os.path.join(root, "in.txt"))
    conf = CONF.replace("location /nothing/ {{ }}", """location /nothing/ {{ }}
        location /strict/ {{ alias {root}/; disable_symlinks on; }}
        location /owner/ {{ alias {root}/; disable_symlinks if_not_owner; }}
        location /img {{ alias {root}/app/; }}""")
    z, port, root, u = start(root, conf)
    try:
        # the parser refuses ".." above the root, encoded or not
        for target in [b"/../etc/passwd", b"/%2e%2e/%2e%2e/etc/passwd", b"/sub/../../a.txt",
                       b"/%2E%2E%2Fetc%2Fpasswd", b"/files/..%2f..%2fetc/passwd"]:
            out, _ = raw(port, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            assert status_of(out) in (400, 404), (target, out[:100])
            assert b"root:" not in out
        out, _ = raw(port, b"GET /sub/%2e%2e/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(out) == 200 and out.endswith(b"hello static\n"), out
        # nginx's alias pitfall (/img../): a ".." after the alias is refused here
        st, _, body = request(port, "GET", "/img../a.txt")
        assert st == 404 and body != b"hello static\n", (st, body)
        # symlinks: followed by default (nginx's default)
        st, _, body = request(port, "GET", "/out.txt")
        assert st == 200 and body == b"secret\n"
        # disable_symlinks on: a link anywhere after the root is 403, out or in
        for path in ["/strict/out.txt", "/strict/outdir/secret.txt", "/strict/in.txt"]:
            st, _, body = request(port, "GET", path)
            assert st == 403 and body != b"secret\n", (path, st)
        st, _, body = request(port, "GET", "/strict/sub/file.js")
        assert st == 200 and body == b"var x = 1;\n"
        st, _, _ = request(port, "GET", "/strict/sub/")
        assert st == 200
        # if_not_owner: a link to a file of the same owner is followed, of another not
        st, _, body = request(port, "GET", "/owner/in.txt")
        assert st == 200 and body == b"hello static\n"
        os.chown(os.path.join(outside, "secret.txt"), 65534, 65534)
        st, _, body = request(port, "GET", "/owner/out.txt")
        assert st == 403, st
    finally:
        z.stop()
        u.stop()
        shutil.rmtree(outside, ignore_errors=True)


def test_static_charset_and_config_errors():
    z, port, root, u = start()
    try:
        st, h, _ = request(port, "GET", "/utf/a.txt")
        assert h["content-type"] == "text/plain; charset=UTF-8", h
        st, h, _ = request(port, "GET", "/utf/index.html")
        assert h["content-type"] == "text/html; charset=UTF-8", h
        st, h, _ = request(port, "GET", "/utf/style.css")
        assert h["content-type"] == "text/css", h  # not in charset_types
        st, h, _ = request(port, "GET", "/utf/missing")
        assert st == 404 and h["content-type"] == "text/html; charset=UTF-8", h
        st, h, _ = request(port, "GET", "/a.txt")
        assert h["content-type"] == "text/plain", h
    finally:
        z.stop()
        u.stop()
    for conf, msg in [
        ("location / {{ proxy_pass http://127.0.0.1:1; try_files $uri =404; }}", "try_files"),
        ("location / {{ root /a; alias /b; }}", "duplicate"),
        ("location @x {{ alias /b; }}", "named location"),
        ("location / {{ try_files $uri =abc; }}", "invalid code"),
        ("location / {{ if_modified_since sometimes; }}", "invalid value"),
        ("location / {{ disable_symlinks on from=/x; }}", "from="),
        ("location / {{ open_file_cache max=x; }}", "invalid parameter"),
        ("location / {{ index /a.html b.html; }}", "absolute"),
        ("location / {{ source_charset koi8-r; }}", "charset module"),
    ]:
        rc, out, _ = zonegate_t("events {{ }}\nhttp {{ server {{ listen 127.0.0.1:1; "
                                + conf + " }} }}\n")
        assert rc == 1 and msg in out, (conf, out)
    rc, out, _ = zonegate_t("http {{ sendfile on; tcp_nopush on; tcp_nodelay on; "
                            "open_file_cache max=1000 inactive=20s; open_file_cache_valid 30s; "
                            "open_file_cache_min_uses 2; open_file_cache_errors on; "
                            "types {{ text/a a; }} server {{ listen 127.0.0.1:1; "
                            "types {{ }} include " + MIME + "; etag off; }} }}\n")
    assert rc == 0, out


def _big_file(root, n=20 * 1024 * 1024):
    p = os.path.join(root, "big.bin")
    block = hashlib.sha256(b"zonegate").digest() * 2048  # 64 KB
    with open(p, "wb") as f:
        for i in range(n // len(block)):
            f.write(block[i % 7:] + block[:i % 7])
    os.chmod(p, 0o644)
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), os.path.getsize(p)


def _get_big(port, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        h = hashlib.sha256()
        n = 0
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
        return r.status, n, h.hexdigest()
    finally:
        c.close()


def _strace(pid, out):
    """strace on a worker, once it is attached (None without strace)"""
    if shutil.which("strace") is None:
        return None
    err = out + ".err"
    p = spawn(["strace", "-f", "-e", "trace=sendfile,pread64", "-o", out, "-p", str(pid)],
              stdout=subprocess.DEVNULL, stderr=open(err, "w"))
    if not wait_for(lambda: "attached" in open(err).read(), 10):
        p.kill()
        p.wait()
        return None
    return p


def test_static_large_file_sendfile_read_and_tls():
    root = make_root()
    digest, size = _big_file(root)
    conf = """
worker_processes 1;
http {{
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.1:{tport} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        root {root};
        sendfile on;
        tcp_nopush on;
        location /nosf/ {{ alias {root}/; sendfile off; }}
        location /filtered/ {{ alias {root}/; expires 1h; }}
    }}
}}
"""
    port, tport = free_port(), free_port()
    z = Zonegate(conf, wait_ports=[port, tport], port=port, tport=tport, root=root,
                 crt=test_tls.crt(), key=test_tls.key())
    try:
        worker = z.wait_workers(1)[0]
        trace = os.path.join(z.dir, "strace.out")
        tracer = _strace(worker, trace)
        assert _get_big(port, "/big.bin") == (200, size, digest)
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
            calls = open(trace).read()
            assert "sendfile(" in calls and "pread64(" not in calls, calls[:500]
        # the read path (sendfile off); a header filter (expires) keeps sendfile
        assert _get_big(port, "/nosf/big.bin") == (200, size, digest)
        assert _get_big(port, "/filtered/big.bin") == (200, size, digest)
        # a range of the big file, by sendfile
        st, n, d = _get_big(port, "/big.bin", {"Range": "bytes=1000000-1999999"})
        with open(os.path.join(root, "big.bin"), "rb") as f:
            f.seek(1000000)
            want = hashlib.sha256(f.read(1000000)).hexdigest()
        assert (st, n, d) == (206, 1000000, want)
        # over TLS: read in pieces and sealed
        st, h, body, _ = test_tls.tls_get(tport, "/big.bin")
        assert st == 200 and len(body) == size and hashlib.sha256(body).hexdigest() == digest
        st, h, body, _ = test_tls.tls_get(tport, "/big.bin", headers="Range: bytes=-5\r\n")
        assert st == 206 and h["content-range"] == "bytes %d-%d/%d" % (size - 5, size - 1, size)
        # a client that goes away mid-file leaves a worker that serves the next one
        out, _ = raw(port, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", timeout=0.5,
                     read_all=False)
        assert status_of(out) == 200
        assert _get_big(port, "/big.bin") == (200, size, digest)
        # a curl client, over both
        for url in ["http://127.0.0.1:%d/big.bin" % port, "https://127.0.0.1:%d/big.bin" % tport]:
            p = subprocess.run(["curl", "-sk", url], stdout=subprocess.PIPE, timeout=120)
            assert hashlib.sha256(p.stdout).hexdigest() == digest, url
    finally:
        z.stop()


NGINX_STATIC = """
    include {mime};
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        index index.html index.htm;
        location /files/ {{ alias {root}/; }}
        location /try/ {{ try_files $uri /fallback.html; }}
        location /try404/ {{ try_files $uri $uri/ =404; }}
        location /noetag/ {{ alias {root}/; etag off; }}
        location /sf/ {{ alias {root}/; sendfile on; }}
        location /utf/ {{ alias {root}/; charset utf-8; }}
        location /ep/ {{ error_page 404 /fallback.html; error_page 403 =200 /a.txt; }}
        location = /maint {{ error_page 503 /fallback.html; return 503; }}
    }}
"""


def test_static_same_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    root = make_root()
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + NGINX_STATIC + "}}\n", wait_ports=[zport],
                 port=zport, root=root, mime=MIME)
    n = test_nginx_diff.Nginx(test_nginx_diff.NGINX_CONF.split("http {{")[0] + "http {{\n"
                              + NGINX_STATIC + "}}\n", nport, root=root, mime=MIME)
    lm = "Tue, 14 Nov 2023 22:13:20 GMT"
    cases = [
        ("GET", "/a.txt", {}), ("HEAD", "/a.txt", {}), ("GET", "/", {}), ("GET", "/sub/", {}),
        ("GET", "/sub", {}), ("GET", "/sub?a=b", {}), ("GET", "/bare/", {}),
        ("GET", "/missing", {}), ("GET", "/missing/", {}), ("GET", "/page.HTML", {}),
        ("GET", "/noext", {}), ("GET", "/style.css", {}), ("GET", "/sub/file.js", {}),
        ("GET", "/data.json", {}), ("GET", "/empty.txt", {}), ("GET", "/dirindex/", {}),
        ("GET", "/files/sub/file.js", {}), ("GET", "/files/sub", {}),
        ("GET", "/try/none.txt", {}), ("GET", "/try/../a.txt", {}),
        ("GET", "/try404/none", {}), ("GET", "/noetag/a.txt", {}), ("GET", "/sf/bin.dat", {}),
        ("GET", "/sp%20ace.txt", {}), ("POST", "/a.txt", {}), ("PUT", "/a.txt", {}),
        ("DELETE", "/bare/", {}), ("POST", "/missing", {}),
        ("GET", "/a.txt", {"If-Modified-Since": lm}),
        ("GET", "/a.txt", {"If-Modified-Since": "Wed, 15 Nov 2023 00:00:00 GMT"}),
        ("GET", "/a.txt", {"If-Modified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"}),
        ("GET", "/a.txt", {"If-Modified-Since": "garbage"}),
        ("GET", "/a.txt", {"If-None-Match": '"6553f100-d"'}),
        ("GET", "/a.txt", {"If-None-Match": 'W/"6553f100-d", "x"'}),
        ("GET", "/a.txt", {"If-None-Match": '"nope"'}),
        ("GET", "/a.txt", {"If-Match": '"nope"'}),
        ("GET", "/a.txt", {"If-Unmodified-Since": "Mon, 13 Nov 2023 00:00:00 GMT"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-99"}),
        ("GET", "/bin.dat", {"Range": "bytes=100-"}),
        ("GET", "/bin.dat", {"Range": "bytes=-10"}),
        ("GET", "/bin.dat", {"Range": "bytes=10000-20000"}),
        ("GET", "/bin.dat", {"Range": "bytes=20000-"}),
        ("GET", "/bin.dat", {"Range": "bytes=-0"}),
        ("GET", "/bin.dat", {"Range": "bytes=abc"}),
        ("GET", "/bin.dat", {"Range": "items=1-2"}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1", "If-Range": '"6553f100-2800"'}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1", "If-Range": '"x"'}),
        ("GET", "/bin.dat", {"Range": "bytes=0-1", "If-Range": lm}),
        ("GET", "/empty.txt", {"Range": "bytes=0-"}),
        ("HEAD", "/bin.dat", {"Range": "bytes=5-9"}),
        ("GET", "/sf/bin.dat", {"Range": "bytes=5-9"}),
        ("GET", "/utf/a.txt", {}), ("GET", "/utf/style.css", {}),
        ("GET", "/ep/missing", {}), ("GET", "/ep/missing", {"Range": "bytes=0-1"}),
        ("GET", "/ep/missing", {"If-Modified-Since": lm}), ("GET", "/maint", {}),
        ("HEAD", "/maint", {}),
    ]
    names = ["content-type", "content-length", "last-modified", "etag", "content-range",
             "accept-ranges"]
    try:
        for method, path, hdrs in cases:
            got = []
            for port in (zport, nport):
                st, h, body = request(port, method, path, headers=dict(hdrs),
                                      body=b"x" if method in ("POST", "PUT") else None)
                loc = h.get("location")
                if loc is not None:
                    loc = re.sub(r":\d+/", ":PORT/", loc)
                kept = {k: h.get(k) for k in names}
                if st >= 300 and st != 304 and body != b"<p>fallback</p>\n":
                    # the error pages name the server: their length and type differ
                    kept["content-length"] = kept["content-type"] = None
                    body = None
                got.append((st, loc, kept, body))
            assert got[0] == got[1], (method, path, hdrs, got[0], got[1])
    finally:
        z.stop()
        n.stop()


def test_tcp_nodelay_and_nopush():
    """tcp_nodelay off leaves Nagle's algorithm on (no TCP_NODELAY set at accept);
    a location with it on sets it once it is found; tcp_nopush on corks the socket
    around the head and the sendfile body, off does not"""
    if shutil.which("strace") is None:
        raise Skip("strace is missing")
    root = make_root()
    conf = """
worker_processes 1;
http {{
    server {{
        listen 127.0.0.1:{port};
        root {root};
        tcp_nodelay off;
        sendfile on;
        location /on/ {{ alias {root}/; tcp_nodelay on; tcp_nopush on; }}
    }}
}}
"""
    port = free_port()
    z = Zonegate(conf, wait_ports=[port], port=port, root=root)
    try:
        worker = z.wait_workers(1)[0]
        trace = os.path.join(z.dir, "nodelay.out")
        tracer = spawn(["strace", "-f", "-e", "trace=setsockopt", "-o", trace, "-p",
                        str(worker)], stdout=subprocess.DEVNULL,
                       stderr=open(trace + ".err", "w"))
        assert wait_for(lambda: "attached" in open(trace + ".err").read(), 10)
        st, _, _ = request(port, "GET", "/a.txt")
        assert st == 200
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        assert "TCP_NODELAY" not in open(trace).read(), open(trace).read()
        assert "TCP_CORK" not in open(trace).read(), open(trace).read()
        tracer = spawn(["strace", "-f", "-e", "trace=setsockopt", "-o", trace, "-p",
                        str(worker)], stdout=subprocess.DEVNULL,
                       stderr=open(trace + ".err2", "w"))
        assert wait_for(lambda: "attached" in open(trace + ".err2").read(), 10)
        st, _, _ = request(port, "GET", "/on/a.txt")
        assert st == 200
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        calls = open(trace).read()
        assert re.search(r"TCP_NODELAY, \[1\]", calls), calls
        assert re.search(r"TCP_CORK, \[1\].*\n(.*\n)*.*TCP_CORK, \[0\]", calls), calls
    finally:
        z.stop()


def _slow_read(port, path, pause, rcvbuf=16384):
    """a client with a small receive buffer that reads nothing for `pause` seconds,
    then everything: (head, body length)"""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        time.sleep(pause)
        data = b""
        while b"\r\n\r\n" not in data:
            b = s.recv(65536)
            if not b:
                return data, 0
            data += b
        head, body = data.split(b"\r\n\r\n", 1)
        want = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        n = len(body)
        while n < want:
            try:
                b = s.recv(1 << 20)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            n += len(b)
        return head, n
    finally:
        s.close()


def test_static_slow_client_send_timeout_not_keepalive_timeout():
    """a file being sent keeps its request open: keepalive_timeout does not cut a slow
    client (sendfile and the read path); send_timeout does, for one that reads
    nothing"""
    root = make_root()
    _big_file(root, 8 * 1024 * 1024)
    conf = """
worker_processes 1;
http {{
    keepalive_timeout 1s;
    send_timeout 20s;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        sendfile on;
        location /nosf/ {{ alias {root}/; sendfile off; }}
        location /short/ {{ alias {root}/; send_timeout 1s; }}
    }}
}}
"""
    port = free_port()
    z = Zonegate(conf, wait_ports=[port], port=port, root=root)
    size = os.path.getsize(os.path.join(root, "big.bin"))
    try:
        for path in ["/big.bin", "/nosf/big.bin"]:
            head, n = _slow_read(port, path, 3)
            assert status_of(head) == 200 and n == size, (path, head[:60], n)
        head, n = _slow_read(port, "/short/big.bin", 4)
        assert status_of(head) == 200 and n < size, (head[:60], n)
    finally:
        z.stop()


def test_static_through_gzip():
    """a body filter (gzip) on: the file goes through it (read in pieces, not
    sendfile), compressed byte-exact, the ETag weak, no Accept-Ranges; a client that
    takes no gzip gets the file by sendfile"""
    root = make_root()
    with open(os.path.join(root, "text.txt"), "wb") as f:
        for i in range(200000):
            f.write(b"line %d of a compressible static file\n" % i)
    os.chmod(os.path.join(root, "text.txt"), 0o644)
    want = open(os.path.join(root, "text.txt"), "rb").read()
    conf = """
worker_processes 1;
http {{
    include {mime};
    server {{
        listen 127.0.0.1:{port};
        root {root};
        sendfile on;
        gzip on;
        gzip_types text/plain;
        gzip_min_length 1;
    }}
}}
"""
    port = free_port()
    z = Zonegate(conf, wait_ports=[port], port=port, root=root, mime=MIME)
    try:
        import zlib
        st, h, body = request(port, "GET", "/text.txt", headers={"Accept-Encoding": "gzip"},
                              timeout=60)
        assert st == 200 and h.get("content-encoding") == "gzip", h
        assert zlib.decompress(body, 16 + zlib.MAX_WBITS) == want
        assert h["etag"].startswith('W/"') and "accept-ranges" not in h, h
        st, h, body = request(port, "HEAD", "/text.txt", headers={"Accept-Encoding": "gzip"})
        assert st == 200 and body == b"" and "content-encoding" not in h, h  # as nginx
        st, h, body = request(port, "GET", "/text.txt", timeout=60)
        assert st == 200 and "content-encoding" not in h and body == want, h
        assert h["content-length"] == str(len(want)), h
    finally:
        z.stop()
