"""TLS on stream servers (listen ... ssl, issue 18): Python's ssl and openssl s_client
through zonegate to plain TCP upstreams (an echo server, redis); the handshake runs
after limit_conn and allow/deny, so a refused client gets no ServerHello; sessions
resume on every worker (shared cache and tickets); ssl_verify_client on closes the
connection on a missing or bad certificate; $ssl_* variables in the stream log;
ssl_handshake_timeout; a PROXY header before the handshake; config errors."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from test_stream import Redis, TcpUpstream, stop_clean, until_closed
from test_tls import certs, client_certs, client_ctx, crt, key
from zg import SLOW, Skip, Zonegate, free_port, wait_for, zonegate_t

CONF = """
worker_processes {workers};
stream {{
    log_format tls '$status|$ssl_protocol|$ssl_cipher|$ssl_session_reused|'
                   '$ssl_client_verify|$ssl_client_s_dn|$ssl_server_name';
    upstream echo {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_session_cache {cache};
        ssl_session_tickets {tickets};
        access_log {dir}/stream.log tls;
        proxy_pass echo;
        {extra}
    }}
}}
"""


def start(up=None, workers=2, cache="shared:STLS:1m", tickets="on", extra="", **kw):
    up = up or TcpUpstream("echo")
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, up=up.addr, crt=crt(), key=key(),
                 workers=workers, cache=cache, tickets=tickets, extra=extra, **kw)
    z.up = up
    settle(z)
    return z, port


def settle(z):
    """the readiness probe's connection (closed before any handshake) is logged: wait
    for its line, then empty the log (the workers append to it)"""
    path = os.path.join(z.dir, "stream.log")
    assert wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, 10)
    open(path, "w").close()


def tls_echo(port, data=b"hello over tls", version=None, ctx=None, session=None,
             server_name="localhost"):
    """sends data, reads it back; returns (echoed, TLS version, reused, session)"""
    ctx = ctx or client_ctx(version)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW),
                        server_hostname=server_name, session=session)
    try:
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            b = s.recv(65536)
            if not b:
                break
            got += b
        return got, s.version(), s.session_reused, s.session
    finally:
        s.close()


def log_lines(z, n):
    path = os.path.join(z.dir, "stream.log")

    def ready():
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except OSError:
            return None
        return lines if len(lines) >= n else None
    lines = wait_for(ready, 10)
    assert lines, "no %d lines in the stream log" % n
    return lines


def test_stream_tls_echo_12_and_13_and_log_variables():
    z, port = start()
    for v, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
        got, ver, _, _ = tls_echo(port, version=v)
        assert (got, ver) == (b"hello over tls", name)
    # a large transfer both ways, through many records
    data = os.urandom(3 << 20)
    got, _, _, _ = tls_echo(port, data)
    assert got == data
    lines = log_lines(z, 3)
    # sessions end (and are logged) in any order across the workers
    tls12 = [l for l in lines if "|TLSv1.2|" in l]
    assert len(tls12) == 1 and sum(1 for l in lines if "|TLSv1.3|" in l) == 2, lines
    f = tls12[0].split("|")
    assert f[0] == "200" and f[1] == "TLSv1.2" and f[2] and f[3] == "." and f[4] == "NONE", f
    assert f[6] == "localhost", f
    stop_clean(z)


def test_stream_tls_openssl_s_client_and_redis():
    if shutil.which("openssl") is None:
        raise Skip("no openssl")
    r = Redis()

    class Up:
        addr = r.addr
    z, port = start(Up())
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-quiet",
                          "-servername", "localhost"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        p.stdin.write(b"PING\r\n")
        p.stdin.flush()
        assert p.stdout.readline() == b"+PONG\r\n"
    finally:
        p.kill()
        p.wait()
    if "--tls" in subprocess.run(["redis-cli", "--help"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout.decode():
        out = subprocess.run(["redis-cli", "--tls", "--insecure", "-h", "127.0.0.1", "-p",
                              str(port), "SET", "k", "over tls"], stdout=subprocess.PIPE,
                             timeout=20 * SLOW).stdout
        assert out.strip() == b"OK", out
    s = client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW),
                                 server_hostname="localhost")
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
    assert s.recv(100) == b"+PONG\r\n"
    s.close()
    stop_clean(z)


def resume_count(port, version, n):
    """a full handshake, then n reconnects offering the latest session"""
    ctx = client_ctx(version)
    got, _, reused, sess = tls_echo(port, ctx=ctx)
    assert not reused
    count = 0
    for _ in range(n):
        got, _, reused, sess2 = tls_echo(port, ctx=ctx, session=sess)
        assert got == b"hello over tls"
        count += 1 if reused else 0
        sess = sess2
    return count


def test_stream_tls_sessions_resume_on_every_worker():
    # the shared cache (no tickets), then tickets (no cache); 4 workers
    z, port = start(workers=4, tickets="off")
    z.wait_workers(4)
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert resume_count(port, v, 12) == 12, v
    assert "|r|" in "\n".join(log_lines(z, 26))
    stop_clean(z)
    z, port = start(workers=4, cache="off", tickets="on")
    z.wait_workers(4)
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        assert resume_count(port, v, 12) == 12, v
    stop_clean(z)
    z, port = start(workers=2, cache="none", tickets="off")
    assert resume_count(port, ssl.TLSVersion.TLSv1_2, 3) == 0
    stop_clean(z)


def s_client_reconnect(port):
    """openssl s_client -reconnect (TLS 1.2: with TLS 1.3 it closes before the ticket
    arrives and never resumes, against nginx too): New/Reused of its 6 connections"""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-reconnect", "-tls1_2"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30 * SLOW)
    return [l.split(",")[0] for l in p.stdout.decode(errors="replace").splitlines()
            if l.startswith(("New,", "Reused,"))]


def test_stream_tls_s_client_reconnect_resumes_on_4_workers():
    for cache, tickets in (("shared:STLS:1m", "off"), ("off", "on")):
        z, port = start(workers=4, cache=cache, tickets=tickets)
        z.wait_workers(4)
        assert s_client_reconnect(port) == ["New"] + ["Reused"] * 5, (cache, tickets)
        stop_clean(z)


def test_stream_tls_sessions_resume_after_a_reload():
    """the cache zone and the ticket keys' zone are kept over a HUP; a broken
    certificate in the new config keeps the old workers serving"""
    for cache, tickets in (("shared:STLS:1m", "off"), ("off", "on")):
        z, port = start(workers=2, cache=cache, tickets=tickets)
        sessions = []
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(v)
            sessions.append((ctx, tls_echo(port, ctx=ctx)[3]))
        old = z.workers()
        z.reload()
        z.wait_workers(2, gone=old)
        for ctx, sess in sessions:
            got, _, reused, _ = tls_echo(port, ctx=ctx, session=sess)
            assert got == b"hello over tls" and reused, (cache, tickets, ctx.maximum_version)
        # a HUP with a key that does not match: refused, the workers stay
        old = z.workers()
        z.rewrite(CONF, port=port, up=z.up.addr, crt=crt(), key=key("other"), workers=2,
                  cache=cache, tickets=tickets, extra="")
        z.reload()
        assert wait_for(lambda: "does not match" in z.error_log()
                        or "key values mismatch" in z.error_log(), 10), z.error_log()[-2000:]
        assert z.workers() == old
        assert tls_echo(port)[0] == b"hello over tls"
        stop_clean(z)


def client_hello():
    """the first bytes a TLS client sends"""
    ctx = client_ctx()
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inb, outb, server_hostname="localhost")
    try:
        o.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outb.read()


def test_stream_tls_access_and_limits_refuse_before_the_handshake():
    hello = client_hello()
    assert hello[:1] == b"\x16"
    # allow/deny: denied before any handshake byte is sent
    z, port = start(extra="deny 127.0.0.1;")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(hello)
    assert until_closed(s) == b""
    s.close()
    assert log_lines(z, 1)[0] == "403|-|-|-|-|-|-", log_lines(z, 1)
    stop_clean(z)
    # limit_conn: the second session of the client is refused before its handshake
    port = free_port()
    up = TcpUpstream("echo")
    conf = CONF.replace("stream {{", "stream {{\n    limit_conn_zone $binary_remote_addr "
                        "zone=one:64k;")
    z = Zonegate(conf, wait_ports=[port], port=port, up=up.addr, crt=crt(), key=key(),
                 workers=2, cache="off", tickets="on", extra="limit_conn one 1;")
    settle(z)
    first = client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                     server_hostname="localhost")
    first.sendall(b"x")
    assert first.recv(10) == b"x"
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(hello)
    assert until_closed(s) == b""
    s.close()
    first.close()
    lines = log_lines(z, 2)
    assert lines[0] == "503|-|-|-|-|-|-", lines
    stop_clean(z)


def test_stream_tls_client_certificates_on_closes_the_connection():
    d = client_certs()
    rec = os.path.join(certs(), "stream-mtls-%d.rec" % os.getpid())
    up = TcpUpstream("record", rec)
    z, port = start(up, extra="ssl_client_certificate %s; ssl_verify_client on;"
                    % os.path.join(d, "ca.crt"))

    def ctx_of(who):
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
        if who:
            ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
        return ctx
    got, _, _, _ = tls_echo(port, b"good one", ctx=ctx_of("good"))
    assert got == b"good one"
    for who in (None, "bad"):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(v)
            if who:
                ctx.load_cert_chain(os.path.join(d, who + ".crt"),
                                    os.path.join(d, who + ".key"))
            try:
                got, _, _, _ = tls_echo(port, b"refused", ctx=ctx)
            except (ssl.SSLError, OSError):
                got = b""
            assert got == b"", (who, v, got)
    lines = log_lines(z, 5)
    # sessions end (and are logged) in any order across the workers
    good = [l for l in lines if "|SUCCESS|" in l]
    assert len(good) == 1 and good[0].startswith("200|TLSv1.2|") and \
        "|SUCCESS|CN=alice,O=Zg|" in good[0], lines
    assert sum(1 for l in lines if l.startswith("500|")) == 4, lines
    log = z.error_log()
    assert "client sent no required SSL certificate" in log
    assert "client SSL certificate verify error" in log
    stop_clean(z)
    # only the good client's session reached the upstream
    with open(rec) as f:
        assert [l for l in f.read().splitlines()] == [b"good one".hex()]


def test_stream_tls_handshake_timeout_and_proxy_protocol():
    z, port = start(extra="ssl_handshake_timeout 1s;")
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(client_hello()[:5])
    assert until_closed(s) == b""
    s.close()
    assert wait_for(lambda: "client timed out while SSL handshaking" in z.error_log(), 10)
    stop_clean(z)
    # listen ... proxy_protocol ssl: the PROXY header first, then the handshake
    port = free_port()
    up = TcpUpstream("echo")
    conf = CONF.replace("listen 127.0.0.1:{port} ssl;",
                        "listen 127.0.0.1:{port} proxy_protocol ssl;")
    z = Zonegate(conf, wait_ports=[port], port=port, up=up.addr, crt=crt(), key=key(),
                 workers=2, cache="off", tickets="on", extra="")
    settle(z)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    raw.sendall(b"PROXY TCP4 10.1.2.3 127.0.0.1 5555 80\r\n")
    s = client_ctx().wrap_socket(raw, server_hostname="localhost")
    s.sendall(b"behind a header")
    assert s.recv(100) == b"behind a header"
    s.close()
    stop_clean(z)


def test_stream_tls_rates_count_the_decrypted_bytes():
    # 400 KB one way at 100 KB/s cannot take less than ~3.9 s
    # (lower bounds only: a slow machine makes it longer, never shorter)
    import time
    for extra in ("proxy_upload_rate 100k;", "proxy_download_rate 100k;"):
        z, port = start(extra=extra)
        data = b"r" * (400 * 1024)
        t0 = time.time()
        got, _, _, _ = tls_echo(port, data)
        elapsed = time.time() - t0
        assert got == data
        assert elapsed >= 3.0, (extra, elapsed)
        stop_clean(z)


def test_stream_tls_config_errors():
    conf = """
stream {{
    server {{
        listen 127.0.0.1:{port} ssl;
        proxy_pass 127.0.0.1:1;
        {extra}
    }}
}}
"""
    rc, out, path = zonegate_t(conf, port=free_port(), extra="")
    assert rc == 1 and 'no "ssl_certificate" is defined for the "listen ... ssl" directive' \
        in out and "%s:4" % path in out, out
    rc, out, path = zonegate_t(conf, port=free_port(), extra="ssl_certificate %s; "
                               "ssl_certificate_key %s;" % (crt(), key("other")))
    assert rc == 1 and '"ssl_certificate_key" directive' in out and "%s:6" % path in out, out
    rc, out, path = zonegate_t(conf, port=free_port(), extra="ssl_stapling on;")
    assert rc == 1 and "ssl_stapling" in out, out
    rc, out, path = zonegate_t(conf, port=free_port(), extra="ssl_certificate %s; "
                               "ssl_certificate_key %s; ssl_handshake_timeout 5s;"
                               % (crt(), key()))
    assert rc == 0, out


DIFF = """
stream {{
    log_format tls '$status|$ssl_protocol|$ssl_session_reused|$ssl_client_verify|'
                   '$ssl_client_s_dn|$ssl_alpn_protocol';
    ssl_certificate {crt};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:STLS:1m;
    ssl_session_tickets off;
    server {{
        listen 127.0.0.1:{p_tls} ssl;
        ssl_alpn redis zg;
        access_log {logdir}/tls.log tls;
        proxy_pass {echo};
    }}
    server {{
        listen 127.0.0.1:{p_mtls} ssl;
        ssl_client_certificate {ca};
        ssl_verify_client on;
        access_log {logdir}/mtls.log tls;
        proxy_pass {echo};
    }}
    server {{
        listen 127.0.0.1:{p_deny} ssl;
        deny all;
        proxy_pass {echo};
    }}
}}
"""


def stream_tls_profile(ports, logdir):
    d = client_certs()
    out = []
    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2,
              ssl.TLSVersion.TLSv1_3):
        ctx = client_ctx(v)
        try:
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except ssl.SSLError:
            pass
        try:
            got, ver, _, _ = tls_echo(ports["p_tls"], ctx=ctx)
            out.append(("protocol", v.name, got == b"hello over tls", ver))
        except (ssl.SSLError, OSError):
            out.append(("protocol", v.name, "refused"))
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    _, _, _, sess = tls_echo(ports["p_tls"], ctx=ctx)
    out.append(("resumed", tls_echo(ports["p_tls"], ctx=ctx, session=sess)[2]))
    # ssl_alpn: the server's first protocol the client offers; none in common is refused
    for offer in (["other", "zg", "redis"], ["other"]):
        ctx = client_ctx()
        ctx.set_alpn_protocols(offer)
        try:
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", ports["p_tls"])),
                                server_hostname="localhost")
            out.append(("alpn", offer, s.selected_alpn_protocol()))
            s.close()
        except (ssl.SSLError, OSError) as e:
            out.append(("alpn", offer, "refused"))
    for who in (None, "good", "bad"):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = client_ctx(v)
            if who:
                ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
            try:
                got = tls_echo(ports["p_mtls"], ctx=ctx)[0]
            except (ssl.SSLError, OSError):
                got = b""
            out.append(("mtls", who, v.name, got))
    s = socket.create_connection(("127.0.0.1", ports["p_deny"]))
    s.sendall(client_hello())
    out.append(("deny", until_closed(s)))
    s.close()
    for name, n in (("tls.log", 8), ("mtls.log", 6)):
        path = os.path.join(logdir, name)
        assert wait_for(lambda: os.path.exists(path) and
                        len(open(path).read().splitlines()) >= n, 10), name
        with open(path) as f:
            out.append((name, sorted(f.read().splitlines())))
    return out


def test_stream_tls_same_as_nginx():
    from test_stream_nginx_diff import NGINX, STREAM_MODULE, NginxStream
    if not (os.path.exists(NGINX) and os.path.exists(STREAM_MODULE)):
        raise Skip("nginx or its stream module is missing (scripts/deps.sh test)")
    up = TcpUpstream("echo")
    d = client_certs()
    profiles = []
    for kind in ("zonegate", "nginx"):
        ports = {k: free_port() for k in ("p_tls", "p_mtls", "p_deny")}
        logdir = tempfile.mkdtemp(prefix="zgstls-")
        os.chmod(logdir, 0o777)
        kw = dict(ports, crt=crt(), key=key(), ca=os.path.join(d, "ca.crt"), echo=up.addr,
                  logdir=logdir)
        if kind == "zonegate":
            srv = Zonegate("worker_processes 2;\n" + DIFF, wait_ports=[ports["p_deny"]], **kw)
        else:
            srv = NginxStream(DIFF.format(**kw))
        try:
            profiles.append(stream_tls_profile(ports, logdir))
        finally:
            srv.stop()
    for a, b in zip(*profiles):
        print("nginx %-70s zonegate %s" % (b, a))
    assert profiles[0] == profiles[1]
