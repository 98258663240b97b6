"""Fleet-wide key-value zones (issue 20): `keyval_zone ... sync=URL`.  An entry written
or deleted through one host's API is seen by every host within an interval; the last
write to reach Redis wins; a clear propagates; the variable reads the synced value;
Redis down: writes stay local and reach the fleet when it returns; /metrics shows the
link, the keys synced and the fleet's entries beside the local count."""
import json

from sync_util import Redis, metric
from zg import Zonegate, free_port, get, request, wait_for

CONF = """
worker_processes 2;
http {{
    keyval_zone zone=tiers:1m {sync} sync_interval=50ms;
    keyval_zone zone=nets:1m type=ip {sync} sync_interval=50ms;
    keyval $http_x_key $tier zone=tiers;
    server {{
        listen 127.0.0.1:{port};
        location /api/ {{ api write=on; }}
        location = /metrics {{ metrics; }}
        location = /tier {{ return 200 "tier=$tier"; }}
    }}
}}
"""


def api(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    st, _, out = request(port, method, "/api/1/http/keyvals" + path, body=data,
                         headers={"Content-Type": "application/json"} if data else None)
    return st, (json.loads(out) if out else None)


def kv(port, zone="tiers"):
    return api(port, "GET", "/" + zone)[1]


def hosts(n, redis_port, sync=None):
    out = []
    for _ in range(n):
        port = free_port()
        s = sync or "sync=redis://127.0.0.1:%d" % redis_port
        z = Zonegate(CONF, wait_ports=[port], port=port, sync=s)
        z.port = port
        out.append(z)
    for z in out:
        assert wait_for(lambda: metric(z.port, "zonegate_sync_up", "tiers") == 1, 10), \
            z.error_log()
    return out


def test_sync_keyval_set_delete_clear_propagate():
    r = Redis()
    a, b, c = hosts(3, r.port)
    assert api(a.port, "POST", "/tiers", {"k1": "gold", "k2": "silver"})[0] == 201
    for z in (b, c):
        assert wait_for(lambda: kv(z.port) == {"k1": "gold", "k2": "silver"}, 5), kv(z.port)
    # the variable reads the synced value on another host
    assert get(b.port, "/tier", headers={"X-Key": "k1"})[2] == b"tier=gold"
    # a change on B, a delete on C
    assert api(b.port, "PATCH", "/tiers", {"k1": "bronze"})[0] == 204
    assert api(c.port, "PATCH", "/tiers", {"k2": None})[0] == 204
    for z in (a, b, c):
        assert wait_for(lambda: kv(z.port) == {"k1": "bronze"}, 5), kv(z.port)
    # an ip zone: networks by their canonical text
    assert api(a.port, "POST", "/nets", {"10.1.2.3/8": "x", "192.0.2.7": "y"})[0] == 201
    assert wait_for(lambda: kv(c.port, "nets") == {"10.0.0.0/8": "x", "192.0.2.7": "y"}, 5), \
        kv(c.port, "nets")
    # a clear on one host empties the zone everywhere
    assert api(b.port, "DELETE", "/tiers")[0] == 204
    for z in (a, c):
        assert wait_for(lambda: kv(z.port) == {}, 5), kv(z.port)
    # the keys live under the zone's hash tag
    assert "zgk:{tiers}:kv" in r.keys("zgk:*") or kv(a.port) == {}
    assert metric(a.port, "zonegate_sync_keys_total", "tiers") > 0
    assert metric(a.port, "zonegate_sync_errors_total", "tiers") == 0
    assert api(a.port, "POST", "/tiers", {"n1": "1", "n2": "2", "n3": "3"})[0] == 201
    # the fleet's entries beside the local count
    assert wait_for(lambda: metric(c.port, "zonegate_sync_fleet_current", "tiers") == 3, 5)
    assert wait_for(lambda: metric(c.port, "zonegate_keyval_entries", "tiers") == 3, 5)
    # the JSON API's view of the sync
    st, _, body = get(c.port, "/api/1/sync")
    doc = json.loads(body)
    assert st == 200 and set(doc) == {"tiers", "nets"}, doc
    t = doc["tiers"]
    assert t["kind"] == "keyval" and t["state"] == "up" and t["local"] == 3, t
    assert t["fleet"] == 3 and t["keys"] > 0 and t["last_success_ms"] > 0, t
    assert t["url"] == "redis://127.0.0.1:%d" % r.port and t["interval_ms"] == 50, t
    assert t["errors"] == 0 and t["budget_full"] == 0, t
    for z in (a, b, c):
        z.stop()


def test_sync_keyval_last_writer_wins():
    r = Redis()
    a, b = hosts(2, r.port)
    # many rounds of the same key written on both hosts at about the same time: every
    # round ends with both hosts on the same value, the one Redis stamped last
    for i in range(10):
        assert api(a.port, "PATCH", "/tiers", {"k": "a%d" % i})[0] == 204
        assert api(b.port, "PATCH", "/tiers", {"k": "b%d" % i})[0] == 204

        def same():
            va, vb = kv(a.port).get("k"), kv(b.port).get("k")
            return va == vb and va in ("a%d" % i, "b%d" % i)
        assert wait_for(same, 5), (kv(a.port), kv(b.port))
        got = kv(a.port)["k"]
        # Redis holds the same value: the winner is what Redis kept
        assert r.cli("hget", "zgk:{tiers}:kv", "k").strip() == got
    # a later write after both have synced always wins
    assert api(a.port, "PATCH", "/tiers", {"k": "late"})[0] == 204
    assert wait_for(lambda: kv(b.port).get("k") == "late", 5)
    for z in (a, b):
        z.stop()


def test_sync_keyval_redis_down_then_back():
    r = Redis()
    a, b = hosts(2, r.port)
    assert api(a.port, "POST", "/tiers", {"k1": "v1"})[0] == 201
    assert wait_for(lambda: kv(b.port) == {"k1": "v1"}, 5)
    r.kill()
    assert wait_for(lambda: metric(a.port, "zonegate_sync_up", "tiers") == 0, 10)
    assert json.loads(get(a.port, "/api/1/sync")[2])["tiers"]["state"] == "down"
    # fail-open: writes and reads go on locally
    assert api(a.port, "PATCH", "/tiers", {"k2": "v2", "k1": None})[0] == 204
    assert kv(a.port) == {"k2": "v2"}
    assert kv(b.port) == {"k1": "v1"}
    r.start()  # an empty Redis on the same port
    assert wait_for(lambda: metric(a.port, "zonegate_sync_up", "tiers") == 1, 10)
    # the journal reaches the fleet
    assert wait_for(lambda: kv(b.port).get("k2") == "v2", 5), kv(b.port)
    for z in (a, b):
        z.stop()


def test_sync_keyval_new_host_loads_the_fleet():
    r = Redis()
    a, = hosts(1, r.port)
    assert api(a.port, "POST", "/tiers", {"k%d" % i: "v%d" % i for i in range(50)})[0] == 201
    assert wait_for(lambda: metric(a.port, "zonegate_sync_fleet_current", "tiers") == 50, 5)
    b, = hosts(1, r.port)
    assert wait_for(lambda: len(kv(b.port)) == 50, 5), len(kv(b.port))
    for z in (a, b):
        z.stop()


def test_sync_keyval_config():
    from zg import zonegate_t
    rc, out, _ = zonegate_t("http {{ keyval_zone zone=a:1m sync=nope://x; }}")
    assert rc == 1 and "sync" in out, out
    rc, out, _ = zonegate_t("http {{ keyval_zone zone=a:1m sync=redis://h:1:2; }}")
    assert rc == 1, out
    rc, out, _ = zonegate_t(
        "http {{ keyval_zone zone=a:1m type=ip timeout=1h sync=redis://127.0.0.1:6379 "
        "sync_interval=50ms; }}")
    assert rc == 0, out


def test_sync_keyval_on_an_authenticated_redis_cluster():
    import subprocess
    from test_sync_cluster import owner, slot
    pw = "kv-pw"
    nodes = [Redis(args=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                         "--cluster-node-timeout", "2000", "--cluster-port", str(free_port()),
                         "--requirepass", pw, "--masterauth", pw], password=pw)
             for _ in range(3)]
    out = subprocess.run(["redis-cli", "-a", pw, "--no-auth-warning", "--cluster", "create"] +
                         ["127.0.0.1:%d" % n.port for n in nodes] +
                         ["--cluster-replicas", "0", "--cluster-yes"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert out.returncode == 0, out.stdout.decode()
    assert wait_for(lambda: all("cluster_state:ok" in n.cli("cluster", "info") for n in nodes),
                    20)
    sync = "sync=redis-cluster://:%s@127.0.0.1:%d" % (pw, nodes[0].port)
    a, b = hosts(2, 0, sync=sync)
    assert api(a.port, "POST", "/tiers", {"k1": "gold"})[0] == 201
    assert wait_for(lambda: kv(b.port) == {"k1": "gold"}, 5), kv(b.port)
    assert api(b.port, "PATCH", "/tiers", {"k1": None, "k2": "x"})[0] == 204
    assert wait_for(lambda: kv(a.port) == {"k2": "x"}, 5), kv(a.port)
    # the zone's keys live on the master of its hash tag's slot, and only there
    n = owner(nodes, slot("tiers"))
    assert "zgk:{tiers}:kv" in n.keys("zgk:*")
    assert not any(m.keys("zgk:{tiers}:*") for m in nodes if m is not n)
    for z in (a, b):
        z.stop()


def test_sync_keyval_with_an_acl_user_of_the_documented_rights():
    # the rights README.md lists for keyval zones, on zgk:* only; the default user off
    r = Redis(args=["--user", "default", "off",
                    "--user", "zg", "on", ">kv-pw", "~zgk:*",
                    "+evalsha", "+eval", "+script|load", "+time", "+hget", "+hset", "+hdel",
                    "+hkeys", "+hlen", "+del", "+zadd", "+zrem", "+zrangebyscore"],
              user="zg", password="kv-pw")
    a, b = hosts(2, 0, sync="sync=redis://zg:kv-pw@127.0.0.1:%d" % r.port)
    assert api(a.port, "POST", "/tiers", {"k1": "v1", "k2": "v2"})[0] == 201
    assert api(a.port, "DELETE", "/tiers")[0] == 204
    assert api(a.port, "POST", "/tiers", {"k3": "v3"})[0] == 201
    assert wait_for(lambda: kv(b.port) == {"k3": "v3"}, 5), kv(b.port)
    assert metric(a.port, "zonegate_sync_errors_total", "tiers") == 0
    for z in (a, b):
        z.stop()


def test_sync_keyval_through_sentinel_failover():
    """the master found through Sentinel; killed, the promoted replica takes over and
    writes made after it reach the other host"""
    master = Redis()
    replica = Redis(args=["--replicaof", "127.0.0.1", str(master.port)])
    sconf = ("sentinel monitor mymaster 127.0.0.1 %d 1\n"
             "sentinel down-after-milliseconds mymaster 1000\n"
             "sentinel failover-timeout mymaster 3000\n" % master.port)
    sentinel = Redis(sentinel=sconf)

    def ready():
        d = sentinel.cli("sentinel", "master", "mymaster").split()
        return dict(zip(d[0::2], d[1::2])).get("num-slaves") == "1" and \
            "master_link_status:up" in replica.cli("info", "replication")
    assert wait_for(ready, 20)
    a, b = hosts(2, 0, sync="sync=redis-sentinel://127.0.0.1:%d/mymaster" % sentinel.port)
    assert api(a.port, "POST", "/tiers", {"k1": "v1"})[0] == 201
    assert wait_for(lambda: kv(b.port) == {"k1": "v1"}, 5)
    # the entry reached the replica before the master goes
    assert wait_for(lambda: replica.cli("hget", "zgk:{tiers}:kv", "k1").strip() == "v1", 5)
    master.kill()

    def promoted():
        out = sentinel.cli("sentinel", "get-master-addr-by-name", "mymaster").split()
        return len(out) == 2 and out[1] == str(replica.port)
    assert wait_for(promoted, 20)
    assert api(a.port, "PATCH", "/tiers", {"k2": "v2"})[0] == 204
    assert wait_for(lambda: kv(b.port) == {"k1": "v1", "k2": "v2"}, 15), kv(b.port)
    assert replica.cli("hget", "zgk:{tiers}:kv", "k2").strip() == "v2"
    for z in (a, b):
        z.stop()
