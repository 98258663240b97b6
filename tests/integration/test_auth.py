"""auth_basic, auth_basic_user_file and satisfy: statuses, WWW-Authenticate, the error
log lines nginx writes, $remote_user, protected admin locations, the order against
limit_req and allow/deny, the user file read at load and again on reload."""
import base64
import http.client
import os
import tempfile

from zg import Upstream, Zonegate, free_port, get, raw, status_of, wait_for, zonegate_t

# openssl passwd -apr1 / -6 -salt Zg5alt01 'correct horse'; bcrypt (cost 4) from crypt(3)
HTPASSWD = """# admin users
alice:$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq1
bob:$6$Zg5alt01$yfw50JgEulPTGMQIBomcQof0W3XryrhAGPseq4hymHXSPNutLDtlGxKyI7jl3fUtVicVniaTGVDmY.HIsIMJc/
carol:$2b$04$abcdefghijklmnopqrstuujydOTSfIH/d5oUHpsygqV5X9xJLQc6e
dave:{PLAIN}plain pw
"""
PW = "correct horse"


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


CONF = """
worker_processes 2;
http {{
    log_format u '$uri $status [$remote_user]';
    limit_req_zone $http_x_key zone=one:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log u;
        auth_basic "Restricted \\"zone\\"";
        auth_basic_user_file {dir}/htpasswd;
        limit_req_status 429;
        location / {{ proxy_pass http://{up}; }}
        location /open {{ auth_basic off; proxy_pass http://{up}; }}
        location /inner {{ auth_basic "Inner"; proxy_pass http://{up}; }}
        location /all {{ deny all; proxy_pass http://{up}; }}
        location /any-allow {{ satisfy any; allow 127.0.0.1; deny all; proxy_pass http://{up}; }}
        location /any-deny {{ satisfy any; deny all; proxy_pass http://{up}; }}
        location /any-noauth {{ satisfy any; auth_basic off; deny all; proxy_pass http://{up}; }}
        location /ret {{ return 200 "ret"; }}
        location /lim {{ limit_req zone=one nodelay; proxy_pass http://{up}; }}
        location = /slab_stat {{ slab_stat; }}
        location = /metrics {{ metrics; }}
    }}
}}
"""


def start():
    """the user file and the access log live in their own directory: the file must
    exist before zonegate starts"""
    up = Upstream("app")
    port = free_port()
    d = tempfile.mkdtemp(prefix="zgauth-")
    write(os.path.join(d, "htpasswd"), HTPASSWD)
    z = Zonegate(CONF, wait_ports=[port], port=port, up=up.addr, dir=d)
    return z, port, d


def test_statuses_header_and_log():
    z, port, d = start()
    st, h, body = get(port, "/x")
    assert st == 401, st
    assert b"<title>401 Authorization Required</title>" in body, body  # nginx's page
    assert h.get("www-authenticate") == 'Basic realm="Restricted "zone""', h
    for user, pw in (("alice", PW), ("bob", PW), ("carol", PW), ("dave", "plain pw")):
        st, h, body = get(port, "/x", headers=basic(user, pw))
        assert st == 200 and "www-authenticate" not in h, (user, st, h)
    st, h, _ = get(port, "/x", headers=basic("alice", "wrong"))
    assert st == 401 and h["www-authenticate"].startswith("Basic realm="), (st, h)
    st, _, _ = get(port, "/x", headers=basic("mallory", PW))
    assert st == 401
    st, _, _ = get(port, "/x", headers={"Authorization": "Basic !!!"})
    assert st == 401
    st, _, _ = get(port, "/x", headers={"Authorization": "Bearer abc"})
    assert st == 401
    # off at an inner level; a realm of its own with the inherited file
    assert get(port, "/open")[0] == 200
    st, h, _ = get(port, "/inner")
    assert st == 401 and h["www-authenticate"] == 'Basic realm="Inner"', h
    assert get(port, "/inner", headers=basic("alice", PW))[0] == 200
    # `return` (rewrite phase) answers before the access phase, as in nginx
    assert get(port, "/ret")[0] == 200
    want = ['user "mallory" was not found in "%s/htpasswd", client: 127.0.0.1' % d,
            'user "alice": password mismatch, client: 127.0.0.1',
            "no user/password was provided for basic authentication, client: 127.0.0.1"]
    assert wait_for(lambda: all(w in z.error_log() for w in want), 5), z.error_log()
    lines = wait_for(lambda: _lines(d, 13), 5)
    assert "/x 200 [carol]" in lines and "/x 401 [mallory]" in lines, lines
    assert "/open 200 [-]" in lines and "/x 401 [-]" in lines, lines
    z.stop()


def _lines(d, n):
    try:
        with open(os.path.join(d, "access.log")) as f:
            ls = f.read().splitlines()
    except OSError:
        return None
    return ls if len(ls) >= n else None


def test_satisfy_and_deny():
    z, port, _ = start()
    # satisfy all (default): deny answers 403 first, credentials or not
    assert get(port, "/all")[0] == 403
    assert get(port, "/all", headers=basic("alice", PW))[0] == 403
    # satisfy any: an allow rule that matches is enough
    assert get(port, "/any-allow")[0] == 200
    # satisfy any, denied: a 401 (auth failed) wins over the 403; credentials pass
    st, h, _ = get(port, "/any-deny")
    assert st == 401 and "www-authenticate" in h, (st, h)
    assert get(port, "/any-deny", headers=basic("alice", "bad"))[0] == 401
    assert get(port, "/any-deny", headers=basic("alice", PW))[0] == 200
    # satisfy any without auth: the deny stands
    assert get(port, "/any-noauth")[0] == 403
    assert wait_for(lambda: "access forbidden by rule" in z.error_log(), 5), z.error_log()
    z.stop()


def test_admin_locations_protected():
    z, port, _ = start()
    for path in ("/slab_stat", "/metrics"):
        st, h, _ = get(port, path)
        assert st == 401 and "www-authenticate" in h, (path, st)
        st, _, body = get(port, path, headers=basic("bob", PW))
        assert st == 200 and body, (path, st)
    z.stop()


def test_keepalive_client_with_bcrypt():
    """one connection, several requests: each is checked (a wrong password on the
    same connection still fails after a right one was remembered)"""
    z, port, _ = start()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(6):
            c.request("GET", "/slab_stat", headers=basic("carol", PW if i != 3 else "x"))
            r = c.getresponse()
            r.read()
            assert r.status == (401 if i == 3 else 200), (i, r.status)
    finally:
        c.close()
    z.stop()


def test_limit_req_comes_before_auth():
    """limit_req (preaccess) refuses before auth_basic (access) is asked, as in nginx:
    the first request of a key passes the limit and gets 401, the next is 429 with or
    without the right password"""
    z, port, _ = start()
    assert get(port, "/lim", headers={"X-Key": "k1"})[0] == 401
    assert get(port, "/lim", headers=dict(basic("alice", PW), **{"X-Key": "k1"}))[0] == 429
    st, h, _ = get(port, "/lim", headers={"X-Key": "k1"})
    assert st == 429 and "www-authenticate" not in h, (st, h)
    # a passing request with the right password goes through
    assert get(port, "/lim", headers=dict(basic("alice", PW), **{"X-Key": "k2"}))[0] == 200
    z.stop()


def test_user_file_read_at_load_and_reload():
    z, port, d = start()
    assert get(port, "/x", headers=basic("erin", "new"))[0] == 401
    write(os.path.join(d, "htpasswd"), HTPASSWD + "erin:{PLAIN}new\n")
    # the file is not read per request: nothing changes before a reload
    assert get(port, "/x", headers=basic("erin", "new"))[0] == 401
    z.reload()
    assert wait_for(lambda: get(port, "/x", headers=basic("erin", "new"))[0] == 200, 10)
    # a reload with an unreadable file keeps the running configuration
    os.rename(os.path.join(d, "htpasswd"), os.path.join(d, "htpasswd.gone"))
    z.reload()
    assert wait_for(lambda: "htpasswd\" failed" in z.error_log(), 10), z.error_log()
    assert get(port, "/x", headers=basic("erin", "new"))[0] == 200
    z.stop()


def test_config_errors():
    rc, out, path = zonegate_t(
        "http {{\n server {{\n  listen 127.0.0.1:1;\n  location / {{\n"
        "   auth_basic x;\n   auth_basic_user_file {dir}/nope;\n  }}\n }}\n}}\n")
    assert rc == 1, out
    assert "/nope\" failed (2: No such file or directory) in \"auth_basic_user_file\" " \
        "directive in %s:6" % path in out, out
    rc, out, _ = zonegate_t("http {{ satisfy maybe; }}\n")
    assert rc == 1 and "invalid value \"maybe\" in \"satisfy\" directive" in out, out


def test_duplicate_authorization_is_400():
    """as nginx: two Authorization headers are refused before any location is asked
    (the proxy must not check one while the upstream reads the other)"""
    z, port, _ = start()
    a = basic("alice", PW)["Authorization"]
    out, _ = raw(port, ("GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\n"
                        "Authorization: Basic Ym9iOng=\r\nConnection: close\r\n\r\n" % a).encode())
    assert status_of(out) == 400, out
    out, _ = raw(port, ("GET /x HTTP/1.1\r\nHost: h\r\nAuthorization: %s\r\n"
                        "Connection: close\r\n\r\n" % a).encode())
    assert status_of(out) == 200, out
    z.stop()


def test_unknown_hash_is_reported_by_t():
    d = tempfile.mkdtemp(prefix="zgauth-")
    write(os.path.join(d, "h"), "a:{PLAIN}x\neve:!locked\n")
    rc, out, _ = zonegate_t("http {{ server {{ listen 127.0.0.1:1; location / {{ "
                            "auth_basic x; auth_basic_user_file {d}/h; }} }} }}\n", d=d)
    assert rc == 0, out
    assert 'user "eve" in line 2 of "%s/h" has a password hash of an unknown scheme' % d \
        in out, out
