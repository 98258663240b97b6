"""The JSON API (issue 16) across 2 workers: keyvals GET/POST/PATCH/DELETE and what the
very next request sees on every worker, 405 without write=on, 400/404/409/413 with a
JSON error body, limit_reqs / limit_conns / upstreams / slabs, top=N keys and forgiving
one, upstream peers down and back, state files through TERM + start and HUP."""
import json
import os
import signal
import socket
import tempfile

from zg import Upstream, Zonegate, free_port, request, wait_for, wait_port

CONF = """
worker_processes 2;
http {{
    keyval_zone zone=deny:64k type=ip state={dir}/deny.json;
    keyval $remote_addr $blocked zone=deny;
    keyval_zone zone=tiers:32k;
    keyval $http_x_key $tier zone=tiers;
    limit_req_zone $blocked zone=blocked:64k rate=1r/m;
    limit_req_zone $binary_remote_addr zone=perip:64k rate=1r/m;
    limit_req_zone $http_x_key zone=bykey:64k rate=1r/m;
    limit_conn_zone $binary_remote_addr zone=conns:64k;
    keyval_zone zone=rates:64k;
    keyval $http_x_key $key_rate zone=rates;
    limit_req_zone $http_x_key zone=tiered:64k rate=$key_rate default=1r/m;
    limit_conn_zone $http_x_key zone=kconns:64k;
    keyval_zone zone=maxconn:64k;
    keyval $http_x_key $max_conns zone=maxconn;
    log_format t '$remote_addr blocked=$blocked tier=$tier';
    upstream app {{ zone app 64k; server {up1}; server {up2}; }}
    server {{
        listen 127.0.0.1:{port};
        limit_req_status 403;
        location / {{ limit_req zone=blocked; proxy_pass http://127.0.0.1:{back}; }}
        location /ip {{ limit_req zone=perip burst=2 nodelay; proxy_pass http://127.0.0.1:{back}; }}
        location /key {{ limit_req zone=bykey nodelay; proxy_pass http://127.0.0.1:{back}; }}
        location /app {{ proxy_pass http://app; }}
        location /slow {{ limit_conn kconns $max_conns default=1; proxy_pass http://app; }}
        location /tiered {{ limit_req zone=tiered burst=5 nodelay; proxy_pass http://127.0.0.1:{back}; }}
        location /api/ {{ api write=on; }}
        location /ro/ {{ api; }}
    }}
    server {{
        listen 127.0.0.1:{back};
        location / {{ return 200 "ok"; }}
    }}
}}
"""


def start(d=None):
    d = d or tempfile.mkdtemp(prefix="zgtest-")
    up1, up2 = Upstream("one"), Upstream("two")
    port, back = free_port(), free_port()
    z = Zonegate(CONF, port=port, back=back, dir=d, up1=up1.addr, up2=up2.addr)
    z.dir, z.port, z.back, z.ups = d, port, back, (up1, up2)
    wait_port(port, proc=z.proc)
    wait_port(back, proc=z.proc)
    z.wait_workers(2)
    return z


def api(port, method, path, body=None, prefix="/api"):
    data = None if body is None else (body if isinstance(body, (bytes, str)) else json.dumps(body))
    hdr = {"Content-Type": "application/json"} if data is not None else {}
    st, h, b = request(port, method, prefix + path, body=data, headers=hdr)
    doc = json.loads(b) if b else None
    if b:
        assert h["content-type"] == "application/json", h
    return st, doc


def each_worker(port, path, n=8, headers=None):
    """statuses of n requests on n fresh connections (the kernel spreads them over
    the workers); the caller compares them as a multiset"""
    return [request(port, "GET", path, headers=headers or {})[0] for _ in range(n)]


def test_keyvals_crud_and_errors():
    z = start()
    p = z.port
    assert api(p, "GET", "/") == (200, [1])
    assert api(p, "GET", "/1/http")[1] == ["keyvals", "limit_reqs", "limit_conns", "upstreams",
                                             "caches"]
    assert api(p, "GET", "/1/http/keyvals") == (200, {"deny": {}, "tiers": {}, "rates": {}, "maxconn": {}})
    assert api(p, "POST", "/1/http/keyvals/tiers", {"k1": "gold", "k2": "silver"})[0] == 201
    assert api(p, "GET", "/1/http/keyvals/tiers") == (200, {"k1": "gold", "k2": "silver"})
    assert api(p, "GET", "/1/http/keyvals/tiers?key=k1") == (200, {"k1": "gold"})
    # POST of a present key: 409, nothing changed
    st, doc = api(p, "POST", "/1/http/keyvals/tiers", {"k1": "bronze"})
    assert st == 409 and doc["error"]["code"] == "KeyvalKeyExists", doc
    # PATCH sets and (null) deletes
    assert api(p, "PATCH", "/1/http/keyvals/tiers", {"k1": "bronze", "k2": None})[0] == 204
    assert api(p, "GET", "/1/http/keyvals/tiers") == (200, {"k1": "bronze"})
    # errors: bad JSON, wrong types, unknown zone, unknown key, unknown path
    st, doc = api(p, "PATCH", "/1/http/keyvals/tiers", "{nope")
    assert st == 400 and "invalid JSON" in doc["error"]["text"], doc
    st, doc = api(p, "POST", "/1/http/keyvals/tiers", {"k9": 5})
    assert st == 400 and "must be a string" in doc["error"]["text"], doc
    st, doc = api(p, "POST", "/1/http/keyvals/tiers", [1, 2])
    assert st == 400, doc
    st, doc = api(p, "POST", "/1/http/keyvals/deny", {"not-an-ip": "1"})
    assert st == 400 and doc["error"]["code"] == "KeyvalKeyError", doc
    assert api(p, "GET", "/1/http/keyvals/nope")[0] == 404
    assert api(p, "GET", "/1/http/keyvals/tiers?key=zz")[0] == 404
    assert api(p, "GET", "/1/http/nothing")[0] == 404
    assert api(p, "GET", "/2/http")[0] == 404
    # too large a value: 413, and a value too large for the zone's free memory too
    st, doc = api(p, "PATCH", "/1/http/keyvals/tiers", {"big": "x" * 5000})
    assert st == 413, doc
    # DELETE empties the zone
    assert api(p, "DELETE", "/1/http/keyvals/tiers")[0] == 204
    assert api(p, "GET", "/1/http/keyvals/tiers") == (200, {})
    # without write=on every write is 405
    for m in ("POST", "PATCH", "DELETE"):
        st, doc = api(p, m, "/1/http/keyvals/tiers", {"a": "b"}, prefix="/ro")
        assert st == 405 and doc["error"]["code"] == "MethodDisabled", (m, st, doc)
    assert api(p, "GET", "/1/http/keyvals/tiers", prefix="/ro")[0] == 200


def test_block_and_unblock_seen_by_every_worker_at_once():
    z = start()
    p = z.port
    assert sorted(each_worker(p, "/", 6)) == [200] * 6  # empty key: not limited
    # block the client's network: the very next requests see "1" on every worker;
    # the rate is 1r/m for the key "1", so after one pass all are refused
    assert api(p, "POST", "/1/http/keyvals/deny", {"127.0.0.0/8": "1"})[0] == 201
    st = each_worker(p, "/", 6)
    assert sorted(st) == [200] + [403] * 5, st
    assert api(p, "PATCH", "/1/http/keyvals/deny", {"127.0.0.0/8": None})[0] == 204
    assert sorted(each_worker(p, "/", 6)) == [200] * 6


def test_patch_a_keys_tier_next_request_obeys():
    # the key "$tier" gives one bucket per tier; changing a client's tier moves it
    z = start()
    p = z.port
    hdr = {"X-Key": "client-a"}
    st = each_worker(p, "/key", 4, hdr)
    assert sorted(st) == [200, 403, 403, 403], st  # 1r/m per X-Key
    # forgive the key: the very next request passes on whichever worker
    assert api(p, "DELETE", "/1/http/limit_reqs/bykey/keys/client-a")[0] == 204
    assert request(p, "GET", "/key", headers=hdr)[0] == 200
    assert api(p, "DELETE", "/1/http/limit_reqs/bykey/keys/client-a")[0] == 204
    assert api(p, "DELETE", "/1/http/limit_reqs/bykey/keys/nobody")[0] == 404


def test_limit_reqs_top_keys_and_counters():
    z = start()
    p = z.port
    st = each_worker(p, "/ip", 6)
    assert sorted(st) == [200] * 3 + [403] * 3, st  # burst=2 nodelay
    st, doc = api(p, "GET", "/1/http/limit_reqs")
    assert doc["perip"]["passed"] == 3 and doc["perip"]["rejected"] == 3, doc
    st, top = api(p, "GET", "/1/http/limit_reqs/perip/keys?top=5")
    assert st == 200 and len(top) == 1, top
    assert top[0]["key"] == "127.0.0.1", top  # $binary_remote_addr read as an address
    assert top[0]["rate"] == "1r/m" and 1.9 < top[0]["excess"] <= 2.0, top
    assert top[0]["last_seen_ms"] >= 0
    assert api(p, "GET", "/1/http/limit_reqs/perip/keys?top=0")[0] == 400
    assert api(p, "GET", "/1/http/limit_reqs/nope/keys")[0] == 404
    # forgive: the key's excess is gone, it passes at once, and top no longer lists it
    assert api(p, "DELETE", "/1/http/limit_reqs/perip/keys/127.0.0.1")[0] == 204
    assert api(p, "GET", "/1/http/limit_reqs/perip/keys?top=5") == (200, [])
    assert request(p, "GET", "/ip")[0] == 200
    # read-only API: forgiving is a write
    assert api(p, "DELETE", "/1/http/limit_reqs/perip/keys/127.0.0.1", prefix="/ro")[0] == 405
    st, doc = api(p, "GET", "/1/http/limit_conns")
    assert st == 200 and "conns" in doc, doc
    assert api(p, "GET", "/1/http/limit_conns/conns/keys?top=3") == (200, [])


def test_upstream_peer_down_and_back_across_workers():
    z = start()
    p = z.port
    st, doc = api(p, "GET", "/1/http/upstreams")
    peers = doc["app"]["peers"]
    assert [x["state"] for x in peers] == ["up", "up"], peers
    st, doc = api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"down": True})
    assert st == 200 and doc["state"] == "down", doc
    before = z.ups[0].count()
    for _ in range(6):
        assert request(p, "GET", "/app")[0] == 200
    assert z.ups[0].count() == before  # no worker picks the downed peer
    assert api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"drain": True})[1]["state"] == "draining"
    assert api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"down": False, "weight": 3})[1] == \
        dict(api(p, "GET", "/1/http/upstreams/app/servers/0")[1], state="up", weight=3)
    st, doc = api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"colour": "red"})
    assert st == 400 and "unknown field" in doc["error"]["text"], doc
    st, doc = api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"down": "yes"})
    assert st == 400 and "boolean" in doc["error"]["text"], doc
    assert api(p, "PATCH", "/1/http/upstreams/app/servers/7", {"down": True})[0] == 404
    assert api(p, "PATCH", "/1/http/upstreams/nope/servers/0", {"down": True})[0] == 404


def test_slabs():
    z = start()
    st, doc = api(z.port, "GET", "/1/slabs")
    assert st == 200 and doc["deny"]["kind"] == "keyval", doc
    assert doc["deny"]["pages"]["used"] > 0 and "8" in doc["deny"]["slots"], doc
    assert api(z.port, "GET", "/1/slabs/nope")[0] == 404


def test_state_survives_term_and_start_and_hup():
    d = tempfile.mkdtemp(prefix="zgtest-")
    z = start(d)
    p = z.port
    state = os.path.join(d, "deny.json")
    assert api(p, "POST", "/1/http/keyvals/deny", {"10.0.0.0/8": "1", "192.0.2.1": "x"})[0] == 201
    # the master writes the file within about a second of the change
    assert wait_for(lambda: os.path.exists(state) and
                    json.load(open(state)) == {"10.0.0.0/8": "1", "192.0.2.1": "x"}, 5)
    assert not os.path.exists(state + ".tmp")
    assert api(p, "PATCH", "/1/http/keyvals/deny", {"192.0.2.1": None})[0] == 204
    assert z.stop() == 0
    # the stop wrote the last change
    assert json.load(open(state)) == {"10.0.0.0/8": "1"}
    z = start(d)
    assert api(z.port, "GET", "/1/http/keyvals/deny") == (200, {"10.0.0.0/8": "1"})
    # HUP keeps the zone (same name, kind and size) and its entries
    old = set(z.workers())
    z.reload()
    z.wait_workers(2, gone=old)
    assert api(z.port, "GET", "/1/http/keyvals/deny") == (200, {"10.0.0.0/8": "1"})


def test_patch_a_keys_rate_next_request_obeys_it():
    z = start()
    p = z.port
    hdr = {"X-Key": "a"}
    forgive = "/1/http/limit_reqs/tiered/keys/a"
    # a fast rate for "a": with burst=5, six requests pass whatever their timing
    assert api(p, "PATCH", "/1/http/keyvals/rates", {"a": "1000000r/s"})[0] == 204
    assert each_worker(p, "/tiered", 6, hdr) == [200] * 6
    # 2r/m from the next request on: after a forgive (a known, empty bucket) exactly
    # burst + 1 pass, on whichever worker each lands
    assert api(p, "PATCH", "/1/http/keyvals/rates", {"a": "2r/m"})[0] == 204
    assert api(p, "DELETE", forgive)[0] == 204
    st = each_worker(p, "/tiered", 8, hdr)
    assert st == [200] * 6 + [403] * 2, st
    st, top = api(p, "GET", "/1/http/limit_reqs/tiered/keys?top=1")
    # the rate in force for the key, not the zone's default
    assert top[0]["key"] == "a" and 4.9 < top[0]["excess"] <= 5, top
    assert top[0]["rate"] == "2r/m", top
    # an invalid value falls back to default=1r/m; unknown keys too
    assert api(p, "PATCH", "/1/http/keyvals/rates", {"a": "lots"})[0] == 204
    assert api(p, "DELETE", forgive)[0] == 204
    assert each_worker(p, "/tiered", 7, hdr) == [200] * 6 + [403]
    assert each_worker(p, "/tiered", 7, {"X-Key": "b"}) == [200] * 6 + [403]


def test_top_walks_many_keys_in_chunks_and_survives_a_client_that_leaves():
    import http.client
    z = start()
    p = z.port
    # 1,300 keys (more than two 512-entry chunks), key i charged 1 + i % 3 times
    c = http.client.HTTPConnection("127.0.0.1", p, timeout=30)
    for i in range(1300):
        for _ in range(1 + i % 3):
            c.request("GET", "/tiered", headers={"X-Key": "key-%d" % i})
            c.getresponse().read()
    c.close()
    st, top = api(p, "GET", "/1/http/limit_reqs/tiered/keys?top=4")
    assert st == 200 and len(top) == 4, top
    # default 1r/m, burst=5: three requests leave an excess of 2
    assert all(1.9 < t["excess"] <= 2.0 for t in top), top
    # a client that asks and leaves mid-walk: the worker lets the walk go
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", p))
        s.sendall(b"GET /api/1/http/limit_reqs/tiered/keys?top=5 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    st, top = api(p, "GET", "/1/http/limit_reqs/tiered/keys?top=2")
    assert st == 200 and len(top) == 2
    assert len(z.workers()) == 2
    assert "signal" not in z.error_log() and "AddressSanitizer" not in z.error_log()


def test_reload_with_a_resized_zone_loads_the_latest_state():
    # a new size makes a new zone: it is loaded from the state file, which the master
    # brings up to date first (a change of the last second is not lost)
    d = tempfile.mkdtemp(prefix="zgtest-")
    z = start(d)
    assert api(z.port, "POST", "/1/http/keyvals/deny", {"10.1.0.0/16": "1"})[0] == 201
    old = set(z.workers())
    z.rewrite(CONF.replace("zone=deny:64k", "zone=deny:128k"), port=z.port, back=z.back,
              up1=z.ups[0].addr, up2=z.ups[1].addr, dir=d)
    z.reload()
    z.wait_workers(2, gone=old)
    assert api(z.port, "GET", "/1/http/keyvals/deny") == (200, {"10.1.0.0/16": "1"})
    st, doc = api(z.port, "GET", "/1/slabs/deny")
    assert doc["size"] == 128 * 1024, doc


def test_peer_changes_survive_a_reload_that_keeps_the_peer():
    d = tempfile.mkdtemp(prefix="zgtest-")
    z = start(d)
    p = z.port
    assert api(p, "PATCH", "/1/http/upstreams/app/servers/0", {"down": True})[0] == 200
    assert api(p, "PATCH", "/1/http/upstreams/app/servers/1", {"weight": 7})[0] == 200
    # the server list changes (a third server): the two kept peers keep their state
    third = Upstream("three")
    old = set(z.workers())
    z.rewrite(CONF.replace("server {up2}; }}", "server {up2}; server {up3}; }}"), port=p,
              back=z.back, up1=z.ups[0].addr, up2=z.ups[1].addr, up3=third.addr, dir=d)
    z.reload()
    z.wait_workers(2, gone=old)
    st, doc = api(p, "GET", "/1/http/upstreams/app")
    peers = doc["peers"]
    assert [(x["state"], x["weight"]) for x in peers] == [("down", 1), ("up", 7), ("up", 1)], peers


def test_limit_conn_from_keyval_and_keys_holding_most():
    import threading
    import urllib.request
    z = start()
    p = z.port
    up1, up2 = z.ups

    def held():
        return sum(int(urllib.request.urlopen("http://%s/__held?hold=h" % u.addr).read())
                   for u in (up1, up2))

    assert api(p, "PATCH", "/1/http/keyvals/maxconn", {"a": "3"})[0] == 204
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        request(p, "GET", "/slow?hold=h", headers={"X-Key": "a"}, timeout=60)[0]))
        for _ in range(3)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: held() == 3, 10), held()
        # the fourth of key "a" is over its limit of 3; key "b" has the default of 1
        assert request(p, "GET", "/slow?hold=x&ms=0", headers={"X-Key": "a"})[0] == 503
        st, top = api(p, "GET", "/1/http/limit_conns/kconns/keys?top=5")
        assert top == [{"key": "a", "connections": 3}], top
        st, doc = api(p, "GET", "/1/http/limit_conns/kconns")
        assert doc["active"] == 3 and doc["rejected"] == 1, doc
    finally:
        for u in (up1, up2):
            urllib.request.urlopen("http://%s/__release?hold=h" % u.addr).read()
        for t in threads:
            t.join(30)
    assert results == [200, 200, 200], results
    assert api(p, "GET", "/1/http/limit_conns/kconns/keys?top=5") == (200, [])


DENY_CONF = """
worker_processes 2;
http {{
    keyval_zone zone=deny:64k type=ip;
    keyval $remote_addr $blocked zone=deny;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($blocked) {{ return 403; }}
            add_header X-Blocked "[$blocked]";
            return 200 "ok";
        }}
        location /api/ {{ api write=on; }}
    }}
}}
"""


def test_canonical_deny_list_with_if():
    port = free_port()
    z = Zonegate(DENY_CONF, port=port)
    wait_port(port, proc=z.proc)
    z.wait_workers(2)
    assert each_worker(port, "/", 6) == [200] * 6
    st, h, body = request(port, "GET", "/")
    assert h.get("x-blocked") == "[]", h
    # blocked: the very next request of every worker answers 403
    assert api(port, "POST", "/1/http/keyvals/deny", {"127.0.0.0/24": "1"})[0] == 201
    assert each_worker(port, "/", 6) == [403] * 6
    # a value that is not "0" nor empty is true for `if`; "0" is false
    assert api(port, "PATCH", "/1/http/keyvals/deny", {"127.0.0.0/24": "0"})[0] == 204
    st, h, body = request(port, "GET", "/")
    assert st == 200 and h.get("x-blocked") == "[0]", (st, h)
    # unblocked again
    assert api(port, "PATCH", "/1/http/keyvals/deny", {"127.0.0.0/24": None})[0] == 204
    assert each_worker(port, "/", 6) == [200] * 6
