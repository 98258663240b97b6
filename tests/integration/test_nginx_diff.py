"""Differential test: the same limit configuration and the same scripted traffic
against Debian's nginx and against zonegate must give the same statuses and the
same $limit_req_status / $limit_conn_status in the access log (issue 4).

The limited locations proxy to the same upstream.  Both servers run `return` in the
rewrite phase, before limit_req and limit_conn (preaccess) and allow/deny (access):
/ret has limits and `deny all` yet answers every request, and is charged to no zone;
/rpx has the same limits and rules on a proxied location: the first request passes
limit_req and is denied (403), the next ones are refused by limit_req (429).

Rates are per minute so that the scripted pauses (>= 1 s) decide the outcome with
hundreds of milliseconds of margin either way; both servers run at the same time,
each driven by its own thread."""
import os
import signal
import subprocess
import tempfile
import threading
import time

import test_uri
import zg
from limits_util import one, parallel, read_lines
from zg import Skip, Upstream, Zonegate, free_port, wait_port

NGINX = "/usr/sbin/nginx"

COMMON = """
    limit_req_zone $binary_remote_addr zone=z1:1m rate=30r/m;
    limit_req_zone $http_x_key zone=z2:1m rate=60r/m;
    limit_req_zone $http_x_key zone=z3:1m rate=30r/m;
    limit_req_zone $binary_remote_addr zone=z4:1m rate=30r/m;
    limit_req_zone $http_x_key zone=z5:1m rate=30r/m;
    limit_req_zone $http_x_key zone=z6:1m rate=30r/m;
    limit_conn_zone $http_x_key zone=c1:1m;
    limit_conn_zone $http_x_key zone=c2:1m;
    log_format lim '$uri $status $limit_req_status $limit_conn_status $http_x_key';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log lim;
        limit_req_status 429;
        location /a {{ limit_req zone=z1 burst=3 nodelay; proxy_pass http://app; }}
        location /k {{ limit_req zone=z3 burst=1 nodelay; proxy_pass http://app; }}
        location /m {{
            limit_req zone=z3 burst=1 nodelay;
            limit_req zone=z4 burst=3 nodelay;
            proxy_pass http://app;
        }}
        location /d {{ limit_req zone=z2 burst=2; limit_req_status 503; proxy_pass http://app; }}
        location /dry {{ limit_req zone=z5 burst=1; limit_req_dry_run on; proxy_pass http://app; }}
        location /slow {{ limit_conn c1 2; proxy_pass http://app; proxy_read_timeout 10s; }}
        location /ret {{ limit_req zone=z6 nodelay; limit_conn c2 1; deny all; return 200 "r"; }}
        location /rpx {{
            limit_req zone=z6 nodelay; limit_conn c2 1; deny all; proxy_pass http://app;
        }}
    }}
"""

ZG_CONF = "worker_processes 2;\nhttp {{\n" + COMMON + "}}\n"

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


class Nginx:
    def __init__(self, conf, port, **kw):
        self.dir = tempfile.mkdtemp(prefix="zgnginx-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf.format(dir=self.dir, port=port, **kw))
        g = ("daemon off; master_process on; worker_processes 2; pid %s/nginx.pid; "
             "error_log %s/error.log info;" % (self.dir, self.dir))
        self.proc = zg.spawn([NGINX, "-p", self.dir + "/", "-c", self.conf, "-g", g],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_port(port, proc=self.proc)
        except RuntimeError:
            raise RuntimeError("nginx did not start: %s" % self.error_log())

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return self.proc.stderr.read().decode(errors="replace") if self.proc.poll() else ""

    def stop(self):
        """TERM to the master, then (if it hangs) KILL to its whole process group, so
        no worker is left behind"""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def seq(port, path, n, key=None):
    h = {"X-Key": key} if key else {}
    return [one(port, path, h)[0] for _ in range(n)]


def script(port):
    """the traffic; returns [(step, statuses)]"""
    out = []
    # 1. z1 burst=3 nodelay: 4 pass, the rest is refused
    out.append(("a burst", seq(port, "/a", 6)))
    # z3 keyed on X-Key, shared by /k (burst=1) and /m
    out.append(("k burst", seq(port, "/k", 3, "p")))
    # 2. two limits in one location, keys X-Key (z3 burst=1) and the address (z4 burst=3);
    # a request one limit refuses is charged to neither
    m = []
    for key, n in (("a", 3), ("b", 3), ("c", 2), (None, 1)):
        m += seq(port, "/m", n, key)
    out.append(("multi", m))
    # 3. dry run: all pass, the log tells
    out.append(("dry", seq(port, "/dry", 4, "dry")))
    # 3b. `return` before the limits and allow/deny; then the same key on a proxied
    #     location with the same limits and rules: limit_req first, then deny
    out.append(("return", seq(port, "/ret", 4, "r")))
    out.append(("ret proxy", seq(port, "/rpx", 3, "r")))
    # 4. pause 2.5 s: 30r/m drains 1.25 requests, one more fits, the next does not
    #    (anything from 2 to 4 s gives the same answers)
    time.sleep(2.5)
    out.append(("a drained", seq(port, "/a", 2)))
    out.append(("k drained", seq(port, "/k", 2, "p")))
    # 5. z2 60r/m burst=2 without nodelay: four requests 100 ms apart ->
    #    now, +0.9 s, +1.8 s, refused (excess 2.7 > 2)
    res = parallel(port, [("/d", {"X-Key": "d"})] * 4, stagger=0.1)
    out.append(("delay", [st for st, _, _ in res]))
    # 6. limit_conn 2 per X-Key with a slow upstream: 3 at once -> one refused
    res = parallel(port, [("/slow?ms=1200", {"X-Key": "s"})] * 3
                   + [("/slow?ms=1200", {"X-Key": "s2"})] * 2)
    out.append(("conn s", sorted(st for st, _, _ in res[:3])))
    out.append(("conn s2", [st for st, _, _ in res[3:]]))
    # and the slots are back once they are done
    res = parallel(port, [("/slow?ms=300", {"X-Key": "s"})] * 2)
    out.append(("conn again", [st for st, _, _ in res]))
    return out


EXPECTED = {  # what nginx's arithmetic gives; nginx itself is the reference
    "a burst": [200, 200, 200, 200, 429, 429],
    "k burst": [200, 200, 429],
    "multi": [200, 200, 429, 200, 200, 429, 429, 429, 429],
    "dry": [200, 200, 200, 200],
    "return": [200, 200, 200, 200],
    "ret proxy": [403, 429, 429],
    "a drained": [200, 429],
    "k drained": [200, 429],
    "delay": [200, 200, 200, 503],
    "conn s": [200, 200, 503],
    "conn s2": [200, 200],
    "conn again": [200, 200],
}


def test_same_statuses_as_nginx():
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate(ZG_CONF, wait_ports=[zport], port=zport, up=u.addr)
    n = Nginx(NGINX_CONF, nport, up=u.addr)
    got = {}

    def run(name, port):
        try:
            got[name] = script(port)
        except Exception as e:  # noqa: B902
            got[name] = e

    ths = [threading.Thread(target=run, args=a) for a in (("zonegate", zport), ("nginx", nport))]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60)
    for name in ("zonegate", "nginx"):
        if isinstance(got.get(name), Exception):
            raise got[name]
    zs, ns = dict(got["zonegate"]), dict(got["nginx"])
    for step, _ in got["nginx"]:
        print("%-10s nginx %s zonegate %s" % (step, ns[step], zs[step]))
    assert zs == ns, (zs, ns)
    assert ns == EXPECTED, ns  # the script really exercises the limits

    # the access logs: the same lines (as a multiset: a worker writes its line after
    # the answer is out, so two workers may log consecutive requests either way)
    zlog, nlog = os.path.join(z.dir, "access.log"), os.path.join(n.dir, "access.log")
    total = sum(len(v) for v in ns.values())
    assert zg.wait_for(lambda: len(read_lines(zlog)) == total and
                       len(read_lines(nlog)) == total, 5), (read_lines(zlog), read_lines(nlog))
    zl, nl = read_lines(zlog), read_lines(nlog)
    assert sorted(zl) == sorted(nl), "\n".join(["zonegate:"] + zl + ["nginx:"] + nl)
    # two workers write these lines in either order: compare as multisets
    dry = sorted(x.split()[2] for x in nl if x.startswith("/dry "))
    assert dry == sorted(["PASSED", "DELAYED_DRY_RUN", "REJECTED_DRY_RUN",
                          "REJECTED_DRY_RUN"]), dry
    ret = sorted(x for x in nl if x.startswith(("/ret ", "/rpx ")))
    assert ret == sorted(["/ret 200 - - r"] * 4 + ["/rpx 403 PASSED PASSED r"] +
                         ["/rpx 429 REJECTED - r"] * 2), ret
    n.stop()
    z.stop()


# ---- auth_basic: the same user file for both, statuses and WWW-Authenticate ----

AUTH_COMMON = """
    limit_req_zone $http_x_key zone=a1:1m rate=1r/m;
    log_format au '$uri $status [$remote_user]';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log au;
        limit_req_status 429;
        auth_basic "Admin \\"area\\" \\\\x";
        auth_basic_user_file {htpasswd};
        location /p {{ proxy_pass http://app; }}
        location /off {{ auth_basic off; proxy_pass http://app; }}
        location /realm {{ auth_basic "other"; proxy_pass http://app; }}
        location /d {{ deny all; proxy_pass http://app; }}
        location /any {{ satisfy any; deny all; proxy_pass http://app; }}
        location /anyallow {{ satisfy any; allow 127.0.0.1; deny all; proxy_pass http://app; }}
        location /lim {{ limit_req zone=a1 nodelay; proxy_pass http://app; }}
        location /limd {{ limit_req zone=a1 nodelay; deny all; proxy_pass http://app; }}
        location /ret {{ return 200 "r"; }}
    }}
"""

# openssl passwd -apr1/-1/-5/-6 -salt Zg5alt01; bcrypt cost 4; {SHA}/{SSHA} of the same
AUTH_HTPASSWD = """# users
apr:$apr1$Zg5alt01$iJ0brvLcPCG1xNPTFgJQq1
md5:$1$Zg5alt01$70x6Kq4641cNen1HWG3IP/
sha256:$5$Zg5alt01$pwcz.ZpsVBgdIQug2hUu24QZxqj.gOIPHUnZt3uPub2
sha512:$6$Zg5alt01$yfw50JgEulPTGMQIBomcQof0W3XryrhAGPseq4hymHXSPNutLDtlGxKyI7jl3fUtVicVniaTGVDmY.HIsIMJc/
bcrypt:$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2
sha:{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=
ssha:{SSHA}CqSATe7bYuyyYJBoKDZVepMkPG0BAgME/g==
plain:{PLAIN}correct horse
empty:{PLAIN}
dup:{PLAIN}first
dup:{PLAIN}second
"""


def _auth(user, pw):
    import base64
    raw = ("%s:%s" % (user, pw)).encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def auth_script(port):
    """[(step, (status, WWW-Authenticate or None))]"""
    out = []

    def step(name, path, headers=None):
        st, h, _ = zg.request(port, "GET", path, headers=headers or {})
        out.append((name, (st, h.get("www-authenticate"))))

    pw = "correct horse"
    step("none", "/p")
    for user in ("apr", "md5", "sha256", "sha512", "bcrypt", "sha", "ssha", "plain"):
        step("ok " + user, "/p", _auth(user, pw))
        step("bad " + user, "/p", _auth(user, pw + "!"))
    step("empty pw", "/p", _auth("empty", ""))
    step("dup first", "/p", _auth("dup", "first"))
    step("dup second", "/p", _auth("dup", "second"))
    step("unknown", "/p", _auth("nobody", pw))
    step("no colon", "/p", {"Authorization": "Basic YXBy"})
    step("empty user", "/p", _auth("", pw))
    step("bad b64", "/p", {"Authorization": "Basic ###"})
    step("scheme case", "/p", {"Authorization": "bAsIc " + _auth("plain", pw)["Authorization"][6:]})
    step("bearer", "/p", {"Authorization": "Bearer x"})
    step("off", "/off")
    step("realm", "/realm")
    step("deny", "/d")
    step("deny creds", "/d", _auth("plain", pw))
    step("any", "/any")
    step("any creds", "/any", _auth("plain", pw))
    step("any bad", "/any", _auth("plain", "x"))
    step("anyallow", "/anyallow")
    step("ret", "/ret")
    # limit_req (preaccess) before auth and deny (access)
    step("lim 1", "/lim", {"X-Key": "l1"})
    step("lim 2", "/lim", dict(_auth("plain", pw), **{"X-Key": "l1"}))
    step("limd 1", "/limd", {"X-Key": "l2"})
    step("limd 2", "/limd", {"X-Key": "l2"})
    return out


def test_auth_same_as_nginx():
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    d = tempfile.mkdtemp(prefix="zgauth-")
    os.chmod(d, 0o755)
    htpasswd = os.path.join(d, "htpasswd")
    with open(htpasswd, "w") as f:
        f.write(AUTH_HTPASSWD)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + AUTH_COMMON + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr, htpasswd=htpasswd)
    n = Nginx(NGINX_CONF.replace(COMMON, AUTH_COMMON), nport, up=u.addr, htpasswd=htpasswd)
    zs, ns = auth_script(zport), auth_script(nport)
    for (step, a), (_, b) in zip(ns, zs):
        print("%-12s nginx %s zonegate %s" % (step, a, b))
    assert zs == ns, [(a, b) for a, b in zip(ns, zs) if a != b]
    got = dict(ns)
    assert got["none"] == (401, 'Basic realm="Admin "area" \\x"'), got["none"]
    assert got["ok bcrypt"][0] == 200 and got["limd 2"][0] == 429, got
    # the access logs: the same lines, $remote_user included
    zlog, nlog = os.path.join(z.dir, "access.log"), os.path.join(n.dir, "access.log")
    assert zg.wait_for(lambda: len(read_lines(zlog)) == len(ns) and
                       len(read_lines(nlog)) == len(ns), 5), (read_lines(zlog), read_lines(nlog))
    # map's default "" is a found, empty value (logged empty); a key keyval does not
    # hold is "not found" and logged "-", as nginx Plus's keyval logs it
    nlines = [l + "-" if l.endswith(" ") else l for l in read_lines(nlog)]
    assert sorted(read_lines(zlog)) == sorted(nlines), \
        "\n".join(["zonegate:"] + read_lines(zlog) + ["nginx:"] + nlines)
    n.stop()
    z.stop()


# ---- request paths (test_uri.py): every spelling, the same answers as nginx ----

SPELL_NGINX_CONF = """
user root;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
""" + test_uri.SPELL_COMMON + "}}\n"


def test_paths_same_as_nginx():
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + test_uri.SPELL_COMMON + "}}\n",
                 wait_ports=[zport], port=zport, up=u.addr)
    n = Nginx(SPELL_NGINX_CONF, nport, up=u.addr)
    zs, ns = test_uri.spell_script(zport), test_uri.spell_script(nport)
    for (what, za), (_, na) in zip(zs, ns):
        print("%-45s nginx %-30s zonegate %s" % (what, na, za))
    assert zs == ns, [(a, b) for a, b in zip(zs, ns) if a != b]
    assert ns == test_uri.SPELL_EXPECTED, ns  # the script tests what it means to

    # the access logs as multisets (two workers log in either order); nginx also
    # logs the requests it refused while parsing the head, zonegate does not
    zlog, nlog = os.path.join(z.dir, "access.log"), os.path.join(n.dir, "access.log")
    want = test_uri.spell_log_expected()
    nbad = sum(1 for _, st, _ in test_uri.SPELLINGS if st == 400)

    def nginx_lines():
        return [x for x in read_lines(nlog) if not x.endswith(" 400")]
    assert zg.wait_for(lambda: len(read_lines(zlog)) == len(want) and
                       len(read_lines(nlog)) == len(want) + nbad, 5), \
        (read_lines(zlog), read_lines(nlog))
    assert sorted(read_lines(zlog)) == sorted(nginx_lines()) == want, \
        "\n".join(["zonegate:"] + read_lines(zlog) + ["nginx:"] + read_lines(nlog))
    n.stop()
    z.stop()
    u.stop()


# ---- keyval (issue 16): the deny list and a map tier, against nginx's geo and map ----

KV_COMMON = """
    limit_req_zone $blocked zone=b:1m rate=1r/m;
    limit_req_zone $tier zone=t:1m rate=1r/m;
    log_format kv '$uri $status $blocked $tier';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log kv;
        limit_req_status 429;
        location /deny {{ limit_req zone=b burst=1 nodelay; proxy_pass http://app; }}
        location /tier {{ limit_req zone=t burst=1 nodelay; proxy_pass http://app; }}
        location /ifdeny {{ if ($blocked) {{ return 403; }} proxy_pass http://app; }}
        location /iftier {{ if ($tier = gold) {{ return 402; }} proxy_pass http://app; }}
    }}
"""

KV_ZG = """
    keyval_zone zone=deny:64k type=ip state={dir}/deny.json;
    keyval $remote_addr $blocked zone=deny;
    keyval_zone zone=tiers:64k state={dir}/tiers.json;
    keyval $http_x_key $tier zone=tiers;
"""

KV_NGINX = """
    geo $blocked {{ default ""; 127.0.0.0/8 1; 10.0.0.0/8 1; }}
    map $http_x_key $tier {{ default ""; a gold; b gold; c silver; }}
"""


def kv_script(port):
    out = [("deny", seq(port, "/deny", 3)), ("if deny", seq(port, "/ifdeny", 2))]
    for key in ("a", "c", "e"):
        out.append(("if tier " + key, seq(port, "/iftier", 1, key)))
    for key in ("a", "b", "a", "c", "c", "c", "d", "d", "d", "e"):
        out.append(("tier " + key, seq(port, "/tier", 1, key)))
    return out


def test_keyval_deny_list_and_tiers_same_as_nginx():
    """keyval zones loaded from state files against nginx's geo (the deny list) and
    map (a tier per API key): the same statuses, and the same log lines"""
    import json
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    d = tempfile.mkdtemp(prefix="zgkv-")
    with open(os.path.join(d, "deny.json"), "w") as f:
        json.dump({"127.0.0.0/8": "1", "10.0.0.0/8": "1"}, f)
    with open(os.path.join(d, "tiers.json"), "w") as f:
        json.dump({"a": "gold", "b": "gold", "c": "silver"}, f)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + KV_ZG + KV_COMMON + "}}\n",
                 wait_ports=[zport], port=zport, up=u.addr, dir=d)
    n = Nginx(NGINX_CONF.replace(COMMON, KV_NGINX + KV_COMMON), nport, up=u.addr)
    zs, ns = kv_script(zport), kv_script(nport)
    for (step, a), (_, b) in zip(ns, zs):
        print("%-8s nginx %s zonegate %s" % (step, a, b))
    assert zs == ns, [(a, b) for a, b in zip(ns, zs) if a != b]
    assert dict(ns)["deny"] == [200, 200, 429] and dict(ns)["if deny"] == [403, 403], ns
    assert dict(ns)["if tier a"] == [402] and dict(ns)["if tier c"] == [200], ns
    zlog, nlog = os.path.join(d, "access.log"), os.path.join(n.dir, "access.log")
    total = 3 + 2 + 3 + 10
    assert zg.wait_for(lambda: len(read_lines(zlog)) == total and
                       len(read_lines(nlog)) == total, 5), (read_lines(zlog), read_lines(nlog))
    # map's default "" is a found, empty value (logged empty); a key keyval does not
    # hold is "not found" and logged "-", as nginx Plus's keyval logs it
    nlines = [l + "-" if l.endswith(" ") else l for l in read_lines(nlog)]
    assert sorted(read_lines(zlog)) == sorted(nlines), \
        "\n".join(["zonegate:"] + read_lines(zlog) + ["nginx:"] + nlines)
    n.stop()
    z.stop()


# ---- which location and which server answer: nginx's matching order and priority ----

ROUTE_COMMON = r"""
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name locations;
        location = / {{ return 200 "exact /"; }}
        location / {{ return 200 "prefix /"; }}
        location /documents/ {{ return 200 "prefix /documents/"; }}
        location ^~ /images/ {{ return 200 "noregex /images/"; }}
        location ~* \.(gif|jpg|jpeg)$ {{ return 200 "regex* images"; }}
        location ~ ^/documents/(\w+)\.pdf$ {{ return 200 "regex pdf $1"; }}
        location /api/ {{
            location ~ ^/api/v(\d)/ {{ return 200 "nested regex v$1"; }}
            location /api/admin/ {{ internal; return 200 "internal admin"; }}
            location /api/x/ {{ return 200 "nested prefix /api/x/"; }}
        }}
        location ~ ^/api/o {{ return 200 "regex /api/o"; }}
        location ^~ /static/ {{
            location ~ \.css$ {{ return 200 "nested css"; }}
            location /static/ {{ return 200 "nested /static/"; }}
        }}
        location = /exact {{ return 200 "exact /exact"; }}
        location /exact {{ return 200 "prefix /exact"; }}
        location @named {{ return 200 "named"; }}
        location /px/ {{ proxy_pass http://127.0.0.1:1; }}
        location /px2 {{ return 200 "prefix /px2"; }}
        location /px2/ {{ proxy_pass http://127.0.0.1:1; }}
        location = /px3/ {{ proxy_pass http://127.0.0.1:1; }}
        location /px4/ {{ return 200 "prefix /px4/"; }}
        location /api/px/ {{ proxy_pass http://127.0.0.1:1; }}
    }}
    server {{ listen 127.0.0.1:{port2}; server_name first; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name example.com www.example.com; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name *.example.com; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name *.a.example.com; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name www.example.*; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name www.*; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name .example.org; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name ~^(www\.)?(?<d>.+)\.net$; return_hint; }}
    server {{ listen 127.0.0.1:{port2}; server_name ~^.*\.net$ ""; return_hint; }}
    server {{ listen 127.0.0.1:{port2} default_server; server_name dflt; return_hint; }}
"""

ROUTE_PATHS = [
    "/", "/index.html", "/documents/doc.html", "/images/1.gif", "/documents/1.jpg",
    "/x/1.JPG", "/documents/A.PDF", "/documents/a.pdf", "/api/v2/users", "/api/admin/x",
    "/api/x/y", "/api/other", "/api/o/x", "/static/a.css", "/static/a.gif", "/exact",
    "/exact/", "/exactly", "/@named",
    "/px", "/px?a=1&b", "/px2", "/px3", "/px4", "/api/px", "/p%20x/", "/PX",
]

ROUTE_HOSTS = [
    "www.example.com", "EXAMPLE.com", "x.example.com", "x.y.example.com", "x.a.example.com",
    "www.example.org", "www.example.net", "www.other.de", "example.org", "b.example.org",
    "xexample.org", "site.net", "www.site.net", "a.b.net", "nothing.de", "first", "example",
    "www.example.com.", "X.A.Example.COM", "first:8080", "127.0.0.1", "[::1]:80", "site.net.",
    "example.org.", "www.example.",
]


def route_conf(text):
    # each name server answers with its own server_name and the regex captures
    out, k = [], 0
    for line in text.split("\n"):
        if "return_hint;" in line:
            line = line.replace("return_hint;", 'location / {{ return 200 "server %d $1|$2"; }}' % k)
            k += 1
        out.append(line)
    return "\n".join(out)


def route_script(port, port2):
    out = []
    for p in ROUTE_PATHS:
        st, h, body = zg.request(port, "GET", p)
        loc = h.get("location", "").replace("127.0.0.1:%d/" % port, "127.0.0.1:PORT/")
        out.append((p, st, body.decode() if st == 200 else loc))
    for h in ROUTE_HOSTS:
        st, _, body = zg.request(port2, "GET", "/", headers={"Host": h})
        out.append((h, st, body.decode()))
    # no Host at all (HTTP/1.0): the server named ""
    resp, _ = zg.raw(port2, b"GET / HTTP/1.0\r\n\r\n")
    out.append(("(no host)", zg.status_of(resp), resp.split(b"\r\n\r\n", 1)[-1].decode()))
    return out


def test_routing_same_as_nginx():
    if not os.path.exists(NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % NGINX)
    common = route_conf(ROUTE_COMMON)
    zport, zport2, nport, nport2 = free_port(), free_port(), free_port(), free_port()
    z = Zonegate("worker_processes 1;\nhttp {{\n" + common + "}}\n", wait_ports=[zport, zport2],
                 port=zport, port2=zport2)
    n = Nginx(NGINX_CONF.replace(COMMON, common), nport, port2=nport2)
    wait_port(nport2)
    zs, ns = route_script(zport, zport2), route_script(nport, nport2)
    for a, b in zip(ns, zs):
        print("%-22s nginx %-3s %-26r zonegate %-3s %r" % (a[0], a[1], a[2], b[1], b[2]))
    assert zs == ns, [(a, b) for a, b in zip(ns, zs) if a != b]
    got = {k: (st, body) for k, st, body in ns}
    # the script exercises what it means to
    assert got["/documents/1.jpg"] == (200, "regex* images"), got
    assert got["/api/admin/x"][0] == 404, got
    assert got["site.net"] == (200, "server 7 |site"), got
    assert got["/px?a=1&b"] == (301, "http://127.0.0.1:PORT/px/?a=1&b"), got
    n.stop()
    z.stop()
