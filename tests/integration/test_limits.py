"""limit_req and limit_conn from the outside (issue 4): shared state across workers,
delay, dry run, RateLimit headers, inheritance, a full zone, reload."""
import re
import signal
import socket
import threading
import time

from limits_util import Burst, Client, metric, one, parallel, read_lines
from zg import SLOW, Upstream, Zonegate, free_port, get, wait_for

WORKERS = 4


def start(conf, **kw):
    """conf may use {back}: a port for a backend server block of the same zonegate"""
    port = free_port()
    kw.setdefault("workers", WORKERS)
    kw.setdefault("back", free_port())
    waits = [port] + ([kw["back"]] if "{back}" in conf else [])
    z = Zonegate(conf, wait_ports=waits, port=port, **kw)
    return z, port


# `return` answers in nginx's rewrite phase, before limit_req, limit_conn and
# allow/deny: a limited location proxies, here to a backend server block of the same
# zonegate (a keep-alive upstream without a zone, so no shared memory is added)
BACKEND = """
    upstream back {{ server 127.0.0.1:{back}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "%s"; }}
    }}
"""


def log_field_counts(lines, col):
    out = {}
    for line in lines:
        f = line.split()
        if len(f) > col:
            out[f[col]] = out.get(f[col], 0) + 1
    return out


# ---------------------------------------------------------------------------
# rate across 4 workers

RATE_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=fast:1m rate=100r/s;
    server {{
        listen 127.0.0.1:{port};
        limit_req_status 429;
        location / {{ limit_req zone=fast burst=50 nodelay; proxy_pass http://back; }}
        location = /metrics {{ metrics; }}
    }}""" + BACKEND % "ok" + """
}}
"""


def test_rate_100rs_burst50_across_workers():
    """600 requests at ~500 r/s over ~1.2 s from 6 threads whose connections are
    renewed every 10 requests, so the workers share them (which worker took which
    request is not visible from outside; the zone's counters must add up anyway).

    The bucket (nginx arithmetic, thousandths, ms clock): each accepted request
    adds 1000, the bucket drains 100 per ms, a request is accepted while
    excess + 1000 <= 50000.  As long as the bucket never runs empty (no drain is
    lost to the floor at 0), after A accepted requests
        1000 (A - 1) = excess_now + 100 * (t_last_accepted - t_first)   [ms]
    so A <= burst + 1 + rate * (t_last - t_first), and a request rejected at t_r
    proves A > burst + rate * (t_r - t_first).  The server times are bounded by
    client times: t_first in [first send, first answer], the last rejection
    happened after its request was sent, the last accepted request before its
    answer came back.  Hence
        burst + 1 + rate*(last rejected send - first answer) - 1
            <= A <= burst + 1 + rate*(last answer - first send)
    and we allow +-2 more for ms truncation.  Noise (a stalled thread or worker)
    only widens the window; it never makes the bounds wrong, except for drain
    lost while the bucket is empty.  So the start is a pipelined batch of 40 on
    one connection, read by the server in one go, sent when the six threads are
    already running: the bucket holds 39 requests at once, a stall would have to
    exceed ~400 ms to empty it, and from ~0.1 s on it stays full (~500 ms)."""
    z, port = start(RATE_CONF)
    key = {"X-Key": "burst"}
    lock = threading.Lock()
    results = []  # (sent, answered, status)

    threads, per_thread, interval, opening = 6, 94, 0.012, 40
    barrier = threading.Barrier(threads + 1)

    def worker():
        cl = Client(port)
        cl.connect()
        mine = []
        barrier.wait()
        t0 = time.monotonic()
        for i in range(per_thread):
            if i and i % 10 == 0:
                cl.close()
                cl.connect()
            s = time.monotonic()
            st, _, _ = cl.request("/", key)
            mine.append((s, time.monotonic(), st))
            pause = t0 + (i + 1) * interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        cl.close()
        with lock:
            results.extend(mine)

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ths:
        t.start()
    # the opening: 40 pipelined requests in one write, while the threads start theirs
    c = Client(port)
    c.connect()
    batch = b"".join(b"GET / HTTP/1.1\r\nHost: x\r\nX-Key: burst\r\n\r\n"
                     for _ in range(opening))
    barrier.wait()
    t_send = time.monotonic()
    c.sock.sendall(batch)
    for _ in range(opening):
        st, _, _ = c.read()
        with lock:
            results.append((t_send, time.monotonic(), st))
    c.close()
    for t in ths:
        t.join(30 * SLOW)
    assert len(results) == opening + threads * per_thread
    statuses = {st for _, _, st in results}
    assert statuses <= {200, 429}, statuses
    accepted = sum(1 for _, _, st in results if st == 200)
    assert accepted < len(results), "nothing was limited: %d requests" % accepted
    first_send = min(s for s, _, _ in results)
    first_answer = min(a for _, a, _ in results)
    last_answer = max(a for _, a, _ in results)
    last_rej_send = max(s for s, _, st in results if st == 429)
    burst, rate = 50, 100.0
    lo = burst + 1 + rate * (last_rej_send - first_answer) - 1
    hi = burst + 1 + rate * (last_answer - first_send)
    theory = burst + 1 + rate * (max(s for s, _, _ in results) - first_send)
    sends = sorted(s for s, _, _ in results)
    gap = max(b - a for a, b in zip(sends, sends[1:]))
    latency = max(a - s for s, a, _ in results if s != t_send)
    print("rate test: %d accepted of %d over %.3fs; theory %.1f, bounds [%.1f, %.1f], "
          "longest pause between sends %.0f ms, longest answer %.0f ms"
          % (accepted, len(results), last_answer - first_send, theory, lo, hi, gap * 1000,
             latency * 1000))
    assert accepted <= hi + 2, (accepted, lo, hi, theory)
    # the lower bound needs a bucket that never ran empty (~390 ms with no request
    # decided).  A gap of G in the server's decisions shows from outside as a pause
    # of G/2 between sends or an answer taking G/2 (the first request decided after
    # the gap was sent before it, or none was sent in its first half), so with both
    # under 190 ms the bound holds; a machine that stalled longer only gets the
    # upper one
    if gap < 0.19 and latency < 0.19:
        assert lo - 2 <= accepted, (accepted, lo, hi, theory)
    else:
        print("rate test: stalled (%.0f ms), lower bound not checked"
              % (max(gap, latency) * 1000))
    # the zone counted every request once, whichever worker took it
    passed = metric(port, "zonegate_limit_req_requests_total", zone="fast", result="passed")
    rejected = metric(port, "zonegate_limit_req_requests_total", zone="fast", result="rejected")
    assert (passed, rejected) == (accepted, len(results) - accepted), (passed, rejected)
    z.stop()


# ---------------------------------------------------------------------------
# nginx's phase order: `return` (rewrite) -> limit_req, limit_conn (preaccess) ->
# allow/deny (access) -> handler

ORDER_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=ord:64k rate=1r/m;
    limit_conn_zone $http_x_key zone=ordc:64k;
    log_format lim '$uri $http_x_key $status $limit_req_status $limit_conn_status';
    limit_req_status 429;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log lim;
        location /ret {{
            limit_req zone=ord burst=2 nodelay;
            limit_conn ordc 1;
            deny all;
            return 200 "ret";
        }}
        location /px/ {{
            limit_req zone=ord burst=2 nodelay;
            limit_conn ordc 1;
            proxy_pass http://app/;
        }}
        location /deny {{
            limit_req zone=ord burst=2 nodelay;
            limit_conn ordc 1;
            deny all;
            proxy_pass http://app;
        }}
        location = /metrics {{ metrics; }}
    }}
}}
"""


def test_return_answers_before_limits_and_access():
    """A `return` location with limit_req, limit_conn and deny all answers its return
    for every request and charges no zone; the same limits on a proxied location
    limit it (1r/m burst=2: three pass, then 429; limit_conn 1: 503), and deny
    comes after both limits (a denied request is charged to limit_req)."""
    u = Upstream("a")
    z, port = start(ORDER_CONF, up=u.addr)
    k = {"X-Key": "k"}
    c = Client(port)
    for _ in range(10):
        assert c.request("/ret", k)[::2] == (200, b"ret")
    c.close()
    res = parallel(port, [("/ret", k)] * 6)
    assert [st for st, _, _ in res] == [200] * 6, res
    m = lambda name, **kw: metric(port, name, **kw)  # noqa: E731
    assert m("zonegate_limit_req_requests_total", zone="ord") == 0
    assert m("zonegate_limit_conn_requests_total", zone="ordc") == 0

    # the proxied location with the same limits, for the same key: limit_conn 1
    # with three slow requests at once (all three within limit_req's burst), while
    # /ret with the key whose slot is held still answers
    b = Burst(port, [("/px/slow?hold=px", k)] * 3)  # the upstream holds what passes
    assert wait_for(lambda: sorted(b.statuses()) == [503, 503], 3), b.out
    u.wait_held("px", 1)
    assert m("zonegate_limit_conn_current", zone="ordc") == 1
    assert one(port, "/ret", k)[::2] == (200, b"ret")
    u.release("px")
    res = b.join()
    assert sorted(st for st, _, _ in res) == [200, 503, 503], res
    # limit_req: k is at its burst now; /ret still answers
    assert seq(port, "/px/", k, 2) == [429, 429]
    assert one(port, "/ret", k)[::2] == (200, b"ret")
    # deny all after the limits: three pass limit_req and are denied, then 429
    got = seq(port, "/deny", {"X-Key": "d"}, 5)
    assert got == [403, 403, 403, 429, 429], got
    # and no X-Key (not limited): denied
    assert seq(port, "/deny", {}, 2) == [403, 403]

    assert m("zonegate_limit_req_requests_total", zone="ord", result="passed") == 3 + 3
    assert m("zonegate_limit_req_requests_total", zone="ord", result="rejected") == 2 + 2
    assert m("zonegate_limit_conn_requests_total", zone="ordc", result="passed") == 1 + 3
    assert m("zonegate_limit_conn_requests_total", zone="ordc", result="rejected") == 2
    log = z.dir + "/access.log"
    mine = lambda: [x for x in read_lines(log) if not x.startswith("/metrics ")]  # noqa: E731
    lines = wait_for(lambda: (lambda ls: ls if len(ls) == 30 else None)(mine()), 3)
    assert lines, mine()
    ret = [x for x in lines if x.startswith("/ret ")]
    assert len(ret) == 18 and set(ret) == {"/ret k 200 - -"}, ret
    deny = [x for x in lines if x.startswith("/deny ")]
    # lines are written when each request ends, by whichever worker served it: the
    # order across workers is not the request order
    assert sorted(deny) == sorted(["/deny d 403 PASSED PASSED"] * 3 +
                                  ["/deny d 429 REJECTED -"] * 2 +
                                  ["/deny - 403 - -"] * 2), deny
    assert u.count() == 1  # only the one /px request that passed both limits
    err = z.error_log()
    assert err.count("access forbidden by rule") == 5, err
    z.stop()


# ---------------------------------------------------------------------------
# limit_conn

CONN_CONF = """
worker_processes {workers};
http {{
    limit_conn_zone $http_x_key zone=lc:64k;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location /slow {{
            limit_conn lc 3;
            limit_conn_status 429;
            proxy_pass http://app;
            proxy_read_timeout 10s;
        }}
        location = /metrics {{ metrics; }}
    }}
}}
"""


def current(port):
    return metric(port, "zonegate_limit_conn_current", zone="lc")


def test_limit_conn_exact_and_released():
    u = Upstream("a")
    z, port = start(CONN_CONF, up=u.addr)
    b = Burst(port, [("/slow?hold=a", {"X-Key": "k"})] * 5)
    # the two refusals are answered at once, while the upstream holds the other three
    assert wait_for(lambda: b.statuses() == [429, 429], 3), b.out
    u.wait_held("a", 3)
    u.release("a")
    res = b.join()
    sts = sorted(st for st, _, _ in res)
    assert sts == [200, 200, 200, 429, 429], res
    assert wait_for(lambda: current(port) == 0, 3), current(port)
    assert metric(port, "zonegate_limit_conn_requests_total", zone="lc", result="passed") == 3
    assert metric(port, "zonegate_limit_conn_requests_total", zone="lc", result="rejected") == 2
    assert metric(port, "zonegate_limit_conn_entries", zone="lc") == 0

    # clients that go away while the upstream is still working (it holds them until
    # the end of the test) give their slot back
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /slow?hold=gone HTTP/1.1\r\nHost: x\r\nX-Key: k\r\n\r\n")
        socks.append(s)
    assert wait_for(lambda: current(port) == 3, 3), current(port)
    t0 = time.monotonic()
    for s in socks:
        s.close()
    assert wait_for(lambda: current(port) == 0, 3, 0.02), current(port)
    took = time.monotonic() - t0
    print("limit_conn: slots back %.3fs after the clients closed" % took)
    res = parallel(port, [("/slow?ms=200", {"X-Key": "k"})] * 3)
    assert [st for st, _, _ in res] == [200, 200, 200], res
    assert wait_for(lambda: current(port) == 0, 3)
    z.stop()


# ---------------------------------------------------------------------------
# dry run

DRY_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=dr:64k rate=1r/m;
    limit_conn_zone $http_x_key zone=dc:64k;
    log_format lim '$uri $status $limit_req_status $limit_conn_status';
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log lim;
        limit_req_dry_run on;
        limit_conn_dry_run on;
        location /r {{ limit_req zone=dr burst=1; proxy_pass http://back; }}
        location /slow {{ limit_conn dc 1; proxy_pass http://app; }}
        location = /metrics {{ metrics; }}
    }}""" + BACKEND % "r" + """
}}
"""


def test_dry_run_passes_but_logs():
    u = Upstream("a")
    z, port = start(DRY_CONF, up=u.addr)
    c = Client(port, timeout=30)
    for _ in range(4):
        t = time.monotonic()
        st, _, body = c.request("/r", {"X-Key": "a"})
        assert st == 200 and body == b"r", st
        # not delayed either: a delay at 1r/m would be 60 s
        assert time.monotonic() - t < 30, time.monotonic() - t
    c.close()
    # three at once, all let through (dry run) and held together by the upstream
    b = Burst(port, [("/slow?hold=dry", {"X-Key": "a"})] * 3)
    u.wait_held("dry", 3)
    u.release("dry")
    res = b.join()
    assert [st for st, _, _ in res] == [200, 200, 200], res
    log = z.dir + "/access.log"
    lines = wait_for(lambda: (lambda ls: ls if len([x for x in ls if x.startswith("/slow")]) == 3
                              else None)(read_lines(log)), 3)
    assert lines, read_lines(log)
    r = sorted(x.split()[2] for x in lines if x.startswith("/r "))  # any worker order
    assert r == ["DELAYED_DRY_RUN", "PASSED", "REJECTED_DRY_RUN", "REJECTED_DRY_RUN"], lines
    assert all(x.split()[1] == "200" for x in lines), lines
    lc = sorted(x.split()[3] for x in lines if x.startswith("/slow"))
    assert lc == ["PASSED", "REJECTED_DRY_RUN", "REJECTED_DRY_RUN"], lines
    m = lambda name, **kw: metric(port, name, **kw)  # noqa: E731
    assert m("zonegate_limit_req_requests_total", zone="dr", result="rejected_dry_run") == 2
    assert m("zonegate_limit_req_requests_total", zone="dr", result="delayed_dry_run") == 1
    assert m("zonegate_limit_req_requests_total", zone="dr", result="rejected") == 0
    assert m("zonegate_limit_conn_requests_total", zone="dc", result="rejected_dry_run") == 2
    assert m("zonegate_limit_conn_requests_total", zone="dc", result="rejected") == 0
    err = z.error_log()
    # 1r/m drains a little while the requests come: excess 1.99x, 0.99x
    assert re.search(r'limiting requests, dry run, excess: [12]\.\d{3} by zone "dr"', err), err
    assert re.search(r'delaying request, dry run, excess: [01]\.\d{3}, by zone "dr"', err), err
    assert 'limiting connections, dry run, by zone "dc"' in err, err
    z.stop()


# ---------------------------------------------------------------------------
# delay

DELAY_CONF = """
worker_processes 1;
http {{
    limit_req_zone $http_x_key zone=d:64k rate=2r/s;
    log_format lim '$http_x_key $status $limit_req_status $request_time';
    server {{
        listen 127.0.0.1:{port};
        access_log {dir}/access.log lim;
        location / {{ limit_req zone=d burst=5; proxy_pass http://back; }}
    }}""" + BACKEND % "ok" + """
}}
"""


def test_delay_without_nodelay():
    """burst=5 at 2r/s, no nodelay: 7 requests at once -> one passes, five wait
    0.5..2.5 s, the seventh is over the burst.  One worker, so the answer for
    another key while five requests wait proves the loop is not blocked."""
    z, port = start(DELAY_CONF)
    b = Burst(port, [("/", {"X-Key": "a"})] * 7)
    # one worker decides in arrival order: the refusal (answered at once) is the last
    # of the seven decided, the five delayed ones are waiting now
    assert wait_for(lambda: 503 in b.statuses(), 3), b.out
    st, _, _ = one(port, "/", {"X-Key": "b"})
    other = time.monotonic() - b.t0
    res = b.join()
    sts = sorted(s for s, _, _ in res)
    assert sts == [200] * 6 + [503], res
    slowest = max(t for s, _, t in res if s == 200)
    print("delay: 6 requests done after %.3fs (theory 2.5), other key after %.3fs"
          % (slowest, other))
    assert st == 200 and other < slowest, (st, other, res)
    assert slowest >= 2.0, res
    rejected_at = [t for s, _, t in res if s == 503][0]
    assert rejected_at < slowest, res
    log = z.dir + "/access.log"
    lines = wait_for(lambda: (lambda ls: ls if len(ls) == 8 else None)(read_lines(log)), 3)
    assert lines, read_lines(log)
    a = log_field_counts([x for x in lines if x.startswith("a ")], 2)
    assert a == {"PASSED": 1, "DELAYED": 5, "REJECTED": 1}, lines
    assert [x.split()[2] for x in lines if x.startswith("b ")] == ["PASSED"], lines
    z.stop()


# ---------------------------------------------------------------------------
# limit_req_status and RateLimit headers

HDR_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=hz:64k rate=10r/s;
    limit_req_zone $http_x_key zone=mz:64k rate=6r/m;
    limit_req_zone $http_x_key zone=dz:64k rate=1r/m;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        limit_req_status 429;
        limit_req_headers on;
        location /h/ {{ limit_req zone=hz burst=3 nodelay; proxy_pass http://app; }}
        location /m/ {{ limit_req zone=mz burst=3 nodelay; proxy_pass http://app; }}
        location /d/ {{
            limit_req zone=dz burst=1 nodelay;
            limit_req_status 503;
            limit_req_headers off;
            proxy_pass http://app;
        }}
    }}
    server {{
        listen 127.0.0.1:{port2};
        location / {{ limit_req zone=dz nodelay; proxy_pass http://app; }}
    }}
}}
"""


def ratelimit_fields(h):
    v = h.get("ratelimit", "")
    m = re.match(r'"(\w+)";r=(\d+);t=(\d+)$', v)
    assert m, v
    return m.group(1), int(m.group(2)), int(m.group(3))


def test_status_429_and_ratelimit_headers():
    """RateLimit-Policy states the zone's rate as quota per window; r (requests
    left in the burst) falls by one a request while the bucket barely drains
    (6r/m: 0.1 request a second), t (seconds to drain) grows; Retry-After on the
    refusal.  10r/s drains too fast to count down on a slow (ASan) build, so there
    a burst of 8 at once must see both 200s and 429s."""
    u = Upstream("a")
    port2 = free_port()
    z, port = start(HDR_CONF, up=u.addr, port2=port2)
    c = Client(port)
    got = [c.request("/m/x", {"X-Key": "a"}) for _ in range(5)]
    c.close()
    assert [st for st, _, _ in got] == [200, 200, 200, 200, 429], got
    rs, ts = [], []
    for st, h, body in got:
        assert h.get("ratelimit-policy") == '"mz";q=6;w=60', h
        name, r, t = ratelimit_fields(h)
        assert name == "mz"
        rs.append(r)
        ts.append(t)
        if st == 200:
            assert "retry-after" not in h, h
            assert body == b"ok a"
        else:
            # one request over burst=3 at 0.1 r/s: 10 s
            assert 9 <= int(h["retry-after"]) <= 10, h
            assert r == 0, h
    assert rs == [3, 2, 1, 0, 0], rs
    assert ts[0] == 0 and ts[1:4] == [10, 20, 30], ts  # ceil(excess / rate)

    # 20 at once: to see no 429, their decisions would have to spread over 1.6 s
    res = parallel(port, [("/h/x", {"X-Key": "b"})] * 20)
    sts = sorted(st for st, _, _ in res)
    assert sts[0] == 200 and sts[-1] == 429 and set(sts) == {200, 429}, res
    for st, h, _ in res:
        assert h.get("ratelimit-policy") == '"hz";q=10;w=1', h
        if st == 429:
            assert int(h["retry-after"]) >= 1 and ratelimit_fields(h)[1] == 0, h

    # limit_req_status and limit_req_headers set back in a location
    sts = []
    for _ in range(3):
        st, h, _ = one(port, "/d/x", {"X-Key": "a"})
        sts.append(st)
        assert "ratelimit" not in h and "ratelimit-policy" not in h, h
    assert sts == [200, 200, 503], sts
    # neither set: nginx's 503, no fields
    st, h, _ = one(port2, "/", {"X-Key": "z"})
    assert st == 200 and "ratelimit" not in h
    st, h, _ = one(port2, "/", {"X-Key": "z"})
    assert st == 503 and "ratelimit" not in h and "retry-after" not in h, (st, h)
    z.stop()


# ---------------------------------------------------------------------------
# inheritance, several limits, empty keys

INH_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=h:64k rate=1r/m;
    limit_req_zone $http_x_key zone=s:64k rate=1r/m;
    limit_req_zone $http_x_key zone=l:64k rate=1r/m;
    limit_req_zone $http_x_key zone=m1:64k rate=1r/m;
    limit_req_zone $http_x_other zone=m2:64k rate=1r/m;
    limit_conn_zone $http_x_conn zone=c:64k;
    limit_conn_zone $http_x_conn zone=c2:64k;
    limit_req zone=h burst=1 nodelay;
    limit_req_status 429;
    limit_conn c 1;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{p1};
        location / {{ proxy_pass http://app; }}
        location /slow {{ proxy_pass http://app; }}
    }}
    server {{
        listen 127.0.0.1:{p2};
        limit_req zone=s nodelay;
        limit_req_status 509;
        limit_conn_status 507;
        location / {{ proxy_pass http://app; }}
        location /own {{
            limit_req zone=l burst=2 nodelay;
            limit_req_status 418;
            proxy_pass http://app;
        }}
        location /multi {{
            limit_req zone=m1 burst=3 nodelay;
            limit_req zone=m2 burst=1 nodelay;
            proxy_pass http://app;
        }}
        location /slow {{ limit_conn c2 2; proxy_pass http://app; }}
    }}
    server {{
        listen 127.0.0.1:{p3};
        limit_conn_status 507;
        location /slow {{ proxy_pass http://app; }}
    }}
}}
"""


def seq(port, path, headers, n):
    return [one(port, path, headers)[0] for _ in range(n)]


def test_inheritance_multiple_and_empty_key():
    u = Upstream("a")
    p1, p2, p3 = free_port(), free_port(), free_port()
    z = Zonegate(INH_CONF, wait_ports=[p1, p2, p3], p1=p1, p2=p2, p3=p3, up=u.addr,
                 workers=WORKERS)
    k = {"X-Key": "k1"}
    # http level: limit_req h burst=1, status 429
    assert seq(p1, "/", k, 3) == [200, 200, 429]
    # empty key: not limited
    assert seq(p1, "/", {}, 6) == [200] * 6
    # server level replaces http's limit_req (k1 is over h's limit, yet passes), status 509
    assert seq(p2, "/", k, 2) == [200, 509]
    # location replaces server's (k1 is over s's limit), with its own status
    assert seq(p2, "/own", k, 4) == [200, 200, 200, 418]
    # two limits, two keys: both apply; a request m2 rejects is not charged to m1
    got = seq(p2, "/multi", {"X-Key": "m", "X-Other": "o1"}, 3)
    for o in ("o2", "o3", "o4"):
        got += seq(p2, "/multi", {"X-Key": "m", "X-Other": o}, 1)
    assert got == [200, 200, 509, 200, 200, 509], got
    # no X-Other: only m1 applies, and m is at its burst now
    assert seq(p2, "/multi", {"X-Key": "m"}, 1) == [509]
    assert seq(p2, "/multi", {"X-Key": "m2", "X-Other": "fresh"}, 1) == [200]
    # limit_conn c 1 from http with the default status (p1) and a server-level
    # one (p3); a location's own limit_conn replaces http's (p2, c2 2, 507 from
    # its server); an empty key is not limited
    # (the upstream holds every request that gets through until all are decided)
    reqs = ([(p1, "/slow?hold=inh", {"X-Conn": "one"})] * 2
            + [(p3, "/slow?hold=inh", {"X-Conn": "two"})] * 2
            + [(p2, "/slow?hold=inh", {"X-Conn": "three"})] * 3
            + [(p1, "/slow?hold=inh", {})] * 3)
    out = [None] * len(reqs)

    def go(i, p, path, h):
        out[i] = one(p, path, h, timeout=30 * SLOW)[0]

    ths = [threading.Thread(target=go, args=(i,) + r) for i, r in enumerate(reqs)]
    for t in ths:
        t.start()
    assert wait_for(lambda: u.held("inh") == 7 and sum(o is not None for o in out) == 3, 5), \
        (u.held("inh"), out)
    u.release("inh")
    for t in ths:
        t.join(10 * SLOW)
    assert sorted(out[0:2]) == [200, 503], out
    assert sorted(out[2:4]) == [200, 507], out
    assert sorted(out[4:7]) == [200, 200, 507], out
    assert out[7:] == [200, 200, 200], out
    z.stop()


# ---------------------------------------------------------------------------
# a tiny zone flooded with keys

TINY_CONF = """
worker_processes {workers};
http {{
    limit_req_zone $http_x_key zone=tiny:32k rate=1r/m;
    server {{
        listen 127.0.0.1:{port};
        location / {{ limit_req zone=tiny nodelay; limit_req_status 429;
                      proxy_pass http://back; }}
        location = /slab_stat {{ slab_stat; }}
        location = /metrics {{ metrics; }}
    }}""" + BACKEND % "ok" + """
}}
"""


def test_tiny_zone_flood_keeps_serving():
    """32k (the minimum) holds ~150 keys; 2400 distinct keys from 4 connections,
    every 8th request repeating a key sent just before (still in the zone: LRU
    head), which must be refused (rate 1r/m, no burst).  "Just before" is checked:
    a client thread the machine held up while the others went on may find its key
    evicted by them, lawfully (LRU); such a repeat proves nothing."""
    z, port = start(TINY_CONF)
    statuses = {}
    sent = []     # (sent, answered, key) of every request
    repeats = []  # (key, sent, answered, status)
    lock = threading.Lock()

    def flood(tid):
        c = Client(port)
        mine, rep, log = {}, [], []
        for i in range(600):
            key = "t%d-k%d" % (tid, i)
            t = time.monotonic()
            st, _, _ = c.request("/", {"X-Key": key})
            log.append((t, time.monotonic(), key))
            mine[st] = mine.get(st, 0) + 1
            if i % 8 == 7:
                key = "t%d-k%d" % (tid, i - 1)
                t = time.monotonic()
                st = c.request("/", {"X-Key": key})[0]
                log.append((t, time.monotonic(), key))
                rep.append((key, t, log[-1][1], st))
        c.close()
        with lock:
            for k, v in mine.items():
                statuses[k] = statuses.get(k, 0) + v
            repeats.extend(rep)
            sent.extend(log)

    ths = [threading.Thread(target=flood, args=(t,)) for t in range(4)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(60 * SLOW)
    assert statuses == {200: 2400}, statuses
    st, _, body = get(port, "/slab_stat")
    assert st == 200
    fails = sum(int(x) for x in re.findall(rb"fails:\s+(\d+)", body))
    evicted = metric(port, "zonegate_limit_req_evictions_total", zone="tiny")
    entries = metric(port, "zonegate_limit_req_entries", zone="tiny")
    print("tiny zone: slab fails %d, evictions %d, entries %d" % (fails, evicted, entries))
    assert fails > 0 and evicted > 2000, (fails, evicted)
    assert 0 < entries < 400, entries
    # a repeat of key K must be refused if fewer than entries - 1 other requests could
    # have been decided between K's first request and the repeat: only then can K
    # not have reached the LRU tail
    first = {k: (s0, a0) for s0, a0, k in sorted(sent, reverse=True)}
    conclusive = []
    for key, s1, a1, st in repeats:
        s0, _ = first[key]
        between = sum(1 for s, a, k in sent if k != key and a >= s0 and s <= a1)
        if between < entries - 1:
            conclusive.append((key, st))
    print("tiny zone: %d of %d repeats conclusive" % (len(conclusive), len(repeats)))
    assert len(conclusive) >= len(repeats) // 2, (len(conclusive), len(repeats))
    assert set(st for _, st in conclusive) == {429}, [x for x in conclusive if x[1] != 429]
    # still serving, still limiting
    assert seq(port, "/", {"X-Key": "after"}, 2) == [200, 429]
    z.stop()


# ---------------------------------------------------------------------------
# reload

RELOAD_CONF = """
worker_processes {workers};
http {{
    limit_req_zone {key} zone=rz:64k rate=1r/m;
    limit_req_status 429;
    server {{
        listen 127.0.0.1:{port};
        location / {{ limit_req zone=rz nodelay; proxy_pass http://back; }}
        location = /ver {{ return 200 "{ver}"; }}
        location = /metrics {{ metrics; }}
    }}""" + BACKEND % "ok" + """
}}
"""


def version(port):
    try:
        return get(port, "/ver", timeout=2)[2].decode()
    except OSError:
        return ""


def test_reload_keeps_zone_state_and_refuses_key_change():
    back = free_port()
    z, port = start(RELOAD_CONF, key="$http_x_key", ver="v1", back=back)
    old = z.wait_workers(WORKERS)
    assert seq(port, "/", {"X-Key": "k"}, 2) == [200, 429]
    z.rewrite(RELOAD_CONF, port=port, back=back, workers=WORKERS, key="$http_x_key", ver="v2")
    z.reload()
    assert wait_for(lambda: all(version(port) == "v2" for _ in range(8)), 10)
    z.wait_workers(WORKERS, gone=old)
    # the same zone: k is still at its limit
    assert seq(port, "/", {"X-Key": "k"}, 1) == [429]
    assert seq(port, "/", {"X-Key": "k2"}, 2) == [200, 429]

    cur = z.workers()
    z.rewrite(RELOAD_CONF, port=port, back=back, workers=WORKERS, key="$http_x_other", ver="v3")
    z.reload()
    err = wait_for(lambda: (lambda e: e if "reload failed" in e else None)(z.error_log()), 10)
    assert err, z.error_log()
    assert ('limit_req_zone "rz" uses the "$http_x_other" key while previously it used '
            'the "$http_x_key" key') in err, err
    # the old configuration keeps serving: same workers, keyed on X-Key
    assert z.proc.poll() is None
    assert z.workers() == cur
    assert all(version(port) == "v2" for _ in range(8))
    assert seq(port, "/", {"X-Key": "k"}, 1) == [429]
    assert seq(port, "/", {"X-Key": "k3"}, 2) == [200, 429]
    assert metric(port, "zonegate_reload_failures_total") == 1
    assert z.stop(signal.SIGQUIT) == 0
