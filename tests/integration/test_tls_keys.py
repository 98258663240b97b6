"""ssl_ecdh_curve, ssl_dhparam, ssl_password_file, ssl_conf_command, ssl_crl and
ssl_trusted_certificate (issue 18): the groups a server accepts, DHE with DH parameters
from a file, encrypted keys opened with each line of a password file in turn, OpenSSL
settings by name, revoked and unannounced CAs; bad values are -t errors naming file and line; the same
outcomes as Debian's nginx."""
import os
import socket
import ssl
import subprocess

from test_tls import certs, client_ctx, crt, key, read_response
from zg import SLOW, Skip, Zonegate, free_port, zonegate_t

SERVER = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {extra}
        location / {{ return 200 "ok"; }}
    }}
"""
ZG = "worker_processes 1;\nhttp {{\n" + SERVER + "}}\n"
NGINX = ("user root;\nevents {{ worker_connections 256; }}\nhttp {{\n"
         "    client_body_temp_path {dir}/body;\n    proxy_temp_path {dir}/proxy;\n"
         "    fastcgi_temp_path {dir}/fastcgi;\n    uwsgi_temp_path {dir}/uwsgi;\n"
         "    scgi_temp_path {dir}/scgi;\n" + SERVER + "}}\n")


def run(*a):
    subprocess.run(list(a), check=True, cwd=certs(), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def dhparam():
    p = os.path.join(certs(), "dh.pem")
    if not os.path.exists(p):
        run("openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
            "group:ffdhe2048", "-out", p)
    return p


def encrypted_key():
    """localhost's key encrypted with "right one", and a password file whose first
    line is wrong"""
    k = os.path.join(certs(), "enc.key")
    if not os.path.exists(k):
        run("openssl", "pkey", "-in", key(), "-aes256", "-passout", "pass:right one", "-out", k)
        with open(os.path.join(certs(), "pw.txt"), "w") as f:
            f.write("wrong\r\nright one\n")
        with open(os.path.join(certs(), "badpw.txt"), "w") as f:
            f.write("wrong\nalso wrong")
    return k, os.path.join(certs(), "pw.txt"), os.path.join(certs(), "badpw.txt")


def s_client_group(port, group):
    """whether a TLS 1.3 handshake offering only `group` succeeds"""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_3",
                        "-groups", group, "-servername", "localhost"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20 * SLOW)
    out = p.stdout.decode(errors="replace")
    return "Cipher is TLS_" in out and "Cipher is (NONE)" not in out


def dhe(port):
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("DHE-RSA-AES128-GCM-SHA256")
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="localhost")
    except (ssl.SSLError, OSError):
        return "refused"
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st = read_response(s)[0]
    c = s.cipher()[0]
    s.close()
    return "%s %d" % (c, st)


CASES = [
    ("ecdh", "ssl_ecdh_curve X25519;"),
    ("ecdh", "ssl_ecdh_curve prime256v1:secp384r1;"),
    ("ecdh", "ssl_ecdh_curve auto;"),
    ("dhe", ""),
    ("dhe", "ssl_dhparam {dh}; ssl_ciphers DHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256;"),
    ("pw", "ssl_password_file {pw};"),
    ("suite", ""),
    ("suite", "ssl_conf_command Ciphersuites TLS_CHACHA20_POLY1305_SHA256;"),
]


def profile(start):
    out = []
    for what, extra in CASES:
        k, pw, _ = encrypted_key()
        srv, port = start(extra.format(dh=dhparam(), pw=pw),
                          k if what == "pw" else key())
        try:
            if what == "ecdh":
                out.append((extra, [s_client_group(port, g) for g in
                                    ("X25519", "P-256", "P-384")]))
            elif what == "dhe":
                out.append((extra, dhe(port)))
            elif what == "suite":
                s = client_ctx(ssl.TLSVersion.TLSv1_3).wrap_socket(
                    socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
                out.append((extra, s.cipher()[0]))
                s.close()
            else:
                s = client_ctx().wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                             server_hostname="localhost")
                s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                out.append((extra, read_response(s)[0]))
                s.close()
        finally:
            srv.stop()
    return out


def test_tls_curves_dhparam_password_file_as_nginx():
    def zstart(extra, k):
        port = free_port()
        return Zonegate(ZG, wait_ports=[port], port=port, crt=crt(), key=k, extra=extra), port
    zp = profile(zstart)
    assert zp[0][1] == [True, False, False], zp[0]
    assert zp[1][1] == [False, True, True], zp[1]
    assert zp[3][1] == "refused" and zp[4][1] == "DHE-RSA-AES128-GCM-SHA256 200", zp
    assert zp[5][1] == 200, zp
    assert zp[6][1] == "TLS_AES_256_GCM_SHA384" and zp[7][1] == "TLS_CHACHA20_POLY1305_SHA256", zp
    from test_nginx_diff import NGINX as BIN, Nginx
    if not os.path.exists(BIN):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % BIN)

    def nstart(extra, k):
        port = free_port()
        return Nginx(NGINX, port, crt=crt(), key=k, extra=extra), port
    np_ = profile(nstart)
    for a, b in zip(zp, np_):
        print("nginx %-70s zonegate %s" % (b, a))
    assert zp == np_


def test_tls_key_material_errors_name_file_and_line():
    k, pw, badpw = encrypted_key()
    bad_dh = os.path.join(certs(), "notdh.pem")
    with open(bad_dh, "w") as f:
        f.write("-----BEGIN DH PARAMETERS-----\nnot base64 at all\n-----END DH PARAMETERS-----\n")
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(),
                               extra="ssl_dhparam %s;" % bad_dh)
    assert rc == 1 and 'cannot load DH parameters "%s" of the "ssl_dhparam" directive' % bad_dh \
        in out and "%s:9" % path in out, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(),
                               extra="ssl_dhparam %s;" % crt())
    assert rc == 1 and '"ssl_dhparam"' in out, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(),
                               extra="ssl_conf_command NoSuchCommand x;")
    assert rc == 1 and 'SSL_CONF_cmd("NoSuchCommand", "x") failed' in out and \
        "%s:9" % path in out, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(), extra="ssl_ecdh_curve nosuch;")
    assert rc == 1 and 'SSL_CTX_set1_curves_list("nosuch") failed' in out, out
    # an encrypted key: no password file, or none of its passwords, is an error (never a
    # prompt on the terminal)
    for extra in ("", "ssl_password_file %s;" % badpw):
        rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=k, extra=extra)
        assert rc == 1 and 'cannot load certificate key "%s"' % k in out and \
            "%s:7" % path in out, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=k, extra="ssl_password_file %s;" % pw)
    assert rc == 0, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=k,
                               extra="ssl_password_file /nonexistent/pw;")
    assert rc == 1 and '"ssl_password_file"' in out and "%s:9" % path in out, out


def crl_certs():
    """client_certs' CA also signs "revoked" (CN=eve), and a CRL revoking it"""
    from test_tls import client_certs
    d = client_certs()
    crl = os.path.join(d, "crl.pem")
    if os.path.exists(crl):
        return d, crl
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = zg\n[zg]\ndatabase = %s/index.txt\n"
                "crlnumber = %s/crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\n"
                % (d, d))
    open(os.path.join(d, "index.txt"), "w").close()
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")

    def r(*a):
        subprocess.run(list(a), check=True, cwd=d, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    r("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "revoked.key", "-out",
      "revoked.csr", "-subj", "/O=Zg/CN=eve")
    r("openssl", "x509", "-req", "-in", "revoked.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
      "-CAcreateserial", "-out", "revoked.crt", "-days", "2")
    r("openssl", "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
      "-revoke", "revoked.crt")
    r("openssl", "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt",
      "-gencrl", "-out", "crl.pem")
    return d, crl


def mtls_profile(port, d):
    """status and $ssl_client_verify per client certificate, and whether the server
    announced its CA to the client"""
    out = []
    for who in ("good", "revoked", "bad"):
        ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
        ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        st, _, body, _ = read_response(s)
        s.close()
        out.append((who, st, body.decode(errors="replace")[:60] if st == 200 else ""))
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                        "-servername", "localhost"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20 * SLOW)
    text = p.stdout.decode(errors="replace")
    out.append(("CA names sent", "Acceptable client certificate CA names" in text))
    return out


def test_tls_crl_and_trusted_certificate_as_nginx():
    d, crl = crl_certs()
    ca = os.path.join(d, "ca.crt")
    cases = [
        "ssl_client_certificate %s; ssl_verify_client on; ssl_crl %s;" % (ca, crl),
        "ssl_client_certificate %s; ssl_verify_client optional; ssl_crl %s;" % (ca, crl),
        # trusted: verifies, not announced (nginx 1.22 still wants a client_certificate,
        # here the same file's CA names are then announced: use it for both)
        "ssl_trusted_certificate %s; ssl_client_certificate %s; ssl_verify_client on;"
        % (ca, ca),
    ]
    body = 'location / {{ return 200 "$ssl_client_verify"; }}'
    zconf = ZG.replace('location / {{ return 200 "ok"; }}', body)
    nconf = NGINX.replace('location / {{ return 200 "ok"; }}', body)

    def run(kind):
        out = []
        for extra in cases:
            port = free_port()
            if kind == "zonegate":
                srv = Zonegate(zconf, wait_ports=[port], port=port, crt=crt(), key=key(),
                               extra=extra)
            else:
                from test_nginx_diff import Nginx
                srv = Nginx(nconf, port, crt=crt(), key=key(), extra=extra)
            try:
                out.append(mtls_profile(port, d))
            finally:
                srv.stop()
        return out
    zp = run("zonegate")
    assert zp[0][:3] == [("good", 200, "SUCCESS"), ("revoked", 400, ""), ("bad", 400, "")], zp
    assert zp[1][1] == ("revoked", 400, ""), zp  # optional: a bad certificate is still 400
    # ssl_trusted_certificate alone (zonegate; nginx 1.22 refuses it without
    # ssl_client_certificate): verifies, and no CA name is announced
    port = free_port()
    z = Zonegate(zconf, wait_ports=[port], port=port, crt=crt(), key=key(),
                 extra="ssl_trusted_certificate %s; ssl_verify_client optional;" % ca)
    p = mtls_profile(port, d)
    z.stop()
    assert p == [("good", 200, "SUCCESS"), ("revoked", 200, "SUCCESS"),
                 ("bad", 400, ""), ("CA names sent", False)], p
    from test_nginx_diff import NGINX as BIN
    if not os.path.exists(BIN):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % BIN)
    np_ = run("nginx")
    for a, b in zip(zp, np_):
        print("nginx %s\nzonegate %s" % (b, a))
    assert zp == np_


def test_tls_crl_and_trusted_errors():
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(),
                               extra="ssl_crl /nonexistent/crl.pem;")
    assert rc == 1 and 'cannot load CRL "/nonexistent/crl.pem" of the "ssl_crl" directive' \
        in out and "%s:9" % path in out, out
    rc, out, path = zonegate_t(ZG, port=1, crt=crt(), key=key(),
                               extra="ssl_trusted_certificate /nonexistent/ca.pem;")
    assert rc == 1 and '"ssl_trusted_certificate" directive' in out and "%s:9" % path in out, out


REJECT = """
    server {{
        listen 127.0.0.1:{port} ssl default_server;
        ssl_reject_handshake on;
        ssl_protocols TLSv1.2 TLSv1.3;  # nginx 1.22's default has no TLSv1.3
        location / {{ return 200 "default"; }}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "named"; }}
    }}
"""


def sni_outcomes(port):
    out = []
    for name in ("localhost", "other.test", None):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            try:
                s = client_ctx(v).wrap_socket(socket.create_connection(("127.0.0.1", port),
                                                                       timeout=10),
                                              server_hostname=name)
            except ssl.SSLError as e:
                out.append((name, v.name, "alert unrecognized name"
                            if "UNRECOGNIZED_NAME" in str(e).upper() else str(e)))
                continue
            s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            out.append((name, v.name, read_response(s)[2]))
            s.close()
    return out


def test_tls_reject_handshake_as_nginx():
    port = free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + REJECT + "}}\n", wait_ports=[port],
                 port=port, crt=crt(), key=key())
    zp = sni_outcomes(port)
    z.stop()
    assert zp[:2] == [("localhost", "TLSv1_2", b"named"), ("localhost", "TLSv1_3", b"named")]
    assert all(o[2] == "alert unrecognized name" for o in zp[2:]), zp
    from test_nginx_diff import NGINX as BIN, Nginx
    if not os.path.exists(BIN):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % BIN)
    nport = free_port()
    n = Nginx(NGINX.replace(SERVER, REJECT), nport, crt=crt(), key=key())
    try:
        np_ = sni_outcomes(nport)
    finally:
        n.stop()
    assert zp == np_, (zp, np_)


VARS = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate {ca};
        ssl_verify_client optional;
        location / {{ return 200 "$ssl_alpn_protocol|$ssl_curve|$ssl_client_v_start|$ssl_client_v_end|$ssl_client_v_remain"; }}
    }}
"""


def vars_seen(port, d):
    out = []
    for alpn, who, group in ((["http/1.1"], "good", None), (None, None, None),
                             (["h2", "http/1.1"], "good", "P-256")):
        if group:
            p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                                "-groups", group, "-quiet", "-cert",
                                os.path.join(d, who + ".crt"), "-key",
                                os.path.join(d, who + ".key"), "-alpn", ",".join(alpn)],
                               input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=20 * SLOW)
            out.append(p.stdout.split(b"\r\n\r\n", 1)[-1])
            continue
        ctx = client_ctx()
        if alpn:
            ctx.set_alpn_protocols(alpn)
        if who:
            ctx.load_cert_chain(os.path.join(d, who + ".crt"), os.path.join(d, who + ".key"))
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                            server_hostname="localhost")
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        out.append(read_response(s)[2])
        s.close()
    return out


def test_tls_more_variables_as_nginx():
    """$ssl_alpn_protocol, $ssl_curve, $ssl_client_v_start, $ssl_client_v_end,
    $ssl_client_v_remain"""
    from test_tls import client_certs
    d = client_certs()
    ca = os.path.join(d, "ca.crt")
    port = free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + VARS + "}}\n", wait_ports=[port],
                 port=port, crt=crt(), key=key(), ca=ca)
    zv = vars_seen(port, d)
    z.stop()
    f = zv[0].decode().split("|")
    assert f[0] == "http/1.1" and f[1] == "X25519" and f[2].endswith(" GMT") and \
        f[3].endswith(" GMT") and f[4] in ("1", "2"), zv  # a 2-day certificate
    assert zv[1] == b"|X25519|||", zv
    assert zv[2].decode().split("|")[:2] == ["http/1.1", "prime256v1"], zv
    from test_nginx_diff import NGINX as BIN, Nginx
    if not os.path.exists(BIN):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % BIN)
    nport = free_port()
    n = Nginx(NGINX.replace(SERVER, VARS), nport, crt=crt(), key=key(), ca=ca)
    try:
        nv = vars_seen(nport, d)
    finally:
        n.stop()
    # whole days left may tick from 2 to 1 between the two runs: the rest is exact
    cut = lambda vs: [v.rsplit(b"|", 1)[0] for v in vs]
    assert cut(zv) == cut(nv), (zv, nv)
    assert all(v.rsplit(b"|", 1)[1] in (b"", b"1", b"2") for v in nv), nv


BUF = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {crt};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {extra}
        location / {{ root {root}; }}
    }}
"""


def largest_record(port, path):
    """GETs path over TLS 1.2 through memory BIOs, reading the raw records: the
    largest application-data record's length, and the body's length"""
    ctx = client_ctx(ssl.TLSVersion.TLSv1_2)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    o = ctx.wrap_bio(inb, outb, server_hostname="localhost")
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw, largest = b"", 0

    def pump():
        nonlocal raw, largest
        if outb.pending:
            sock.sendall(outb.read())
        b = sock.recv(65536)
        if not b:
            return False
        raw += b
        while len(raw) >= 5 and len(raw) >= 5 + int.from_bytes(raw[3:5], "big"):
            n = int.from_bytes(raw[3:5], "big")
            if raw[0] == 23:
                largest = max(largest, n)
            inb.write(raw[:5 + n])
            raw = raw[5 + n:]
        return True
    while True:
        try:
            o.do_handshake()
            break
        except ssl.SSLWantReadError:
            assert pump(), "closed during the handshake"
    o.write(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
    sock.sendall(outb.read())
    data = b""
    while True:
        try:
            b = o.read(65536)
            if not b:
                break  # close_notify
            data += b
        except ssl.SSLWantReadError:
            if not pump():
                break
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            break
    sock.close()
    return largest, len(data.split(b"\r\n\r\n", 1)[1])


def test_tls_buffer_size_bounds_the_records():
    import tempfile
    root = tempfile.mkdtemp(prefix="zgroot-")
    os.chmod(root, 0o755)
    with open(os.path.join(root, "big"), "wb") as f:
        f.write(b"x" * 200000)
    os.chmod(os.path.join(root, "big"), 0o644)
    conf = "worker_processes 1;\nhttp {{\n" + BUF + "}}\n"
    seen = {}
    for extra in ("", "ssl_buffer_size 4k;"):
        port = free_port()
        z = Zonegate(conf, wait_ports=[port], port=port, crt=crt(), key=key(), extra=extra,
                     root=root)
        seen[extra] = largest_record(port, "/big")
        z.stop()
    assert seen[""][1] == 200000 and seen["ssl_buffer_size 4k;"][1] == 200000, seen
    # a record is its payload plus at most 256 bytes of TLS overhead
    assert seen[""][0] > 8192, seen
    assert 4096 < seen["ssl_buffer_size 4k;"][0] <= 4096 + 256, seen
    rc, out, path = zonegate_t(conf, port=1, crt=crt(), key=key(), root=root,
                               extra="ssl_buffer_size 100;")
    assert rc == 1 and '"ssl_buffer_size"' in out and "%s:9" % path in out, out
