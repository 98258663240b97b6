"""TLS termination (listen ... ssl): handshakes through memory BIOs on the loop, with
curl and Python's ssl; protocols, proxied requests and limits over TLS; requests split
across records; the handshake bounded by client_header_timeout; bad certificates and
keys as -t errors naming file, line and directive.  Certificates are made here."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from zg import Skip, Upstream, Zonegate, free_port, wait_for, zonegate_t

CERTS = None


def certs():
    """a self-signed certificate and key per name (made once, in a temp dir)"""
    global CERTS
    if CERTS is None:
        d = tempfile.mkdtemp(prefix="zgcerts-")
        for name in ("localhost", "other", "a.test", "b.test"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", os.path.join(d, name + ".key"),
                            "-out", os.path.join(d, name + ".crt"), "-days", "2",
                            "-subj", "/CN=" + name],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        CERTS = d
    return CERTS


def crt(name="localhost"):
    return os.path.join(certs(), name + ".crt")


def key(name="localhost"):
    return os.path.join(certs(), name + ".key")


def client_ctx(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def tls_conn(port, version=None, server_name="localhost", timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return client_ctx(version).wrap_socket(s, server_hostname=server_name)


def read_response(s):
    """one response (Content-Length framed): (status, headers, body)"""
    data = b""
    while b"\r\n\r\n" not in data:
        b = s.recv(65536)
        if not b:
            raise EOFError(data)
        data += b
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    hdrs = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        b = s.recv(65536)
        if not b:
            raise EOFError(rest)
        rest += b
    return int(lines[0].split()[1]), hdrs, rest[:n], rest[n:]


def tls_get(port, path="/", version=None, headers="", server_name="localhost"):
    s = tls_conn(port, version, server_name)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n"
                   % (path, headers)).encode())
        st, h, body, _ = read_response(s)
        return st, h, body, s.version()
    finally:
        s.close()


CONF = """
worker_processes 2;
http {{
    limit_req_zone $http_x_key zone=one:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.1:{plain};
        ssl_certificate {crt};
        ssl_certificate_key {key};
        client_header_timeout 2s;
        limit_req_status 429;
        location / {{ proxy_pass http://{up}; }}
        location /ret {{ return 200 "over tls"; }}
        location /lim {{ limit_req zone=one nodelay; proxy_pass http://{up}; }}
    }}
}}
"""


def start(conf=CONF, **kw):
    up = Upstream("app")
    port, plain = free_port(), free_port()
    z = Zonegate(conf, wait_ports=[port, plain], port=port, plain=plain,
                 up="127.0.0.1:%d" % up.port, crt=crt(), key=key(), **kw)
    return z, port, plain


def test_tls_python_versions_return_proxy_and_plain_side_by_side():
    z, port, plain = start()
    for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        st, _, body, got = tls_get(port, "/ret", v)
        assert (st, body, got) == (200, b"over tls", name)
        st, h, body, _ = tls_get(port, "/app/x?y=1", v)
        assert (st, body) == (200, b"ok app"), (st, body)
    # the same server over plain HTTP on its other listen
    s = socket.create_connection(("127.0.0.1", plain))
    s.sendall(b"GET /ret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    st, _, body, _ = read_response(s)
    assert (st, body) == (200, b"over tls")
    s.close()
    # plain HTTP to the TLS port is not answered as HTTP
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /ret HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        got += b
    assert b"over tls" not in got
    assert "signal" not in z.error_log(), z.error_log()


def test_tls_curl_12_and_13():
    if shutil.which("curl") is None:
        raise Skip("curl is missing")
    z, port, _ = start()
    for flags, want in ((["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
                        (["--tlsv1.3"], "TLSv1.3")):
        p = subprocess.run(["curl", "-sk", "-v"] + flags +
                           ["https://127.0.0.1:%d/ret" % port, "https://127.0.0.1:%d/ret" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode(errors="replace")
        assert p.returncode == 0, err
        assert p.stdout == b"over tlsover tls", p.stdout
        assert "SSL connection using %s" % want in err, err
        assert "Re-using existing connection" in err or "Reusing existing" in err, err


def test_tls_keepalive_split_records_and_pipelining():
    z, port, _ = start()
    s = tls_conn(port)
    # one request, one TLS record per byte of the head: the same request
    req = b"GET /ret HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for i in range(len(req)):
        s.sendall(req[i:i + 1])
    st, _, body, rest = read_response(s)
    assert (st, body, rest) == (200, b"over tls", b"")
    # a proxied request with a body split across records
    s.sendall(b"POST /app/p HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\n01234")
    s.sendall(b"56789")
    st, _, body, rest = read_response(s)
    assert st == 200 and rest == b"", (st, body)
    # many pipelined requests in one record: more than the parser's buffer holds
    n = 300
    s.sendall(req * n)
    got, buf = 0, b""
    s.settimeout(20)
    while got < n:
        b = s.recv(65536)
        assert b, "closed after %d responses" % got
        buf += b
        got = buf.count(b"HTTP/1.1 200")
    s.close()


def test_tls_limits_hold_over_tls():
    z, port, _ = start()
    st1 = tls_get(port, "/lim", headers="X-Key: k\r\n")[0]
    st2 = tls_get(port, "/lim", headers="X-Key: k\r\n")[0]
    assert (st1, st2) == (200, 429)


def test_tls_protocols_restrict():
    conf = CONF.replace("ssl_certificate {crt};", "ssl_certificate {crt}; ssl_protocols TLSv1.3;")
    z, port, _ = start(conf)
    assert tls_get(port, "/ret", ssl.TLSVersion.TLSv1_3)[3] == "TLSv1.3"
    try:
        tls_get(port, "/ret", ssl.TLSVersion.TLSv1_2)
        assert False, "TLSv1.2 was accepted"
    except ssl.SSLError:
        pass
    conf = CONF.replace("ssl_certificate {crt};", "ssl_certificate {crt}; ssl_protocols TLSv1.2; "
                        "ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256; ssl_prefer_server_ciphers on;")
    z.stop()
    z, port, _ = start(conf)
    s = tls_conn(port)
    assert s.version() == "TLSv1.2" and s.cipher()[0] == "ECDHE-RSA-AES128-GCM-SHA256", s.cipher()
    s.close()


def test_tls_handshake_bounded_by_client_header_timeout():
    z, port, _ = start()
    # connects and says nothing: closed after client_header_timeout
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    assert s.recv(100) == b""
    s.close()
    # half a ClientHello: closed too
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert s.recv(100) == b""
    s.close()
    # the workers are still there and serving
    assert tls_get(port, "/ret")[0] == 200


def test_tls_bad_certificates_are_config_errors():
    d = tempfile.mkdtemp(prefix="zgtls-")
    unreadable = os.path.join(d, "garbage.pem")
    with open(unreadable, "w") as f:
        f.write("not a certificate\n")
    base = """http {{
    server {{
        listen 127.0.0.1:1 ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
    }}
}}
"""
    cases = [
        (dict(crt=os.path.join(d, "missing.crt"), key=key()),
         'cannot load certificate "%s" of the "ssl_certificate" directive' % os.path.join(d, "missing.crt"), 4),
        (dict(crt=crt(), key=os.path.join(d, "missing.key")),
         'cannot load certificate key "%s" of the "ssl_certificate_key" directive' % os.path.join(d, "missing.key"), 5),
        (dict(crt=unreadable, key=key()), 'cannot load certificate "%s"' % unreadable, 4),
        (dict(crt=crt(), key=key("other")), 'key values mismatch', 5),
    ]
    for kw, msg, line in cases:
        rc, out, path = zonegate_t(base, **kw)
        assert rc == 1, out
        assert msg in out and "%s:%d" % (path, line) in out, (msg, out)
    rc, out, path = zonegate_t("http {{ server {{ listen 127.0.0.1:1 ssl; }} }}\n")
    assert rc == 1 and 'no "ssl_certificate" is defined for the "listen ... ssl" directive' in out \
        and "%s:1" % path in out, out
    rc, out, path = zonegate_t(base, crt=crt(), key=key())
    assert rc == 0, out
    rc, out, path = zonegate_t("http {{ server {{ listen 127.0.0.1:1 ssl; ssl_protocols TLSv9; }} }}\n")
    assert rc == 1 and 'invalid value "TLSv9" in "ssl_protocols" directive' in out, out


SNI_CONF = """
worker_processes 2;
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        location / {{ return 200 "default $https|$ssl_server_name"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        server_name b.test;
        ssl_certificate {bcrt};
        ssl_certificate_key {bkey};
        location / {{ return 200 "b $https|$ssl_server_name"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name a.test;
        ssl_certificate {acrt};
        ssl_certificate_key {akey};
        location / {{ return 200 "a $https|$ssl_server_name"; }}
    }}
}}
"""


def peer_der(port, server_name):
    s = tls_conn(port, server_name=server_name)
    try:
        return s.getpeercert(binary_form=True)
    finally:
        s.close()


def der(name):
    with open(crt(name)) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def test_tls_sni_picks_the_certificate_unknown_gets_the_default_servers():
    port = free_port()
    Zonegate(SNI_CONF, wait_ports=[port], port=port, crt=crt(), key=key(), acrt=crt("a.test"),
             akey=key("a.test"), bcrt=crt("b.test"), bkey=key("b.test"))
    assert peer_der(port, "a.test") == der("a.test")
    assert peer_der(port, "localhost") == der("localhost")
    assert peer_der(port, "b.test") == der("b.test")
    # an unknown name, and no name at all: the default_server's certificate
    assert peer_der(port, "nobody.test") == der("b.test")
    s = client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)))
    assert s.getpeercert(binary_form=True) == der("b.test")
    s.close()
    # the Host header picks the server that answers, as nginx
    st, _, body, _ = tls_get(port, "/", server_name="a.test")
    assert body == b"default on|a.test", body


VARS_CONF = """
http {{
    log_format t '$https|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused';
    server {{
        listen 127.0.0.1:{port} ssl;
        listen 127.0.0.1:{plain};
        ssl_certificate {crt};
        ssl_certificate_key {key};
        access_log {dir}/access.log t;
        location / {{ return 200 "$https|$ssl_protocol|$ssl_cipher|$ssl_server_name|$ssl_session_reused|$ssl_client_verify"; }}
    }}
}}
"""


def test_tls_variables():
    port, plain = free_port(), free_port()
    z = Zonegate(VARS_CONF, wait_ports=[port, plain], port=port, plain=plain, crt=crt(), key=key())
    s = tls_conn(port, ssl.TLSVersion.TLSv1_2, server_name="localhost")
    cipher = s.cipher()[0]
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    body = read_response(s)[2]
    s.close()
    assert body == ("on|TLSv1.2|%s|localhost|.|NONE" % cipher).encode(), body
    s = tls_conn(port, ssl.TLSVersion.TLSv1_3, server_name="localhost")
    cipher = s.cipher()[0]
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    body = read_response(s)[2]
    s.close()
    assert body == ("on|TLSv1.3|%s|localhost|.|NONE" % cipher).encode(), body
    s = socket.create_connection(("127.0.0.1", plain))
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert read_response(s)[2] == b"|||||", "plain connections have empty ssl variables"
    s.close()
    log = os.path.join(z.dir, "access.log")
    assert wait_for(lambda: os.path.exists(log) and open(log).read().count("\n") == 3)
    assert open(log).read().splitlines()[0].startswith("on|TLSv1.2|")


def test_tls_http2_is_accepted_with_a_warning():
    rc, out, path = zonegate_t("""http {{
    server {{
        listen 127.0.0.1:1 ssl http2;
        http2 on;
        ssl_certificate {crt};
        ssl_certificate_key {key};
    }}
}}
""", crt=crt(), key=key())
    assert rc == 0, out
    assert "HTTP/2 is not served: ALPN offers http/1.1 only" in out and "%s:3" % path in out, out
    assert '"http2 on" is accepted' in out and "%s:4" % path in out, out
    # curl asking for HTTP/2 gets HTTP/1.1
    z, port, _ = start(CONF.replace("listen 127.0.0.1:{port} ssl;", "listen 127.0.0.1:{port} ssl http2;"))
    p = subprocess.run(["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                        "https://127.0.0.1:%d/ret" % port], stdout=subprocess.PIPE, timeout=30)
    assert p.stdout == b"1.1 200", p.stdout


CACHE_CONF = """
worker_processes 4;
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_session_cache {cache};
        ssl_session_tickets {tickets};
        location / {{ return 200 "$ssl_session_reused"; }}
        location = /metrics {{ metrics; }}
        location = /slab_stat {{ slab_stat; }}
    }}
}}
"""


def resume_run(port, version, n):
    """a full handshake, then n reconnects, each offering the latest session (a TLS 1.3
    ticket is used once): how many resumed (by the client's view and by
    $ssl_session_reused)"""
    ctx = client_ctx(version)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert read_response(s)[2] == b"."
    sess = s.session
    s.close()
    reused = 0
    for _ in range(n):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="localhost", session=sess)
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        body = read_response(s)[2]
        if s.session_reused:
            assert body == b"r", body
            reused += 1
        sess = s.session
        s.close()
    return reused


def metric(port, name):
    s = tls_conn(port)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    body = read_response(s)[2].decode()
    s.close()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            if line.rsplit(" ", 1)[0] == name or name in line:
                return int(line.rsplit(" ", 1)[1])
    return None


def test_tls_shared_session_cache_resumes_on_every_worker():
    port = free_port()
    z = Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                 cache="shared:SSL:1m", tickets="off")
    z.wait_workers(4)
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert resume_run(port, v, 24) == 24, v
    m = lambda t: metric(port, 'zonegate_ssl_session_cache_total{zone="SSL",type="%s"}' % t)
    assert m("hits") >= 48 and m("stores") >= 2, (m("hits"), m("stores"))
    s = tls_conn(port)
    s.sendall(b"GET /slab_stat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert b"SSL" in read_response(s)[2]
    s.close()
    # sessions survive a reload (the zone is kept; its name and size did not change)
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    sess = s.session
    s.close()
    old = z.workers()
    z.reload()
    z.wait_workers(4, gone=old)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost",
                        session=sess)
    assert s.session_reused
    s.close()


def test_tls_s_client_reconnect_resumes_on_4_workers():
    """openssl s_client -reconnect, by session id and by ticket (TLS 1.2: with TLS 1.3
    s_client closes before the ticket arrives and never resumes, against nginx too)"""
    from test_stream_tls import s_client_reconnect
    for cache, tickets in (("shared:SSL:1m", "off"), ("off", "on")):
        port = free_port()
        z = Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                     cache=cache, tickets=tickets)
        z.wait_workers(4)
        assert s_client_reconnect(port) == ["New"] + ["Reused"] * 5, (cache, tickets)
        z.stop()


def test_tls_without_a_cache_or_tickets_nothing_resumes():
    port = free_port()
    Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(), cache="none",
             tickets="off")
    assert resume_run(port, ssl.TLSVersion.TLSv1_2, 4) == 0


def test_tls_tickets_resume_on_every_worker():
    port = free_port()
    Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
             tickets="on")
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert resume_run(port, v, 16) == 16, v


def test_tls_full_session_cache_evicts_the_oldest():
    port = free_port()
    z = Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                 cache="shared:tiny:32k", tickets="off")
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    first = None
    for i in range(200):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        if first is None:
            first = s.session
        s.close()
    ev = metric(port, 'zonegate_ssl_session_cache_total{zone="tiny",type="evictions"}')
    assert ev and ev > 0, ev
    # every handshake still completed; the oldest session is gone, the newest resumes
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost",
                        session=first)
    assert not s.session_reused
    s.close()
    assert resume_run(port, ssl.TLSVersion.TLSv1_2, 3) == 3


def client_certs():
    """a CA, a client certificate it signed, and a self-signed client certificate"""
    d = os.path.join(certs(), "clients")
    if os.path.isdir(d):
        return d
    os.mkdir(d)

    def run(*a):
        subprocess.run(list(a), check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.crt", "-days", "2", "-subj", "/CN=Test CA")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "good.key", "-out",
        "good.csr", "-subj", "/O=Zg/CN=alice")
    run("openssl", "x509", "-req", "-in", "good.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "good.crt", "-days", "2")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "bad.key",
        "-out", "bad.crt", "-days", "2", "-subj", "/CN=mallory")
    return d


MTLS_CONF = """
worker_processes 2;
http {{
    limit_req_zone $ssl_client_s_dn zone=percert:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_client_certificate {ca};
        ssl_verify_client {mode};
        limit_req_status 429;
        location / {{ return 200 "$ssl_client_verify|$ssl_client_s_dn|$ssl_client_fingerprint"; }}
        location /lim {{ limit_req zone=percert nodelay; metrics; }}
    }}
}}
"""


def mtls_get(port, who=None, path="/"):
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    if who is not None:
        d = client_certs()
        ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
        st, h, body, _ = read_response(s)
        return st, h, body
    finally:
        s.close()


def fingerprint(path):
    with open(path) as f:
        import hashlib
        return hashlib.sha1(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def test_tls_client_certificates():
    d = client_certs()
    port = free_port()
    z = Zonegate(MTLS_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                 ca=os.path.join(d, "ca.crt"), mode="on")
    st, _, body = mtls_get(port, "good")
    assert st == 200 and body == ("SUCCESS|CN=alice,O=Zg|%s" % fingerprint(
        os.path.join(d, "good.crt"))).encode(), body
    st, h, body = mtls_get(port, None)
    assert st == 400 and b"No required SSL certificate was sent" in body, body
    assert h.get("connection") == "close"
    st, _, body = mtls_get(port, "bad")
    assert st == 400 and b"The SSL certificate error" in body, body
    # a limit keyed by the client certificate holds across workers and connections
    assert [mtls_get(port, "good", "/lim")[0] for _ in range(3)] == [200, 429, 429]
    z.stop()
    z = Zonegate(MTLS_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                 ca=os.path.join(d, "ca.crt"), mode="optional")
    assert mtls_get(port, None)[2] == b"NONE||"
    assert mtls_get(port, "good")[0] == 200
    assert mtls_get(port, "bad")[0] == 400
    z.stop()
    z = Zonegate(MTLS_CONF, wait_ports=[port], port=port, crt=crt(), key=key(),
                 ca=os.path.join(d, "ca.crt"), mode="optional_no_ca")
    st, _, body = mtls_get(port, "bad")
    assert st == 200 and body.startswith(b"FAILED:") and b"|CN=mallory|" in body, body
    z.stop()
    rc, out, path = zonegate_t(MTLS_CONF.replace("ssl_client_certificate {ca};", ""), port=1,
                               crt=crt(), key=key(), mode="on")
    assert rc == 1 and "no ssl_client_certificate for ssl_verify_client" in out, out
    rc, out, path = zonegate_t(MTLS_CONF, port=1, crt=crt(), key=key(), mode="on",
                               ca=os.path.join(d, "missing.crt"))
    assert rc == 1 and 'cannot load client certificates' in out and \
        '"ssl_client_certificate" directive' in out and "%s:9" % path in out, out


def first_session(port, version):
    ctx = client_ctx(version)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    read_response(s)  # a TLS 1.3 ticket arrives after the handshake
    sess = s.session
    s.close()
    return ctx, sess


def resumes(port, ctx, sess):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost",
                        session=sess)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    body = read_response(s)[2]
    ok = s.session_reused
    s.close()
    assert body == (b"r" if ok else b"."), body
    return ok


def test_tls_tickets_resume_after_a_reload():
    """beyond nginx: the ticket keys live in a zone the master made, kept over HUP"""
    port = free_port()
    z = Zonegate(CACHE_CONF, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
                 tickets="on")
    z.wait_workers(4)
    before = [first_session(port, v) for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
    old = z.workers()
    z.reload()
    z.wait_workers(4, gone=old)
    for ctx, sess in before:
        assert resumes(port, ctx, sess)


def test_tls_ticket_key_files_are_shared_between_instances():
    d = tempfile.mkdtemp(prefix="zgtls-")
    with open(os.path.join(d, "t.key"), "wb") as f:
        f.write(os.urandom(80))
    with open(os.path.join(d, "short.key"), "wb") as f:
        f.write(os.urandom(20))
    conf = CACHE_CONF.replace("ssl_session_tickets {tickets};",
                              "ssl_session_tickets on; ssl_session_ticket_key {tk};")
    port = free_port()
    z = Zonegate(conf, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
                 tk=os.path.join(d, "t.key"))
    sessions = [first_session(port, v) for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)]
    z.stop()
    # another process, another zone, the same key file: the tickets resume
    z = Zonegate(conf, wait_ports=[port], port=port, crt=crt(), key=key(), cache="off",
                 tk=os.path.join(d, "t.key"))
    for ctx, sess in sessions:
        assert resumes(port, ctx, sess)
    z.stop()
    rc, out, path = zonegate_t(conf, port=1, crt=crt(), key=key(), cache="off",
                               tk=os.path.join(d, "short.key"))
    assert rc == 1 and "must be 48 or 80 bytes" in out and "%s:9" % path in out, out


def test_tls_reload_rereads_certificates_and_a_broken_one_keeps_the_old_workers():
    d = tempfile.mkdtemp(prefix="zgtls-")
    c, k = os.path.join(d, "site.crt"), os.path.join(d, "site.key")
    shutil.copy(crt("a.test"), c)
    shutil.copy(key("a.test"), k)
    port = free_port()
    z = Zonegate(CACHE_CONF.replace("{crt}", c).replace("{key}", k), wait_ports=[port],
                 port=port, cache="none", tickets="on")
    assert peer_der(port, "localhost") == der("a.test")
    # a new certificate and key: the reload serves them
    shutil.copy(crt("b.test"), c)
    shutil.copy(key("b.test"), k)
    old = z.workers()
    z.reload()
    z.wait_workers(4, gone=old)
    assert peer_der(port, "localhost") == der("b.test")
    # a key that does not match: the reload fails, the workers keep serving b.test
    shutil.copy(key("a.test"), k)
    old = z.workers()
    z.reload()
    assert wait_for(lambda: "key values mismatch" in z.error_log()), z.error_log()
    assert z.workers() == old
    assert peer_der(port, "localhost") == der("b.test")
    assert tls_get(port, "/")[0] == 200


def test_tls_stapling_file_and_warnings():
    d = client_certs()
    # an OCSP response for the good client certificate, signed by the CA
    run = lambda *a: subprocess.run(list(a), check=True, cwd=d, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    open(os.path.join(d, "index.txt"), "w").close()
    run("openssl", "ocsp", "-issuer", "ca.crt", "-cert", "good.crt", "-reqout", "req.der")
    run("openssl", "ocsp", "-index", "index.txt", "-rsigner", "ca.crt", "-rkey", "ca.key",
        "-CA", "ca.crt", "-reqin", "req.der", "-respout", "resp.der")
    conf = """
http {{
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_stapling on;
        {extra}
        location / {{ return 200 "ok"; }}
    }}
}}
"""
    rc, out, path = zonegate_t(conf, port=1, crt=crt(), key=key(), extra="")
    assert rc == 0 and "no \"ssl_stapling_file\" is given: zonegate queries no OCSP responder" \
        in out and "%s:7" % path in out, out
    rc, out, path = zonegate_t(conf, port=1, crt=crt(), key=key(),
                               extra="ssl_stapling_file %s;" % os.path.join(d, "ca.crt"))
    assert rc == 1 and "is not a DER OCSP response" in out and "%s:8" % path in out, out
    port = free_port()
    Zonegate(conf, wait_ports=[port], port=port, crt=crt(), key=key(),
             extra="ssl_stapling_file %s;" % os.path.join(d, "resp.der"))
    p = subprocess.run(["openssl", "s_client", "-status", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode(errors="replace")
    assert "OCSP Response Status: successful" in out, out


# ---- the same certificates and config against Debian's nginx ----

DIFF_COMMON = """
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;  # Debian's nginx 1.22 has no TLSv1.3 by default
        ssl_session_cache shared:SSL:1m;
        location / {{ return 200 "ok"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name a.test;
        ssl_certificate {acrt};
        ssl_certificate_key {akey};
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_prefer_server_ciphers on;
        ssl_client_certificate {ca};
        ssl_verify_client {mode};
        location / {{ return 200 "ok"; }}
    }}
"""

CIPHERS_12 = ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
              "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA",
              "AES128-GCM-SHA256", "AES256-SHA", "DHE-RSA-AES128-GCM-SHA256",
              "ECDHE-RSA-DES-CBC3-SHA", "DES-CBC3-SHA", "RC4-SHA"]


def tls_profile(port):
    """what a server offers and answers: per protocol and TLS 1.2 cipher, whether the
    handshake succeeds (and the cipher it picks when the client prefers another),
    the certificate per SNI name, and statuses with and without client certificates"""
    out = []
    versions = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
                ssl.TLSVersion.TLSv1_3]
    for name in ("localhost", "a.test"):
        for v in versions:
            ctx = client_ctx(v)
            try:
                ctx.set_ciphers("ALL:@SECLEVEL=0")
            except ssl.SSLError:
                pass
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                    server_hostname=name)
                out.append((name, v.name, s.version()))
                s.close()
            except (ssl.SSLError, OSError) as e:
                out.append((name, v.name, "refused"))
        for c in CIPHERS_12:
            ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
            try:
                ctx.set_ciphers(c + ":@SECLEVEL=0")
            except ssl.SSLError:
                continue
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                    server_hostname=name)
                out.append((name, c, s.cipher()[0]))
                s.close()
            except (ssl.SSLError, OSError):
                out.append((name, c, "refused"))
        # server preference: the client lists CHACHA20 first
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256")
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname=name)
        out.append((name, "preference", s.cipher()[0]))
        out.append((name, "cert", hashlib.sha1(s.getpeercert(binary_form=True)).hexdigest()))
        s.close()
    for who in (None, "good", "bad"):
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
        if who:
            d = client_certs()
            ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="a.test")
        s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        st, h, _, _ = read_response(s)
        out.append(("client cert", who, st, h.get("connection")))
        s.close()
    return out


def test_tls_same_as_nginx():
    import hashlib as _h
    globals()["hashlib"] = _h
    from test_nginx_diff import NGINX, Nginx
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    d = client_certs()
    kw = dict(crt=crt(), key=key(), acrt=crt("a.test"), akey=key("a.test"),
              ca=os.path.join(d, "ca.crt"))
    for mode in ("on", "optional"):
        zport, nport = free_port(), free_port()
        z = Zonegate("worker_processes 2;\nhttp {{\n" + DIFF_COMMON + "}}\n", wait_ports=[zport],
                     port=zport, mode=mode, **kw)
        n = Nginx("user root;\nevents {{ worker_connections 256; }}\nhttp {{\n"
                  "    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n"
                  "    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n"
                  "    scgi_temp_path {dir}/scgi;\n" + DIFF_COMMON + "}}\n", nport, mode=mode, **kw)
        try:
            zp, np_ = tls_profile(zport), tls_profile(nport)
        finally:
            n.stop()
            z.stop()
        for a, b in zip(zp, np_):
            print("nginx %-60s zonegate %s" % (b, a))
        assert zp == np_


def test_tls_delayed_request_gets_its_body_from_records_already_read():
    """limit_req delays a request (reading stops) whose body came in a second record of
    the same read: that record is decrypted once reading resumes"""
    conf = CONF.replace("location /lim {{", "location /slow {{ limit_req zone=slow burst=5; "
                        "proxy_pass http://{up}; }}\n        location /lim {{").replace(
        "limit_req_zone $http_x_key zone=one:64k rate=1r/m;",
        "limit_req_zone $http_x_key zone=one:64k rate=1r/m;\n"
        "    limit_req_zone $server_name zone=slow:64k rate=1r/s;")
    z, port, _ = start(conf)
    # the first request takes the token: the next one is delayed
    assert tls_get(port, "/slow")[0] == 200
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(ssl.TLSVersion.TLSv1_2).wrap_bio(inc, out, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            inc.write(sock.recv(65536))
    sock.sendall(out.read())
    # head and body as two records, in one TCP write
    obj.write(b"POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\n")
    obj.write(b"hello")
    sock.sendall(out.read())
    data = b""
    while b"slow app" not in data:
        try:
            b = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("no answer: %r %s" % (data, z.error_log()[-2000:]))
        assert b, "closed: %r" % data
        inc.write(b)
        try:
            data += obj.read(65536)
        except ssl.SSLWantReadError:
            pass
    assert data.startswith(b"HTTP/1.1 200"), data
    sock.close()


def test_tls_rsa_and_ecdsa_pairs_the_client_choice_decides():
    d = os.path.join(certs(), "ec")
    if not os.path.isdir(d):
        os.mkdir(d)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", d + "/ec.key",
                        "-out", d + "/ec.crt", "-days", "2", "-subj", "/CN=localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conf = CONF.replace("ssl_certificate_key {key};", "ssl_certificate_key {key};\n"
                        "        ssl_certificate {eccrt}; ssl_certificate_key {eckey};")
    z, port, _ = start(conf, eccrt=d + "/ec.crt", eckey=d + "/ec.key")
    with open(d + "/ec.crt") as f:
        ec_der = ssl.PEM_cert_to_DER_cert(f.read())
    for ciphers, want in (("ECDHE-ECDSA-AES128-GCM-SHA256", ec_der),
                          ("ECDHE-RSA-AES128-GCM-SHA256", der("localhost"))):
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(ciphers)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
        assert s.getpeercert(binary_form=True) == want, ciphers
        s.close()


def test_tls_renegotiation_is_refused():
    z, port, _ = start()
    p = subprocess.Popen(["timeout", "60", "openssl", "s_client", "-tls1_2", "-connect",
                          "127.0.0.1:%d" % port],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    p.stdin.write(b"R\n")
    p.stdin.flush()
    # the server answers the new ClientHello with a no_renegotiation alert: the client
    # gives up by itself (stdin stays open)
    out = p.stdout.read().decode(errors="replace")
    p.wait()
    p.stdin.close()
    assert "RENEGOTIATING" in out and "no renegotiation" in out, out
    assert tls_get(port, "/ret")[0] == 200


SID_CONF = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets off;
        location / {{ return 200 "$ssl_session_id|$ssl_session_reused"; }}
    }}
"""


def session_id_seen(port):
    """(the body's $ssl_session_id, the id the client holds), full and resumed"""
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    out, sess = [], None
    for _ in range(2):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="localhost", session=sess)
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        body = read_response(s)[2].decode()
        sess = s.session
        out.append((body, sess.id))
        s.close()
    return out


def test_tls_session_id_printed_as_nginx():
    """$ssl_session_id is the session id in lowercase hex (nginx's ngx_hex_dump)"""
    from test_nginx_diff import NGINX, Nginx
    zport = free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + SID_CONF + "}}\n", wait_ports=[zport],
                 port=zport, crt=crt(), key=key())
    got = session_id_seen(zport)
    z.stop()
    for body, sid in got:
        assert body.split("|")[0] == sid.hex(), (body, sid.hex())
    assert [b.split("|")[1] for b, _ in got] == [".", "r"]
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    nport = free_port()
    n = Nginx("user root;\nevents {{ worker_connections 256; }}\nhttp {{\n"
              "    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n"
              "    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n"
              "    scgi_temp_path {dir}/scgi;\n" + SID_CONF + "}}\n", nport, crt=crt(),
              key=key())
    try:
        ngot = session_id_seen(nport)
    finally:
        n.stop()
    for body, sid in ngot:
        assert body.split("|")[0] == sid.hex(), ("nginx", body, sid.hex())
