"""Access and error logs: variables of passed / delayed / rejected requests, the
combined format, access_log off, error_log levels, limit messages, reopen under load
(issue 5)."""
import http.client
import os
import re
import signal
import subprocess
import threading
import time

from limits_util import parallel
from zg import BIN, SLOW, Upstream, Zonegate, free_port, get, raw, request, wait_for

TIME_LOCAL = r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}"
ERR_HEAD = r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} \[%s\] \d+#0: "

VARS = """
worker_processes 2;
error_log {dir}/error.log {level};
http {{
    log_format t '$status|$limit_req_status|$limit_conn_status|$upstream_addr|'
                 '$upstream_status|$request_time|$body_bytes_sent|$request';
    limit_req_zone $http_x_key zone=lr:64k rate=2r/s;
    limit_conn_zone $http_x_conn zone=lc:64k;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log t;
        {server_extra}
        location /p {{ limit_req zone=lr burst=1; limit_conn lc 1; proxy_pass http://app; }}
        location = /ret {{ return 200 "ret"; }}
        location = /off {{ access_log off; return 200 "off"; }}
        location = /comb {{ access_log {dir}/combined.log; return 200 "c"; }}
    }}
}}
"""


def start(level="info", server_extra=""):
    up = Upstream("a")
    port = free_port()
    z = Zonegate(VARS, wait_ports=[port], port=port, up=up.addr, level=level,
                 server_extra=server_extra)
    return z, port, up


def lines(path, growing=False):
    """the lines of a log; growing: it is being written, so a line the kernel has
    copied only in part (it makes an append visible page by page) is left out"""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if growing and not data.endswith(b"\n"):
        data = data[:data.rfind(b"\n") + 1]
    assert data == b"" or data.endswith(b"\n"), data[-200:]
    return data.decode().split("\n")[:-1]


def test_access_log_variables_passed_delayed_rejected():
    z, port, up = start()
    log = os.path.join(z.dir, "access.log")
    # rate 2r/s burst 1, three at once: the first decided passes, the second waits
    # ~500 ms, the third (decided while the second waits) is rejected
    res = parallel(port, [("/p", {"X-Key": "a"})] * 3)
    assert sorted(st for st, _, _ in res) == [200, 200, 503], res
    rej_len = [h["content-length"] for st, h, _ in res if st == 503][0]
    assert get(port, "/ret")[2] == b"ret"
    assert get(port, "/off")[2] == b"off"
    got = wait_for(lambda: len(lines(log)) >= 4 and lines(log), 3)
    assert len(got) == 4, got
    fields = [ln.split("|") for ln in got]
    u = up.addr
    # sequential requests on separate connections may be logged by two workers in
    # either order: pick each line by what it is
    def pick(cond):
        found = [f for f in fields if cond(f)]
        assert len(found) == 1, (found, got)
        return found[0]
    p = pick(lambda f: f[1] == "PASSED")
    rj = pick(lambda f: f[1] == "REJECTED")
    d = pick(lambda f: f[1] == "DELAYED")
    ret = pick(lambda f: f[-1] == "GET /ret HTTP/1.1")
    # the delay limit_req computed (logged before it waits): excess / rate
    m = re.search(r'delaying request, excess: (\d+\.\d{3}), by zone "lr"', z.error_log())
    assert m, z.error_log()
    delay = float(m.group(1)) / 2
    # passed: upstream answered "ok a" (4 bytes), without waiting
    assert p[:5] == ["200", "PASSED", "-", u, "200"], p
    assert p[6:] == ["4", "GET /p HTTP/1.1"], p
    assert re.match(r"^\d+\.\d{3}$", p[5]) and float(p[5]) < delay, (p, delay)
    # rejected: never reached the upstream, not delayed; the bytes are the error page's
    assert rj[:5] == ["503", "REJECTED", "-", "-", "-"], rj
    assert rj[6] == rej_len, (rj, rej_len)
    assert float(rj[5]) < delay, (rj, delay)
    # delayed: logged when it ended, its request time holds the delay
    assert d[:5] == ["200", "DELAYED", "-", u, "200"], d
    assert d[6:] == ["4", "GET /p HTTP/1.1"], d
    assert delay >= 0.25 and float(d[5]) >= delay - 0.002, (d, delay)
    # a location without limits and upstream
    assert ret == ["200", "-", "-", "-", "-", ret[5], "3", "GET /ret HTTP/1.1"], ret
    z.stop()


def test_access_log_limit_conn_and_upstream_error():
    dead = free_port()
    z, port, up = start(server_extra="location /s/ { limit_conn lc 1; proxy_pass http://app/; }"
                        " location = /dead { proxy_pass http://127.0.0.1:%d; }" % dead)
    log = os.path.join(z.dir, "access.log")
    res = {}
    # limit_conn 1 on X-Conn: a request the upstream holds (then answers 600 ms after
    # its release) keeps the slot, the next is rejected
    t = threading.Thread(target=lambda: res.update(
        s=request(port, "GET", "/s/slow?hold=c&ms=600", headers={"X-Conn": "c"},
                  timeout=10 * SLOW)))
    t.start()
    up.wait_held("c", 1)
    st, _, rej_body = request(port, "GET", "/s/x", headers={"X-Conn": "c"})
    assert st == 503
    up.release("c")
    t.join(10 * SLOW)
    assert res["s"][0] == 200
    assert get(port, "/dead")[0] == 502
    got = wait_for(lambda: len(lines(log)) >= 3 and lines(log), 3)
    assert len(got) == 3, got
    # two workers: the lines are picked by their request, not by their order
    by_req = {ln.split("|")[-1]: ln.split("|") for ln in got}
    rj = by_req["GET /s/x HTTP/1.1"]
    held = by_req["GET /s/slow?hold=c&ms=600 HTTP/1.1"]
    dd = by_req["GET /dead HTTP/1.1"]
    assert rj[:5] == ["503", "-", "REJECTED", "-", "-"], rj
    assert rj[6:] == [str(len(rej_body)), "GET /s/x HTTP/1.1"], rj
    assert held[:5] == ["200", "-", "PASSED", up.addr, "200"], held
    assert held[6] == str(len(b"slow a")), held
    assert float(held[5]) >= 0.5, held
    assert dd[:5] == ["502", "-", "-", "127.0.0.1:%d" % dead, "502"], dd
    z.stop()


def test_combined_format_and_access_log_off():
    z, port, up = start()
    comb = os.path.join(z.dir, "combined.log")
    st, _, _ = request(port, "GET", "/comb?x=1&y=%20", headers={
        "Referer": "http://ref.example/a?b", "User-Agent": 'agent/1.0 "quoted"'})
    assert st == 200
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.putrequest("GET", "/comb", skip_accept_encoding=True)
    c.endheaders()
    assert c.getresponse().read() == b"c"
    c.close()
    assert get(port, "/off")[0] == 200
    got = wait_for(lambda: len(lines(comb)) == 2 and lines(comb), 3)
    assert got, lines(comb)
    # two connections may be served by two workers: lines in either order
    got = sorted(got, key=lambda ln: "/comb?" not in ln)
    assert re.match(r'^127\.0\.0\.1 - - \[%s\] "GET /comb\?x=1&y=%%20 HTTP/1\.1" 200 1 '
                    r'"http://ref\.example/a\?b" "agent/1\.0 \\x22quoted\\x22"$' % TIME_LOCAL,
                    got[0]), got[0]
    assert re.match(r'^127\.0\.0\.1 - - \[%s\] "GET /comb HTTP/1\.1" 200 1 "-" "-"$'
                    % TIME_LOCAL, got[1]), got[1]
    # the combined requests are not in the server's log; /off is in none
    acc = lines(os.path.join(z.dir, "access.log"))
    assert acc == [], acc
    assert not any("/off" in ln for ln in lines(comb))
    z.stop()


LEVELS = """
worker_processes 1;
error_log {dir}/error.log {level};
http {{
    limit_req_zone $binary_remote_addr zone=lr:64k rate=1r/s;
    limit_conn_zone $binary_remote_addr zone=lc:64k;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        limit_req_log_level {lr_level};
        limit_conn_log_level {lc_level};
        location /r {{ limit_req zone=lr burst=1; proxy_pass http://app; }}
        location /c {{ limit_conn lc 1; proxy_pass http://app; }}
    }}
}}
"""


def test_error_log_levels_and_limit_messages():
    up = Upstream("a")
    port = free_port()
    tmpl = LEVELS.replace("location /c {{", "location /slow {{")
    for level, lr_level, lc_level, want, not_want in (
            ("info", "warn", "notice",
             ["warn", "notice", "notice"], []),
            ("warn", "warn", "notice",
             ["warn", None, None], ["notice"]),
            ("error", "error", "error",
             ["error", None, "error"], ["notice", "warn"])):
        z = Zonegate(tmpl, wait_ports=[port], port=port, up=up.addr, level=level,
                     lr_level=lr_level, lc_level=lc_level)
        # three at once: one passes, one is delayed, one rejected
        got = parallel(port, [("/r", {})] * 3)
        assert sorted(st for st, _, _ in got) == [200, 200, 503], got
        # a request the upstream holds keeps the only limit_conn slot
        res = {}
        key = "lv-" + level
        t = threading.Thread(target=lambda: res.update(
            s=get(port, "/slow?hold=%s" % key, timeout=10 * SLOW)))
        t.start()
        up.wait_held(key, 1)
        assert get(port, "/slow?ms=1")[0] == 503
        up.release(key)
        t.join(10 * SLOW)
        assert res["s"][0] == 200
        z.stop()
        log = z.error_log()
        # burst=1: a delayed request's excess is in (0, 1], a rejected one's in (1, 2]
        # (exactly 1 and 2 when the three were decided within the same millisecond)
        rej = re.search((ERR_HEAD % r"(\w+)") + r'limiting requests, excess: (?:1\.\d{3}|2\.000) '
                        r'by zone "lr", client: 127\.0\.0\.1$', log, re.M)
        dly = re.search((ERR_HEAD % r"(\w+)") + r'delaying request, excess: (?:0\.\d{3}|1\.000), '
                        r'by zone "lr", client: 127\.0\.0\.1$', log, re.M)
        con = re.search((ERR_HEAD % r"(\w+)") + r'limiting connections by zone "lc", '
                        r'client: 127\.0\.0\.1$', log, re.M)
        # rejections at their level; a delay one level below (never below info)
        for m, lvl, what in ((rej, want[0], "reject"), (dly, want[1], "delay"),
                             (con, want[2], "conn")):
            if lvl is None:
                assert m is None, (level, what, log)
            else:
                assert m and m.group(1) == lvl, (level, what, lvl, log)
        for lvl in not_want:
            assert "[%s]" % lvl not in log, (level, lvl, log)
        if level == "info":
            assert "[notice]" in log and "started" in log
        else:
            assert "started" not in log, log


def test_error_log_info_client_errors():
    z, port, up = start(level="info")
    out, _ = raw(port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400"), out[:100]
    assert wait_for(lambda: re.search((ERR_HEAD % "info") + "client sent invalid request",
                                      z.error_log(), re.M), 3), z.error_log()
    z.stop()
    z, port, up = start(level="notice")
    out, _ = raw(port, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    time.sleep(0.2)
    assert "invalid request" not in z.error_log()
    z.stop()


# ---- reopen ----

REOPEN = """
worker_processes 2;
error_log {dir}/error.log info;
http {{
    log_format t '$request_uri $status $body_bytes_sent "$http_x_pad"';
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log t;
        location / {{ return 200 "x"; }}
    }}
}}
"""

LINE = re.compile(r'^/r\?id=(\d+)-(\d+) 200 1 "(p+)"$')


def test_reopen_under_load_loses_and_splits_nothing():
    port = free_port()
    z = Zonegate(REOPEN, wait_ports=[port], port=port)
    acc = os.path.join(z.dir, "access.log")
    err = os.path.join(z.dir, "error.log")
    stop = threading.Event()
    sent = []
    errors = []

    def client(tid):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        i = 0
        # long and varied lines, so that a split or interleaved write shows
        pad = "p" * (200 + 150 * tid)
        while not stop.is_set():
            try:
                c.request("GET", "/r?id=%d-%d" % (tid, i), headers={"X-Pad": pad})
                r = c.getresponse()
                if r.read() != b"x" or r.status != 200:
                    errors.append(r.status)
                sent.append((tid, i))
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
                c.close()
            i += 1
            if i % 50 == 0:
                c.close()  # new connections land on either worker
        c.close()

    def logging_into_new_file():
        """some requests were logged into the access log since it was (re)opened"""
        assert wait_for(lambda: len(lines(acc, growing=True)) >= 20, 5), "no progress: %s" % errors[:5]

    def reopened():
        """the master and every worker have the new files open, not the renamed
        ones: a descriptor's /proc link names the file it is open on now"""
        want = {acc, err}
        for pid in [z.proc.pid] + z.workers():
            try:
                fds = os.listdir("/proc/%d/fd" % pid)
                links = set()
                for fd in fds:
                    try:
                        links.add(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
                    except OSError:
                        pass
            except OSError:
                return False
            if not want <= links or any(x.startswith((acc + ".", err + ".")) for x in links):
                return False
        return True

    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    logging_into_new_file()
    os.rename(acc, acc + ".1")
    os.rename(err, err + ".1")
    z.kill(signal.SIGUSR1)
    assert wait_for(reopened, 5), "not every process reopened its logs"
    logging_into_new_file()
    os.rename(acc, acc + ".2")
    os.rename(err, err + ".2")
    rc = subprocess.run([BIN, "-c", z.conf, "-s", "reopen"], timeout=10 * SLOW).returncode
    assert rc == 0
    assert wait_for(reopened, 5), "not every process reopened its logs"
    logging_into_new_file()
    stop.set()
    for t in threads:
        t.join(10 * SLOW)
    assert not errors, errors[:5]

    files = [acc + ".1", acc + ".2", acc]
    # a request's line is written just after its answer: wait for the last ones
    per_file = wait_for(lambda: (lambda p: p if sum(map(len, p)) == len(sent) else None)(
        [lines(f) for f in files]), 3) or [lines(f) for f in files]
    for name, ls in zip(files, per_file):
        assert ls, "nothing in %s" % name
        for ln in ls:
            m = LINE.match(ln)
            assert m, (name, ln[:300])
            assert len(m.group(3)) == 200 + 150 * int(m.group(1)), (name, ln[:300])
    ids = [tuple(int(x) for x in LINE.match(ln).groups()[:2]) for ls in per_file for ln in ls]
    assert len(ids) == len(sent), (len(ids), len(sent))
    assert sorted(ids) == sorted(sent)
    # each file holds a stretch of every connection's requests, in order (one worker
    # served them one after the other and switched files once; two workers do not
    # reopen at the same instant, so across a client's connections the order can
    # differ around a reopen)
    for tid in range(4):
        for conn in range(max(i for t, i in sent if t == tid) // 50 + 1):
            last = -1
            for ls in per_file:
                mine = [int(m.group(2)) for m in map(LINE.match, ls)
                        if m.group(1) == str(tid) and int(m.group(2)) // 50 == conn]
                if mine:
                    assert min(mine) > last, (tid, conn, last, mine[:5])
                    last = max(mine)

    # after the reopen: new requests (either worker) go to the new file only
    n_old = [len(ls) for ls in per_file[:2]]
    for i in range(10):
        assert get(port, "/r?id=9-%d" % i, headers={"X-Pad": "pp"})[0] == 200
    n_new = len(per_file[2]) + 10
    assert wait_for(lambda: len(lines(acc)) == n_new, 3), (len(lines(acc)), n_new)
    assert [len(lines(f)) for f in files[:2]] == n_old
    # the error log was reopened by master and workers alike
    raw(port, b"BAD\r\n\r\n")
    assert wait_for(lambda: "invalid request" in open(err).read(), 3)
    for f in (err + ".1", err + ".2"):
        assert "invalid request" not in open(f).read()
    assert "started" in open(err + ".1").read()
    z.kill(signal.SIGHUP)
    assert wait_for(lambda: "reconfiguring" in open(err).read(), 3)
    z.stop()


SCOPED = """
worker_processes 2;
error_log {dir}/error.log info;
http {{
    limit_req_zone $http_x_key zone=sc:64k rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location /x {{
            error_log {dir}/loc.log warn; limit_req zone=sc nodelay; proxy_pass http://127.0.0.1:1;
        }}
        location /y {{ limit_req zone=sc nodelay; proxy_pass http://127.0.0.1:1; }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        error_log {dir}/srv.log error;
        location / {{ limit_req zone=sc nodelay; proxy_pass http://127.0.0.1:1; }}
    }}
}}
"""


def test_error_log_of_a_location_and_a_server():
    """error_log at location and server level: the limit messages of their requests go
    there, at their level; the others stay in the main log"""
    port, port2 = free_port(), free_port()
    z = Zonegate(SCOPED, wait_ports=[port, port2], port=port, port2=port2)
    main, loc, srv = (os.path.join(z.dir, n) for n in ("error.log", "loc.log", "srv.log"))
    assert [get(port, "/x", headers={"X-Key": "a"})[0] for _ in range(2)] == [502, 503]
    assert [get(port, "/y", headers={"X-Key": "b"})[0] for _ in range(2)] == [502, 503]
    assert [get(port2, "/", headers={"X-Key": "c"})[0] for _ in range(2)] == [502, 503]
    pat = 'limiting requests, excess: 1.000 by zone "sc", client: 127.0.0.1'
    assert wait_for(lambda: any(pat in x for x in lines(main)) and
                    any(pat in x for x in lines(srv)) and
                    any(pat in x for x in lines(loc)), 10), (lines(main), lines(srv), lines(loc))
    z.stop()
    # each rejection once, in its own log: a's in the location's, b's in the main
    # one, c's in the server's
    for log in (main, loc, srv):
        assert sum(pat in x for x in lines(log)) == 1, (log, lines(log))
    assert all("[error]" in x for x in lines(srv) if pat in x), lines(srv)
    # the proxy's upstream errors (each first request: 502) go to the level's log too
    up = "while connecting to upstream"
    assert sum(up in x for x in lines(loc)) == 1, lines(loc)
    assert sum(up in x for x in lines(srv)) == 1, lines(srv)
    assert sum(up in x for x in lines(main)) == 1, lines(main)
