"""Admin endpoints: /slab_stat exact counts and layout, /metrics against what the test
saw and the exposition format, allow/deny over IPv4 and IPv6 (issue 5)."""
import http.client
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from zg import SLOW, Skip, Upstream, Zonegate, free_port, get, request, wait_for

ZONES = """
worker_processes {workers};
http {{
    limit_req_zone $binary_remote_addr zone=one:64k rate=10r/s;
    limit_req_zone $http_x_key zone=keyed:64k rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=conns:64k;
    upstream app {{ zone app 64k; server {up}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        limit_req_status 429;
        limit_conn_status 503;
        location = /slab_stat {{ slab_stat; }}
        location = /metrics {{ metrics; }}
        location = /lr {{
            limit_req zone=one burst=5 nodelay;
            proxy_pass http://127.0.0.1:{back};
        }}
        location = /keyed {{ limit_req zone=keyed burst=2 nodelay; proxy_pass http://app; }}
        location /lc/ {{ limit_conn conns 1; proxy_pass http://app/; }}
        location / {{ proxy_pass http://app; }}
    }}
    # /lr's backend: `return` answers before any limit (nginx's rewrite phase), so a
    # limited location proxies; a plain address is an implicit upstream, no zone
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "lr"; }}
    }}
}}
"""

LAYOUT = [
    re.compile(r"^\* shared memory: \S+$"),
    re.compile(r"^total:\s+\d+\(KB\) free:\s+\d+\(KB\) size:\s+\d+\(KB\)$"),
    re.compile(r"^pages:\s+\d+\(KB\) start:[0-9A-F]{16} end:[0-9A-F]{16}$"),
    re.compile(r"^slot:\s+\d+\(Bytes\) total:\s+\d+ used:\s+\d+ reqs:\s+\d+ fails:\s+\d+$"),
]


def start(workers=2):
    up = Upstream("a")
    port, back = free_port(), free_port()
    z = Zonegate(ZONES, wait_ports=[port, back], port=port, back=back, workers=workers,
                 up=up.addr)
    z.wait_workers(workers)
    return z, port, up


def slab_blocks(port):
    """{zone: [lines]} of /slab_stat; checks every line's layout and one block a zone"""
    st, h, body = get(port, "/slab_stat")
    assert st == 200, st
    assert h["content-type"].startswith("text/plain")
    text = body.decode()
    assert text.endswith("\n")
    blocks, order, cur = {}, [], None
    for line in text[:-1].split("\n"):
        assert any(r.match(line) for r in LAYOUT), repr(line)
        if line.startswith("* shared memory: "):
            cur = line.split(": ", 1)[1]
            assert cur not in blocks, ("zone twice", cur)
            blocks[cur] = []
            order.append(cur)
        else:
            assert cur is not None, line
            blocks[cur].append(line)
    for name, lines in blocks.items():
        assert LAYOUT[1].match(lines[0]), (name, lines)
        # pages lines, then one slot line per power of two from 8 to 2048
        slots = [int(re.match(r"slot:\s+(\d+)", ln).group(1)) for ln in lines if
                 ln.startswith("slot:")]
        assert slots == [8 << i for i in range(9)], (name, slots)
        assert all(ln.startswith(("pages:", "slot:")) for ln in lines[1:])
    return order, blocks


def slot(block, size):
    for ln in block:
        m = re.match(r"slot:\s+%d\(Bytes\) total:\s+(\d+) used:\s+(\d+) reqs:\s+(\d+) "
                     r"fails:\s+(\d+)$" % size, ln)
        if m:
            return tuple(int(x) for x in m.groups())
    raise AssertionError("no slot %d in %r" % (size, block))


def used_slots(block):
    """{size: (total, used, reqs, fails)} of the slots ever asked for"""
    out = {}
    for size in (8 << i for i in range(9)):
        t = slot(block, size)
        if t != (0, 0, 0, 0):
            out[size] = t
    return out


def free_kb(block):
    return int(re.match(r"total:\s+\d+\(KB\) free:\s+(\d+)\(KB\)", block[0]).group(1))


def test_slab_stat_layout_and_exact_counts():
    z, port, up = start()
    order, b = slab_blocks(port)
    # declaration order, one block per zone of every kind
    assert order == ["one", "keyed", "conns", "app"], order
    for name in order:
        assert re.match(r"total:\s+64\(KB\) free:\s+\d+\(KB\) size:\s+4\(KB\)$", b[name][0])
    # fresh zones: only the module's root.  limit_req's root (tree, sentinel, LRU queue,
    # counters, rate, key and rate text: about 200 bytes) and limit_conn's both take a
    # 256-byte slot; the upstream zone's peer table for one server as well.
    for name in order:
        assert used_slots(b[name]) == {256: (16, 1, 1, 0)}, (name, b[name])
    base_free = {n: free_kb(b[n]) for n in order}

    # one request from 127.0.0.1 through limit_req: one node of 32 + 28 + 4 = 64 bytes
    # (the zg_limit_req_node_size(4) of the unit tests), in a new page of 64 slots
    st, _, body = get(port, "/lr")
    assert (st, body) == (200, b"lr")
    order, b = slab_blocks(port)
    assert used_slots(b["one"]) == {64: (64, 1, 1, 0), 256: (16, 1, 1, 0)}, b["one"]
    assert free_kb(b["one"]) == base_free["one"] - 4
    for name in ("keyed", "conns", "app"):
        assert used_slots(b[name]) == {256: (16, 1, 1, 0)}, (name, b[name])
        assert free_kb(b[name]) == base_free[name]
    # the same key again: no new node
    for _ in range(3):
        assert get(port, "/lr")[0] == 200
    order, b = slab_blocks(port)
    assert used_slots(b["one"]) == {64: (64, 1, 1, 0), 256: (16, 1, 1, 0)}, b["one"]

    # limit_conn: the node (tree node, count, a hold counter per worker slot) takes a
    # 256-byte slot while the request runs (held by the upstream until released)
    # and is freed when it ends
    res = {}
    t = threading.Thread(target=lambda: res.update(r=get(port, "/lc/slow?hold=lc")))
    t.start()
    up.wait_held("lc", 1)
    order, b = slab_blocks(port)
    assert used_slots(b["conns"]) == {256: (16, 2, 2, 0)}, b["conns"]
    up.release("lc")
    t.join(10 * SLOW)
    assert res["r"][0] == 200
    # the slot is freed as the request is finalized, just after its answer was sent
    b = wait_for(lambda: (lambda b: b if slot(b["conns"], 256)[1] == 1 else None)(
        slab_blocks(port)[1]), 3) or slab_blocks(port)[1]
    assert used_slots(b["conns"]) == {256: (16, 1, 2, 0)}, b["conns"]
    # an empty key ($http_x_key unset) is not limited and allocates nothing
    assert get(port, "/keyed")[0] == 200
    order, b = slab_blocks(port)
    assert used_slots(b["keyed"]) == {256: (16, 1, 1, 0)}, b["keyed"]
    # two keys: two nodes (key "k1" and "k22": 62 and 63 bytes, both 64-byte slots)
    for key in ("k1", "k22", "k1"):
        assert request(port, "GET", "/keyed", headers={"X-Key": key})[0] == 200
    order, b = slab_blocks(port)
    assert used_slots(b["keyed"]) == {64: (64, 2, 2, 0), 256: (16, 1, 1, 0)}, b["keyed"]
    assert used_slots(b["app"]) == {256: (16, 1, 1, 0)}, b["app"]
    z.stop()


# ---- /metrics ----

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|NaN|[+-]Inf)$"
                    % (NAME, LABEL, LABEL))


def parse_metrics(text):
    """A strict reader of the text exposition format: every family has HELP then TYPE
    before its samples and appears once; names and labels are well formed; counters
    end in _total; no series twice.  Returns {(name, frozenset(labels)): value}."""
    assert text.endswith("\n"), "no final newline"
    families = {}
    cur = None
    series = {}
    lines = text[:-1].split("\n")
    i = 0
    while i < len(lines):
        ln = lines[i]
        assert ln.strip() == ln and ln, "blank or padded line %d: %r" % (i, ln)
        if ln.startswith("#"):
            m = re.match(r"^# HELP (%s) (\S.*)$" % NAME, ln)
            assert m, "bad HELP line %r" % ln
            name = m.group(1)
            assert name not in families, "family %s twice" % name
            i += 1
            assert i < len(lines), "HELP without TYPE"
            m = re.match(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$" % NAME,
                         lines[i])
            assert m and m.group(1) == name, "TYPE must follow HELP: %r" % lines[i]
            families[name] = m.group(2)
            if m.group(2) == "counter":
                assert name.endswith("_total"), "counter %s without _total" % name
            cur = name
            i += 1
            continue
        m = SAMPLE.match(ln)
        assert m, "bad sample line %r" % ln
        assert m.group(1) == cur, "sample %s outside its family %s" % (m.group(1), cur)
        labels = re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or "")
        names = [k for k, _ in labels]
        assert len(set(names)) == len(names), "label twice: %r" % ln
        key = (m.group(1), frozenset(labels))
        assert key not in series, "series twice: %r" % ln
        v = float(m.group(3))
        if families[cur] == "counter":
            assert v >= 0 and v == int(v), ln
        series[key] = v
        i += 1
    return series


def mval(series, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in series, (name, labels)
    return int(series[key])


def check_promtool(text):
    tool = shutil.which("promtool")
    if tool is None:
        return False
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert p.returncode == 0, p.stdout.decode()
    return True


def served_by(z, port, client_ports):
    """the worker pids holding the accepted side of our connections"""
    inodes = {}
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            parts = ln.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            if lport == port and rport in client_ports:
                inodes[parts[9]] = rport
    pids = set()
    for pid in z.workers():
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                m = re.match(r"socket:\[(\d+)\]", link)
                if m and m.group(1) in inodes:
                    pids.add(pid)
        except OSError:
            pass
    return pids


def test_metrics_match_observed_statuses():
    z, port, up = start(workers=2)
    seen = {}  # status -> count

    def note(st):
        seen[st] = seen.get(st, 0) + 1

    # slow requests in parallel until two workers hold some of them: which worker
    # accepts is up to the kernel, so rounds go on (bounded) until both have; the
    # keep-alive connections stay with their worker until closed
    workers_seen = set()
    end = time.time() + 10 * SLOW
    while len(workers_seen) < 2 and time.time() < end:
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(8)]
        for c in conns:
            c.request("GET", "/slow?ms=400")
        ports = {c.sock.getsockname()[1] for c in conns}
        for c in conns:
            r = c.getresponse()
            r.read()
            note(r.status)
        workers_seen |= served_by(z, port, ports)
        for c in conns:
            c.close()
    assert len(workers_seen) >= 2, workers_seen
    # limit_req: key K gets 1 + burst 2 through, the rest rejected; key L the same
    for key, n in (("K", 7), ("L", 4)):
        for _ in range(n):
            note(request(port, "GET", "/keyed", headers={"X-Key": key})[0])
    assert seen.get(429) == 4 + 1, seen
    # no key: not limited, not counted by the zone
    note(get(port, "/keyed")[0])
    # limit_conn 1: one request held by the upstream holds the slot, three more are
    # rejected
    res = {}
    t = threading.Thread(target=lambda: res.update(r=get(port, "/lc/slow?hold=m")))
    t.start()
    up.wait_held("m", 1)
    for _ in range(3):
        note(get(port, "/lc/x")[0])
    up.release("m")
    t.join(10 * SLOW)
    note(res["r"][0])
    # the slot is given back as the request is finalized, just after its answer
    assert wait_for(lambda: mval(parse_metrics(get(port, "/metrics")[2].decode()),
                                 "zonegate_limit_conn_current", zone="conns") == 0, 3)
    assert get(port, "/lc/after")[0] == 200
    note(200)
    # a 404 passed on from the upstream
    note(get(port, "/status?code=404")[0])
    assert set(seen) == {200, 429, 503, 404}, seen
    assert (seen[429], seen[503], seen[404]) == (5, 3, 1), seen

    total = sum(seen.values())
    expect_class = {"2xx": seen[200], "4xx": seen[429] + seen[404], "5xx": seen[503]}

    def settled():
        text = get(port, "/metrics")[2].decode()
        s = parse_metrics(text)
        # the /metrics requests themselves are counted once they are finalized
        got = {c: mval(s, "zonegate_responses_total", code=c) for c in ("2xx", "4xx", "5xx")}
        return (text, s) if got["4xx"] == expect_class["4xx"] and \
            got["5xx"] == expect_class["5xx"] and got["2xx"] >= expect_class["2xx"] else None
    r = wait_for(settled, 3)
    assert r, get(port, "/metrics")[2].decode()
    text, s = r
    metrics_before = mval(s, "zonegate_responses_total", code="2xx") - expect_class["2xx"]
    assert mval(s, "zonegate_requests_total") == total + metrics_before
    assert mval(s, "zonegate_responses_total", code="1xx") == 0
    assert mval(s, "zonegate_responses_total", code="3xx") == 0
    assert mval(s, "zonegate_responses_total", code="other") == 0
    lr = "zonegate_limit_req_requests_total"
    assert mval(s, lr, zone="keyed", result="passed") == 3 + 3
    assert mval(s, lr, zone="keyed", result="rejected") == 5
    assert mval(s, lr, zone="keyed", result="delayed") == 0
    assert mval(s, lr, zone="one", result="passed") == 0
    assert mval(s, "zonegate_limit_req_entries", zone="keyed") == 2
    lc = "zonegate_limit_conn_requests_total"
    assert mval(s, lc, zone="conns", result="passed") == 2
    assert mval(s, lc, zone="conns", result="rejected") == 3
    assert mval(s, "zonegate_limit_conn_current", zone="conns") == 0
    peer = {"upstream": "app", "peer": up.addr}
    assert mval(s, "zonegate_upstream_peer_requests_total", **peer) == up.count()
    assert mval(s, "zonegate_upstream_peer_state", state="up", **peer) == 1
    assert mval(s, "zonegate_worker_restarts_total") == 0
    assert mval(s, "zonegate_zone_bytes", zone="keyed", kind="limit_req", type="total") == 65536
    # every worker answers with the same shared counters
    for _ in range(6):
        s2 = parse_metrics(get(port, "/metrics")[2].decode())
        assert mval(s2, lr, zone="keyed", result="rejected") == 5
        assert mval(s2, lc, zone="conns", result="rejected") == 3
    check_promtool(text)
    z.stop()


def test_metrics_format_strict_and_promtool():
    z, port, up = start(workers=1)
    get(port, "/lr")
    text = get(port, "/metrics")[2].decode()
    s = parse_metrics(text)
    assert len(s) > 30
    st, h, _ = get(port, "/metrics")
    assert h["content-type"] == "text/plain; version=0.0.4; charset=utf-8", h
    # the parser itself rejects what it must
    for bad in ("x_total 1\n",                                   # no HELP/TYPE
                "# HELP a_total h\n# TYPE a_total counter\na_total 1\na_total 2\n",
                "# HELP a h\n# TYPE a counter\na 1\n",           # counter without _total
                "# HELP a h\n# TYPE a gauge\na{b=\"c\"} 1\n# HELP a h\n# TYPE a gauge\n",
                "# HELP a h\n# TYPE a gauge\na{b=c} 1\n"):
        try:
            parse_metrics(bad)
        except AssertionError:
            continue
        raise AssertionError("accepted %r" % bad)
    if check_promtool(text):
        print("promtool check metrics: ok")
    z.stop()


# ---- allow / deny ----

# allow/deny run in nginx's access phase, after `return` (rewrite phase): the checked
# locations proxy to a backend server of the same zonegate, or are admin handlers
ACCESS = """
worker_processes 1;
http {{
    server {{
        listen 127.0.0.1:{port};
        {listen6}
        location = /a {{ {rules} proxy_pass http://127.0.0.1:{back}; }}
        location = /m {{ {rules} metrics; }}
        location = /open {{ proxy_pass http://127.0.0.1:{back}; }}
    }}
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "a"; }}
    }}
}}
"""


def access_zonegate(rules, listen6=""):
    port, back = free_port(), free_port()
    z = Zonegate(ACCESS, wait_ports=[port, back], port=port, back=back, listen6=listen6,
                 rules=rules)
    return z, port


def has_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def get6(port, path):
    c = http.client.HTTPConnection("::1", port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_allow_deny_ipv4():
    cases = [
        ("allow 127.0.0.1; deny all;", 200),
        ("deny 127.0.0.0/8;", 403),
        ("deny 127.0.0.0/8; allow all;", 403),    # first match wins
        ("allow 127.0.0.0/8; deny all;", 200),
        ("allow 10.0.0.0/8; deny all;", 403),
        ("deny 10.0.0.0/8;", 200),                 # no match: allowed
        ("deny 127.0.0.2; allow 127.0.0.0/24; deny all;", 200),
        ("deny 127.0.0.1/32; allow 127.0.0.0/24;", 403),
        ("allow 127.1.0.0/16; deny 0.0.0.0/0;", 403),
        ("deny all;", 403),
        ("allow ::1; deny all;", 403),             # an IPv6 rule never matches IPv4
    ]
    for rules, want in cases:
        z, port = access_zonegate(rules)
        st, _, body = get(port, "/a")
        assert st == want, (rules, st, body)
        assert (body == b"a") if want == 200 else (b"403" in body), (rules, body)
        assert get(port, "/m")[0] == want, rules
        assert get(port, "/open")[:3:2] == (200, b"a")
        z.stop()


def test_allow_deny_ipv6():
    if not has_ipv6():
        raise Skip("no IPv6 loopback")
    cases = [
        ("allow ::1; deny all;", 200, 403),
        ("deny ::/0;", 403, 200),
        ("allow 127.0.0.1; deny ::/0;", 403, 200),
        ("deny ::1/128; allow all;", 403, 200),
        ("allow fe80::/10; deny all;", 403, 403),
        ("deny all;", 403, 403),
    ]
    for rules, want6, want4 in cases:
        port6 = free_port()
        z, port = access_zonegate(rules, "listen [::1]:%d;" % port6)
        st, body = get6(port6, "/a")
        assert st == want6, (rules, "v6", st, body)
        assert (body == b"a") if want6 == 200 else (b"403" in body), (rules, body)
        assert get6(port6, "/m")[0] == want6, (rules, "v6")
        assert get6(port6, "/open") == (200, b"a")
        assert get(port, "/a")[0] == want4, (rules, "v4")
        assert get(port, "/m")[0] == want4, (rules, "v4")
        z.stop()
