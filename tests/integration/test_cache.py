"""proxy_cache (issue 19): a response cache whose keys live in a shared zone, across
two workers: MISS then HIT from any worker, the validity rules of nginx, stale
answers on upstream errors, the cache lock, max_size, a restart that rebuilds the
index from the files, a worker killed mid-write; and $upstream_cache_status and the
statuses request by request against Debian's nginx."""
import glob
import http.client
import os
import re
import signal
import socket
import threading
import time
from email.utils import parsedate_to_datetime

import test_nginx_diff
from zg import Skip, Upstream, Zonegate, free_port, get, request, wait_for
from upstream import pattern

VERSION = "0.1.0"

CONF = """
worker_processes 2;
http {{
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=one:1m inactive=10m {extra};
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /any/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid any 10m;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /nohdr/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            proxy_ignore_headers Set-Cookie Cache-Control;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /byp/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            proxy_cache_bypass $arg_nocache;
            proxy_no_cache $arg_nostore;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /short/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /lock/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 60s;
            proxy_cache_lock_age 60s;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /reval/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_revalidate on;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /lockt/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 200ms;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /bg/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            proxy_cache_lock_age 60s;
            proxy_hide_header X-Secret;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /off/ {{ proxy_pass http://app/; add_header X-Cache "[$upstream_cache_status]"; }}
        location = /metrics {{ metrics; }}
        location = /slab_stat {{ slab_stat; }}
        location /api/ {{ api write=on; }}
    }}
}}
"""


def _start(extra="", up=None, cache_dir=None):
    u = up or Upstream("a")
    port = free_port()
    z = Zonegate(CONF, wait_ports=[port], port=port, up=u.addr, extra=extra)
    return u, z, port


def _xc(port, path, headers=None, method="GET"):
    st, h, body = request(port, method, path, headers=headers)
    return st, h.get("x-cache"), body, h


def _metric(port, name, **labels):
    body = get(port, "/metrics")[2].decode()
    sel = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    total = 0
    for m in re.finditer(r"^%s\{([^}]*)\} (\d+)$" % re.escape(name), body, re.M):
        have = ",".join(sorted(m.group(1).split(",")))
        if all(('%s="%s"' % kv) in have for kv in labels.items()) or not sel:
            total += int(m.group(2))
    return total


def _worker_requests(port):
    body = get(port, "/metrics")[2].decode()
    return {slot: int(n) for slot, n in re.findall(
        r'^zonegate_worker_requests_total\{worker="(\d+)"\} (\d+)$', body, re.M)}


def test_miss_then_hit_from_every_worker():
    u, z, port = _start()
    try:
        st, xc, body, h = _xc(port, "/big?n=5000&etag=%22v1%22")
        assert (st, xc, len(body)) == (200, "MISS", 5000), (st, xc, len(body))
        assert body == pattern(5000)
        before = _worker_requests(port)
        served = set()

        def both_workers_hit():
            st, xc, body, _ = _xc(port, "/big?n=5000&etag=%22v1%22")
            assert (st, xc) == (200, "HIT") and body == pattern(5000), (st, xc)
            now = _worker_requests(port)
            served.update(s for s in now if now[s] > before.get(s, 0) + 0)
            return len(served) >= 2
        assert wait_for(both_workers_hit, 10), served
        assert u.count() == 1, u.count()
        # HEAD from the cached GET: the head and its length, no body
        st, h, body = request(port, "HEAD", "/big?n=5000&etag=%22v1%22")
        assert (st, h["x-cache"], h["content-length"], body) == (200, "HIT", "5000", b""), h
        # conditional requests get 304 from the cache
        st, xc, body, h = _xc(port, "/big?n=5000&etag=%22v1%22",
                              headers={"If-None-Match": '"v1"'})
        assert (st, xc, body) == (304, "HIT", b""), (st, xc, h)
        st, xc, body, h = _xc(port, "/big?n=5000&etag=%22v1%22",
                              headers={"If-None-Match": '"other"'})
        assert (st, xc, len(body)) == (200, "HIT", 5000), (st, xc)
        lm = "Wed, 21 Oct 2015 07:28:00 GMT"
        q = "/hdr?Last-Modified=" + lm.replace(" ", "%20").replace(",", "%2C")
        assert _xc(port, q)[:2] == (200, "MISS")
        assert _xc(port, q, headers={"If-Modified-Since": lm})[:2] == (304, "HIT")
        assert _xc(port, q, headers={"If-Modified-Since":
                                     "Tue, 20 Oct 2015 07:28:00 GMT"})[:2] == (200, "HIT")
        # a large body, chunked from the upstream, is stored whole
        st, xc, body, h = _xc(port, "/big?n=300000&chunked=1")
        assert (st, xc, len(body)) == (200, "MISS", 300000)
        st, xc, body, h = _xc(port, "/big?n=300000&chunked=1")
        assert (st, xc, body, h["content-length"]) == (200, "HIT", pattern(300000), "300000")
        # off: no status, nothing cached
        assert _xc(port, "/off/big?n=10")[1] == "[]"
        assert _metric(port, "zonegate_cache_responses_total", status="hit") >= 5
        assert _metric(port, "zonegate_cache_entries") == 3
        assert "proxy_cache" in get(port, "/metrics")[2].decode()
    finally:
        z.stop()
        u.stop()


def test_validity_rules_as_nginx():
    u, z, port = _start()
    try:
        def twice(path):
            a = _xc(port, path)[:2]
            b = _xc(port, path)[:2]
            return a[1], b[1]
        # Cache-Control that forbids, and what gives a time of its own
        assert twice("/hdr?Cache-Control=no-cache") == ("MISS", "MISS")
        assert twice("/hdr?Cache-Control=no-store") == ("MISS", "MISS")
        assert twice("/hdr?Cache-Control=private") == ("MISS", "MISS")
        assert twice("/hdr?Cache-Control=max-age%3D0") == ("MISS", "MISS")
        assert twice("/hdr?Cache-Control=max-age%3D60") == ("MISS", "HIT")
        assert twice("/hdr?Cache-Control=s-maxage%3D0%2C%20max-age%3D60") == ("MISS", "MISS")
        assert twice("/hdr?X-Accel-Expires=0&Cache-Control=max-age%3D60") == ("MISS", "MISS")
        assert twice("/hdr?X-Accel-Expires=60&Cache-Control=no-cache") == ("MISS", "HIT")
        assert twice("/hdr?Expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A01%20GMT") == \
            ("MISS", "MISS")
        assert twice("/hdr?Set-Cookie=a%3D1") == ("MISS", "MISS")
        assert twice("/hdr?Vary=%2A") == ("MISS", "MISS")
        # what proxy_cache_valid does not name is not cached; `any` is
        assert twice("/status?code=404") == ("MISS", "MISS")
        assert twice("/any/status?code=404") == ("MISS", "HIT")
        # a max-age makes a 404 cacheable without proxy_cache_valid naming it
        assert twice("/hdr?code=404&Cache-Control=max-age%3D60") == ("MISS", "HIT")
        # proxy_ignore_headers
        assert twice("/nohdr/hdr?Set-Cookie=a%3D1") == ("MISS", "HIT")
        assert twice("/nohdr/hdr?Cache-Control=no-store") == ("MISS", "HIT")
        # Vary: a variant per value of the named header
        assert _xc(port, "/hdr?Vary=X-Lang", headers={"X-Lang": "en"})[1] == "MISS"
        assert _xc(port, "/hdr?Vary=X-Lang", headers={"X-Lang": "en"})[1] == "HIT"
        assert _xc(port, "/hdr?Vary=X-Lang", headers={"X-Lang": "fr"})[1] == "MISS"
        # POST is not cached (proxy_cache_methods GET HEAD)
        st, h, _ = request(port, "POST", "/hdr?p=1", body=b"x")
        assert st == 200 and "x-cache" not in h, h
        # bypass: fetched (and stored) anyway; no_cache: not stored
        assert _xc(port, "/byp/hdr?k=1")[1] == "MISS"
        assert _xc(port, "/byp/hdr?k=1")[1] == "HIT"
        assert _xc(port, "/byp/hdr?k=2&nostore=1")[1] == "MISS"
        assert _xc(port, "/byp/hdr?k=2&nostore=1")[1] == "MISS"
        n = u.count()
        assert _xc(port, "/byp/hdr?k=1&nocache=1")[1] == "BYPASS"
        assert u.count() == n + 1
    finally:
        z.stop()
        u.stop()


def test_expired_then_stale_on_upstream_errors():
    u, z, port = _start()
    try:
        assert _xc(port, "/short/hdr?body=fresh")[:3] == (200, "MISS", b"fresh")
        # after 1s the entry expires: the next request fetches it again
        assert wait_for(lambda: _xc(port, "/short/hdr?body=again")[1] == "EXPIRED", 10)
        assert _xc(port, "/short/hdr")[:3] == (200, "HIT", b"again")
        # a 500 from the upstream: the expired entry answers (http_500)
        assert wait_for(lambda: _xc(port, "/short/hdr?code=500&body=bad")[:3]
                        == (200, "STALE", b"again"), 10)
        # the upstream is down: error -> the expired entry answers
        u.stop()
        st, xc, body, _ = _xc(port, "/short/hdr")
        assert (st, xc, body) == (200, "STALE", b"again"), (st, xc, body)
        st, xc, body, h = _xc(port, "/short/hdr", method="HEAD")
        assert (st, xc, body, h["content-length"]) == (200, "STALE", b"", "5"), (st, xc, h)
        assert _xc(port, "/short/hdr")[:3] == (200, "STALE", b"again")
        # a key that was never cached: the error as it is
        st, xc, _, _ = _xc(port, "/short/other")
        assert (st, xc) == (502, "MISS"), (st, xc)
        assert _metric(port, "zonegate_cache_responses_total", status="stale") >= 2
    finally:
        z.stop()
        u.stop()


def test_revalidate_with_a_conditional_request():
    u, z, port = _start()
    try:
        assert _xc(port, "/reval/hdr?ETag=%22r1%22&body=first")[:3] == (200, "MISS", b"first")
        n = u.count()
        # expired: the upstream is asked with the entry's ETag, answers 304, and the
        # entry answers again (with its body), valid for another second
        def revalidated():
            st, xc, body, h = _xc(port, "/reval/hdr?ETag=%22r1%22&body=second")
            assert st == 200 and body == b"first", (st, xc, body)
            return xc == "REVALIDATED"
        assert wait_for(revalidated, 10)
        assert u.count() == n + 1
        st, xc, body, h = _xc(port, "/reval/hdr?ETag=%22r1%22&body=second")
        assert (st, body) == (200, b"first") and xc in ("HIT", "REVALIDATED"), (st, xc)
        # another ETag: the upstream answers 200 and the new body is stored
        assert wait_for(lambda: _xc(port, "/reval/hdr?ETag=%22r2%22&body=third")[1]
                        == "EXPIRED", 10)
        assert _xc(port, "/reval/hdr")[:3] == (200, "HIT", b"third")
        # a client's own conditional headers are not passed to a caching location's
        # upstream (nginx's proxy_cache_headers): the entry is filled with a 200
        st, xc, body, _ = _xc(port, "/hdr?ETag=%22c1%22&k=cond",
                              headers={"If-None-Match": '"c1"'})
        assert (st, xc) == (200, "MISS"), (st, xc)
        assert _xc(port, "/hdr?ETag=%22c1%22&k=cond")[:2] == (200, "HIT")
        assert _metric(port, "zonegate_cache_responses_total", status="revalidated") >= 1
    finally:
        z.stop()
        u.stop()


def test_lock_one_upstream_request_for_a_flood():
    u, z, port = _start()
    try:
        path = "/lock/slow?hold=L"
        first = threading.Thread(target=lambda: out.append(_xc(port, path)))
        out = []
        first.start()
        u.wait_held("L", 1)
        conns0 = _metric(port, "zonegate_worker_connections_total")
        socks = []
        for _ in range(99):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                       % path).encode())
            socks.append(s)
        # every one of them reached zonegate (and waits on the lock) before the release
        assert wait_for(lambda: _metric(port, "zonegate_worker_connections_total")
                        >= conns0 + 99, 10)
        held = u.held("L")
        assert held == 1, held
        u.release("L")
        first.join(30)
        statuses = {}
        for s in socks:
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
            st = int(data.split(b" ", 2)[1])
            xc = re.search(rb"X-Cache: (\w+)", data).group(1).decode()
            assert data.endswith(b"slow a"), data
            statuses[(st, xc)] = statuses.get((st, xc), 0) + 1
        assert out[0][:2] == (200, "MISS"), out
        assert statuses == {(200, "HIT"): 99}, statuses
        assert u.count() == 1, u.count()
    finally:
        z.stop()
        u.stop()


def test_lock_timeout_fetches_without_storing():
    u, z, port = _start()
    try:
        out = []
        path = "/lockt/slow?hold=T2"
        ts = [threading.Thread(target=lambda: out.append(_xc(port, path)[:3]))
              for _ in range(2)]
        ts[0].start()
        u.wait_held("T2", 1)
        ts[1].start()
        # the second waits for the lock 200ms, then goes to the upstream itself
        u.wait_held("T2", 2)
        u.release("T2")
        for t in ts:
            t.join(30)
        assert sorted(out) == [(200, "MISS", b"slow a")] * 2, out
        assert _xc(port, path)[:2] == (200, "HIT")
        assert u.count() == 2
    finally:
        z.stop()
        u.stop()


def _files(d):
    return [f for f in glob.glob(os.path.join(d, "cache", "*", "*", "*")) if os.path.isfile(f)]


def test_max_size_by_lru():
    u, z, port = _start(extra="max_size=100k")
    try:
        for i in range(8):
            assert _xc(port, "/big?n=30000&i=%d" % i)[1] == "MISS"
        # the manager (once a second in the master) removes the least recently used
        assert wait_for(lambda: _metric(port, "zonegate_cache_bytes") <= 100 * 1024, 10)
        assert sum(os.path.getsize(f) for f in _files(z.dir)) <= 100 * 1024
        assert _xc(port, "/big?n=30000&i=7")[1] == "HIT"
        assert _xc(port, "/big?n=30000&i=0")[1] == "MISS"
        assert _metric(port, "zonegate_cache_evictions_total") >= 5
    finally:
        z.stop()
        u.stop()


def test_reload_keeps_the_cache():
    u, z, port = _start()
    try:
        assert _xc(port, "/big?n=4000")[1] == "MISS"
        assert "shared memory: one" in get(port, "/slab_stat")[2].decode()
        old = z.wait_workers(2)
        z.reload()
        z.wait_workers(2, gone=old)
        # the keys zone (same name, kind and size) and the files are the new workers'
        st, xc, body, _ = _xc(port, "/big?n=4000")
        assert (st, xc, body) == (200, "HIT", pattern(4000)), (st, xc)
        assert _xc(port, "/big?n=5000")[1] == "MISS"
        assert _xc(port, "/big?n=5000")[1] == "HIT"
        assert u.count() == 2
    finally:
        z.stop()
        u.stop()


def test_min_free_removes_entries():
    # more free space than any disk has: the manager removes every entry it can
    u, z, port = _start(extra="min_free=1000000g")
    try:
        assert _xc(port, "/big?n=3000")[1] == "MISS"
        assert wait_for(lambda: _metric(port, "zonegate_cache_entries") == 0, 10)
        assert not _files(z.dir)
        assert _xc(port, "/big?n=3000")[1] == "MISS"
    finally:
        z.stop()
        u.stop()


def test_restart_rebuilds_the_index_and_serves_without_upstream():
    u, z, port = _start()
    try:
        assert _xc(port, "/big?n=7000")[:2] == (200, "MISS")
        assert _xc(port, "/hdr?body=kept")[:2] == (200, "MISS")
        z.stop()
        u.stop()
        z2 = Zonegate(CONF.replace("{dir}/cache", z.dir + "/cache"), wait_ports=[port],
                      port=port, up=u.addr, extra="")
        try:
            # the loader reads the files in the master's first ticks
            assert wait_for(lambda: _xc(port, "/big?n=7000")[1] == "HIT", 10)
            st, xc, body, _ = _xc(port, "/big?n=7000")
            assert (st, xc, body) == (200, "HIT", pattern(7000))
            assert _xc(port, "/hdr?body=kept")[:3] == (200, "HIT", b"kept")
            assert _metric(port, "zonegate_cache_entries") == 2
        finally:
            z2.stop()
    finally:
        z.stop()
        u.stop()


def test_loader_reads_many_files_in_steps():
    """1200 entries (with their level directories, over 2000 names): the loader reads
    them back over several ticks (1000 names a tick), and the API says "cold" until
    it is done"""
    import http.client
    import json
    u, z, port = _start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(1200):
            c.request("GET", "/hdr?i=%d" % i)
            r = c.getresponse()
            r.read()
            assert r.status == 200
        c.close()
        assert len(_files(z.dir)) == 1200
        z.stop()
        z2 = Zonegate(CONF.replace("{dir}/cache", z.dir + "/cache"), wait_ports=[port],
                      port=port, up=u.addr, extra="")
        try:
            def state():
                one = json.loads(get(port, "/api/1/http/caches/one")[2])
                return one["cold"], one["entries"]
            # in steps: for a while (a tick, a second) part of the entries are in and
            # the loader is not done
            def partial():
                cold, n = state()
                return cold and 0 < n < 1200
            assert wait_for(partial, 20), state()
            assert wait_for(lambda: state() == (False, 1200), 20), state()
            assert _xc(port, "/hdr?i=7")[1] == "HIT"
            assert u.count() == 1200
        finally:
            z2.stop()
    finally:
        z.stop()
        u.stop()


def test_worker_killed_mid_write_leaves_no_entry_and_no_lock():
    u, z, port = _start()
    try:
        path = "/lock/trickle?hold=T&n=200000"
        t = threading.Thread(target=lambda: _swallow(port, path))
        t.start()
        u.wait_held("T", 1)
        tmp = []
        assert wait_for(lambda: tmp.extend(glob.glob(os.path.join(z.dir, "cache", "t.*")))
                        or tmp, 10)
        pid = int(os.path.basename(tmp[0]).split(".")[1])
        assert pid in z.workers()
        os.kill(pid, signal.SIGKILL)
        z.wait_workers(2, gone=[pid])
        u.release("T")
        t.join(30)
        # no half entry: fetched again (at once: the dead worker's lock was cleared)
        st, xc, body, _ = _xc(port, path)
        assert (st, xc, body) == (200, "MISS", pattern(200000)), (st, xc, len(body))
        assert _xc(port, path)[:3] == (200, "HIT", pattern(200000))
        # the dead worker's temp file goes
        assert wait_for(lambda: not glob.glob(os.path.join(z.dir, "cache", "t.*")), 10)
    finally:
        z.stop()
        u.stop()


def _swallow(port, path):
    try:
        request(port, "GET", path, timeout=30)
    except Exception:  # noqa: B902 - the worker answering it is killed
        pass


def test_api_figures_and_removing_a_key():
    import json
    u, z, port = _start()
    try:
        assert _xc(port, "/short/hdr?body=one")[1] == "MISS"
        assert _xc(port, "/short/hdr")[1] == "HIT"
        st, _, body = get(port, "/api/1/http/caches")
        one = json.loads(body)["one"]
        assert st == 200 and one["entries"] == 1 and one["miss"]["responses"] == 1, one
        assert one["hit"]["responses"] == 1 and one["size"] > 0, one
        st, _, body = get(port, "/api/1/http/caches/one")
        assert st == 200 and json.loads(body)["stored"] == 1
        assert get(port, "/api/1/http/caches/nope")[0] == 404
        # PURGE-style: the key's text (proxy_cache_key $uri here), %-encoded
        st, _, _ = request(port, "DELETE", "/api/1/http/caches/one?key=%2Fshort%2Fhdr")
        assert st == 204
        assert not _files(z.dir)
        assert _xc(port, "/short/hdr?body=two")[:3] == (200, "MISS", b"two")
        st, _, _ = request(port, "DELETE", "/api/1/http/caches/one?key=%2Fnot-there")
        assert st == 404
        # without a key: the counters start again
        assert request(port, "DELETE", "/api/1/http/caches/one")[0] == 204
        one = json.loads(get(port, "/api/1/http/caches/one")[2])
        assert one["miss"]["responses"] == 0 and one["entries"] == 1, one
    finally:
        z.stop()
        u.stop()


def test_sandbox_still_kills_a_write_outside_the_cache_directory():
    """the workers may write in the cache directory (relative to the descriptor the
    master opened), and still nowhere else: an open for writing is killed"""
    import test_security as ts
    ts.need_root()
    ts.need_debug()
    path = ts.root_only_file()
    u = Upstream("a")
    port = free_port()
    z = Zonegate(CONF.replace("worker_processes 2", "worker_processes 1"), wait_ports=[port],
                 port=port, up=u.addr, extra="", env={"ZG_DEBUG_USR2": "write:" + path})
    try:
        assert _xc(port, "/big?n=100")[1] == "MISS"  # the worker wrote its entry
        assert _xc(port, "/big?n=100")[1] == "HIT"
        pid = ts.usr2(z)
        ts.wait_sigsys(z, pid)
        assert _xc(port, "/big?n=100")[1] == "HIT"
    finally:
        z.stop()
        u.stop()


def _bg_expire(t):
    """waits until an entry stored before t (valid 1 s) has expired, by the clock"""
    import time
    assert wait_for(lambda: int(time.time()) >= int(t) + 2, 10)


def _bg_stale(do):
    """do() (a request: status, X-Cache, body) until the entry is found expired: the
    HITs before it start nothing; returns the first other answer.  (The time an entry
    expires is not known to the second: a request that misses just before the entry
    is in place stores it again, a moment later.)"""
    last = []
    assert wait_for(lambda: last.append(do()) or last[-1][1] != "HIT", 15), last[-3:]
    return last[-1]


def _bg_fill(port, path, body):
    """fills the entry of path (MISS), then waits until it answers (HIT)"""
    assert request(port, "GET", path)[2] == body
    assert wait_for(lambda: _xc(port, path)[1:3] == ("HIT", body), 10)


def test_background_update_answers_stale_and_refreshes_once():
    import http.client
    u, z, port = _start()
    try:
        _bg_fill(port, "/bg/slow?ms=0&body=old", b"old")
        # expired: the client gets the old entry at once, on a connection that stays
        # open, while the refresh waits on the (held) upstream
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

        def ka():
            c.request("GET", "/bg/slow?hold=B&body=new")
            r = c.getresponse()
            return r.status, r.getheader("X-Cache"), r.read()
        n = u.count()
        assert _bg_stale(ka) == (200, "STALE", b"old")
        u.wait_held("B", 1)
        c.request("GET", "/bg/slow?hold=B&body=new")
        r = c.getresponse()
        assert (r.status, r.getheader("X-Cache"), r.read()) == (200, "UPDATING", b"old")
        c.close()  # the client goes: the refresh goes on
        # a flood meanwhile, over both workers, is answered from the old entry
        for _ in range(30):
            assert _xc(port, "/bg/slow?hold=B&body=new")[:3] == (200, "UPDATING", b"old")
        assert u.held("B") == 1
        assert u.count() == n + 1, (u.count(), n)  # the refresh, held
        u.release("B")
        # (every request asks for the same body: one that finds the entry expired
        # again, its second of validity over, refreshes it with the same)
        assert wait_for(lambda: _xc(port, "/bg/slow?ms=0&body=new")[:3]
                        == (200, "HIT", b"new"), 10)
        assert _metric(port, "zonegate_cache_responses_total", status="updating") >= 31
        # a refresh answered with what is not to be cached (a 500) leaves the expired
        # entry, and gives the lock back: a later request refreshes it again
        _bg_fill(port, "/bg/hdr?body=kept", b"kept")
        r = _bg_stale(lambda: _xc(port, "/bg/hdr?code=500&body=bad")[:3])
        assert r == (200, "STALE", b"kept"), r
        assert wait_for(lambda: _xc(port, "/bg/hdr?body=x")[:3] == (200, "STALE", b"kept"), 10)
        assert wait_for(lambda: _xc(port, "/bg/hdr?body=x")[:3] == (200, "HIT", b"x"), 10)
    finally:
        z.stop()
        u.stop()


def test_background_update_worker_stop_gives_the_lock_back():
    u, z, port = _start()
    try:
        _bg_fill(port, "/bg/slow?ms=0&body=old", b"old")
        assert _bg_stale(lambda: _xc(port, "/bg/slow?hold=Q&body=new")[:3]) == (
            200, "STALE", b"old")
        u.wait_held("Q", 1)
        # a reload ends the old workers (their refresh with them): the new ones start
        # a refresh of their own, with the lock free again
        z.reload()
        assert wait_for(lambda: _xc(port, "/bg/slow?hold=R&body=newer")[1] == "STALE", 15)
        u.wait_held("R", 1)
        u.release("R")
        # (a refresh an old worker began before it went is ended with it: any later
        # one stores the same body)
        assert wait_for(lambda: _xc(port, "/bg/slow?ms=0&body=newer")[:3]
                        == (200, "HIT", b"newer"), 10)
        assert not [f for f in os.listdir(z.dir + "/cache") if f.startswith("t.")]
    finally:
        u.release("Q")
        z.stop()
        u.stop()


def test_background_update_failure_frees_the_lock():
    u, z, port = _start()
    try:
        _bg_fill(port, "/bg/slow?ms=0&body=old", b"old")
        u.stop()
        # the refresh fails (connection refused): logged, the lock freed (lock_age is
        # 60 s: a lock left held would answer UPDATING), the expired entry kept
        assert _bg_stale(lambda: _xc(port, "/bg/slow?ms=0&body=new")[:3]) == (
            200, "STALE", b"old")
        assert wait_for(lambda: "during the background update" in open(z.log).read(), 10)
        assert wait_for(lambda: _xc(port, "/bg/slow?ms=0&body=new")[:3]
                        == (200, "STALE", b"old"), 10)
    finally:
        z.stop()
        u.stop()

def test_background_update_stores_what_the_proxy_passes():
    import time
    u, z, port = _start()
    try:
        # the refreshed entry: proxy_hide_header applies, X-Accel-Expires gives its
        # validity (100 s here, not proxy_cache_valid's 1 s) and is not kept
        _bg_fill(port, "/bg/hdr?X-Secret=s&X-Kept=k1&body=a", b"a")
        path = "/bg/hdr?X-Secret=s&X-Kept=k2&X-Accel-Expires=100&body=b"
        assert _bg_stale(lambda: _xc(port, path)[:3]) == (200, "STALE", b"a")
        assert wait_for(lambda: _xc(port, path)[1:3] == ("HIT", b"b"), 10)
        t = time.time()
        _bg_expire(t)
        st, xc, body, h = _xc(port, "/bg/hdr")
        assert (st, xc, body, h.get("x-kept")) == (200, "HIT", b"b", "k2"), (st, xc, body, h)
        assert "x-secret" not in h and "x-accel-expires" not in h, h
    finally:
        z.stop()
        u.stop()
    # an answer with a Location (proxy_redirect needs the request) is not stored by the
    # refresh: the next request fetches it through the proxy (a MISS)
    u, z2, port = _start()
    try:
        _bg_fill(port, "/bg/hdr?body=a", b"a")
        path = "/bg/hdr?code=301&Location=/x&X-Accel-Expires=100&body=r"
        assert _bg_stale(lambda: _xc(port, path)[:3]) == (200, "STALE", b"a")
        assert wait_for(lambda: _xc(port, path)[:2] == (301, "MISS"), 10)
    finally:
        z2.stop()
        u.stop()

def test_config_errors():
    from zg import zonegate_t
    bad = [
        ("proxy_cache_path {dir}/c levels=3 keys_zone=a:1m;", "invalid value"),
        ("proxy_cache_path {dir}/c levels=1:2;", "keys_zone"),
        ("proxy_cache_path {dir}/c keys_zone=a:1m foo=1;", "invalid parameter"),
        ("proxy_cache nope;", "unknown"),
        ("proxy_cache_use_stale sometimes;", "invalid value"),
        ("proxy_ignore_headers X-Nothing;", "invalid value"),
    ]
    for line, want in bad:
        rc, out, _ = zonegate_t("http {{ %s server {{ listen 127.0.0.1:1; }} }}" % line)
        assert rc == 1 and want in out, (line, out)


# ---- the differential: the same config and request script on nginx ----

DIFF_COMMON = """
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=one:1m;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_cache one;
            proxy_cache_key $request_uri;
            proxy_cache_valid 200 301 10m;
            proxy_cache_bypass $arg_nocache;
            proxy_no_cache $arg_nostore;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /ign/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $request_uri;
            proxy_cache_valid 200 10m;
            proxy_ignore_headers Set-Cookie Cache-Control Expires X-Accel-Expires Vary;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /st/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /rv/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_revalidate on;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /bg/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $uri;
            proxy_cache_valid 200 1s;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
            proxy_cache_lock_age 60s;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /mu/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $request_uri;
            proxy_cache_valid 200 10m;
            proxy_cache_min_uses 2;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /valid/ {{
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_key $request_uri;
            proxy_cache_valid 404 1m;
            proxy_cache_valid any 5m;
            add_header X-Cache $upstream_cache_status always;
        }}
    }}
"""

NGINX_HEAD = """
user root;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
"""

DIFF_SCRIPT = [
    ("GET", "/a", None), ("GET", "/a", None), ("HEAD", "/a", None),
    ("GET", "/a", {"If-None-Match": '"x"'}),
    ("GET", "/big?n=3000&etag=%22e1%22", None),
    ("GET", "/big?n=3000&etag=%22e1%22", {"If-None-Match": '"e1"'}),
    ("GET", "/hdr?Cache-Control=no-cache", None), ("GET", "/hdr?Cache-Control=no-cache", None),
    ("GET", "/hdr?Cache-Control=private", None), ("GET", "/hdr?Cache-Control=private", None),
    ("GET", "/hdr?Cache-Control=max-age%3D100", None),
    ("GET", "/hdr?Cache-Control=max-age%3D100", None),
    ("GET", "/hdr?X-Accel-Expires=0", None), ("GET", "/hdr?X-Accel-Expires=0", None),
    ("GET", "/hdr?Set-Cookie=s%3D1", None), ("GET", "/hdr?Set-Cookie=s%3D1", None),
    ("GET", "/hdr?Vary=%2A", None), ("GET", "/hdr?Vary=%2A", None),
    ("GET", "/hdr?Expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A01%20GMT", None),
    ("GET", "/hdr?Expires=Thu%2C%2001%20Jan%201970%2000%3A00%3A01%20GMT", None),
    ("GET", "/status?code=404", None), ("GET", "/status?code=404", None),
    ("GET", "/status?code=500", None), ("GET", "/status?code=500", None),
    ("GET", "/hdr?code=301&Location=/x", None), ("GET", "/hdr?code=301&Location=/x", None),
    ("GET", "/b?nocache=1", None), ("GET", "/b?nocache=1", None),
    ("GET", "/c?nostore=1", None), ("GET", "/c?nostore=1", None),
    ("POST", "/p", None), ("POST", "/p", None),
    ("GET", "/ign/hdr?Set-Cookie=s%3D1&Cache-Control=no-store", None),
    ("GET", "/ign/hdr?Set-Cookie=s%3D1&Cache-Control=no-store", None),
    ("GET", "/valid/status?code=404", None), ("GET", "/valid/status?code=404", None),
    ("GET", "/mu/a", None), ("GET", "/mu/a", None), ("GET", "/mu/a", None),
    ("GET", "/valid/status?code=503", None), ("GET", "/valid/status?code=503", None),
]


class _Nginx1(test_nginx_diff.Nginx):
    """nginx with one worker: with two, nginx renames a cache file after the client
    has the whole answer, so the next request may race it to the other worker and be
    a MISS (zonegate's entry is in place before the answer's end is sent)"""

    def __init__(self, conf, port, **kw):
        import subprocess
        import tempfile
        import zg
        self.dir = tempfile.mkdtemp(prefix="zgnginx-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf.format(dir=self.dir, port=port, **kw))
        g = ("daemon off; master_process on; worker_processes 1; pid %s/nginx.pid; "
             "error_log %s/error.log info;" % (self.dir, self.dir))
        self.proc = zg.spawn([test_nginx_diff.NGINX, "-p", self.dir + "/", "-c", self.conf,
                              "-g", g], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        zg.wait_port(port, proc=self.proc)


def _run_script(port):
    out = []
    for method, path, headers in DIFF_SCRIPT:
        st, h, _ = request(port, method, path, headers=headers,
                           body=b"x" if method == "POST" else None)
        out.append((method, path, st, h.get("x-cache")))
    return out


def _stale_script(port):
    """MISS, HIT, then (the entry expired: 3 s later by the clock, whatever the
    proxy) a 500 answered from the stale entry, a 200 stored again, a HIT"""
    import time
    out = []
    t0 = int(time.time())
    for path in ("/st/hdr?body=a", "/st/hdr", "/rv/hdr?ETag=%22v%22&body=r", "/rv/hdr"):
        st, h, body = request(port, "GET", path)
        out.append((path, st, h.get("x-cache"), body))
    assert wait_for(lambda: time.time() >= t0 + 3, 10)
    for path in ("/st/hdr?code=500&body=bad", "/st/hdr?body=b", "/st/hdr",
                 "/rv/hdr?ETag=%22v%22&body=new", "/rv/hdr"):
        st, h, body = request(port, "GET", path)
        out.append((path, st, h.get("x-cache"), body))
    return out


_bg_log = []


def _bg_script(port, u, key):
    """proxy_cache_background_update: MISS, then (expired) STALE at once while the
    refresh is held at the upstream, UPDATING meanwhile, a HIT with the new body after"""
    out = []
    path = "/bg/slow?ms=0&body=old-" + key
    st, h, body = request(port, "GET", path)
    out.append((st, h.get("x-cache"), body))
    _bg_fill(port, path, ("old-" + key).encode())

    def hold():
        st, h, body = request(port, "GET", "/bg/slow?hold=%s&body=new" % key)
        return st, h.get("x-cache"), body
    for i in range(2):
        out.append(_bg_stale(hold) if i == 0 else hold())
        assert wait_for(lambda: u.held(key) == 1, 10), (
            out, open(_bg_log[0]).read()[-1500:] if _bg_log else "")
    u.release(key)
    last = []
    assert wait_for(lambda: last.append(request(port, "GET", "/bg/slow?ms=0&body=new")) or
                    last[-1][1].get("x-cache") == "HIT", 10)
    out.append((last[-1][0], "HIT", last[-1][2]))
    return [(o[0], o[1], o[2].replace(key.encode(), b"KEY")) for o in out]


def test_same_cache_statuses_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + DIFF_COMMON + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr)
    n = _Nginx1(NGINX_HEAD + DIFF_COMMON + "}}\n", nport, up=u.addr)
    try:
        zs, ns = _run_script(zport), _run_script(nport)
        for a, b in zip(ns, zs):
            print("%-6s %-60s nginx %s %-8s zonegate %s %s" % (a[0], a[1], a[2], a[3], b[2], b[3]))
        assert zs == ns
        zs, ns = _stale_script(zport), _stale_script(nport)
        for a, b in zip(ns, zs):
            print("%-30s nginx %s %-8s %r zonegate %s %s %r" % (a[0], a[1], a[2], a[3], b[1],
                                                               b[2], b[3]))
        assert zs == ns
    finally:
        n.stop()
        z.stop()
        u.stop()


def test_background_update_as_nginx():
    if not os.path.exists(test_nginx_diff.NGINX):
        raise Skip("%s is missing (scripts/deps.sh installs nginx)" % test_nginx_diff.NGINX)
    u = Upstream("a")
    zport, nport = free_port(), free_port()
    z = Zonegate("worker_processes 2;\nhttp {{\n" + DIFF_COMMON + "}}\n", wait_ports=[zport],
                 port=zport, up=u.addr)
    n = _Nginx1(NGINX_HEAD + DIFF_COMMON + "}}\n", nport, up=u.addr)
    try:
        _bg_log[:] = [z.log]
        zs, ns = _bg_script(zport, u, "zg"), _bg_script(nport, u, "ngx")
        print("background update: nginx %s zonegate %s" % (ns, zs))
        assert zs == ns
        assert zs == [(200, "MISS", b"old-KEY"), (200, "STALE", b"old-KEY"),
                      (200, "UPDATING", b"old-KEY"), (200, "HIT", b"new")], zs
    finally:
        u.release("zg")
        u.release("ngx")
        n.stop()
        z.stop()
        u.stop()


OWN_CONF = """
worker_processes 1;
http {{
    proxy_cache_path {dir}/cache levels=1:2 keys_zone=one:1m inactive=10m;
    upstream app {{ server {up}; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status always;
        }}
        location /off/ {{
            server_tokens off;
            proxy_pass http://app/;
            proxy_cache one;
            proxy_cache_valid 200 10m;
            add_header X-Cache $upstream_cache_status always;
        }}
    }}
}}
"""


def _all_headers(port, path, method="GET"):
    """(status, [(lowercase name, value)] in order, body): repeated names kept"""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path)
        r = c.getresponse()
        data = r.read()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()], data
    finally:
        c.close()


def _vals(hdrs, name):
    return [v for k, v in hdrs if k == name]


def test_hit_has_current_date_and_own_server():
    u = Upstream("a")
    port = free_port()
    z = Zonegate(OWN_CONF, wait_ports=[port], port=port, up=u.addr)
    try:
        for path, server in (("/big?n=10", "zonegate/" + VERSION),
                             ("/off/big?n=10", "zonegate")):
            st, miss, body = _all_headers(port, path)
            assert st == 200 and _vals(miss, "x-cache") == ["MISS"], miss
            assert _vals(miss, "server") == [server], miss
            assert len(_vals(miss, "date")) == 1, miss
            miss_date = _vals(miss, "date")[0]
            # HITs until one comes in a later second than the stored answer's (the
            # worker's clock is read once per loop turn, so the first HIT of a new
            # wall-clock second may still carry the old one); a replayed Date never
            # changes and fails here
            last = []

            def later_hit():
                last[:] = [_all_headers(port, path)]
                return _vals(last[0][1], "date") != [miss_date]
            assert wait_for(later_hit, 5), (miss_date, last)
            st, hit, body2 = last[0]
            assert st == 200 and _vals(hit, "x-cache") == ["HIT"], hit
            assert body2 == body
            # zonegate's own Server (server_tokens), once; not the upstream's
            assert _vals(hit, "server") == [server], hit
            # a Date of now, once; not the one written with the entry
            dates = _vals(hit, "date")
            assert len(dates) == 1 and dates[0] != miss_date, (miss_date, hit)
            hit_t = parsedate_to_datetime(dates[0]).timestamp()
            assert hit_t > parsedate_to_datetime(miss_date).timestamp(), (miss_date, dates)
            assert abs(hit_t - time.time()) < 3, (dates, time.time())
            # HEAD from the cache as well
            st, head, _ = _all_headers(port, path, "HEAD")
            assert _vals(head, "x-cache") == ["HIT"] and _vals(head, "server") == [server]
            assert len(_vals(head, "date")) == 1, head
        assert u.count() == 2, u.count()
    finally:
        z.stop()
        u.stop()
